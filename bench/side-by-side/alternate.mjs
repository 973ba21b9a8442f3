#!/usr/bin/env node
// Alternating rounds on one kept database: two or more builds of the service (and PostGraphile, as
// a fixed reference) answer the same query in turn, so that a change is measured against the code
// before it on the same data in the same minutes. The machine's drift hits every contender alike;
// medians of several short rounds then show differences the side-by-side tool's 3 rounds cannot.
//
// It runs from a copy of ../shared/bench (its lib.mjs, autocannon and PostGraphile), on a database
// kept by `side-by-side.mjs --keep-db`; each build is a checkout built with `npm run build`:
//
//   cp -r ../shared/bench /tmp/side-by-side && (cd /tmp/side-by-side && npm install)
//   node /tmp/side-by-side/side-by-side.mjs --checkout "$PWD" --contenders svc20,pgl --keep-db --no-profile
//   git worktree add /tmp/before <commit> && ln -s "$PWD/node_modules" /tmp/before/node_modules && (cd /tmp/before && npm run build)
//   /tmp/side-by-side/node_modules/.bin/node bench/side-by-side/alternate.mjs --bench /tmp/side-by-side --db acc_… \
//     --who "before=/tmp/before;after=$PWD;pgl" --query Q2 --rounds 6 --seconds 5
//
// --who: contenders separated by `;`. `name=dir` is a build of the service (started with Node 20,
// `NODE20` or /usr/bin/node); `name=dir|KEY=value,KEY=value` adds environment variables, where
// NODEFLAGS=… are Node's flags (`NODEFLAGS=--trace-gc`) and QV=… one of VARIANTS below instead of
// the query; `pgl` is PostGraphile. Each round prints requests per second, p99 (ms), CPU per
// request of the contender's process and of all PostgreSQL processes (ms, from /proc), and the
// contender's write system calls per request (/proc/<pid>/io). The service's standard output goes
// to /tmp/alternate-<name>.out (--trace-gc and the like). Drop the kept database afterwards.
import { spawn } from "node:child_process";
import { openSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const opt = (name, fallback) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : fallback; };
const BENCH = opt("--bench", "/tmp/side-by-side");
const DB = opt("--db"), QUERY = opt("--query", "Q2"), ROUNDS = +opt("--rounds", 6), SECONDS = +opt("--seconds", 5);
const WARM = +opt("--warm", 8), CONNECTIONS = +opt("--connections", 10);
if (!DB || !opt("--who")) throw new Error("--db and --who are required");
const { startIssuer, mint, psql, ISSUER, AUDIENCE } = await import(pathToFileURL(join(BENCH, "lib.mjs")).href);
const autocannon = createRequire(join(BENCH, "package.json"))("autocannon");
const url = `postgres://postgres@127.0.0.1:5432/${DB}`;

