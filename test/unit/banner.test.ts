import { bannerUrl } from '../../src/main';

describe('start-up banner URL', () => {
  it('shows loopback and wildcard hosts as localhost, other addresses as they are', () => {
    expect(bannerUrl('127.0.0.1', 4000)).toBe('http://localhost:4000');
    expect(bannerUrl('0.0.0.0', 8080)).toBe('http://localhost:8080');
    expect(bannerUrl('::', 4000)).toBe('http://localhost:4000');
    expect(bannerUrl('10.1.2.3', 4000)).toBe('http://10.1.2.3:4000');
    expect(bannerUrl('fd00::1', 4000)).toBe('http://[fd00::1]:4000');
  });
});
