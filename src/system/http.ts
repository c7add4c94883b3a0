import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { isLoopbackHost } from '../config.js';
import { DownloadError } from '../errors.js';

/** Download credentials; sent only to the configured server's origin, never across a redirect to another host. */
export interface Credentials {
  user: string;
  password: string;
}

/** Progress of a download, emitted at most every 250 ms. Units: bytes, bytes per second, seconds. */
export interface DownloadProgress {
  received: number;
  total: number | null;
  bytesPerSecond: number;
  etaSeconds: number | null;
}

/** What {@link HttpClient.download} returns: the file length in bytes and its SHA-256 (hex). */
export interface DownloadResult {
  bytes: number;
  sha256: string;
}

/** A health probe's answer: the HTTP status and the time to the answer (ms), or the network error. */
export type ProbeResult = { ok: true; status: number; ms: number } | { ok: false; error: string; ms: number };

/** The thin HTTP module: everything letto-update sends over the network goes through here. */
export interface HttpClient {
  /** GET a small text file (revision file, archive listing); at most 4 MiB. @throws DownloadError */
  getText(url: string): Promise<string>;
  /** GET a file and stream it to `dest`, hashing on the way. @throws DownloadError */
  download(url: string, dest: string, onProgress?: (p: DownloadProgress) => void): Promise<DownloadResult>;
  /** One GET of a health URL; never throws. Certificates of loopback hosts are not verified. */
  probe(url: string, timeoutSeconds: number): Promise<ProbeResult>;
  close(): Promise<void>;
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
}

const MAX_REDIRECTS = 5;
const MAX_TEXT_BYTES = 4 * 1024 * 1024;
const LOCAL_WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM']);

/** Creates the undici-backed {@link HttpClient}. */
export function createHttpClient(options: HttpOptions): HttpClient {
  const connectTimeout = (options.connectTimeout ?? 30) * 1000;
  const idle = (options.idleTimeout ?? 60) * 1000;
  const ca = options.extraCaPem ? [...rootCertificates, options.extraCaPem] : undefined;
  const agent = new Agent({
    connect: { timeout: connectTimeout, ...(ca ? { ca } : {}) },
    headersTimeout: idle,
    bodyTimeout: idle,
  });
  const loopbackAgent = new Agent({
    connect: { timeout: connectTimeout, rejectUnauthorized: false },
    headersTimeout: idle,
    bodyTimeout: idle,
  });
  const serverOrigin = new URL(options.serverUrl).origin;

  /** GET with our redirect handling; resolves to a 200 response. */
  async function get(url: string): Promise<Dispatcher.ResponseData> {
    let current = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const target = new URL(current);
      const headers: Record<string, string> = { 'user-agent': 'letto-update' };
      if (options.credentials && target.origin === serverOrigin) {
        const token = Buffer.from(`${options.credentials.user}:${options.credentials.password}`).toString('base64');
        headers.authorization = `Basic ${token}`;
      }
      let response: Dispatcher.ResponseData;
      try {
        response = await request(current, { method: 'GET', headers, dispatcher: agent });
      } catch (error) {
        throw new DownloadError(`Cannot reach ${redact(current)}: ${describeNetworkError(error)}.`, {
          hint: 'Check the network, the server URL (server.url) and, for TLS errors, server.ca_file.',
          cause: error,
        });
      }
      const location = response.headers.location;
      if (response.statusCode >= 300 && response.statusCode < 400 && typeof location === 'string') {
        await response.body.dump();
        current = new URL(location, current).href;
        continue;
      }
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw statusError(response.statusCode, current);
      }
      return response;
    }
    throw new DownloadError(`Too many redirects from ${redact(url)}.`, { hint: 'Check server.url.' });
  }

  return {
    async getText(url) {
      const response = await get(url);
      const chunks: Buffer[] = [];
      let size = 0;
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
      return Buffer.concat(chunks).toString('utf8');
    },

    async download(url, dest, onProgress) {
      const response = await get(url);
      const lengthHeader = response.headers['content-length'];
      const total = typeof lengthHeader === 'string' && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
      const hash = createHash('sha256');
      const started = Date.now();
      let received = 0;
      let lastReport = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          received += chunk.length;
          hash.update(chunk);
          const now = Date.now();
          if (onProgress && now - lastReport >= 250) {
            lastReport = now;
            const rate = received / Math.max((now - started) / 1000, 0.001);
            onProgress({ received, total, bytesPerSecond: rate, etaSeconds: total ? (total - received) / rate : null });
          }
          callback(null, chunk);
        },
      });
      try {
        await pipeline(response.body, meter, createWriteStream(dest, { mode: 0o640 }));
      } catch (error) {
        // a full or read-only disk is not a network problem: it keeps its own code (see asLettoError)
        if (LOCAL_WRITE_ERRORS.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
        throw new DownloadError(`Download of ${redact(url)} broke off after ${received} bytes: ${describeNetworkError(error)}.`, {
          hint: 'Nothing was installed. Run the command again; check the network if it keeps failing.',
          cause: error,
        });
      }
      if (total !== null && received !== total) {
        throw new DownloadError(`Download of ${redact(url)} is incomplete: ${received} of ${total} bytes.`, {
          hint: 'Nothing was installed. Run the command again.',
        });
      }
      return { bytes: received, sha256: hash.digest('hex') };
    },

    async probe(url, timeoutSeconds) {
      const started = performance.now();
      const loopback = isLoopbackHost(new URL(url).hostname);
      try {
        const response = await request(url, {
          method: 'GET',
          dispatcher: loopback ? loopbackAgent : agent,
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
      await Promise.all([agent.close(), loopbackAgent.close()]);
    },
  };
}

function statusError(status: number, url: string): DownloadError {
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
  return new DownloadError(`The download server answered HTTP ${status} for ${redact(url)}.`, {
    hint: 'The server may be down or busy; nothing was changed. Try again later.',
  });
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
