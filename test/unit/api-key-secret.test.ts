import { createHash } from 'node:crypto';
import { hashApiKey, looksLikeApiKey, newApiKeySecret } from '../../src/modules/api-key/api-key.types';

describe('API key secrets', () => {
  it('are tsk_ + 43 base64url characters (32 random bytes, 256 bits), each different, shown by a 12-character prefix', () => {
    const made = Array.from({ length: 200 }, () => newApiKeySecret());
    for (const { secret, prefix, hash } of made) {
      expect(secret).toMatch(/^tsk_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(secret.slice(4), 'base64url')).toHaveLength(32);
      expect(prefix).toBe(secret.slice(0, 12));
      expect(hash.equals(createHash('sha256').update(secret).digest())).toBe(true);
    }
    expect(new Set(made.map((m) => m.secret)).size).toBe(200);
  });

  it('a malformed key hashes to nothing a real key can have; only key-shaped bearers are taken for keys', () => {
    expect(hashApiKey('tsk_short').equals(createHash('sha256').update('tsk_short').digest())).toBe(false);
    expect(looksLikeApiKey(newApiKeySecret().secret)).toBe(true);
    expect(looksLikeApiKey('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig')).toBe(false);
    expect(looksLikeApiKey('tsk_abc.def.ghi')).toBe(false);
  });
});
