import { BadUserInputError } from '../../src/common/errors';
import { RESOURCE_BOUNDS, validateResources } from '../../src/modules/environment/environment.service';

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof BadUserInputError) return error.field;
    throw error;
  }
  return undefined;
}

describe('validateResources', () => {
  it('accepts the minimums and the maximums', () => {
    expect(validateResources({ cpu: 0.1, ramMb: 64, diskGb: 1 })).toEqual({ cpu: 0.1, ramMb: 64, diskGb: 1 });
    const max = { cpu: RESOURCE_BOUNDS.cpu.max, ramMb: RESOURCE_BOUNDS.ramMb.max, diskGb: RESOURCE_BOUNDS.diskGb.max };
    expect(validateResources(max)).toEqual(max);
  });

  it('rounds cpu to the three decimals the column keeps', () => {
    expect(validateResources({ cpu: 0.12345, ramMb: 512, diskGb: 10 }).cpu).toBe(0.123);
  });

  it.each([
    [{ cpu: 0.09, ramMb: 512, diskGb: 10 }, 'resources.cpu'],
    [{ cpu: 0, ramMb: 512, diskGb: 10 }, 'resources.cpu'],
    [{ cpu: -1, ramMb: 512, diskGb: 10 }, 'resources.cpu'],
    [{ cpu: Number.NaN, ramMb: 512, diskGb: 10 }, 'resources.cpu'],
    [{ cpu: Number.POSITIVE_INFINITY, ramMb: 512, diskGb: 10 }, 'resources.cpu'],
    [{ cpu: 1025, ramMb: 512, diskGb: 10 }, 'resources.cpu'],
    [{ cpu: 1, ramMb: 63, diskGb: 10 }, 'resources.ramMb'],
    [{ cpu: 1, ramMb: 64.5, diskGb: 10 }, 'resources.ramMb'],
    [{ cpu: 1, ramMb: 4_194_305, diskGb: 10 }, 'resources.ramMb'],
    [{ cpu: 1, ramMb: 512, diskGb: 0 }, 'resources.diskGb'],
    [{ cpu: 1, ramMb: 512, diskGb: Number.NaN }, 'resources.diskGb'],
    [{ cpu: 1, ramMb: 512, diskGb: 1_048_577 }, 'resources.diskGb'],
  ])('refuses %o with BAD_USER_INPUT on %s', (resources, field) => {
    expect(fieldOf(() => validateResources(resources))).toBe(field);
  });

  it('refuses missing resources', () => {
    expect(fieldOf(() => validateResources(null))).toBe('resources');
    expect(fieldOf(() => validateResources(undefined))).toBe('resources');
  });

  it('reports the first invalid field when several are wrong', () => {
    expect(fieldOf(() => validateResources({ cpu: 0, ramMb: 0, diskGb: 0 }))).toBe('resources.cpu');
  });
});
