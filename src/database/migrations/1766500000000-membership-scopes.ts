import type { MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ROLE, SCOPE_KEEPER_ROLE } from '../roles';
import { ensureRole, giveFunctionTo } from './1764600000000-hardening';
import { openSessionSettings } from './1766200000000-session-settings';

/** What app_open_session read on every request before this migration: the principal's memberships, aggregated. */
const MEMBERSHIPS_READ = `SELECT string_agg(m.organization_id::text, ','), string_agg(m.role_key, ',')
        INTO organizations, roles FROM memberships m WHERE m.user_id = u.id;`;

/** What it reads now: the same two lists, kept by the triggers below (through the own-scope policy). */
const SCOPE_READ = `SELECT s.organizations, s.roles INTO organizations, roles FROM membership_scopes s WHERE s.user_id = u.id;`;

/**
 * The two lists of one user's memberships (alias `m`), as the row keeps them: organization ids
 * and role keys, aligned, in organization id order. The settling and the backfill both read them so.
 */
const LISTS = `string_agg(m.organization_id::text, ',' ORDER BY m.organization_id), string_agg(m.role_key, ',' ORDER BY m.organization_id)`;

function openSessionReadingScopes(): string {
  const before = openSessionSettings();
  if (before.split(MEMBERSHIPS_READ).length !== 2) throw new Error('MembershipScopes1766500000000: the memberships read of app_open_session was not found once');
  return before.replace(MEMBERSHIPS_READ, SCOPE_READ);
}

/**
 * The principal's organizations and role keys — what `app_open_session` reads at the start of
 * every request, for its scope — kept per user in `membership_scopes`, in the same transaction as
 * every change of a membership, instead of aggregated from `memberships` on every request.
 *
 * For the benchmark's user of 200 organizations that aggregate (200 index entries through the
 * own-memberships policy, then two lists of 200 built as text) was about 0.09 ms of PostgreSQL's
 * time per request, a sixth of a small query's; one row by its key is a few microseconds. The
 * lists are the same text (`id,id…` and `role,role…` in one order), so nothing downstream changes,
 * and they are still read from the database on every request (SPEC §2): a membership removed,
 * added or changed is in its user's row when its transaction commits, atomically with it.
 *
 * How the row is kept exact, whatever runs concurrently:
 * - After each statement that inserts, updates (user or role) or deletes memberships,
 *   `app_membership_scopes_due` marks the users it touched as due, in `membership_scopes_due`
 *   (statement triggers with transition tables: one insert per statement, each user once per
 *   transaction, so an organization of 10 000 members deleted at once is one statement). The marks
 *   are rows of the transaction's own (keyed by its id): invisible to others, rolled back with a
 *   savepoint or the transaction, out of reach of the service's role, which may not touch the table.
 * - A deferred constraint trigger on those marks (`app_membership_scopes_settle`, fired after them
 *   whatever `SET CONSTRAINTS` says; the first to fire does the work, the others find their own
 *   mark gone by its key and return: linear in the marks, not quadratic)
 *   takes the transaction's due users at COMMIT, in id order, locks each one's row (making it when
 *   missing), and only then reads their memberships, in a statement of its own: under READ
 *   COMMITTED its snapshot is taken after the lock was granted, so it sees every transaction that
 *   settled the same user before. Two transactions changing one user's memberships thus settle one
 *   after the other, the second counting the first's change. All rows are locked at commit and in
 *   one order, so settling cannot deadlock, whatever order the transactions touched their users in
 *   (two reciprocal ownership transfers, say). Under REPEATABLE READ or SERIALIZABLE the second
 *   fails with a serialization error instead. (`SET CONSTRAINTS … IMMEDIATE` settles each
 *   statement's users at its end instead: still exact, but the rows are then locked in the order
 *   of the statements.)
 * - The lists are in organization id order. A user left without memberships has no row (read as
 *   no organizations); TRUNCATE of memberships empties the table.
 *
 * `membership_scopes` is a global table (one row per user, no organization_id), like `users`:
 * forced row-level security, the service's role may read only its principal's own row and write
 * none; the triggers' functions are SECURITY DEFINER, owned by a NOLOGIN role that may read the
 * memberships' user, organization and role and write this table and the marks, nothing else.
 */
