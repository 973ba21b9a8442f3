import { codes, ok, startTestApp, type TestApp } from "../../helpers/app";
import { createOrganization, uniqueEmail } from "../../helpers/factories";
import { createKey, exchange } from "../api-key/api-key-helpers";
import {
  awayFromMinuteEnd,
  currentCounters,
  resetCounters,
  setPlanRate,
} from "./rate-limit-helpers";

/**
 * Rate limits of API keys (SPEC §8, README "Rate limits"): a key acts in one organization, so every
 * request it makes counts in its organization's plan limit, in one bucket per key whether the key
 * came raw or as an exchanged token; another key of the same organization has a bucket of its own.
 */

const PRO_LIMIT = 4;
const ORG = `query($id: ID!) { organization(id: $id) { id } }`;

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { RATE_LIMIT_USER_PER_MINUTE: "1000" } });
  await setPlanRate(app, "PRO", PRO_LIMIT);
});
afterAll(async () => {
  await app?.close();
});

it("a key is counted in its organization under the plan limit, raw and exchanged alike, each key on its own", async () => {
  const owner = uniqueEmail("owner");
  const org = await createOrganization(app, owner);
  const key = await createKey(app, org.id, ["org.view"], { as: owner });
  const other = await createKey(app, org.id, ["org.view"], { as: owner });
  const token = await exchange(app, key.secret);
  await awayFromMinuteEnd(app);
  await resetCounters(app);

  const statuses: number[] = [];
  for (let i = 0; i < PRO_LIMIT + 2; i++) {
    const r = await app.gql(
      ORG,
      { id: org.id },
      { token: i % 2 === 0 ? key.secret : token },
    );
    statuses.push(r.status);
    if (r.status === 200) expect(ok(r).organization.id).toBe(org.id);
    else expect(codes(r)).toEqual(["RATE_LIMITED"]);
  }
  expect(statuses).toEqual([...Array(PRO_LIMIT).fill(200), 429, 429]);
  expect(await currentCounters(app)).toEqual({
    [`apikey:${key.id}@${org.id}`]: PRO_LIMIT + 2,
  });

  // The other key of the same organization still has its whole minute.
  const r = await app.gql(ORG, { id: org.id }, { token: other.secret });
  expect(r.status).toBe(200);
  expect(r.headers.get("x-ratelimit-remaining")).toBe(String(PRO_LIMIT - 1));
});

it("an unknown key gets UNAUTHENTICATED and a bucket of its own, never a real key's", async () => {
  await resetCounters(app);
  const r = await app.gql(
    ORG,
    { id: "00000000-0000-4000-8000-000000000000" },
    { token: `tsk_${"A".repeat(43)}` },
  );
  expect(codes(r)).toEqual(["UNAUTHENTICATED"]);
  const keys = Object.keys(await currentCounters(app));
  expect(keys).toHaveLength(1);
  expect(keys[0]).toMatch(/^apikey:hash:[0-9a-f]{64}$/);
});
