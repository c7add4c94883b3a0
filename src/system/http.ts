import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, truncate, type FileHandle } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pRetry from 'p-retry';
import type { Dispatcher } from 'undici';
import { isByteranges, parseContentRange as parsePartRange, readByteranges, type InclusiveRange } from './byteranges.js';
import { digestAuthorization, parseDigestChallenge, UnsupportedDigestError, type DigestChallenge } from './digest.js';
import { createNodeTransport, type Transport, type TransportResponse } from './node-transport.js';
import { probesDirectly, probeUrl, type ProbeResult } from './probe.js';
import { importUndici } from './undici.js';
import { isLoopbackHost } from '../config/config.js';
import { DownloadError } from '../errors.js';
import { fileSize } from './files.js';
import { hasProxy, proxyFor } from './proxy.js';

/** Download credentials; sent only to the configured server's origin, never across a redirect to another host. */
export interface Credentials {
  user: string;
  password: string;
}

/** Progress of a download, emitted at most every 250 ms. Units: bytes, bytes per second, seconds. */
export interface DownloadProgress {
  /** Bytes on disk so far, including a resumed prefix. */
  received: number;
  total: number | null;
  bytesPerSecond: number;
  etaSeconds: number | null;
}

/**
 * What identifies one version of a file on the server (RFC 9110 §8.8): a strong `ETag` or the
 * `Last-Modified` date, and its length in bytes. A partial file may only be continued while these match.
 */
export interface Validators {
  etag: string | null;
  lastModified: string | null;
  total: number | null;
}

/** What {@link HttpClient.download} returns. Units: bytes. */
export interface DownloadResult {
  /** Length of the complete file. */
  bytes: number;
  /** SHA-256 (hex) of the whole file, the resumed prefix included. */
  sha256: string;
  /** Bytes that were already on disk and kept (0 for a fresh download). */
  resumedFrom: number;
  /** Bytes of body received over the network by this call, over all attempts. */
  transferred: number;
  /** Requests for the file body made by this call (1 when nothing went wrong). */
  attempts: number;
  /** The validators of the file that was downloaded. */
  validators: Validators;
}

/** Options of {@link HttpClient.download}. */
export interface DownloadOptions {
  onProgress?: (p: DownloadProgress) => void;
  /**
   * Validators of a partial file already at `dest` (from an earlier, interrupted run). With them the
   * download continues with `Range` + `If-Range`; without them an existing `dest` is started afresh.
   */
  resume?: Validators | null;
  /** Called (and awaited) whenever the server announces the file's validators, before its body is written. */
  onValidators?: (v: Validators) => Promise<void> | void;
  /** Told how many bytes of the file are on disk, after each write (for verifying while downloading). */
  onWritten?: (bytesOnDisk: number) => void;
  /** Told that `dest` is about to be emptied and written again from byte 0. */
  onRestart?: () => void;
  /**
   * Stops the download: the response is dropped, no retry follows, and `download` rejects with
   * `signal.reason` as it is (e.g. the VerifyError of a damaged entry found while downloading).
   */
  signal?: AbortSignal;
}

export type { ProbeResult } from './probe.js';

/** A byte range: `start` to `end` inclusive, or the last `suffix` bytes of the file. Units: bytes. */
export type ByteRange = { start: number; end: number } | { suffix: number };

/** Options of {@link HttpClient.readRange}. */
export interface RangeOptions {
  /** Validators of the file the range must come from: sent as `If-Range` (RFC 9110 §13.1.5), and every 206 must carry the same ones and the same length. */
  expect?: Validators | null;
  /** Told each chunk with its position in the file; awaited (write it before the next one comes). */
  onData: (chunk: Buffer, position: number) => Promise<void> | void;
  signal?: AbortSignal;
}

/** Options of {@link HttpClient.readRanges}. */
export interface RangesOptions {
  /** Validators of the file the ranges must come from: sent as `If-Range`; the answer must carry the same ones and every part the same length. */
  expect: Validators;
  /** Told each chunk with its position in the file; awaited (write it before the next one comes). */
  onData: (chunk: Buffer, position: number) => Promise<void> | void;
  signal?: AbortSignal;
}

/**
 * What a request for several ranges gave: all of them, or why not and what to do instead: `single`
 * (the server does not answer several ranges usefully: ask for them one by one) or `full` (the file
 * changed, or cannot be tied to one version: download it whole). Bytes handed to `onData` before a
 * refusal are the asked bytes of the asked file and stay usable.
 */
export type RangesAnswer = { ok: true } | { ok: false; reason: string; fallback: 'single' | 'full' };

export type { InclusiveRange } from './byteranges.js';

/** What a Range request gave: the place of the bytes in the file and the file's validators, or why not. */
export type RangeAnswer = { ok: true; start: number; end: number; total: number; validators: Validators } | { ok: false; reason: string };

