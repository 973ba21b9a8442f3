import { ok, startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { createOrganization, type CreatedOrganization, uniqueEmail } from '../../helpers/factories';
import { concurrently, outcomes, PARALLEL, RACE_NOTE, ROUNDS } from '../../helpers/races';

/** setFeatureFlag under concurrency: one override row per key, one event per call, old values that chain. */

let app: TestApp;
let owner: string;
let org: CreatedOrganization;
beforeAll(async () => {
  app = await startTestApp();
  owner = uniqueEmail('ff-race');
  org = await createOrganization(app, owner);
});
afterAll(async () => {
  await app?.close();
});

const SET = `mutation($org: ID!, $key: String!, $enabled: Boolean!) { setFeatureFlag(organizationId: $org, key: $key, enabled: $enabled) { enabled } }`;

interface Toggled {
  metadata: { enabled: boolean; previousEnabled: boolean; previousSource: string | null };
}

describe('setFeatureFlag races', () => {
  it(`${PARALLEL} concurrent toggles of a new key, ${ROUNDS} rounds: all succeed, one row, one event each, a consistent chain of old values ${RACE_NOTE}`, async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      const key = `race.flag-${round}`;
      const results = await concurrently(PARALLEL, (i) => app.gql(SET, { org: org.id, key, enabled: i % 2 === 0 }, { as: owner }));
      expect(outcomes(results)).toEqual({ ok: PARALLEL });

      const rows = await readAll<{ enabled: boolean }>(app, `SELECT enabled FROM feature_flag_overrides WHERE organization_id = $1 AND key = $2`, [org.id, key]);
      expect(rows).toHaveLength(1);
      const final = rows[0]!.enabled;
      const flags = ok(await app.gql(`query($id: ID!) { organization(id: $id) { features { key enabled source } } }`, { id: org.id }, { as: owner })).organization.features;
      expect(flags).toContainEqual({ key, enabled: final, source: 'OVERRIDE' });

      const events = await readAll<Toggled>(app, `SELECT metadata FROM audit_events WHERE organization_id = $1 AND action = 'feature.toggled' AND resource_id = $2`, [
        org.id,
        key,
      ]);
      expect(events).toHaveLength(PARALLEL);
      // Exactly one call found no override (the one that inserted it); every other one replaced one.
      expect(events.filter((e) => e.metadata.previousSource === null)).toHaveLength(1);
      expect(events.filter((e) => e.metadata.previousSource === 'OVERRIDE')).toHaveLength(PARALLEL - 1);
      // Serial chain from "off" (the plan does not name the key) to the stored value: the switches
      // on minus the switches off equal the net change. Two calls reading the same old value would break it.
      const on = events.filter((e) => !e.metadata.previousEnabled && e.metadata.enabled).length;
      const off = events.filter((e) => e.metadata.previousEnabled && !e.metadata.enabled).length;
      expect(on - off).toBe(final ? 1 : 0);
    }
  });
});
