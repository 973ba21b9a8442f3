import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE } from '../roles';
import { ORG_SCOPE_INITPLAN } from './1764700000000-rls-initplan';

/** SPEC §5 (Billing): the five plans, in order. Limits null = unlimited; ENTERPRISE's price is custom (null). */
const PLANS = [
  // key, name, monthly cents, members, workspaces, environments, api keys, cpu/env, ram MB/env, disk GB/env, total cpu, total ram MB, total disk GB, audit days, rate/min, features
  ['FREE', 'Free', 0, 3, 1, 3, 2, 1, 2048, 10, 2, 4096, 20, 7, 60, []],
  ['STARTER', 'Starter', 2900, 10, 3, 10, 10, 2, 4096, 20, 8, 16384, 100, 30, 300, ['audit_log_export']],
  ['PRO', 'Pro', 7900, 50, 10, 30, 50, 4, 8192, 50, 20, 40960, 200, 90, 1000, ['audit_log_export', 'custom_roles']],
  ['BUSINESS', 'Business', 19900, 200, 25, 100, 200, 8, 16384, 100, 64, 131072, 1000, 365, 3000, ['audit_log_export', 'custom_roles', 'restricted_workspaces', 'ip_allowlist']],
  ['ENTERPRISE', 'Enterprise', null, null, null, null, null, null, null, null, null, null, null, null, null, ['audit_log_export', 'custom_roles', 'restricted_workspaces', 'ip_allowlist']],
] as const;

const ts = 'timestamptz(3) NOT NULL DEFAULT now()';

/**
 * The plans catalogue and per-organization feature flag overrides (SPEC §5, Feature flags).
 * - `plans` is global, like `users`: no organization_id, read-only to the service's role (the
 *   catalogue changes only by migration). The annual price is derived in the table itself:
 *   12 × monthly × 0.8, in exact integer arithmetic.
 * - `feature_flag_overrides` is a tenant table: organization_id leads its key, row-level security
 *   forced with the same tenant_isolation policy as the others.
 */
export class PlansFeatureFlags1764950000000 implements MigrationInterface {
  name = 'PlansFeatureFlags1764950000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE plans (
        key text PRIMARY KEY CHECK (key IN ('FREE', 'STARTER', 'PRO', 'BUSINESS', 'ENTERPRISE')),
        position smallint NOT NULL UNIQUE,
        name text NOT NULL,
        monthly_price_cents integer CHECK (monthly_price_cents >= 0),
        annual_price_cents integer GENERATED ALWAYS AS (monthly_price_cents * 12 * 8 / 10) STORED,
        max_members integer,
        max_workspaces integer,
        max_environments integer,
        max_api_keys integer,
        max_cpu_per_environment numeric(10, 3),
        max_ram_mb_per_environment integer,
        max_disk_gb_per_environment integer,
        total_cpu numeric(10, 3),
        total_ram_mb integer,
        total_disk_gb integer,
        audit_retention_days integer,
        api_rate_limit_per_minute integer,
        features text[] NOT NULL DEFAULT '{}'
      )`);
    for (const [position, plan] of PLANS.entries()) {
      const [key, name, ...rest] = plan;
      const features = rest.pop() as readonly string[];
      await q.query(
        `INSERT INTO plans (key, position, name, monthly_price_cents, max_members, max_workspaces, max_environments, max_api_keys,
           max_cpu_per_environment, max_ram_mb_per_environment, max_disk_gb_per_environment, total_cpu, total_ram_mb, total_disk_gb,
           audit_retention_days, api_rate_limit_per_minute, features)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
        [key, position, name, ...rest, [...features]],
      );
    }
    await q.query(`GRANT SELECT ON plans TO ${APP_ROLE}`);

    await q.query(`
      CREATE TABLE feature_flag_overrides (
        organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
        key text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_.-]{1,63}$'),
        enabled boolean NOT NULL,
        updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
        created_at ${ts},
        updated_at ${ts},
        PRIMARY KEY (organization_id, key)
      )`);
    await q.query(`ALTER TABLE feature_flag_overrides ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE feature_flag_overrides FORCE ROW LEVEL SECURITY`);
    await q.query(`
      CREATE POLICY tenant_isolation ON feature_flag_overrides
        USING (organization_id = ANY (${ORG_SCOPE_INITPLAN})) WITH CHECK (organization_id = ANY (${ORG_SCOPE_INITPLAN}))`);
    // An override is set (inserted or changed), never removed through the API: no DELETE.
    await q.query(`GRANT SELECT, INSERT, UPDATE ON feature_flag_overrides TO ${APP_ROLE}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS feature_flag_overrides`);
    await q.query(`DROP TABLE IF EXISTS plans`);
  }
}