/** The thin HTTP module: everything letto-update sends over the network goes through here. */
export interface HttpClient {
  /** GET a small text file (revision file, archive listing); at most 4 MiB. Retries transient failures. @throws DownloadError */
  getText(url: string): Promise<string>;
  /** Like {@link getText}, but null when the server answers 404, 410 or 403 (a file that is not published). */
  getOptionalText(url: string): Promise<string | null>;
  /**
   * A HEAD of `url` with the credentials: the file's length in bytes (Content-Length), null when the
   * server does not say. Retries like {@link getText}. @throws DownloadError (404, 401, network).
   */
  size(url: string): Promise<number | null>;
  /**
   * GET a file and stream it to `dest`, hashing on the way; resumes `dest` (see {@link DownloadOptions.resume})
   * and, after a transient failure, its own partial file with HTTP Range requests.
   * @throws DownloadError (network, HTTP status, retries exhausted); local write errors (ENOSPC…) as they are.
   */
  download(url: string, dest: string, options?: DownloadOptions): Promise<DownloadResult>;
  /**
   * GET one byte range of a file (RFC 9110 §14.2) and hand its bytes to `onData` in order; after a
   * transient failure the request is repeated for the bytes not yet handed over only (no byte twice).
   * Never reads a 200 answer's body (the connection is dropped instead).
   * @returns where the 206 lies in the file, or why it is not usable (a tagged result, not an error).
   * @throws DownloadError (network, HTTP status, retries exhausted); whatever `onData` throws.
   */
  readRange(url: string, range: ByteRange, options: RangeOptions): Promise<RangeAnswer>;
  /**
   * GET several byte ranges of a file in one request (`Range: bytes=a-b,c-d,…` with `If-Range`), read
   * from the `multipart/byteranges` answer (RFC 9110 §14.6) part by part, each part checked against its
   * `Content-Range` (asked bytes, same file length). `ranges` must be sorted, disjoint and not adjacent
   * (servers merge such ranges or refuse them), and few (Apache's MaxRanges is 200). After a transient
   * failure only the bytes not yet handed over are asked for again. A 200 answer is never read.
   * @returns a tagged result: all bytes handed over, or why not and the fallback (see {@link RangesAnswer}).
   * @throws DownloadError (network, HTTP status, retries exhausted); whatever `onData` throws.
   */
  readRanges(url: string, ranges: readonly InclusiveRange[], options: RangesOptions): Promise<RangesAnswer>;
  /** One GET of a health URL; never throws. Certificates of loopback hosts are not verified. */
  probe(url: string, timeoutSeconds: number): Promise<ProbeResult>;
  close(): Promise<void>;
}

/** How often and how patiently transient failures are retried. Units: seconds. */
export interface RetryPolicy {
  /** Further attempts after the first one (0: no retry). */
  retries: number;
  /** Wait before the first retry; doubled each time, with random jitter (×1 to ×2). */
  wait: number;
  /** Longest wait between two attempts, `Retry-After` included. */
  maxWait: number;
}

export interface HttpOptions {
  /** Origin that may receive the credentials (the configured server URL). */
  serverUrl: string;
  credentials: Credentials | null;
  /** Extra CA certificates (PEM text), added to Node's bundled ones. */
  extraCaPem?: string;
  /** Seconds to connect, and seconds a response may stay silent before it is given up. */
  connectTimeout?: number;
  idleTimeout?: number;
  retry?: Partial<RetryPolicy>;
  /** Told about each failed attempt that will be retried (a human sentence, no credentials). */
  onRetry?: (message: string) => void;
  /** Environment for the proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY); default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * `server.allow_plain_http`: plain `http://` to a host other than loopback, and a redirect from
   * https to http, are allowed (default false: refused with a DownloadError before anything is sent).
   */
  allowPlainHttp?: boolean;
  /** Told things the admin should know that are not failures (e.g. plain http in use); once each per client. */
  onWarning?: (message: string) => void;
  /**
   * Seconds a command run by hand waits for the download server (`server.interactive_timeout`): a text
   * file (revision, listing, `.sha256`) must arrive within it, all attempts and retry waits included, and
   * each attempt of a download must get its answer (the headers) within it. Running out of it is final,
   * not retried. Once a WAR's bytes flow, the transfer is bounded by `idleTimeout` only. Unset (the
   * nightly run): connect and idle timeouts and the retry policy alone bound a request.
   */
  deadline?: number;
}

/** A point in time by which an answer must have arrived (see {@link HttpOptions.deadline}). */
class Deadline {
  private readonly ends: number;
  constructor(readonly seconds: number) {
    this.ends = performance.now() + seconds * 1000;
  }
  /** Milliseconds left (0 when past). */
  remaining(): number {
    return Math.max(0, this.ends - performance.now());
  }
  expired(): boolean {
    return this.remaining() === 0;
  }
  /** A signal that aborts when the deadline passes, with an error of code `LETTO_DEADLINE`. */
  signal(): AbortSignal {
    const controller = new AbortController();
    const error = Object.assign(new Error(`no answer within ${this.seconds} s`), { code: 'LETTO_DEADLINE' });
    const timer = setTimeout(() => controller.abort(error), this.remaining());
    timer.unref();
    return controller.signal;
  }
}

const MAX_REDIRECTS = 5;
const MAX_TEXT_BYTES = 4 * 1024 * 1024;
const LOCAL_WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EISDIR', 'ENOENT']);
/** Network error codes worth another attempt (undici's and the OS's). */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_ABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const DEFAULT_RETRY: RetryPolicy = { retries: 5, wait: 2, maxWait: 60 };

/** Errors that another attempt may cure, with the server's `Retry-After` (seconds) when it sent one. */
const transient = new WeakMap<Error, { retryAfter: number | null }>();
function markTransient<E extends Error>(error: E, retryAfter: number | null = null): E {
  transient.set(error, { retryAfter });
  return error;
}

