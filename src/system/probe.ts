/**
 * The health probe over Node's built-in `node:http`/`node:https`: one GET of LeTTo's health page
 * (`tomee.health_url`), timed from sending the request to the end of the answer. Used by `health`, the
 * watchdog and the health check after a swap whenever no proxy stands between us and the URL, so that
 * neither undici's load time (~0.1 s) nor its memory falls on a monitoring plugin run every minute
 * (node:https, and with it TLS, is loaded only for an https URL).
 */
import type { IncomingMessage } from 'node:http';

/** A health probe's answer: the HTTP status and the time to the answer (ms), or the network error. */
export type ProbeResult = { ok: true; status: number; ms: number } | { ok: false; error: string; ms: number };

/** Options of {@link probeUrl}. */
export interface ProbeOptions {
  /** Verify the TLS certificate (false for loopback hosts: a local TomEE has a self-signed one). */
  verify: boolean;
  /** CA certificates (PEM) replacing Node's bundled ones; undefined: Node's bundled CAs. */
  ca?: string[];
}

/**
 * One GET of `url`; never throws. `ms` runs from sending the request (the connection included) to the
 * last byte of the answer, which is read and discarded (at most what arrives within the timeout).
 * @param timeoutSeconds no complete answer within this: `{ ok: false }` with an error that says "timeout".
 */
export async function probeUrl(url: string, timeoutSeconds: number, options: ProbeOptions): Promise<ProbeResult> {
  let target: URL;
  try {
    target = new URL(url);
  } catch (error) {
    return { ok: false, error: (error as Error).message, ms: 0 };
  }
  const secure = target.protocol === 'https:';
  const { request: send } = secure ? await import('node:https') : await import('node:http');
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise<ProbeResult>((resolve) => {
    let answer: IncomingMessage | null = null;
    const timeout = setTimeout(() => {
      const error = Object.assign(new Error(`timeout: no complete answer within ${timeoutSeconds} s`), { code: 'ETIMEDOUT' });
      answer?.destroy(error);
      request.destroy(error);
    }, timeoutSeconds * 1000);
    const fail = (error: NodeJS.ErrnoException) => {
      clearTimeout(timeout);
      const message = error.message || String(error);
      resolve({ ok: false, error: error.code && !message.includes(error.code) ? `${message} (${error.code})` : message, ms: elapsed() });
    };
    const request = send(target, {
      method: 'GET',
      agent: false,
      headers: { 'user-agent': 'letto-update health check', connection: 'close' },
      ...(secure ? { rejectUnauthorized: options.verify, ...(options.ca ? { ca: options.ca } : {}) } : {}),
    });
    request.on('error', fail);
    request.on('response', (response: IncomingMessage) => {
      answer = response;
      response.on('error', fail);
      response.on('end', () => {
        clearTimeout(timeout);
        resolve({ ok: true, status: response.statusCode ?? 0, ms: elapsed() });
      });
      response.resume();
    });
    request.end();
  });
}

/** Whether a probe of `url` goes directly (node:http(s)): always to loopback, to other hosts when no proxy is set. */
export function probesDirectly(url: string, env: NodeJS.ProcessEnv, isLoopback: (hostname: string) => boolean): boolean {
  return isLoopback(new URL(url).hostname) || !(env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy);
}
