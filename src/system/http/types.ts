/**
 * The shapes of the HTTP module (src/system/http.ts): what a caller passes and gets back. Units: bytes,
 * seconds unless a name says otherwise.
 */
import type { InclusiveRange } from '../byteranges.js';
import type { ProbeResult } from '../probe.js';

export type { InclusiveRange } from '../byteranges.js';
export type { ProbeResult } from '../probe.js';

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