// The side-by-side tool's three queries, for the service and for PostGraphile.
const SERVICE = {
  Q1: `query($s: String) { organization(slug: $s) { id slug name } }`,
  Q2: `query($s: String) { organization(slug: $s) { id slug name createdAt owner { email }
    members(first: 50) { nodes { role { key } user { id email name } } }
    workspaces(first: 50) { nodes { id name slug environments { id name slug tier resources { cpu ramMb diskGb } } } } } }`,
  Q3: `{ organizations(first: 50) { nodes { id name workspaces(first: 50) { nodes { id name environments { id name } } } } } }`,
};
const POSTGRAPHILE = {
  Q1: `query($s: String!) { organizationBySlug(slug: $s) { rowId slug name } }`,
  Q2: `query($s: String!) { organizationBySlug(slug: $s) { rowId slug name createdAt
    owner: membershipsByOrganizationId(condition: { roleKey: "owner" }, first: 1) { nodes { userByUserId { email } } }
    membershipsByOrganizationId(first: 50, orderBy: [JOINED_AT_ASC, PRIMARY_KEY_ASC]) { nodes { roleByOrganizationIdAndRoleKey { key } userByUserId { rowId email name } } }
    workspacesByOrganizationId(first: 50, orderBy: [CREATED_AT_ASC, PRIMARY_KEY_ASC]) { nodes { rowId name slug
      environmentsByOrganizationIdAndWorkspaceId(orderBy: [CREATED_AT_ASC, PRIMARY_KEY_ASC]) { nodes { rowId name slug tier cpu ramMb diskGb } } } } } }`,
  Q3: `{ allOrganizations(first: 50, orderBy: [CREATED_AT_ASC, PRIMARY_KEY_ASC]) { nodes { rowId name
    workspacesByOrganizationId(first: 50, orderBy: [CREATED_AT_ASC, PRIMARY_KEY_ASC]) { nodes { rowId name
      environmentsByOrganizationIdAndWorkspaceId(orderBy: [CREATED_AT_ASC, PRIMARY_KEY_ASC]) { nodes { rowId name } } } } } } }`,
};
// Parts of Q2 (QV=…): what each part costs, against the whole.
const VARIANTS = {
  noMembers: `query($s: String) { organization(slug: $s) { id slug name createdAt owner { email }
    workspaces(first: 50) { nodes { id name slug environments { id name slug tier resources { cpu ramMb diskGb } } } } } }`,
  noWorkspaces: `query($s: String) { organization(slug: $s) { id slug name createdAt owner { email }
    members(first: 50) { nodes { role { key } user { id email name } } } } }`,
  noOwner: `query($s: String) { organization(slug: $s) { id slug name createdAt
    members(first: 50) { nodes { role { key } user { id email name } } }
    workspaces(first: 50) { nodes { id name slug environments { id name slug tier resources { cpu ramMb diskGb } } } } } }`,
  organizationAlone: `query($s: String) { organization(slug: $s) { id slug name createdAt owner { email } } }`,
};

// The bench user (subject `acc|bench-…`) and its organizations, as side-by-side.mjs seeded them.
const [subject, email, name, userId] = psql(`select concat_ws(chr(9), subject, email, coalesce(name, ''), id) from users where subject like 'acc|bench-%'`, url).trim().split("\t");
const slugs = psql(`select o.slug from organizations o join memberships m on m.organization_id = o.id where m.user_id = '${userId}'`, url).split("\n").filter(Boolean);
const organizationIds = psql(`select organization_id from memberships where user_id = '${userId}'`, url).split("\n").filter(Boolean);
const issuer = await startIssuer();
const token = mint({ sub: subject, email, name });

