import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { createOrganization, uniqueEmail, type CreatedOrganization } from '../../helpers/factories';
import { auditRows, concurrently, outcomes, PARALLEL, RACE_NOTE, ROUNDS, serialChainEnd } from '../../helpers/races';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const ENV_FIELDS = `id name tier resources { cpu ramMb diskGb }`;
const CREATE = `mutation($ws: ID!, $input: CreateEnvironmentInput!) { createEnvironment(workspaceId: $ws, input: $input) { ${ENV_FIELDS} } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateEnvironmentInput!) { updateEnvironment(id: $id, input: $input) { id } }`;
const GET = `query($id: ID!) { environment(id: $id) { ${ENV_FIELDS} } }`;

const resources = (ramMb: number) => ({ cpu: 0.5, ramMb, diskGb: 5 });

describe(`concurrent updateEnvironment ${RACE_NOTE}`, () => {
  const owner = uniqueEmail('env-race-owner');
  let org: CreatedOrganization;
  beforeAll(async () => {
    org = await createOrganization(app, owner);
  });

  it(`keeps every one of ${PARALLEL} concurrent updates (half name, half resources), one audit event each in one serial chain, ${ROUNDS} rounds`, async () => {
    for (let round = 1; round <= ROUNDS; round += 1) {
      const env = ok(await app.gql(CREATE, { ws: org.defaultWorkspaceId, input: { name: `r${round}-0`, tier: 'DEV', resources: resources(512) } }, { as: owner }))
        .createEnvironment;
      // Even i renames, odd i resizes; every new value is distinct so the audit chain is unambiguous.
      const results = await concurrently(PARALLEL, (i) =>
        app.gql(UPDATE, { id: env.id, input: i % 2 === 0 ? { name: `r${round}-${i + 1}` } : { resources: resources(1024 + i) } }, { as: owner }),
      );
      expect({ round, outcomes: outcomes(results) }).toEqual({ round, outcomes: { ok: PARALLEL } });

      const events = await auditRows(app, 'environment.updated', env.id);
      expect({ round, events: events.length }).toEqual({ round, events: PARALLEL });
      const current = ok(await app.gql(GET, { id: env.id }, { as: owner })).environment;
      // No lost update: each field's events chain from the initial value to what is stored now.
      expect(serialChainEnd(events, 'name', `r${round}-0`)).toBe(current.name);
      expect(serialChainEnd(events, 'resources.ramMb', 512)).toBe(current.resources.ramMb);
      expect(current.name).toMatch(new RegExp(`^r${round}-\\d+$`));
      expect(current.name).not.toBe(`r${round}-0`);
      expect(current.resources.ramMb).toBeGreaterThanOrEqual(1024);
    }
  });
});
