/**
 * The thin HTTP module: everything letto-update sends over the network goes through the
 * {@link HttpClient} made here. Its parts live in src/system/http/: the shapes (types.ts), one request
 * with redirects and authentication (request.ts, auth.ts), retries and errors (errors.ts), the whole
 * file with resume (download.ts), Range and multipart Range requests (ranges.ts), what an answer's
 * headers say about its file (validators.ts), and undici with a proxy (undici-transport.ts).
 */
import { rootCertificates } from 'node:tls';
import { isLoopbackHost } from './loopback.js';
import { DownloadError } from '../errors.js';
import { createNodeTransport, type Transport } from './node-transport.js';
import { probesDirectly, probeUrl, type ProbeResult } from './probe.js';
import { hasProxy } from './proxy.js';
import { download } from './http/download.js';
import { describeNetworkError, networkError, redact } from './http/errors.js';
import { readRange, readRanges } from './http/ranges.js';
import { createRequester, type Requester } from './http/request.js';
import type { HttpClient, HttpOptions } from './http/types.js';
import { loadUndici, type UndiciParts } from './http/undici-transport.js';
import { header } from './http/validators.js';

export type * from './http/types.js';
export { hashFile } from './files.js';
export { redact } from './http/errors.js';

const MAX_TEXT_BYTES = 4 * 1024 * 1024;

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
  const ca = options.extraCaPem ? [...rootCertificates, options.extraCaPem] : undefined;
  const env = options.env ?? process.env;
  const direct = hasProxy(env) ? null : createNodeTransport({ connectTimeout, idleTimeout: idle, ...(ca ? { ca } : {}) });
  let undiciParts: Promise<UndiciParts> | null = null;
  const undici = () => (undiciParts ??= loadUndici(env, { timeout: connectTimeout, ...(ca ? { ca } : {}) }, idle));
  const send: Transport = direct ? direct.send : async (url, headers, signal, method) => (await undici()).send(url, headers, signal, method);
  const http = createRequester(options, send, direct === null, env);
  return {
    getText: async (url) => (await readText(http, url, false))!,
    getOptionalText: (url) => readText(http, url, true),
    download: (url, dest, opts) => download(http, url, dest, opts),
    readRange: (url, range, opts) => readRange(http, url, range, opts),
    readRanges: (url, ranges, opts) => readRanges(http, url, ranges, opts),
    size: (url) => readSize(http, url),
    async probe(url, timeoutSeconds) {
      // a proxy is only used for other hosts; without one, node:http(s) (undici stays unloaded)
      if (probesDirectly(url, env, isLoopbackHost)) {
        const loopback = isLoopbackHost(new URL(url).hostname);
        return probeUrl(url, timeoutSeconds, { verify: !loopback, ...(ca && !loopback ? { ca } : {}) });
      }
      return probeThroughUndici(undici, url, timeoutSeconds);
    },
    async close() {
      direct?.close();
      if (undiciParts) await (await undiciParts).agent.close();
    },
  };
}

/** GET a small text file (at most 4 MiB); `optional`: null for 403, 404, 410. @throws DownloadError */
async function readText(http: Requester, url: string, optional: boolean): Promise<string | null> {
  const deadline = http.deadline();
  return http.retry(`Reading ${redact(url)}`, async () => {
    const response = await http.get(url, {}, optional ? [200, 403, 404, 410] : [200], deadline);
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

/** A HEAD of `url`: its Content-Length in bytes, or null. @throws DownloadError */
async function readSize(http: Requester, url: string): Promise<number | null> {
  const deadline = http.deadline();
  return http.retry(`Asking ${redact(url)} for its size`, async () => {
    const response = await http.get(url, {}, [200], deadline, 'HEAD');
    await response.body.dump();
    const length = header(response.headers['content-length']);
    return length && /^\d+$/.test(length) ? Number(length) : null;
  }, undefined, deadline);
}

/** One GET of a health URL through undici (a non-loopback host with a proxy configured); never throws. */
async function probeThroughUndici(undici: () => Promise<UndiciParts>, url: string, timeoutSeconds: number): Promise<ProbeResult> {
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
}