/**
 * Creates the {@link HttpClient}. Requests to the download server go over Node's `node:https` (see
 * `node-transport.ts`: less CPU and memory for the WAR than undici); when a proxy is configured
 * (HTTPS_PROXY/HTTP_PROXY) they go through undici's EnvHttpProxyAgent instead. Health probes go over
 * node:http(s) too (src/system/probe.ts), through undici only to a non-loopback host with a proxy configured.
 * undici is loaded only when one of those needs it.
 */
export function createHttpClient(options: HttpOptions): HttpClient {
  const connectTimeout = (options.connectTimeout ?? 30) * 1000;
  const idle = (options.idleTimeout ?? 60) * 1000;
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const ca = options.extraCaPem ? [...rootCertificates, options.extraCaPem] : undefined;
  const env = options.env ?? process.env;
  const direct = hasProxy(env) ? null : createNodeTransport({ connectTimeout, idleTimeout: idle, ...(ca ? { ca } : {}) });
  let undiciParts: Promise<UndiciParts> | null = null;
  const undici = () => (undiciParts ??= loadUndici(env, { timeout: connectTimeout, ...(ca ? { ca } : {}) }, idle));
  const send: Transport = direct ? direct.send : async (url, headers, signal, method) => (await undici()).send(url, headers, signal, method);
  const serverOrigin = new URL(options.serverUrl).origin;
  let warnedPlainHttp = false;

  /**
   * Plain http crosses a network in clear: to loopback it is fine, to another host only with
   * `server.allow_plain_http` (then one warning per client); a redirect from https to http is a
   * downgrade and needs the option even to loopback.
   * @throws DownloadError (not retried) when the hop is not allowed.
   */
  function checkPlainHttp(target: URL, from: URL | null): void {
    if (target.protocol !== 'http:') return;
    const downgrade = from !== null && from.protocol === 'https:';
    if (!options.allowPlainHttp && (downgrade || !isLoopbackHost(target.hostname))) {
      throw new DownloadError(
        downgrade
          ? `Refusing the redirect from ${redact(from.href)} to plain ${redact(target.href)}: it would downgrade https to unencrypted http. Nothing was downloaded from there.`
          : `Refusing plain ${redact(target.href)}: http to another machine would send the password and the WAR unencrypted. Nothing was sent.`,
        { hint: 'Ask the download server admin for https. If this server really offers only http, set server.allow_plain_http = true.' },
      );
    }
    if (!isLoopbackHost(target.hostname) && !warnedPlainHttp) {
      warnedPlainHttp = true;
      options.onWarning?.(
        `server.allow_plain_http is on and ${target.host} is reached over plain http: the download password and the WAR travel unencrypted and could be read or changed on the way. Use https where the server offers it.`,
      );
    }
  }

  /** The server's last Digest challenge (RFC 7616): once seen, every request answers it up front. */
  let digestChallenge: DigestChallenge | null = null;

  function authorization(method: string, target: URL): string | null {
    const credentials = options.credentials;
    if (!credentials || target.origin !== serverOrigin) return null;
    if (digestChallenge) return digestAuthorization(digestChallenge, method, target.pathname + target.search, credentials.user, credentials.password);
    return `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`;
  }

  /**
   * GET with our redirect and authentication handling; resolves to a response whose status is in `accept`.
   * Another status becomes a DownloadError (transient for 5xx/408/429).
   */
  async function get(
    url: string,
    extraHeaders: Record<string, string> = {},
    accept: readonly number[] = [200],
    deadline: Deadline | null = null,
    method: 'GET' | 'HEAD' = 'GET',
  ): Promise<TransportResponse> {
    let current = url;
    let digestTried = false;
    let from: URL | null = null;
    for (let hop = 0; hop <= MAX_REDIRECTS; ) {
      const target = new URL(current);
      checkPlainHttp(target, from);
      const headers: Record<string, string> = { 'user-agent': 'letto-update', ...extraHeaders };
      const auth = authorization(method, target);
      if (auth) headers.authorization = auth;
      let response: TransportResponse;
      try {
        response = await send(current, headers, deadline?.signal(), method);
      } catch (error) {
        throw connectionError(current, target, error, deadline);
      }
      const location = response.headers.location;
      if (response.statusCode >= 300 && response.statusCode < 400 && typeof location === 'string') {
        await response.body.dump();
        from = target;
        current = new URL(location, current).href;
        hop++;
        continue;
      }
      const challenge = digestChallengeOf(response.headers['www-authenticate']);
      if (response.statusCode === 401 && challenge && options.credentials && target.origin === serverOrigin && !digestTried) {
        // the server wants Digest (or a fresh nonce): answer the challenge once
        let parsed: DigestChallenge | null = null;
        try {
          parsed = parseDigestChallenge(challenge);
        } catch (error) {
          if (!(error instanceof UnsupportedDigestError)) throw error;
          // a server that offers Basic too has refused the Basic login sent up front: a wrong password,
          // reported below like any 401
          if (!offersBasic(response.headers['www-authenticate'])) {
            await response.body.dump();
            throw new DownloadError(`The download server ${target.host} wants HTTP Digest authentication that letto-update cannot answer: ${error.message}. Nothing was downloaded.`, {
              hint: 'Ask the download server admin to accept HTTP Basic over https for this download (letto-update sends it up front), or Digest with MD5 or SHA-256 and qop=auth.',
            });
          }
        }
        if (parsed) {
          await response.body.dump();
          digestChallenge = parsed;
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

  /**
   * The DownloadError for a request that got no response: what happened, what was left as it was (nothing),
   * and what to check, naming the proxy (and the variable that set it) when the request went through one.
   */
  function connectionError(url: string, target: URL, error: unknown, deadline: Deadline | null): DownloadError {
    const code = errorCode(error);
    const proxy = direct === null ? proxyFor(target, env) : null;
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

  /** Runs `attempt` with bounded exponential backoff and jitter while it fails transiently (p-retry). */
  function withRetries<T>(what: string, attempt: (n: number) => Promise<T>, signal?: AbortSignal, deadline: Deadline | null = null): Promise<T> {
    return pRetry(attempt, {
      ...(signal ? { signal } : {}),
      // no retry, and no wait, beyond the deadline of a command run by hand
      ...(deadline ? { maxRetryTime: deadline.remaining() } : {}),
      retries: policy.retries,
      factor: 2,
      minTimeout: policy.wait * 1000,
      maxTimeout: policy.maxWait * 1000,
      randomize: true,
      shouldRetry: async ({ error, attemptNumber, retriesLeft }) => {
        const mark = transient.get(error);
        if (!mark || deadline?.expired()) return false;
        options.onRetry?.(`${what}: attempt ${attemptNumber} failed (${error.message}); ${retriesLeft} more to go.`);
        // Retry-After (RFC 9110 §10.2.3) is honoured up to maxWait, on top of the backoff
        if (mark.retryAfter) await sleep(Math.min(mark.retryAfter * 1000, policy.maxWait * 1000, deadline ? deadline.remaining() : Infinity));
        return true;
      },
    });
  }

  async function readText(url: string, optional: boolean): Promise<string | null> {
    const deadline = options.deadline ? new Deadline(options.deadline) : null;
    return withRetries(`Reading ${redact(url)}`, async () => {
      const response = await get(url, {}, optional ? [200, 403, 404, 410] : [200], deadline);
      if (response.statusCode !== 200) {
        await response.body.dump();
        return null;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of response.body) {
          size += (chunk as Buffer).length;
          if (size > MAX_TEXT_BYTES) {
            response.body.destroy();
            throw new DownloadError(`${redact(url)} is larger than 4 MiB; expected a small text file.`, {
              hint: 'Check server.url: it should point at the LeTTo download folder.',
            });
          }
          chunks.push(chunk as Buffer);
        }
      } catch (error) {
        if (error instanceof DownloadError) throw error;
        throw networkError(`Reading ${redact(url)} broke off: ${describeNetworkError(error)}.`, error, 'Check the network and run again.');
      }
      return Buffer.concat(chunks).toString('utf8');
    }, undefined, deadline);
  }

  /**
   * Reads one answer's body through `read`, which hands every chunk to `deliver` (the caller's write to
   * staging) at its byte position. An abort of `signal` ends it with the signal's reason; an error of
   * `deliver` (ENOSPC…) is thrown as it is, not as a network problem; anything else is the connection
   * breaking off: a transient network error naming `what`, which the retries continue from where it stopped.
   */
  async function readAnswer<T>(
    body: { destroy(error?: Error): void },
    what: string,
    signal: AbortSignal | undefined,
    deliver: (chunk: Buffer, position: number) => void | Promise<void>,
    read: (onData: (chunk: Buffer, position: number) => Promise<void>) => Promise<T>,
  ): Promise<T> {
    const stop = () => body.destroy(signal!.reason as Error);
    signal?.addEventListener('abort', stop, { once: true });
    let local = null as { error: unknown } | null;
    const onData = async (chunk: Buffer, position: number) => {
      try {
        await deliver(chunk, position);
      } catch (error) {
        local = { error };
        throw error;
      }
    };
    try {
      return await read(onData);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (local) throw local.error;
      throw networkError(`${what} broke off: ${describeNetworkError(error)}.`, error, 'Nothing was installed. Run the command again: it continues where it stopped.');
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  }

  async function readRange(url: string, range: ByteRange, opts: RangeOptions): Promise<RangeAnswer> {
    let expect = opts.expect ?? null;
    let next: number | null = 'start' in range ? range.start : null;
    let end: number | null = 'start' in range ? range.end : null;
    let first: { start: number; total: number } | null = null;
    const what = `Reading bytes ${'start' in range ? `${range.start}-${range.end}` : `-${range.suffix}`} of ${redact(url)}`;
    return withRetries(
      what,
      async (): Promise<RangeAnswer> => {
        opts.signal?.throwIfAborted();
        const ifRange = expect ? ifRangeValue(expect) : null;
        if (expect && !ifRange) return { ok: false, reason: 'the server names no strong ETag and no Last-Modified date, so a range cannot be tied to one version of the file' };
        const spec = next === null ? `bytes=-${(range as { suffix: number }).suffix}` : `bytes=${next}-${end}`;
        // a command run by hand: each attempt must get its answer within the deadline, as for download
        const deadline = options.deadline ? new Deadline(options.deadline) : null;
        const response = await get(url, { range: spec, ...(ifRange ? { 'if-range': ifRange } : {}) }, [200, 206, 416], deadline);
        if (response.statusCode !== 206) {
          await response.body.dump();
          const now = validatorsOf(response, null);
          if (response.statusCode === 200 && expect && !sameFile(expect, now)) return { ok: false, reason: 'the WAR changed on the server meanwhile (If-Range no longer matched: HTTP 200)' };
          return { ok: false, reason: `the server answered a Range request with HTTP ${response.statusCode}${response.statusCode === 200 ? ' and the whole file' : ''}` };
        }
        const place = parseContentRangeFull(response.headers['content-range']);
        const now = validatorsOf(response, place?.total ?? null);
        if (!place || place.total === null || (next !== null && place.start !== next) || (end !== null && place.end !== end)) {
          await response.body.dump();
          return { ok: false, reason: `the server's 206 answer covers other bytes than asked for (Content-Range: ${header(response.headers['content-range']) ?? 'none'})` };
        }
        if (expect && !sameFile(expect, now)) {
          await response.body.dump();
          return { ok: false, reason: 'the WAR changed on the server meanwhile (other ETag, date or length)' };
        }
        expect ??= now;
        first ??= { start: place.start, total: place.total };
        next = place.start;
        end = place.end;
        await readAnswer(response.body, what, opts.signal, opts.onData, async (onData) => {
          for await (const chunk of response.body) {
            await onData(chunk, next!);
            next = next! + chunk.length;
          }
        });
        if (next !== end + 1) throw markTransient(new DownloadError(`${what} ended early, at byte ${next} of ${end + 1}.`, { hint: 'Run the command again: it continues where it stopped.' }));
        return { ok: true, start: first.start, end, total: first.total, validators: expect };
      },
      opts.signal,
    );
  }

  async function readRanges(url: string, ranges: readonly InclusiveRange[], opts: RangesOptions): Promise<RangesAnswer> {
    const expect = opts.expect;
    const ifRange = ifRangeValue(expect);
    if (!ifRange || expect.total === null) return { ok: false, fallback: 'full', reason: 'the server names no strong ETag and no Last-Modified date, so a range cannot be tied to one version of the file' };
    const total = expect.total;
    // what is still to come of each range (start moves on as bytes are handed over)
    const left = ranges.map((r) => ({ start: r.start, end: r.end }));
    const what = `Reading ${ranges.length} ranges of ${redact(url)}`;
    const changed = { ok: false, fallback: 'full', reason: 'the WAR changed on the server meanwhile (other ETag, date or length)' } as const;
    const deliver = async (chunk: Buffer, position: number): Promise<void> => {
      const range = left.find((r) => r.start === position && r.start <= r.end);
      if (!range || position + chunk.length > range.end + 1) throw new Error(`internal: bytes at ${position} were not asked for`);
      await opts.onData(chunk, position);
      range.start += chunk.length;
    };
    return withRetries(
      what,
      async (): Promise<RangesAnswer> => {
        opts.signal?.throwIfAborted();
        const asked = left.filter((r) => r.start <= r.end);
        if (asked.length === 0) return { ok: true };
        const deadline = options.deadline ? new Deadline(options.deadline) : null;
        const response = await get(url, { range: `bytes=${asked.map((r) => `${r.start}-${r.end}`).join(',')}`, 'if-range': ifRange }, [200, 206, 416], deadline);
        const several = asked.length > 1;
        if (response.statusCode !== 206) {
          // a 200 is the whole file: dropped at once, not read (dump closes the connection of a large body)
          await response.body.dump();
          if (response.statusCode === 200 && !sameFile(expect, validatorsOf(response, null))) return { ...changed, reason: 'the WAR changed on the server meanwhile (If-Range no longer matched: HTTP 200)' };
          const answer = response.statusCode === 200 ? 'HTTP 200 and the whole file (not read)' : `HTTP ${response.statusCode}`;
          return { ok: false, fallback: 'single', reason: `the server answered a request for ${asked.length} ranges with ${answer}` };
        }
        if (!sameFile(expect, validatorsOf(response, total))) {
          await response.body.dump();
          return changed;
        }
        const contentType = header(response.headers['content-type']) ?? undefined;
        const single = isByteranges(contentType) ? null : parsePartRange(header(response.headers['content-range']));
        if (!isByteranges(contentType) && (several || !single || single.start !== asked[0]!.start || single.end !== asked[0]!.end || single.total !== total)) {
          await response.body.dump();
          if (single && single.total !== total) return changed;
          return { ok: false, fallback: 'single', reason: `the server answered a request for ${asked.length} range${several ? 's' : ''} with one part (Content-Range: ${header(response.headers['content-range']) ?? 'none'})` };
        }
        const outcome: Awaited<ReturnType<typeof readByteranges>> = await readAnswer(response.body, what, opts.signal, deliver, async (onData) => {
          if (!single) return readByteranges(response.body, { contentType: contentType!, total, accept: (r) => asked.some((a) => a.start === r.start && a.end === r.end), onData });
          let next = single.start;
          for await (const chunk of response.body) {
            await onData(chunk, next);
            next += chunk.length;
          }
          return next === single.end + 1 ? { ok: true } : { ok: false, reason: 'ended early', truncated: true };
        });
        // every asked byte is here (whatever the parser made of the closing boundary)
        if (left.every((r) => r.start > r.end)) return { ok: true };
        if (!outcome.ok && outcome.truncated) {
          throw markTransient(new DownloadError(`${what} ended early (${left.filter((r) => r.start <= r.end).length} ranges not complete).`, { hint: 'Run the command again: it continues where it stopped.' }));
        }
        if (!outcome.ok) {
          response.body.destroy();
          return { ok: false, fallback: outcome.changed ? 'full' : 'single', reason: outcome.reason };
        }
        const missing = left.filter((r) => r.start <= r.end).length;
        return { ok: false, fallback: 'single', reason: `the server's multipart answer lacks ${missing} of the ${asked.length} asked ranges` };
      },
      opts.signal,
    );
  }

  async function download(url: string, dest: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
    let validators: Validators | null = opts.resume ?? null;
    let transferred = 0;
    let attempts = 0;
    let resumedFrom: number | null = null;

    /** Starts `dest` afresh: validators from this 200 response, an empty file. */
    async function fresh(response: TransportResponse): Promise<{ from: number; total: number | null }> {
      validators = validatorsOf(response, null);
      await opts.onValidators?.(validators);
      opts.onRestart?.();
      await truncate(dest, 0).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      return { from: 0, total: validators.total };
    }

    const attempt = async (): Promise<DownloadResult> => {
      opts.signal?.throwIfAborted();
      attempts++;
      let have = await fileSize(dest);
      const ifRange = validators ? ifRangeValue(validators) : null;
      if (have > 0 && !ifRange) have = 0; // nothing proves the partial is the same file: start again
      if (validators?.total !== null && validators?.total !== undefined && have > validators.total) have = 0;
      // a command run by hand: each attempt must get its answer within the deadline (the transfer is not cut off)
      const deadline = options.deadline ? new Deadline(options.deadline) : null;
      let response = await get(url, have > 0 ? { range: `bytes=${have}-`, 'if-range': ifRange! } : {}, have > 0 ? [200, 206, 416] : [200], deadline);
      let start: { from: number; total: number | null };
      if (response.statusCode === 416) {
        // If-Range matched (same file) and nothing is left to send: the partial file is complete
        await response.body.dump();
        const total = contentRangeTotal(response.headers['content-range']);
        if (total === have) {
          resumedFrom ??= have;
          opts.onWritten?.(have);
          const sha256 = await hashFile(dest);
          return { bytes: have, sha256, resumedFrom, transferred, attempts, validators: validators! };
        }
        response = await get(url, {}, [200], deadline);
        start = await fresh(response);
      } else if (response.statusCode === 206) {
        const range = parseContentRange(response.headers['content-range']);
        const now = validatorsOf(response, range?.total ?? null);
        if (!range || range.start !== have || !sameFile(validators!, now)) {
          // a 206 that does not continue our file exactly (or the file changed): never stitch, start again
          await response.body.dump();
          response = await get(url, {}, [200], deadline);
          start = await fresh(response);
        } else {
          start = { from: have, total: range.total };
        }
      } else {
        start = await fresh(response);
      }
      resumedFrom ??= start.from;

      const hash = createHash('sha256');
      if (start.from > 0) opts.onWritten?.(start.from);
      if (start.from > 0) await hashFileInto(hash, dest, start.from);
      const total = start.total;
      const started = Date.now();
      let received = start.from;
      let lastReport = 0;
      // each chunk is hashed, counted and reported as it arrives ('data'), and piped to the (batching)
      // file writer, which pauses the response while the disk is behind; unlike an async iterator,
      // this never concatenates buffered chunks into new buffers (garbage that showed as peak RSS)
      const sink = new FileSink(dest, start.from > 0 ? 'a' : 'w', start.from, opts.onWritten);
      const body = response.body as TransportResponse['body'] & Readable;
      const stop = () => body.destroy(opts.signal!.reason as Error);
      opts.signal?.addEventListener('abort', stop, { once: true });
      if (opts.signal?.aborted) stop();
      try {
        body.on('data', (chunk: Buffer) => {
          received += chunk.length;
          transferred += chunk.length;
          hash.update(chunk);
          const now = Date.now();
          if (opts.onProgress && now - lastReport >= 250) {
            lastReport = now;
            const rate = (received - start.from) / Math.max((now - started) / 1000, 0.001);
            opts.onProgress({ received, total, bytesPerSecond: rate, etaSeconds: total && rate > 0 ? (total - received) / rate : null });
          }
        });
        await pipeline(body, sink);
      } catch (error) {
        // pipeline has destroyed the response and the file writer
        if (opts.signal?.aborted) throw opts.signal.reason;
        // a full or read-only disk is not a network problem: it keeps its own code (see asLettoError)
        if (LOCAL_WRITE_ERRORS.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
        throw networkError(`Download of ${redact(url)} broke off after ${received} bytes: ${describeNetworkError(error)}.`, error, 'Nothing was installed. Run the command again: it continues where it stopped.');
      } finally {
        opts.signal?.removeEventListener('abort', stop);
      }
      if (total !== null && received < total) {
        throw markTransient(new DownloadError(`Download of ${redact(url)} is incomplete: ${received} of ${total} bytes.`, { hint: 'Nothing was installed. Run the command again: it continues where it stopped.' }));
      }
      if (total !== null && received > total) {
        throw new DownloadError(`Download of ${redact(url)} is longer than announced: ${received} of ${total} bytes.`, { hint: 'Nothing was installed. Run the command again.' });
      }
      return { bytes: received, sha256: hash.digest('hex'), resumedFrom, transferred, attempts, validators: validators! };
    };
    return withRetries(`Download of ${redact(url)}`, attempt, opts.signal);
  }

  return {
    getText: async (url) => (await readText(url, false))!,
    getOptionalText: (url) => readText(url, true),
    download,
    readRange,
    readRanges,

    async size(url) {
      const deadline = options.deadline ? new Deadline(options.deadline) : null;
      return withRetries(`Asking ${redact(url)} for its size`, async () => {
        const response = await get(url, {}, [200], deadline, 'HEAD');
        await response.body.dump();
        const length = header(response.headers['content-length']);
        return length && /^\d+$/.test(length) ? Number(length) : null;
      }, undefined, deadline);
    },

    async probe(url, timeoutSeconds) {
      // a proxy is only used for other hosts; without one, node:http(s) (undici stays unloaded)
      if (probesDirectly(url, env, isLoopbackHost)) {
        const loopback = isLoopbackHost(new URL(url).hostname);
        return probeUrl(url, timeoutSeconds, { verify: !loopback, ...(ca && !loopback ? { ca } : {}) });
      }
      let parts: UndiciParts;
      try {
        parts = await undici();
      } catch (error) {
        return { ok: false, error: describeNetworkError(error), ms: 0 };
      }
      // timed from here: loading undici is not part of the answer time
      const started = performance.now();
      try {
        const response = await parts.request(url, {
          method: 'GET',
          dispatcher: parts.agent,
          signal: AbortSignal.timeout(timeoutSeconds * 1000),
          headers: { 'user-agent': 'letto-update health check' },
        });
        await response.body.dump();
        return { ok: true, status: response.statusCode, ms: Math.round(performance.now() - started) };
      } catch (error) {
        return { ok: false, error: describeNetworkError(error), ms: Math.round(performance.now() - started) };
      }
    },

    async close() {
      direct?.close();
      if (undiciParts) {
        await (await undiciParts).agent.close();
      }
    },
  };
}

interface UndiciParts {
  request: typeof import('undici').request;
  /** Dispatcher for the download server (through the proxy when one is configured). */
  agent: Dispatcher;
  send: Transport;
}

/** Loads undici (only when a proxy is configured) and builds its dispatcher. */
async function loadUndici(env: NodeJS.ProcessEnv, connect: { timeout: number; ca?: string[] }, idle: number): Promise<UndiciParts> {
  const undici = await importUndici();
  const agent = createAgent(undici, env, connect, idle);
  const send: Transport = async (url, headers, signal, method = 'GET') => {
    // the deadline ends the wait for the headers only: a controller of our own, cut loose once they are here
    const controller = new AbortController();
    const forward = () => controller.abort(signal!.reason);
    signal?.addEventListener('abort', forward, { once: true });
    if (signal?.aborted) forward();
    try {
      const response = await undici.request(url, { method, headers, dispatcher: agent, signal: controller.signal });
      return { statusCode: response.statusCode, headers: response.headers as TransportResponse['headers'], body: response.body };
    } catch (error) {
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      signal?.removeEventListener('abort', forward);
    }
  };
  return { request: undici.request, agent, send };
}

/**
 * The undici dispatcher for the download server: a plain Agent, or EnvHttpProxyAgent when
 * HTTPS_PROXY/HTTP_PROXY (or the lower-case forms) are set; it honours NO_PROXY like curl and wget.
 * Our CA and connect timeout apply to the origin's TLS through the proxy tunnel too.
 */
function createAgent(undici: typeof import('undici'), env: NodeJS.ProcessEnv, connect: { timeout: number; ca?: string[] }, idle: number): Dispatcher {
  const { Agent, EnvHttpProxyAgent, Pool } = undici;
  const httpsProxy = env.HTTPS_PROXY ?? env.https_proxy;
  const httpProxy = env.HTTP_PROXY ?? env.http_proxy;
  const common = { connect, headersTimeout: idle, bodyTimeout: idle };
  if (!httpsProxy && !httpProxy) return new Agent(common);
  const noProxy = env.NO_PROXY ?? env.no_proxy;
  // requestTls (the origin's TLS inside the tunnel) is passed on to undici's ProxyAgent, though not in its types.
  // The tunnel is part of connecting: the TCP connection to the proxy (proxyTls) and the proxy's answer
  // to CONNECT (the proxy client's headersTimeout) get connect_timeout too; undici's defaults (10 s and
  // 300 s) let a proxy that accepts and stays silent hold each attempt for 5 minutes.
  const proxyOptions = {
    ...common,
    requestTls: connect,
    proxyTls: { timeout: connect.timeout },
    clientFactory: (origin: URL, options: object) => new Pool(origin, { ...options, headersTimeout: connect.timeout }),
  } as ConstructorParameters<typeof EnvHttpProxyAgent>[0];
  // undici 6 prints an ExperimentalWarning when this class is first built; a nightly cron job would mail
  // it every night, so it is silenced for exactly this constructor call
  const emitWarning = process.emitWarning;
  process.emitWarning = () => undefined;
  try {
    return new EnvHttpProxyAgent({
      ...proxyOptions,
      ...(httpsProxy ? { httpsProxy } : {}),
      ...(httpProxy ? { httpProxy } : {}),
      ...(noProxy !== undefined ? { noProxy } : {}),
    });
  } finally {
    process.emitWarning = emitWarning;
  }
}

/**
 * A file writer that batches chunks (writev) and reports the bytes on disk after each write, so that
 * a verifier can follow the file while it grows. Buffers at most 1 MiB.
 */
class FileSink extends Writable {
  private handle: FileHandle | null = null;
  constructor(
    private readonly path: string,
    private readonly flags: 'a' | 'w',
    private position: number,
    private readonly onWritten?: (bytesOnDisk: number) => void,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.path, this.flags, 0o640).then((handle) => {
      this.handle = handle;
      callback();
    }, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll([chunk]).then(() => callback(), callback);
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    const total = buffers.reduce((sum, b) => sum + b.length, 0);
    let { bytesWritten } = await this.handle!.writev(buffers);
    if (bytesWritten < total) {
      // a short write (rare): write the rest
      const rest = Buffer.concat(buffers).subarray(bytesWritten);
      for (let at = 0; at < rest.length; ) {
        const { bytesWritten: n } = await this.handle!.write(rest, at, rest.length - at);
        at += n;
      }
      bytesWritten = total;
    }
    this.position += bytesWritten;
    this.onWritten?.(this.position);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.closeHandle().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.closeHandle().then(
      () => callback(error),
      () => callback(error),
    );
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** SHA-256 (hex) of a file on disk, streamed. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await hashFileInto(hash, path);
  return hash.digest('hex');
}

/** Feeds the file at `path` into `hash`: all of it, or its first `bytes` bytes. */
async function hashFileInto(hash: Hash, path: string, bytes?: number): Promise<void> {
  const range = bytes === undefined ? {} : { start: 0, end: bytes - 1 };
  for await (const chunk of createReadStream(path, { ...range, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}

function header(value: string | string[] | undefined): string | null {
  return typeof value === 'string' ? value : Array.isArray(value) ? (value[0] ?? null) : null;
}

function validatorsOf(response: TransportResponse, total: number | null): Validators {
  const etag = header(response.headers.etag);
  const length = header(response.headers['content-length']);
  return {
    etag,
    lastModified: header(response.headers['last-modified']),
    total: total ?? (length && /^\d+$/.test(length) ? Number(length) : null),
  };
}

/** `If-Range` needs a strong ETag or a date (RFC 9110 §13.1.5); null when there is neither. */
function ifRangeValue(v: Validators): string | null {
  if (v.etag && !v.etag.startsWith('W/')) return v.etag;
  return v.lastModified;
}

/** Whether a 206 answer is about the same file as the partial on disk. */
function sameFile(had: Validators, now: Validators): boolean {
  if (had.etag && now.etag && had.etag !== now.etag) return false;
  if (!had.etag && had.lastModified && now.lastModified && had.lastModified !== now.lastModified) return false;
  if (had.total !== null && now.total !== null && had.total !== now.total) return false;
  return true;
}

/** `bytes 100-199/1000` → {start: 100, total: 1000} (RFC 9110 §14.4); null if unusable. */
function parseContentRange(value: string | string[] | undefined): { start: number; total: number | null } | null {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(value) ?? '');
  if (!match) return null;
  return { start: Number(match[1]), total: match[3] === '*' ? null : Number(match[3]) };
}

/** `bytes 100-199/1000` → {start: 100, end: 199, total: 1000}; null if unusable. */
function parseContentRangeFull(value: string | string[] | undefined): { start: number; end: number; total: number | null } | null {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(value) ?? '');
  if (!match) return null;
  return { start: Number(match[1]), end: Number(match[2]), total: match[3] === '*' ? null : Number(match[3]) };
}

/** `bytes * /1000` of a 416 answer → 1000. */
function contentRangeTotal(value: string | string[] | undefined): number | null {
  const match = /^bytes \*\/(\d+)$/.exec(header(value) ?? '');
  return match ? Number(match[1]) : null;
}

/** Retry-After as seconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
function retryAfterSeconds(value: string | string[] | undefined): number | null {
  const text = header(value)?.trim();
  if (!text) return null;
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

/** Whether one of the `WWW-Authenticate` challenges is Basic (RFC 7617). */
function offersBasic(value: string | string[] | undefined): boolean {
  const values = Array.isArray(value) ? value : value ? [value] : [];
  return values.some((v) => /(?:^|,)\s*basic(?:\s|$)/i.test(v));
}

/** The Digest challenge among the `WWW-Authenticate` values, if any (RFC 7616 §3.3). */
function digestChallengeOf(value: string | string[] | undefined): string | null {
  const values = Array.isArray(value) ? value : value ? [value] : [];
  // Node joins several WWW-Authenticate headers with ", " (e.g. "Negotiate, Digest realm=…")
  for (const v of values) {
    const at = /(?:^|,)\s*digest\s+/i.exec(v);
    if (at) return v.slice(at.index + at[0].length);
  }
  return null;
}

function networkError(message: string, cause: unknown, hint: string): DownloadError {
  const error = new DownloadError(message, { hint, cause });
  const code = errorCode(cause);
  return code && TRANSIENT_CODES.has(code) ? markTransient(error) : error;
}

function errorCode(error: unknown): string | undefined {
  const err = error as { code?: string; cause?: { code?: string } };
  return err?.code ?? err?.cause?.code;
}

function statusError(status: number, url: string, retryAfter: number | null = null): DownloadError {
  if (status === 401 || status === 403) {
    return new DownloadError(`The download server refused the login (HTTP ${status}) for ${redact(url)}.`, {
      hint: 'Check server.user and the password (server.password_file or LETTO_UPDATE_PASSWORD).',
    });
  }
  if (status === 404) {
    return new DownloadError(`Not found on the download server (HTTP 404): ${redact(url)}.`, {
      hint: 'Check server.url and the channel or revision asked for (`letto-update list --remote` shows the archive).',
    });
  }
  const error = new DownloadError(`The download server answered HTTP ${status} for ${redact(url)}.`, {
    hint: 'The server may be down or busy; nothing was changed. Try again later.',
  });
  return TRANSIENT_STATUS.has(status) ? markTransient(error, retryAfter) : error;
}

/** Removes user:password from a URL before it appears in a message. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.href;
  } catch {
    return '(invalid URL)';
  }
}

function describeNetworkError(error: unknown): string {
  const err = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err.cause?.code ?? err.code;
  const message = err.cause?.message ?? err.message ?? String(error);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
