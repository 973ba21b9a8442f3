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

  it('agrees with pg’s parser on 20 000 random instants: years 1000–9999, every day of the year, fractions of 0–6 digits, offsets with and without minutes', () => {
    // mulberry32: 32-bit state, every value reachable.
    let seed = 20261203;
    const random = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
    };
    const pad = (n: number, width: number) => String(n).padStart(width, '0');
    const disagreements: Array<{ text: string; fast: unknown; slow: unknown }> = [];
    let compared = 0;
    for (let k = 0; k < 20_000; k += 1) {
      const at = new Date(Date.UTC(1000 + random(9000), 0, 1) + random(366 * 24 * 3600) * 1000);
      const fraction = random(7);
      const offset = (random(2) ? 1 : -1) * random(15 * 60);
      const local = new Date(at.getTime() + offset * 60_000);
      if (local.getUTCFullYear() < 1000 || local.getUTCFullYear() > 9999) continue;
      const text =
        `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1, 2)}-${pad(local.getUTCDate(), 2)} ` +
        `${pad(local.getUTCHours(), 2)}:${pad(local.getUTCMinutes(), 2)}:${pad(local.getUTCSeconds(), 2)}` +
        (fraction ? `.${pad(random(10 ** fraction), fraction)}` : '') +
        `${offset < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offset) / 60), 2)}${Math.abs(offset) % 60 ? `:${pad(Math.abs(offset) % 60, 2)}` : ''}`;
      const fast = parseTimestamptz(text);
      const slow = generic(text);
      compared += 1;
      const [a, b] = [fast instanceof Date ? fast.getTime() : fast, slow instanceof Date ? slow.getTime() : slow];
      if (a !== b) disagreements.push({ text, fast: a, slow: b });
    }
    expect(compared).toBeGreaterThan(19_000);
    expect(disagreements.slice(0, 5)).toEqual([]);
  });
});