export class MembershipScopes1766500000000 implements MigrationInterface {
  name = 'MembershipScopes1766500000000';

  async up(q: QueryRunner): Promise<void> {
    await ensureRole(q, SCOPE_KEEPER_ROLE);
    await q.query(`
      CREATE TABLE membership_scopes (
        user_id uuid PRIMARY KEY,
        organizations text NOT NULL,
        roles text NOT NULL
      )`);
    await q.query(`ALTER TABLE membership_scopes ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE membership_scopes FORCE ROW LEVEL SECURITY`);
    await q.query(
      `CREATE POLICY own_scope ON membership_scopes FOR SELECT TO ${APP_ROLE} USING (user_id = (SELECT NULLIF(current_setting('app.user_id', true), '')::uuid))`,
    );
    await q.query(`GRANT SELECT ON membership_scopes TO ${APP_ROLE}`);
    await q.query(`CREATE POLICY scope_keeper ON membership_scopes FOR ALL TO ${SCOPE_KEEPER_ROLE} USING (true) WITH CHECK (true)`);
    await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON membership_scopes TO ${SCOPE_KEEPER_ROLE}`);
    await q.query(`GRANT SELECT (user_id, organization_id, role_key) ON memberships TO ${SCOPE_KEEPER_ROLE}`);
    await q.query(`CREATE POLICY scope_keeper_read ON memberships FOR SELECT TO ${SCOPE_KEEPER_ROLE} USING (true)`);

    // The marks: a transaction's own rows (its id in the key), gone by its COMMIT; never logged.
    await q.query(`
      CREATE UNLOGGED TABLE membership_scopes_due (
        transaction_id xid8 NOT NULL,
        user_id uuid NOT NULL,
        PRIMARY KEY (transaction_id, user_id)
      )`);
    await q.query(`ALTER TABLE membership_scopes_due ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE membership_scopes_due FORCE ROW LEVEL SECURITY`);
    await q.query(`CREATE POLICY scope_keeper ON membership_scopes_due FOR ALL TO ${SCOPE_KEEPER_ROLE} USING (true) WITH CHECK (true)`);
    await q.query(`GRANT SELECT, INSERT, DELETE ON membership_scopes_due TO ${SCOPE_KEEPER_ROLE}`);

    await q.query(`
      CREATE FUNCTION app_membership_scopes_due() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
      BEGIN
        IF TG_OP = 'INSERT' THEN
          INSERT INTO public.membership_scopes_due (transaction_id, user_id)
            SELECT DISTINCT pg_current_xact_id(), user_id FROM came ON CONFLICT DO NOTHING;
        ELSIF TG_OP = 'DELETE' THEN
          INSERT INTO public.membership_scopes_due (transaction_id, user_id)
            SELECT DISTINCT pg_current_xact_id(), user_id FROM gone ON CONFLICT DO NOTHING;
        ELSE
          -- Rows whose user or role changed (or whose key did: then unmatched), both users.
          INSERT INTO public.membership_scopes_due (transaction_id, user_id)
            SELECT DISTINCT pg_current_xact_id(), touched.u
            FROM gone o FULL JOIN came n ON n.organization_id = o.organization_id AND n.id = o.id
              CROSS JOIN LATERAL (VALUES (o.user_id), (n.user_id)) AS touched(u)
            WHERE touched.u IS NOT NULL
              AND (o.id IS NULL OR n.id IS NULL OR (n.user_id, n.role_key) IS DISTINCT FROM (o.user_id, o.role_key))
            ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
      END $$`);
    await giveFunctionTo(q, 'app_membership_scopes_due()', SCOPE_KEEPER_ROLE);
    await q.query(`CREATE TRIGGER memberships_scope_due_insert AFTER INSERT ON memberships REFERENCING NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION app_membership_scopes_due()`);
    await q.query(
      `CREATE TRIGGER memberships_scope_due_update AFTER UPDATE ON memberships REFERENCING OLD TABLE AS gone NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION app_membership_scopes_due()`,
    );
    await q.query(`CREATE TRIGGER memberships_scope_due_delete AFTER DELETE ON memberships REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION app_membership_scopes_due()`);

    await q.query(`
      CREATE FUNCTION app_membership_scopes_settle() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
      DECLARE
        due uuid[];
        member uuid;
        listed_organizations text;
        listed_roles text;
      BEGIN
        -- Fired once per mark: only the first finds its own mark (by its key) and settles them all.
        -- The others return here, without scanning the marks the first one deleted.
        PERFORM 1 FROM public.membership_scopes_due WHERE transaction_id = NEW.transaction_id AND user_id = NEW.user_id;
        IF NOT FOUND THEN
          RETURN NULL;
        END IF;
        WITH taken AS (DELETE FROM public.membership_scopes_due WHERE transaction_id = pg_current_xact_id() RETURNING user_id)
        SELECT array_agg(user_id ORDER BY user_id) INTO due FROM taken;
        FOREACH member IN ARRAY due LOOP
          -- The member's row, locked (made first when missing; deleted meanwhile by a transaction
          -- that just committed: made again).
          LOOP
            INSERT INTO public.membership_scopes (user_id, organizations, roles) VALUES (member, '', '') ON CONFLICT (user_id) DO NOTHING;
            PERFORM 1 FROM public.membership_scopes WHERE user_id = member FOR UPDATE;
            EXIT WHEN FOUND;
          END LOOP;
          -- A statement of its own, after the lock: it sees every change settled before this one.
          SELECT ${LISTS}
            INTO listed_organizations, listed_roles
            FROM public.memberships m WHERE m.user_id = member;
          IF listed_organizations IS NULL THEN
            DELETE FROM public.membership_scopes WHERE user_id = member;
          ELSE
            UPDATE public.membership_scopes SET organizations = listed_organizations, roles = listed_roles WHERE user_id = member;
          END IF;
        END LOOP;
        RETURN NULL;
      END $$`);
    await giveFunctionTo(q, 'app_membership_scopes_settle()', SCOPE_KEEPER_ROLE);
    await q.query(
      `CREATE CONSTRAINT TRIGGER membership_scopes_settle AFTER INSERT ON membership_scopes_due DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION app_membership_scopes_settle()`,
    );

    await q.query(`
      CREATE FUNCTION app_membership_scopes_truncated() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
      BEGIN
        DELETE FROM public.membership_scopes;
        RETURN NULL;
      END $$`);
    await giveFunctionTo(q, 'app_membership_scopes_truncated()', SCOPE_KEEPER_ROLE);
    await q.query(`CREATE TRIGGER memberships_scope_truncated AFTER TRUNCATE ON memberships FOR EACH STATEMENT EXECUTE FUNCTION app_membership_scopes_truncated()`);

    // Every user's row from the memberships there are, under the keeper's policies (the migration's
    // role may be the tables' owner, which the forced policies would show nothing).
    await q.query(`SET LOCAL ROLE ${SCOPE_KEEPER_ROLE}`);
    await q.query(`
      INSERT INTO membership_scopes (user_id, organizations, roles)
      SELECT m.user_id, ${LISTS} FROM memberships m GROUP BY m.user_id`);
    await q.query(`RESET ROLE`);

    // CREATE OR REPLACE keeps the function's owner and privileges (not callable by PUBLIC).
    await q.query(openSessionReadingScopes());
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(openSessionSettings());
    await q.query(`DROP TRIGGER IF EXISTS memberships_scope_truncated ON memberships`);
    await q.query(`DROP TRIGGER IF EXISTS memberships_scope_due_insert ON memberships`);
    await q.query(`DROP TRIGGER IF EXISTS memberships_scope_due_update ON memberships`);
    await q.query(`DROP TRIGGER IF EXISTS memberships_scope_due_delete ON memberships`);
    await q.query(`DROP TABLE IF EXISTS membership_scopes_due`);
    await q.query(`DROP FUNCTION IF EXISTS app_membership_scopes_truncated()`);
    await q.query(`DROP FUNCTION IF EXISTS app_membership_scopes_settle()`);
    await q.query(`DROP FUNCTION IF EXISTS app_membership_scopes_due()`);
    await q.query(`DROP POLICY IF EXISTS scope_keeper_read ON memberships`);
    await q.query(`REVOKE ALL ON memberships FROM ${SCOPE_KEEPER_ROLE}`);
    await q.query(`DROP TABLE IF EXISTS membership_scopes`);
  }
}
