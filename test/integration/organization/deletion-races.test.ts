import { startTestApp, type TestApp } from '../../helpers/app';
import { readAll } from '../../helpers/db';
import { createOrganization, uniqueEmail } from '../../helpers/factories';
import { concurrently, outcomes, PARALLEL, RACE_NOTE, ROUNDS } from '../../helpers/races';

/**
 * deleteOrganization against concurrent environment creation (SPEC §5): whatever the interleaving,
 * a DELETED organization never has an active environment — a create either commits first (and
 * the deletion is refused with ACTIVE_ENVIRONMENTS) or sees the deletion (ORGANIZATION_INACTIVE).
 */

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app?.close();
});

const CREATE_ENV = `mutation($ws: ID!, $name: String!) { createEnvironment(workspaceId: $ws, input: { name: $name, tier: DEV, resources: { cpu: 0.1, ramMb: 64, diskGb: 1 } }) { id } }`;
const DELETE = `mutation($id: ID!, $slug: String!) { deleteOrganization(id: $id, confirmSlug: $slug) { status } }`;

it(`never leaves a deleted organization with an active environment ${RACE_NOTE}`, async () => {
  for (let round = 0; round < 2 * ROUNDS; round++) {
    const owner = uniqueEmail(`race-delete-${round}`);
    const org = await createOrganization(app, owner);
    // The creates start a little after the deletion, later in some rounds than others, so that some
    // rounds see the deletion lose (a create committed first) and others see it win.
    const deleting = app.gql(DELETE, { id: org.id, slug: org.slug }, { as: owner }).then((r) => ({ kind: 'delete', r }));
    const creating = concurrently(PARALLEL, async (i) => {
      await new Promise((resolve) => setTimeout(resolve, (round % 3) * 8 + (i % 5)));
      return { kind: 'create', r: await app.gql(CREATE_ENV, { ws: org.defaultWorkspaceId, name: `env-${i}` }, { as: owner }) };
    });
    const results = [await deleting, ...(await creating)];
    const deletion = outcomes(results.filter((x) => x.kind === 'delete').map((x) => x.r));
    const creates = outcomes(results.filter((x) => x.kind === 'create').map((x) => x.r));
    expect(Object.keys(deletion).filter((k) => !['ok', '200:PRECONDITION_FAILED'].includes(k))).toEqual([]);
    expect(Object.keys(creates).filter((k) => !['ok', '200:ORGANIZATION_INACTIVE'].includes(k))).toEqual([]);
    const [row] = await readAll<{ status: string; active: number }>(
      app,
      `SELECT o.status, (SELECT count(*)::int FROM environments e WHERE e.organization_id = o.id AND e.is_active) AS active FROM organizations o WHERE o.id = $1`,
      [org.id],
    );
    if (row!.status === 'DELETED') expect(row!.active).toBe(0);
    else expect(row!.active).toBe(creates.ok ?? 0);
    // A deletion that won was never outrun: no create answered ok.
    if (row!.status === 'DELETED') expect(creates.ok ?? 0).toBe(0);
  }
});
