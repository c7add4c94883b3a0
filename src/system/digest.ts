/**
 * The client side of HTTP Digest authentication (RFC 7616, which obsoletes RFC 2617): parsing a
 * `WWW-Authenticate: Digest …` challenge and computing the `Authorization: Digest …` answer.
 *
 * Why not the digest-header package (used before): it splits `user:password` at every `:`, so a
 * password containing a colon was silently cut, and it always answers with MD5 and the first qop the
 * server lists, so a server asking for SHA-256 or offering only `auth-int` got a wrong answer and a
 * second 401. The response is a few hash lines from the RFC; the RFC's own examples (§3.9.1) are the
 * unit test.
 */
import { createHash, randomBytes } from 'node:crypto';

/** The `algorithm` values this client can answer (RFC 7616 §6.1 registry; absent means MD5). */
export const DIGEST_ALGORITHMS = ['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess', 'SHA-512-256', 'SHA-512-256-sess'] as const;

/** A parsed Digest challenge with the state of its use (nonce count, client nonce). */
export interface DigestChallenge {
  realm: string;
  nonce: string;
  opaque: string | null;
  /** As the server spelled it, e.g. `MD5`, `SHA-256-sess`. */
  algorithm: string;
  /** `auth`, or null when the server sent no qop (RFC 2069 compatibility). */
  qop: 'auth' | null;
  /** Requests answered with this nonce so far (the `nc` of the next answer is this + 1). */
  count: number;
  /** Client nonce, one per challenge (so a -sess session key stays the same). */
  cnonce: string;
}

/** Why a Digest challenge cannot be answered; the message names what the server asked for. */
export class UnsupportedDigestError extends Error {}

/**
 * Parses the parameters of a Digest challenge (the text after `Digest `; RFC 7235 §2.1 auth-params:
 * `name=token` or `name="quoted string"` with `\` escapes, separated by commas).
 * @throws UnsupportedDigestError when the algorithm is not one of {@link DIGEST_ALGORITHMS}, when the
 *   server offers only `qop=auth-int`, or when realm or nonce is missing.
 */
export function parseDigestChallenge(text: string): DigestChallenge {
  const params = new Map<string, string>();
  for (const m of text.matchAll(/([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))/g)) {
    const name = m[1]!.toLowerCase();
    // the first value wins: parameters of a challenge that follows (another scheme) come later
    if (!params.has(name)) params.set(name, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? ''));
  }
  const realm = params.get('realm');
  const nonce = params.get('nonce');
  if (realm === undefined || !nonce) throw new UnsupportedDigestError('the Digest challenge has no realm or nonce');
  const algorithm = params.get('algorithm') ?? 'MD5';
  if (!DIGEST_ALGORITHMS.some((a) => a.toLowerCase() === algorithm.toLowerCase())) {
    throw new UnsupportedDigestError(`the server asks for Digest algorithm=${algorithm}, which letto-update does not support (it supports ${DIGEST_ALGORITHMS.join(', ')})`);
  }
  let qop: 'auth' | null = null;
  const offered = params.get('qop');
  if (offered !== undefined) {
    const list = offered.split(',').map((q) => q.trim().toLowerCase());
    if (!list.includes('auth')) {
      throw new UnsupportedDigestError(`the server offers Digest only with qop=${offered}, which letto-update does not support (it supports qop=auth)`);
    }
    qop = 'auth';
  }
  return { realm, nonce, opaque: params.get('opaque') ?? null, algorithm, qop, count: 0, cnonce: randomBytes(16).toString('hex') };
}

/**
 * The `Authorization` header value answering `challenge` for one request (RFC 7616 §3.4): increments
 * the challenge's nonce count. The whole password is used, whatever characters it contains.
 * @param uri the request target as sent (path and query), e.g. `/download/letto/letto-stable.war`.
 */
export function digestAuthorization(challenge: DigestChallenge, method: string, uri: string, user: string, password: string): string {
  const base = challenge.algorithm.replace(/-sess$/i, '').toUpperCase();
  const hashName = base === 'MD5' ? 'md5' : base === 'SHA-256' ? 'sha256' : 'sha512-256';
  const h = (text: string): string => createHash(hashName).update(text, 'utf8').digest('hex');
  challenge.count++;
  const nc = challenge.count.toString(16).padStart(8, '0');
  let ha1 = h(`${user}:${challenge.realm}:${password}`);
  if (/-sess$/i.test(challenge.algorithm)) ha1 = h(`${ha1}:${challenge.nonce}:${challenge.cnonce}`);
  const ha2 = h(`${method}:${uri}`);
  const response = challenge.qop ? h(`${ha1}:${challenge.nonce}:${nc}:${challenge.cnonce}:${challenge.qop}:${ha2}`) : h(`${ha1}:${challenge.nonce}:${ha2}`);
  const quote = (value: string): string => `"${value.replace(/(["\\])/g, '\\$1')}"`;
  const parts = [
    `username=${quote(user)}`,
    `realm=${quote(challenge.realm)}`,
    `uri=${quote(uri)}`,
    `algorithm=${challenge.algorithm}`,
    `nonce=${quote(challenge.nonce)}`,
    ...(challenge.qop ? [`nc=${nc}`, `cnonce=${quote(challenge.cnonce)}`, `qop=${challenge.qop}`] : []),
    `response=${quote(response)}`,
    ...(challenge.opaque !== null ? [`opaque=${quote(challenge.opaque)}`] : []),
  ];
  return `Digest ${parts.join(', ')}`;
}
