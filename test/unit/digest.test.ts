import { describe, expect, it } from 'vitest';
import { digestAuthorization, parseDigestChallenge, UnsupportedDigestError } from '../../src/system/digest.js';

/** RFC 7616 §3.9.1: the challenge of the example, with MD5 or SHA-256. */
const rfcChallenge = (algorithm: string) =>
  `realm="http-auth@example.org", qop="auth, auth-int", algorithm=${algorithm}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`;

function rfcAnswer(algorithm: string): string {
  const challenge = parseDigestChallenge(rfcChallenge(algorithm));
  challenge.cnonce = 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ';
  return digestAuthorization(challenge, 'GET', '/dir/index.html', 'Mufasa', 'Circle of Life');
}

describe('Digest (RFC 7616)', () => {
  it('answers the RFC 7616 §3.9.1 example with MD5 and with SHA-256', () => {
    expect(rfcAnswer('MD5')).toContain('response="8ca523f5e9506fed4657c9700eebdbec"');
    const sha = rfcAnswer('SHA-256');
    expect(sha).toContain('response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"');
    expect(sha).toMatch(/^Digest username="Mufasa", realm="http-auth@example.org", uri="\/dir\/index.html", algorithm=SHA-256, nonce="7ypf\/xlj9XXwfDPEoM4URrv\/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2\/wE4q74E6zIJEtWaHKaf5wv\/H5QzzpXusqGemxURZJ", qop=auth, response="[0-9a-f]{64}", opaque="FQhe\/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"$/);
  });

  it('keeps the whole password, colons included, and counts nc up', () => {
    const challenge = parseDigestChallenge('realm="r", nonce="n", qop="auth"');
    const a = digestAuthorization(challenge, 'GET', '/x', 'u', 'a:b:c');
    const b = digestAuthorization(challenge, 'GET', '/x', 'u', 'a');
    expect(a).toContain('nc=00000001');
    expect(b).toContain('nc=00000002');
    expect(/response="(\w+)"/.exec(a)![1]).not.toBe(/response="(\w+)"/.exec(b)![1]);
  });

  it('parses quoted strings with commas and escapes, and tokens', () => {
    const c = parseDigestChallenge('realm="LeTTo, \\"Download\\"", nonce=abc, algorithm=md5-sess, qop="auth"');
    expect(c).toMatchObject({ realm: 'LeTTo, "Download"', nonce: 'abc', algorithm: 'md5-sess', qop: 'auth' });
    expect(parseDigestChallenge('realm="r", nonce="n"').qop).toBeNull();
    // a challenge of another scheme after it (Node joins several WWW-Authenticate headers) does not override it
    expect(parseDigestChallenge('realm="r", nonce="n", Basic realm="other"').realm).toBe('r');
  });

  it.each([
    ['realm="r", nonce="n", algorithm=SHA-512', /algorithm=SHA-512, which letto-update does not support/],
    ['realm="r", nonce="n", qop="auth-int"', /only with qop=auth-int/],
    ['realm="r"', /no realm or nonce/],
  ])('refuses %s', (text, message) => {
    expect(() => parseDigestChallenge(text)).toThrow(UnsupportedDigestError);
    expect(() => parseDigestChallenge(text)).toThrow(message);
  });
});
