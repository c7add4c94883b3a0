/**
 * One request to the download server with our redirect and authentication handling, over the
 * transport the client chose (node:https, or undici through a proxy), and the retry loop around it.
 * Every part of the HTTP module (text, download, ranges) sends through a {@link Requester}.
 */
import { DownloadError } from '../../errors.js';
import { parseDigestChallenge, UnsupportedDigestError, type DigestChallenge } from '../digest.js';
import type { Transport, TransportResponse } from '../node-transport.js';
import { proxyFor } from '../proxy.js';
import { Auth, digestChallengeOf, offersBasic } from './auth.js';
import { Deadline, DEFAULT_RETRY, describeNetworkError, errorCode, networkError, redact, retryAfterSeconds, statusError, withRetries } from './errors.js';
import type { HttpOptions, RetryPolicy } from './types.js';

const MAX_REDIRECTS = 5;

/** What the parts of the HTTP module share: the options, one request, the retry loop, the deadline. */
export interface Requester {
  readonly options: HttpOptions;
  /**
   * GET (or HEAD) with our redirect and authentication handling; resolves to a response whose status is
   * in `accept` (default 200). @throws DownloadError for another status (transient for 5xx/408/429),
   * a refused hop or no answer.
   */
  get(url: string, extraHeaders?: Record<string, string>, accept?: readonly number[], deadline?: Deadline | null, method?: 'GET' | 'HEAD'): Promise<TransportResponse>;
  /** Runs `attempt` in the client's retry loop (see {@link withRetries}). */
  retry<T>(what: string, attempt: (n: number) => Promise<T>, signal?: AbortSignal, deadline?: Deadline | null): Promise<T>;
  /** A new deadline for one attempt of a command run by hand, or null (see {@link HttpOptions.deadline}). */
  deadline(): Deadline | null;
}

/** A {@link Requester} over `send`; `proxied`: the transport goes through the proxy `env` names. */
export function createRequester(options: HttpOptions, send: Transport, proxied: boolean, env: NodeJS.ProcessEnv): Requester {
  const auth = new Auth(options);
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };

  async function get(url: string, extraHeaders: Record<string, string> = {}, accept: readonly number[] = [200], deadline: Deadline | null = null, method: 'GET' | 'HEAD' = 'GET'): Promise<TransportResponse> {
    let current = url;
    let digestTried = false;
    let from: URL | null = null;
    for (let hop = 0; hop <= MAX_REDIRECTS; ) {
      const target = new URL(current);
      auth.checkPlainHttp(target, from);
      const headers: Record<string, string> = { 'user-agent': 'letto-update', ...extraHeaders };
      const authorization = auth.authorization(method, target);
      if (authorization) headers.authorization = authorization;
      let response: TransportResponse;
      try {
        response = await send(current, headers, deadline?.signal(), method);
      } catch (error) {
        throw connectionError(current, target, error, deadline, proxied ? proxyFor(target, env) : null);
      }
      const location = response.headers.location;
      if (response.statusCode >= 300 && response.statusCode < 400 && typeof location === 'string') {
        await response.body.dump();
        from = target;
        current = new URL(location, current).href;
        hop++;
        continue;
      }
      if (response.statusCode === 401 && !digestTried && auth.mayAnswer(target)) {
        const challenge = await digestToAnswer(response, target);
        if (challenge) {
          // the server wants Digest (or a fresh nonce): answer the challenge once
          auth.digestChallenge = challenge;
          digestTried = true;
          continue;
        }
      }
      if (!accept.includes(response.statusCode)) {
        await response.body.dump();
        throw statusError(response.statusCode, current, retryAfterSeconds(response.headers['retry-after']));
      }
      return response;
    }
    throw new DownloadError(`Too many redirects from ${redact(url)}.`, { hint: 'Check server.url.' });
  }

  return {
    options,
    get,
    retry: (what, attempt, signal, deadline = null) => withRetries(policy, options.onRetry, what, attempt, signal, deadline),
    deadline: () => Deadline.of(options),
  };
}

/**
 * The Digest challenge of a 401 that letto-update can answer (its body then dropped), or null: no
 * Digest challenge, or one it cannot answer from a server that offers Basic too (which refused the
 * Basic login sent up front: a wrong password, reported like any 401).
 * @throws DownloadError when the server offers only a Digest that letto-update cannot answer.
 */
async function digestToAnswer(response: TransportResponse, target: URL): Promise<DigestChallenge | null> {
  const challenge = digestChallengeOf(response.headers['www-authenticate']);
  if (!challenge) return null;
  try {
    const parsed = parseDigestChallenge(challenge);
    await response.body.dump();
    return parsed;
  } catch (error) {
    if (!(error instanceof UnsupportedDigestError)) throw error;
    if (offersBasic(response.headers['www-authenticate'])) return null;
    await response.body.dump();
    throw new DownloadError(`The download server ${target.host} wants HTTP Digest authentication that letto-update cannot answer: ${error.message}. Nothing was downloaded.`, {
      hint: 'Ask the download server admin to accept HTTP Basic over https for this download (letto-update sends it up front), or Digest with MD5 or SHA-256 and qop=auth.',
    });
  }
}

/**
 * The DownloadError for a request that got no response: what happened, what was left as it was (nothing),
 * and what to check, naming the proxy (and the variable that set it) when the request went through one.
 */
function connectionError(url: string, target: URL, error: unknown, deadline: Deadline | null, proxy: { url: string; variable: string } | null): DownloadError {
  const code = errorCode(error);
  const via = proxy ? ` through the proxy ${proxy.url} (${proxy.variable})` : '';
  const checkProxy = proxy
    ? `Check that the proxy ${proxy.url} (set by ${proxy.variable} in the environment) is up and lets ${target.host} through; or unset ${proxy.variable}, or add ${target.hostname} to NO_PROXY, to connect directly.`
    : '';
  if (code === 'LETTO_DEADLINE' && deadline) {
    return new DownloadError(
      `No answer from ${target.host}${via} within ${deadline.seconds} s (server.interactive_timeout, the limit for a command run by hand): ${redact(url)}. Nothing was changed.`,
      {
        hint: `${checkProxy || `Check that ${target.host} is up and reachable from here (firewall, DNS, HTTPS_PROXY).`} The nightly run (update --cron) waits longer (server.retries, server.connect_timeout); raise server.interactive_timeout on a very slow line.`,
        cause: error,
      },
    );
  }
  const hint =
    proxy && (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT')
      ? `No answer in time through the proxy: the tunnel to ${target.host} gets server.connect_timeout, the server's answer server.idle_timeout. Nothing was changed. ${checkProxy}`
      : proxy
        ? `Nothing was changed. ${checkProxy}`
        : code === 'UND_ERR_CONNECT_TIMEOUT'
          ? `${target.host} did not complete the connection (TCP and TLS handshake) within server.connect_timeout. Nothing was changed. Check that the server is up and reachable from here (firewall, HTTPS_PROXY), or raise server.connect_timeout on a very slow line.`
          : 'Check the network, the server URL (server.url) and, for TLS errors, server.ca_file.';
  return networkError(`Cannot reach ${redact(url)}${via}: ${describeNetworkError(error)}.`, error, hint);
}