const TICK_MS = 10;
const cpuMs = (pid) => { try { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return (+f[11] + +f[12]) * TICK_MS; } catch { return 0; } };
const writes = (pid) => { try { return +/syscw: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"))[1]; } catch { return 0; } };
/** CPU of every PostgreSQL process by pid: backends come and go, so deltas are taken per pid. */
const postgresCpu = () => {
  const byPid = new Map();
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try { const stat = readFileSync(`/proc/${pid}/stat`, "utf8"); if (stat.includes("(postgres)")) byPid.set(pid, cpuMs(pid)); } catch {}
  }
  return byPid;
};
const postgresDelta = (before, after) => { let ms = 0; for (const [pid, now] of after) ms += now - (before.get(pid) ?? 0); return ms; };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const children = [];
process.on("exit", () => { for (const child of children) try { child.kill("SIGKILL"); } catch {} });
process.on("SIGINT", () => process.exit(1));

const contenders = opt("--who").split(";").map((spec, i) => {
  const [head, settings = ""] = spec.split("|");
  const port = 4620 + i;
  if (head === "pgl") return { name: "pgl", postgraphile: true, port, env: {}, flags: [] };
  const [contenderName, dir] = head.split("=");
  const env = {};
  let flags = [];
  for (const pair of settings.split(",").filter(Boolean)) {
    const [key, ...value] = pair.split("=");
    if (key === "NODEFLAGS") flags = value.join("=").split(" ").filter(Boolean);
    else env[key] = value.join("=");
  }
  return { name: contenderName, dir, port, env, flags };
});

async function start(c) {
  const child = c.postgraphile
    ? spawn(join(BENCH, "node_modules/.bin/node"), ["pg-server.mjs"], { cwd: BENCH, stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, NODE_ENV: "production", PORT: String(c.port), DATABASE_URL: url, PG_POOL_MAX: "10", BENCH_USER_ID: userId, BENCH_ORG_IDS: organizationIds.join(",") } })
    : spawn(process.env.NODE20 ?? "/usr/bin/node", [...c.flags, "dist/src/main.js"], { cwd: c.dir, stdio: ["ignore", openSync(`/tmp/alternate-${c.name}.out`, "w"), "inherit"],
        env: { ...process.env, NODE_ENV: "production", LOG_LEVEL: "warn", PORT: String(c.port), DATABASE_URL: url, DB_POOL_MAX: "10", AUTH_JWKS_URL: issuer.url,
          AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE, AUTH_ALGORITHMS: "RS256", SECRETS_MASTER_KEY: Buffer.alloc(32, 9).toString("base64"),
          RATE_LIMIT_USER_PER_MINUTE: "1000000", MAX_QUERY_COST: "10000000", ...c.env } });
  children.push(child);
  c.pid = child.pid;
  for (let i = 0; i < 400; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${c.port}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"query":"{__typename}"}' });
      if (r.status === 200) return;
    } catch {}
    await sleep(300);
  }
  throw new Error(`${c.name} did not start`);
}
const queryOf = (c) => (c.postgraphile ? POSTGRAPHILE[QUERY] : c.env.QV ? VARIANTS[c.env.QV] : SERVICE[QUERY]);
const bodyOf = (c) => JSON.stringify({ query: queryOf(c), variables: QUERY === "Q3" ? {} : { s: slugs[Math.floor(Math.random() * slugs.length)] } });
const load = (c, seconds) => new Promise((resolve, reject) => autocannon({ url: `http://127.0.0.1:${c.port}/graphql`, method: "POST", connections: CONNECTIONS, duration: seconds,
  headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, requests: [{ setupRequest: (r) => ({ ...r, body: bodyOf(c) }) }] }, (e, r) => (e ? reject(e) : resolve(r))));

for (const c of contenders) {
  if (!c.postgraphile && c.env.QV && !VARIANTS[c.env.QV]) throw new Error(`unknown variant ${c.env.QV}`);
  await start(c);
  const answer = await (await fetch(`http://127.0.0.1:${c.port}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: bodyOf(c) })).json();
  if (answer.errors) throw new Error(`${c.name}: ${JSON.stringify(answer.errors).slice(0, 500)}`);
}
for (const c of contenders) await load(c, WARM);
const results = Object.fromEntries(contenders.map((c) => [c.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  // Every other round in reverse order: neither contender always follows the other.
  for (const c of round % 2 ? [...contenders].reverse() : contenders) {
    const cpu0 = cpuMs(c.pid), pg0 = postgresCpu(), writes0 = writes(c.pid);
    const out = await load(c, SECONDS);
    const n = Math.max(1, out.requests.total);
    const result = { rps: Math.round(out.requests.average), p99: out.latency.p99, cpu: +((cpuMs(c.pid) - cpu0) / n).toFixed(3),
      pg: +(postgresDelta(pg0, postgresCpu()) / n).toFixed(3), writes: +((writes(c.pid) - writes0) / n).toFixed(2) };
    results[c.name].push(result);
    console.log(round, c.name, JSON.stringify(result));
  }
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return +(s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2).toFixed(3); };
for (const c of contenders) {
  const r = results[c.name];
  console.log("median", c.name, JSON.stringify({ rps: median(r.map((x) => x.rps)), p99: median(r.map((x) => x.p99)), cpu: median(r.map((x) => x.cpu)), pg: median(r.map((x) => x.pg)), writes: median(r.map((x) => x.writes)) }));
}
issuer.close();
process.exit(0);
