/**
 * GET requests over Node's built-in `node:http`/`node:https` (native llhttp parser), used for the
 * download server whenever no proxy is configured. Compared with undici (whose HTTP parser is
 * WebAssembly), reading a 256 MiB body costs 0.95 s of CPU instead of 1.2–1.35 s and peaks at 68–77 MiB
 * RSS instead of 92–114 MiB; the whole `download` about 16 % less CPU and 13 MiB less peak RSS on the
 * benchmark machine (docs/performance.md). undici is then not loaded at all.
 *
 * Behaviour kept from the undici transport: TLS always verified (Node's bundled CAs plus `ca`), a connect
 * timeout and an idle timeout (no byte from the server for `idle` ms, while waiting for the headers or the
 * body), keep-alive between the small requests and the WAR. Redirects and authentication stay with the
 * caller (`src/system/http.ts`).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';

/** A response whose body is being received. Units: bytes. */
export interface TransportResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The body, chunk by chunk; `dump()` discards the rest of it (and, when it may be large, the connection). */
  body: AsyncIterable<Buffer> & { dump(): Promise<void>; destroy(error?: Error): void };
}

/**
 * Sends one GET; rejects with an error carrying a Node/OS `code` (ECONNREFUSED, ETIMEDOUT…) on failure.
 * `method` is GET unless HEAD is asked for (a HEAD answer has no body). `signal` ends the request while it waits for the response headers (rejecting with `signal.reason`);
 * once the response is handed over, the body is not affected by it.
 */
export type Transport = (url: string, headers: Record<string, string>, signal?: AbortSignal, method?: 'GET' | 'HEAD') => Promise<TransportResponse>;

/** Options of {@link createNodeTransport}. Units: milliseconds. */
export interface NodeTransportOptions {
  connectTimeout: number;
  idleTimeout: number;
  /** CA certificates (PEM) replacing Node's default list; undefined: Node's bundled CAs. */
  ca?: string[];
}

/** A body larger than this is not read to the end to reuse the connection; the connection is closed instead. */
const DUMP_LIMIT = 128 * 1024;

/** Creates a {@link Transport} over `node:https` (and `node:http` for plain http URLs: loopback, or any host with `server.allow_plain_http`), with its own keep-alive agents. */
export function createNodeTransport(options: NodeTransportOptions): { send: Transport; close(): void } {
  // one TLS context for every connection: given `ca` instead, each new connection parses the whole CA list
  // again (~0.1 s each) and each request serialises it into the agent's key (measured: 0.6 s of CPU for
  // the delta download's four connections and 40 requests, docs/performance.md)
  const secureContext = options.ca ? createSecureContext({ ca: options.ca }) : undefined;
  const https = new HttpsAgent({ keepAlive: true, maxSockets: 4, ...(secureContext ? { secureContext } : {}) });
  const http = new HttpAgent({ keepAlive: true, maxSockets: 4 });

  const send: Transport = (url, headers, signal, method = 'GET') =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const target = new URL(url);
      const secure = target.protocol === 'https:';
      const request = (secure ? httpsRequest : httpRequest)(target, { method, headers, agent: secure ? https : http });
      let response: IncomingMessage | null = null;
      let connected = false;
      let socket: Socket | null = null;
      const onTimeout = () => {
        const error = connected
          ? Object.assign(new Error(`no data from the server for ${options.idleTimeout / 1000} s`), { code: 'ETIMEDOUT' })
          : Object.assign(new Error(`connect timeout (${options.connectTimeout / 1000} s)`), { code: 'UND_ERR_CONNECT_TIMEOUT' });
        if (response) response.destroy(error);
        request.destroy(error);
      };
      let connectTimer: NodeJS.Timeout | undefined;
      const release = () => {
        clearTimeout(connectTimer);
        socket?.removeListener('timeout', onTimeout);
      };
      request.on('socket', (s: Socket) => {
        socket = s;
        s.on('timeout', onTimeout);
        // connecting (TCP, then TLS) gets connectTimeout; once connected, silence gets idleTimeout
        const idle = () => {
          connected = true;
          clearTimeout(connectTimer);
          s.setTimeout(options.idleTimeout);
        };
        if (s.connecting) {
          // a timer of its own, not s.setTimeout: a socket's inactivity timeout is postponed once while
          // written data (our request, queued until the handshake is done) is pending, which made the
          // connect timeout twice as long as configured
          connectTimer = setTimeout(onTimeout, options.connectTimeout);
          s.once(secure ? 'secureConnect' : 'connect', idle);
        } else {
          idle(); // a kept-alive connection
        }
      });
      request.on('close', () => {
        clearTimeout(connectTimer);
        if (!response) release();
      });
      const onAbort = () => request.destroy(signal!.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      });
      request.on('response', (r: IncomingMessage) => {
        signal?.removeEventListener('abort', onAbort);
        response = r;
        r.once('close', release);
        resolve({ statusCode: r.statusCode ?? 0, headers: r.headers, body: bodyOf(r) });
      });
      request.end();
    });

  return {
    send,
    close() {
      https.destroy();
      http.destroy();
    },
  };
}

function bodyOf(response: IncomingMessage): TransportResponse['body'] {
  // an error after the body was handed over (idle timeout, reset) surfaces in the reader's loop
  const body = response as IncomingMessage & TransportResponse['body'];
  body.dump = async () => {
    const length = Number(response.headers['content-length'] ?? NaN);
    if (!(length <= DUMP_LIMIT)) {
      response.destroy();
      return;
    }
    response.resume();
    await new Promise<void>((resolve) => {
      response.once('end', resolve);
      response.once('close', resolve);
      response.once('error', () => resolve());
    });
  };
  return body;
}
