/**
 * What went wrong with a request, in words for the admin, and whether another attempt may cure it:
 * transient marks, the retry loop (p-retry, bounded exponential backoff with jitter, `Retry-After`
 * honoured) and the deadline of a command run by hand.
 */
import pRetry from 'p-retry';
import { DownloadError } from '../../errors.js';
import type { HttpOptions, RetryPolicy } from './types.js';
import { header } from './validators.js';

/** A point in time by which an answer must have arrived (see {@link HttpOptions.deadline}). */
export class Deadline {
  private readonly ends: number;
  constructor(readonly seconds: number) {
    this.ends = performance.now() + seconds * 1000;
  }
  /** A new deadline of `options.deadline` seconds, or null when the options set none (the nightly run). */
  static of(options: HttpOptions): Deadline | null {
    return options.deadline ? new Deadline(options.deadline) : null;
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

/** The retry policy when the options set none: 5 more attempts, waits from 2 s doubling up to 60 s. */
export const DEFAULT_RETRY: RetryPolicy = { retries: 5, wait: 2, maxWait: 60 };

/** Errors that another attempt may cure, with the server's `Retry-After` (seconds) when it sent one. */
const transient = new WeakMap<Error, { retryAfter: number | null }>();

/** Marks `error` as one another attempt may cure; returns it. */
export function markTransient<E extends Error>(error: E, retryAfter: number | null = null): E {
  transient.set(error, { retryAfter });
  return error;
}

/**
 * Runs `attempt` with bounded exponential backoff and jitter while it fails transiently (p-retry);
 * `onRetry` is told each failed attempt that will be retried. Within a `deadline` there is no retry
 * and no wait beyond it. @throws the last attempt's error.
 */
export function withRetries<T>(
  policy: RetryPolicy,
  onRetry: ((message: string) => void) | undefined,
  what: string,
  attempt: (n: number) => Promise<T>,
  signal?: AbortSignal,
  deadline: Deadline | null = null,
): Promise<T> {
  return pRetry(attempt, {
    ...(signal ? { signal } : {}),
    ...(deadline ? { maxRetryTime: deadline.remaining() } : {}),
    retries: policy.retries,
    factor: 2,
    minTimeout: policy.wait * 1000,
    maxTimeout: policy.maxWait * 1000,
    randomize: true,
    shouldRetry: async ({ error, attemptNumber, retriesLeft }) => {
      const mark = transient.get(error);
      if (!mark || deadline?.expired()) return false;
      onRetry?.(`${what}: attempt ${attemptNumber} failed (${error.message}); ${retriesLeft} more to go.`);
      // Retry-After (RFC 9110 §10.2.3) is honoured up to maxWait, on top of the backoff
      if (mark.retryAfter) await sleep(Math.min(mark.retryAfter * 1000, policy.maxWait * 1000, deadline ? deadline.remaining() : Infinity));
      return true;
    },
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Retry-After as seconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterSeconds(value: string | string[] | undefined): number | null {
  const text = header(value)?.trim();
  if (!text) return null;
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

/** A DownloadError for a network failure, transient when its code is one worth another attempt. */
export function networkError(message: string, cause: unknown, hint: string): DownloadError {
  const error = new DownloadError(message, { hint, cause });
  const code = errorCode(cause);
  return code && TRANSIENT_CODES.has(code) ? markTransient(error) : error;
}

/** The code of an error or of its cause (`ECONNRESET`, `UND_ERR_…`). */
export function errorCode(error: unknown): string | undefined {
  const err = error as { code?: string; cause?: { code?: string } };
  return err?.code ?? err?.cause?.code;
}

/** The DownloadError for an HTTP status we did not accept: 401/403 login, 404, else the server (transient for 5xx/408/429). */
export function statusError(status: number, url: string, retryAfter: number | null = null): DownloadError {
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

/** One line for a network error: its message, with its code when the message does not name it. */
export function describeNetworkError(error: unknown): string {
  const err = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err.cause?.code ?? err.code;
  const message = err.cause?.message ?? err.message ?? String(error);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
