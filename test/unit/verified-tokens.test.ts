import { generateKeyPair, type JWTVerifyGetKey, type KeyLike, SignJWT } from 'jose';
import { createVerifier, InvalidTokenError } from '../../src/auth/jwt';

/**
 * A token's signature is checked once and remembered (src/auth/jwt.ts): what is remembered must
 * never outlive the token's expiry, nor the key that verified it.
 */

const options = { issuer: 'https://issuer.test', audience: 'tenant-api', algorithms: ['RS256'] };
let key1: { privateKey: KeyLike; publicKey: KeyLike };
let key2: { privateKey: KeyLike; publicKey: KeyLike };

beforeAll(async () => {
  key1 = await generateKeyPair('RS256');
  key2 = await generateKeyPair('RS256');
});
afterEach(() => jest.useRealTimers());

const sign = (privateKey: KeyLike, expiresInSeconds = 600) =>
  new SignJWT({ email: 'cache@example.com' })
    .setProtectedHeader({ alg: 'RS256', kid: 'k' })
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setSubject('ext|cache')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
    .sign(privateKey);

describe('remembered token verifications', () => {
  it('a remembered token is refused once it expires (beyond the 60 s tolerance)', async () => {
    const verifier = createVerifier(key1.publicKey, options);
    const token = await sign(key1.privateKey, 120);
    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: 'ext|cache' });
    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: 'ext|cache' });
    // Only the clock moves (jose reads it with new Date(), the cache with Date.now()).
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask', 'setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'] });
    jest.setSystemTime(Date.now() + 200_000);
    await expect(verifier.verify(token)).rejects.toThrow(InvalidTokenError);
  });

  it('a remembered token is refused when its kid now resolves to another key', async () => {
    let current = key1.publicKey;
    const getKey: JWTVerifyGetKey = async () => current;
    const verifier = createVerifier(getKey, options);
    const token = await sign(key1.privateKey);
    await expect(verifier.verify(token)).resolves.toMatchObject({ email: 'cache@example.com' });
    current = key2.publicKey;
    await expect(verifier.verify(token)).rejects.toThrow(InvalidTokenError);
  });

  it('a remembered token is refused when its key left the key set', async () => {
    let published = true;
    const getKey: JWTVerifyGetKey = async () => {
      if (!published) throw new Error('no applicable key found in the JSON Web Key Set');
      return key1.publicKey;
    };
    const verifier = createVerifier(getKey, options);
    const token = await sign(key1.privateKey);
    await expect(verifier.verify(token)).resolves.toMatchObject({ subject: 'ext|cache' });
    published = false;
    await expect(verifier.verify(token)).rejects.toThrow(InvalidTokenError);
    // And stays refused when the key set answers again with another key.
    published = true;
    const other = createVerifier(async () => key2.publicKey, options);
    await expect(other.verify(token)).rejects.toThrow(InvalidTokenError);
  });

  it('the remembered identity cannot be changed by a request', async () => {
    const verifier = createVerifier(key1.publicKey, options);
    const token = await sign(key1.privateKey);
    const identity = await verifier.verify(token);
    expect(() => {
      (identity as { email: string }).email = 'attacker@example.com';
    }).toThrow(TypeError);
    await expect(verifier.verify(token)).resolves.toMatchObject({ email: 'cache@example.com' });
  });
});
