/** The role request transactions switch to: owns no table, no superuser, no BYPASSRLS (made by a migration). */
export const APP_ROLE = 'tenant_service_app';
/** Owns `app_provision_user`: may read and add users and refresh their profile, nothing else. */
export const PROVISIONER_ROLE = 'tenant_service_provisioner';
/** Owns `organization_slugs_taken`: may read `organizations.slug`, nothing else. */
export const SLUG_LOOKUP_ROLE = 'tenant_service_slug_lookup';
/** Owns the invitation lookups by token hash and for the viewer's own email: may read only what an invitation preview shows. */
export const INVITATION_LOOKUP_ROLE = 'tenant_service_invitation_lookup';
/** Owns the purge functions: may read whether an organization is due and delete a due one, nothing else. */
export const PURGER_ROLE = 'tenant_service_purger';
/** Owns the due-work lookups of the background jobs: may read only the due-time columns (and ids) of the tables they scan. */
export const JOB_SCAN_ROLE = 'tenant_service_job_scan';
/** Owns the API-key lookups by hash and by id: may read only what authenticating a key needs (never another key's hash). */
export const API_KEY_LOOKUP_ROLE = 'tenant_service_api_key_lookup';
/** Owns `notification_recipients_by_email`: may read the id, email and verification of users, nothing else. */
export const RECIPIENT_LOOKUP_ROLE = 'tenant_service_recipient_lookup';
/** For a mailer (granted to its login role): may read the email outbox of every organization and mark rows sent or failed, nothing else. */
export const MAILER_ROLE = 'tenant_service_mailer';
/** Owns the rate-limit counter functions: may count in `rate_limit_counters` and read which organizations a principal's request names, nothing else. */
export const RATE_LIMITER_ROLE = 'tenant_service_rate_limiter';
/** Owns the audit-retention functions: may read the retention of an organization's plan and the time of its audit events, and delete only expired ones. */
export const AUDIT_PRUNER_ROLE = 'tenant_service_audit_pruner';
/** Owns the triggers' functions that keep `membership_scopes`: may read the memberships' user, organization and role, and write that table, nothing else. */
export const SCOPE_KEEPER_ROLE = 'tenant_service_scope_keeper';
