import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE } from '../roles';
import { ORG_SCOPE_INITPLAN } from './1764700000000-rls-initplan';

export const SECRET_TABLES = ['secrets'] as const;

/**
 * Secrets (SPEC §5): write-only values sealed with the organization's data key (src/crypto/envelope.ts).
 * `workspace_id` is null for an organization secret; a key is unique per (organization, workspace or none).
 * Only the ciphertext is stored; nothing in this table holds a value in clear. The service's role
 * may also rewrap organization data keys (UPDATE of `wrapped_key` only), for master-key rotation.
 */
export class Secrets1765300000000 implements MigrationInterface {
  name = 'Secrets1765300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE secrets (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        workspace_id uuid,
        key text NOT NULL CHECK (key ~ '^[A-Z_][A-Z0-9_]{0,127}$'),
        sealed_value bytea NOT NULL,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        updated_at timestamptz(3) NOT NULL DEFAULT now(),
        updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
        PRIMARY KEY (organization_id, id),
        FOREIGN KEY (organization_id, workspace_id) REFERENCES workspaces (organization_id, id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE UNIQUE INDEX secrets_key_idx ON secrets (organization_id, coalesce(workspace_id, '00000000-0000-0000-0000-000000000000'::uuid), key)`);
    await q.query(`ALTER TABLE secrets ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE secrets FORCE ROW LEVEL SECURITY`);
    await q.query(`
      CREATE POLICY tenant_isolation ON secrets
        USING (organization_id = ANY (${ORG_SCOPE_INITPLAN})) WITH CHECK (organization_id = ANY (${ORG_SCOPE_INITPLAN}))`);
    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON secrets TO ${APP_ROLE}`);
    // Master-key rotation (npm run rotate-master-key) rewraps data keys in place, in a unit of work
    // scoped to one organization like any other: only the wrapped form may change, never the version.
    await q.query(`GRANT UPDATE (wrapped_key) ON organization_keys TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`REVOKE UPDATE (wrapped_key) ON organization_keys FROM ${APP_ROLE}`);
    await q.query(`DROP TABLE IF EXISTS secrets`);
  }
}
