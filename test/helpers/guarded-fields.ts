/**
 * A selection for every guarded field of Organization (FIELD_GUARDS in src/authz/operations.ts):
 * the tests generated from the field guards (the role matrix, API key scopes) query each field
 * with it, and fail when a new guarded field has no entry here.
 */
export const ORGANIZATION_FIELD_SELECTIONS: Record<string, string> = {
  settings: 'settings { timezone }',
  security: 'security { requireMfa }',
  members: 'members { totalCount }',
  roles: 'roles { key }',
  auditEvents: 'auditEvents(first: 1) { edges { cursor } }',
  invitations: 'invitations { totalCount }',
  deletionImpact: 'deletionImpact { blockers }',
  subscription: 'subscription { status }',
  secrets: 'secrets { key }',
  apiKeys: 'apiKeys { id }',
  notificationDefaults: 'notificationDefaults { type }',
};
