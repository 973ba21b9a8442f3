/** The role request transactions switch to: owns no table, no superuser, no BYPASSRLS (made by a migration). */
export const APP_ROLE = 'tenant_service_app';
