import { types } from 'pg';
import { parseTimestamptz } from '../../src/database/timestamps';

const generic = types.getTypeParser(1184, 'text') as (value: string) => Date | string | null;

describe('the fast timestamptz parser', () => {
  it('answers exactly what pg’s own parser answers, for every form PostgreSQL prints', () => {
    const samples = [
      '2026-12-01 14:50:44.123+00',
      '2026-12-01 14:50:44+00',
      '2026-12-01 14:50:44.1+00',
      '2026-12-01 14:50:44.123456+00',
      '2026-02-28 23:59:59.999-08',
      '2024-02-29 00:00:00.5+05:30',
      '1999-12-31 23:59:59.001-03:30',
      '2026-12-01 00:00:00.000+14',
      '0099-01-01 00:00:00+00',
      '2026-12-01 14:50:44.123+00 BC',
      'infinity',
      '-infinity',
    ];
    for (const sample of samples) {
      const fast = parseTimestamptz(sample);
      const slow = generic(sample);
      expect({ sample, value: fast instanceof Date ? fast.getTime() : fast }).toEqual({ sample, value: slow instanceof Date ? slow.getTime() : slow });
    }
  });
});
