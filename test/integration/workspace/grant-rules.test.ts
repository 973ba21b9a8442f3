import { ForbiddenError } from '../../../src/common/errors';
import { type Permission, SYSTEM_ROLES, WORKSPACE_ROLE_PERMISSIONS } from '../../../src/authz/permissions';
import { WorkspaceRole } from '../../../src/modules/workspace/workspace.entity';
import { assertCanGrant } from '../../../src/modules/workspace/workspace.service';

const held = (...permissions: Permission[]): ReadonlySet<string> => new Set(permissions);
const codeOf = (fn: () => void): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ForbiddenError);
    return (error as ForbiddenError).extensions.code as string;
  }
};

describe('assertCanGrant (SPEC §4: no role holding permissions the caller does not hold)', () => {
  it('allows every workspace role to a caller holding all of its permissions', () => {
    for (const role of Object.values(WorkspaceRole)) {
      expect(codeOf(() => assertCanGrant(held(...WORKSPACE_ROLE_PERMISSIONS[role]), role))).toBeUndefined();
    }
    const owner = new Set<string>(SYSTEM_ROLES.find((r) => r.key === 'owner')!.permissions);
    for (const role of Object.values(WorkspaceRole)) expect(codeOf(() => assertCanGrant(owner, role))).toBeUndefined();
  });

  it('refuses with FORBIDDEN a role holding even one permission the caller lacks', () => {
    const manager = held('workspace.view', 'workspace.members.manage');
    expect(codeOf(() => assertCanGrant(manager, WorkspaceRole.WORKSPACE_VIEWER))).toBeUndefined();
    expect(codeOf(() => assertCanGrant(manager, WorkspaceRole.WORKSPACE_MEMBER))).toBe('FORBIDDEN');
    expect(codeOf(() => assertCanGrant(manager, WorkspaceRole.WORKSPACE_ADMIN))).toBe('FORBIDDEN');

    const allButDestroy = held(...WORKSPACE_ROLE_PERMISSIONS.WORKSPACE_ADMIN.filter((p) => p !== 'environment.destroy'));
    expect(codeOf(() => assertCanGrant(allButDestroy, WorkspaceRole.WORKSPACE_MEMBER))).toBeUndefined();
    expect(codeOf(() => assertCanGrant(allButDestroy, WorkspaceRole.WORKSPACE_ADMIN))).toBe('FORBIDDEN');

    expect(codeOf(() => assertCanGrant(held(), WorkspaceRole.WORKSPACE_VIEWER))).toBe('FORBIDDEN');
  });

  it('never refuses removing a grant (role null)', () => {
    expect(codeOf(() => assertCanGrant(held(), null))).toBeUndefined();
  });
});
