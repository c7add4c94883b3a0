/**
 * Who may receive the download credentials and how: HTTP Basic sent up front to the configured server's
 * origin only (RFC 7617), HTTP Digest once the server has challenged (RFC 7616, src/system/digest.ts),
 * and the refusal of plain http to another machine unless `server.allow_plain_http` is set.
 */
import { isLoopbackHost } from '../loopback.js';
import { DownloadError } from '../../errors.js';
import { digestAuthorization, type DigestChallenge } from '../digest.js';
import { redact } from './errors.js';
import type { HttpOptions } from './types.js';

/** The authentication state of one client: the server's last Digest challenge, the plain-http warning given. */
export class Auth {
  /** The server's last Digest challenge (RFC 7616): once seen, every request answers it up front. */
  digestChallenge: DigestChallenge | null = null;
  private warnedPlainHttp = false;
  readonly serverOrigin: string;

  constructor(private readonly options: HttpOptions) {
    this.serverOrigin = new URL(options.serverUrl).origin;
  }

  /** Whether `target` is the configured server and there are credentials to send it. */
  mayAnswer(target: URL): boolean {
    return !!this.options.credentials && target.origin === this.serverOrigin;
  }

  /** The `Authorization` header for `method` on `target`, or null (no credentials, or another origin). */
  authorization(method: string, target: URL): string | null {
    const credentials = this.options.credentials;
    if (!credentials || target.origin !== this.serverOrigin) return null;
    if (this.digestChallenge) return digestAuthorization(this.digestChallenge, method, target.pathname + target.search, credentials.user, credentials.password);
    return `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`;
  }

  /**
   * Plain http crosses a network in clear: to loopback it is fine, to another host only with
   * `server.allow_plain_http` (then one warning per client); a redirect from https to http is a
   * downgrade and needs the option even to loopback.
   * @throws DownloadError (not retried) when the hop is not allowed.
   */
  checkPlainHttp(target: URL, from: URL | null): void {
    if (target.protocol !== 'http:') return;
    const downgrade = from !== null && from.protocol === 'https:';
    if (!this.options.allowPlainHttp && (downgrade || !isLoopbackHost(target.hostname))) {
      throw new DownloadError(
        downgrade
          ? `Refusing the redirect from ${redact(from.href)} to plain ${redact(target.href)}: it would downgrade https to unencrypted http. Nothing was downloaded from there.`
          : `Refusing plain ${redact(target.href)}: http to another machine would send the password and the WAR unencrypted. Nothing was sent.`,
        { hint: 'Ask the download server admin for https. If this server really offers only http, set server.allow_plain_http = true.' },
      );
    }
    if (!isLoopbackHost(target.hostname) && !this.warnedPlainHttp) {
      this.warnedPlainHttp = true;
      this.options.onWarning?.(
        `server.allow_plain_http is on and ${target.host} is reached over plain http: the download password and the WAR travel unencrypted and could be read or changed on the way. Use https where the server offers it.`,
      );
    }
  }
}

/** Whether one of the `WWW-Authenticate` challenges is Basic (RFC 7617). */
export function offersBasic(value: string | string[] | undefined): boolean {
  const values = Array.isArray(value) ? value : value ? [value] : [];
  return values.some((v) => /(?:^|,)\s*basic(?:\s|$)/i.test(v));
}

/** The Digest challenge among the `WWW-Authenticate` values, if any (RFC 7616 §3.3). */
export function digestChallengeOf(value: string | string[] | undefined): string | null {
  const values = Array.isArray(value) ? value : value ? [value] : [];
  // Node joins several WWW-Authenticate headers with ", " (e.g. "Negotiate, Digest realm=…")
  for (const v of values) {
    const at = /(?:^|,)\s*digest\s+/i.exec(v);
    if (at) return v.slice(at.index + at[0].length);
  }
  return null;
}
