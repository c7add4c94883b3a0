/**
 * A real HTTP(S) server on 127.0.0.1 that behaves like https://letto.at/download/letto/ :
 * static files under `/download/letto/`, Apache-autoindex-like directory listings, optional HTTP
 * Basic auth, optional TLS with a self-signed certificate, and a hook for fault injection.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join, relative, resolve, isAbsolute, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { generate } from 'selfsigned';
import { buildWar } from '../../fixtures/build-war.js';

/** URL path prefix under which `root` is served (same as letto.at). */
export const DOWNLOAD_PREFIX = '/download/letto/';
/** Realm sent in `WWW-Authenticate` when auth is required. */
export const AUTH_REALM = 'LeTTo Download';

/** One request as the server saw it, recorded before any handling (also for hook-handled requests). */
export interface RecordedRequest {
  /** HTTP method, e.g. `GET`, `HEAD`. */
  method: string;
  /** Raw request target as sent, including any query string, e.g. `/download/letto/archiv/?C=N;O=D`. */
  path: string;
  /** `true` if auth is not required or the request carried the right Basic credentials. */
  authorized: boolean;
  /** Request headers (lower-case names), as Node parsed them. */
  headers: Record<string, string | string[] | undefined>;
  /** Bytes of file body the server wrote for this request (0 for listings, errors, HEAD). */
  bodyBytes: number;
  /** HTTP status the server answered with (0 until it answered, or when the hook answered). */
  status: number;
}

/**
 * A fault the server injects into the next GET of a file whose URL path ends with `match`
 * (default `.war`); each fault is used once, in order. Kinds:
 * - `status`: answer with this HTTP status (and `Retry-After` when given) instead of the file;
 * - `drop`: send the headers and the first `after` bytes of the answer's body, then close the connection;
 * - `stall`: send the headers and the first `after` bytes, then keep the connection open without sending more;
 * - `ignore-range`: answer 200 with the whole file although the request asked for a Range;
 * - `ignore-if-range`: honour `Range` even when `If-Range` no longer matches (a broken server);
 * - `single-part`: answer a request for several ranges with one 206 part from the first range's start
 *   to the last one's end (a server that merges ranges);
 * - `bad-part`: answer a request for several ranges with a multipart answer whose second part names
 *   other bytes than it holds (an answer that cannot be read).
 */
export type Fault = { match?: string } & (
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'drop'; after: number }
  | { kind: 'stall'; after: number }
  | { kind: 'ignore-range' }
  | { kind: 'ignore-if-range' }
  | { kind: 'single-part' }
  | { kind: 'bad-part' }
);

/** Fault-injection hook: return `true` (or a promise of it) if it has handled (answered) the request. */
export type RequestHook = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

/** Options for {@link startDownloadServer}. */
export interface DownloadServerOptions {
  /** Directory whose contents are served under `/download/letto/`. */
  root: string;
  /**
   * IPv4 address to listen on, also the host of {@link DownloadServer.url}. Default `127.0.0.1`; another
   * address of this machine (see {@link nonLoopbackAddress}) makes a server that is not on loopback.
   */
  host?: string;
  /** Serve HTTPS with a cached self-signed cert for 127.0.0.1/localhost. Default: `false` (HTTP). */
  tls?: boolean;
  /** Basic-auth user. If `user` or `password` is set, every request needs Basic auth. */
  user?: string;
  /** Basic-auth password (see `user`). */
  password?: string;
  /** Authentication scheme demanded when `user`/`password` are set. Default `basic`. */
  auth?: 'basic' | 'digest';
  /** With `auth: 'digest'`: the `algorithm` (default `MD5`) and the offered `qop` list (default `auth`) of the challenge. */
  digest?: { algorithm?: string; qop?: string; /** Another challenge sent before Digest's, in a WWW-Authenticate header of its own (e.g. `Negotiate`). */ alsoOffer?: string };
  /**
   * Called for every request after it is recorded and before anything else (auth included).
   * Return `true` if the hook answered the request itself (e.g. a 500 or an HTML error page).
   */
  onRequest?: RequestHook;
  /**
   * Sends file bodies no faster than this many bytes per second (for the benchmark's line-speed
   * scenario, e.g. 125e6 for 1 Gbit/s). Default: as fast as the machine can.
   */
  rate?: number;
  /**
   * Most ranges answered in one multipart/byteranges answer; a request for more gets the whole file
   * with 200, as Apache's `MaxRanges`. Default 200 (Apache's default); 0 answers every request for
   * several ranges with 200.
   */
  maxRanges?: number;
}

/** A running download server; see {@link startDownloadServer}. */
export interface DownloadServer {
  /** Base URL ending in `/`, e.g. `https://127.0.0.1:PORT/download/letto/`. */
  url: string;
  /** PEM of the self-signed certificate (use as CA / `server.ca_file`); `''` when `tls` is off. */
  caPem: string;
  /** Every request received, in arrival order. Tests may clear it with `requests.length = 0`. */
  requests: RecordedRequest[];
  /** Faults to inject, consumed in order (see {@link Fault}); tests push onto it. */
  faults: Fault[];
  /** Sum of {@link RecordedRequest.bodyBytes} over `requests`. */
  bodyBytes(): number;
  /** Stops listening and drops all open connections (including ones mid-download). */
  close(): Promise<void>;
}

interface CertPair {
  key: string;
  cert: string;
}

let certPromise: Promise<CertPair> | undefined;

/**
 * Returns the module-wide self-signed certificate for `127.0.0.1` and `localhost`
 * (generated once per process, RSA 2048, SHA-256, valid from yesterday for 10 years).
 *
 * @returns PEM strings: `key` (PKCS#8 private key) and `cert` (X.509 certificate).
 */
export function getTestCertificate(): Promise<CertPair> {
  certPromise ??= (async () => {
    const notBeforeDate = new Date(Date.now() - 24 * 3600 * 1000);
    const notAfterDate = new Date(notBeforeDate.getTime() + 10 * 365 * 24 * 3600 * 1000);
    const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'rsa',
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate,
      notAfterDate,
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 7, ip: '127.0.0.1' },
            { type: 2, value: 'localhost' },
          ],
        },
      ],
    });
    return { key: pems.private, cert: pems.cert };
  })();
  certPromise.catch(() => {
    certPromise = undefined;
  });
  return certPromise;
}

function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function errorPage(res: ServerResponse, method: string, status: number, title: string, message: string, extraHeaders: Record<string, string> = {}, alsoOffer?: string): void {
  const body =
    `<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>${status} ${escapeHtml(title)}</title>\n` +
    `</head><body>\n<h1>${escapeHtml(title)}</h1>\n<p>${message}</p>\n<hr>\n` +
    `<address>Apache/2.4.52 (Ubuntu) Server at letto.at Port 443</address>\n</body></html>\n`;
  const buf = Buffer.from(body, 'utf8');
  const headers: Record<string, string | string[]> = {
    'Content-Type': 'text/html; charset=iso-8859-1',
    'Content-Length': String(buf.length),
    ...extraHeaders,
  };
  if (alsoOffer && headers['WWW-Authenticate']) headers['WWW-Authenticate'] = [alsoOffer, headers['WWW-Authenticate'] as string];
  res.writeHead(status, headers);
  res.end(method === 'HEAD' ? undefined : buf);
}

function checkBasicAuth(header: string | undefined, user: string, password: string): boolean {
  if (header === undefined) return false;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (m?.[1] === undefined) return false;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  return decoded === `${user}:${password}`;
}

/** Decodes the path segments of `rawPath`; returns `null` for traversal or malformed paths. */
function decodeSegments(rawPath: string): string[] | null {
  const out: string[] = [];
  for (const seg of rawPath.split('/')) {
    let d: string;
    try {
      d = decodeURIComponent(seg);
    } catch {
      return null;
    }
    if (d === '..' || d === '.' || d.includes('/') || d.includes('\\') || d.includes('\0')) return null;
    out.push(d);
  }
  return out;
}

function contentType(name: string): string {
  const lower = name.toLowerCase();
  if (lower.endsWith('.war') || lower.endsWith('.jar')) return 'application/java-archive';
  if (lower.endsWith('.txt')) return 'text/plain';
  if (lower.endsWith('.html') || lower.endsWith('.htm')) return 'text/html';
  if (lower.endsWith('.sh')) return 'application/x-sh';
  return 'application/octet-stream';
}

/** Apache-style ETag: `"<size hex>-<mtime µs hex>"`. */
function etagOf(st: Stats): string {
  return `"${st.size.toString(16)}-${Math.floor(st.mtimeMs * 1000).toString(16)}"`;
}

function humanSize(bytes: number): string {
  if (bytes < 1024) return String(bytes);
  const units = ['K', 'M', 'G', 'T'];
  let v = bytes;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const s = v < 9.95 ? v.toFixed(1) : String(Math.round(v));
  return `${s}${units[u] ?? ''}`;
}

function apacheDate(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
}

interface ListingEntry {
  name: string;
  isDir: boolean;
  size: number;
  mtime: Date;
}

async function renderListing(dirPath: string, urlPath: string, query: string): Promise<string> {
  const names = await readdir(dirPath);
  const entries: ListingEntry[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    try {
      const st = await stat(join(dirPath, name));
      entries.push({ name, isDir: st.isDirectory(), size: st.size, mtime: st.mtime });
    } catch {
      // vanished between readdir and stat
    }
  }
  // Apache's sort query: C=N|M|S|D, O=A|D (separated by ';' or '&').
  const params = new Map<string, string>();
  for (const part of query.split(/[;&]/)) {
    const [k, v] = part.split('=');
    if (k !== undefined && v !== undefined) params.set(k, v);
  }
  const col = params.get('C') ?? 'N';
  const order = params.get('O') ?? 'A';
  const cmp = (a: ListingEntry, b: ListingEntry): number => {
    if (col === 'M') return a.mtime.getTime() - b.mtime.getTime() || a.name.localeCompare(b.name);
    if (col === 'S') return a.size - b.size || a.name.localeCompare(b.name);
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  };
  entries.sort((a, b) => (order === 'D' ? -cmp(a, b) : cmp(a, b)));

  const nextOrder = (c: string): string => (c === col && order === 'A' ? 'D' : 'A');
  const title = `Index of ${escapeHtml(urlPath.replace(/\/$/, '') || '/')}`;
  const parent = urlPath.replace(/[^/]+\/$/, '');
  const rows = entries
    .map((e) => {
      const display = e.isDir ? `${e.name}/` : e.name;
      const href = encodeURIComponent(e.name) + (e.isDir ? '/' : '');
      const icon = e.isDir
        ? '<img src="/icons/folder.gif" alt="[DIR]">'
        : '<img src="/icons/unknown.gif" alt="[   ]">';
      const size = e.isDir ? '  - ' : humanSize(e.size);
      return (
        `<tr><td valign="top">${icon}</td><td><a href="${href}">${escapeHtml(display)}</a></td>` +
        `<td align="right">${apacheDate(e.mtime)}  </td><td align="right">${size}</td><td>&nbsp;</td></tr>`
      );
    })
    .join('\n');
  return (
    `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n  <title>${title}</title>\n </head>\n <body>\n` +
    `<h1>${title}</h1>\n  <table>\n` +
    `   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>` +
    `<th><a href="?C=N;O=${nextOrder('N')}">Name</a></th><th><a href="?C=M;O=${nextOrder('M')}">Last modified</a></th>` +
    `<th><a href="?C=S;O=${nextOrder('S')}">Size</a></th><th><a href="?C=D;O=${nextOrder('D')}">Description</a></th></tr>\n` +
    `   <tr><th colspan="5"><hr></th></tr>\n` +
    `<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="${escapeHtml(parent)}">Parent Directory</a></td>` +
    `<td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>\n` +
    (rows ? `${rows}\n` : '') +
    `   <tr><th colspan="5"><hr></th></tr>\n</table>\n` +
    `<address>Apache/2.4.52 (Ubuntu) Server at letto.at Port 443</address>\n</body></html>\n`
  );
}

/** Parses one range spec (`a-b`, `a-`, `-n`) against `size`; `undefined` = invalid, `null` = unsatisfiable. */
function parseSpec(spec: string, size: number): { start: number; end: number } | null | undefined {
  const m = /^(\d*)-(\d*)$/.exec(spec.trim());
  if (!m) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return null;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined;
  }
  if (start >= size) return null;
  return { start, end };
}

/**
 * Parses a `bytes=` Range header against `size`: the satisfiable ranges in the order asked (several when
 * the header has a list, RFC 9110 §14.1.2); `undefined` = no or invalid Range (serve the whole file, as
 * RFC 9110 allows), `null` = none satisfiable.
 */
function parseRanges(header: string | undefined, size: number): Array<{ start: number; end: number }> | null | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(.+)$/.exec(header.trim());
  if (!m) return undefined;
  const ranges: Array<{ start: number; end: number }> = [];
  for (const spec of m[1]!.split(',')) {
    const range = parseSpec(spec, size);
    if (range === undefined) return undefined;
    if (range) ranges.push(range);
  }
  return ranges.length > 0 ? ranges : null;
}

async function serveFile(req: IncomingMessage, res: ServerResponse, filePath: string, st: Stats, record: RecordedRequest, fault: Fault | undefined, rate: number | undefined, maxRanges: number): Promise<void> {
  const method = req.method ?? 'GET';
  const etag = etagOf(st);
  const headers: Record<string, string> = {
    'Content-Type': contentType(filePath),
    'Last-Modified': st.mtime.toUTCString(),
    ETag: etag,
    'Accept-Ranges': 'bytes',
  };
  const inm = req.headers['if-none-match'];
  if (inm !== undefined && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
    res.writeHead(304, { ETag: etag, 'Last-Modified': headers['Last-Modified'] ?? '' });
    res.end();
    return;
  }
  if (fault?.kind === 'status') {
    record.status = fault.status;
    errorPage(res, method, fault.status, 'Injected fault', 'The test server was told to fail this request.', fault.retryAfter ? { 'Retry-After': fault.retryAfter } : {});
    return;
  }
  let ranges = fault?.kind === 'ignore-range' ? undefined : parseRanges(req.headers.range, st.size);
  // more ranges than the server accepts (Apache: MaxRanges), or several where it sends only one at a time: the whole file
  if (ranges && ranges.length > 1 && (maxRanges === 0 || ranges.length > maxRanges)) ranges = undefined;
  const ifRange = req.headers['if-range'];
  if (fault?.kind !== 'ignore-if-range' && ranges !== undefined && ifRange !== undefined && ifRange !== etag && ifRange !== headers['Last-Modified']) {
    ranges = undefined; // representation changed: send the whole file
  }
  if (ranges === null) {
    record.status = 416;
    errorPage(res, method, 416, 'Requested Range Not Satisfiable', 'None of the range-specifier values in the Range request-header field overlap the current extent of the selected resource.', {
      'Content-Range': `bytes */${st.size}`,
    });
    return;
  }
  if (ranges && ranges.length > 1 && fault?.kind === 'single-part') {
    // a server that merges the asked ranges into one
    ranges = [{ start: ranges[0]!.start, end: ranges[ranges.length - 1]!.end }];
  }
  if (ranges && ranges.length > 1) {
    serveMultipart(method, res, filePath, st.size, headers, ranges, record, fault, rate);
    return;
  }
  const range = ranges?.[0];
  const start = range?.start ?? 0;
  const end = range?.end ?? st.size - 1;
  const length = st.size === 0 ? 0 : end - start + 1;
  headers['Content-Length'] = String(length);
  if (range !== undefined) headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
  record.status = range !== undefined ? 206 : 200;
  res.writeHead(record.status, headers);
  if (method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  const cut = fault?.kind === 'drop' || fault?.kind === 'stall' ? Math.min(fault.after, length) : null;
  if (cut === 0) {
    // the headers only, then nothing (stall) or the end of the connection (drop)
    res.flushHeaders();
    if (fault?.kind === 'drop') res.socket?.end();
    return;
  }
  const stream = createReadStream(filePath, { start, end: cut === null ? end : start + cut - 1 });
  stream.on('data', (chunk) => {
    record.bodyBytes += chunk.length;
  });
  stream.on('error', (err) => res.destroy(err));
  res.on('close', () => stream.destroy());
  if (cut === null) {
    if (rate) stream.pipe(throttle(rate)).pipe(res);
    else stream.pipe(res);
    return;
  }
  stream.pipe(res, { end: false });
  stream.on('end', () => {
    // everything up to the cut is handed to the kernel before the connection is closed (drop) or left hanging (stall)
    if (fault?.kind === 'drop') res.socket?.end();
  });
}

/**
 * Answers several ranges as `multipart/byteranges` (RFC 9110 §14.6), as Apache does: a part per range,
 * each with `Content-Type` and `Content-Range`, a `Content-Length` for the whole body. `bodyBytes`
 * counts the file's bytes in it. Faults: `drop` closes the connection after `after` bytes of the file;
 * `bad-part` sends the second part with a `Content-Range` one byte off.
 */
function serveMultipart(method: string, res: ServerResponse, filePath: string, size: number, fileHeaders: Record<string, string>, ranges: Array<{ start: number; end: number }>, record: RecordedRequest, fault: Fault | undefined, rate: number | undefined): void {
  const boundary = randomBytes(12).toString('hex');
  const heads = ranges.map((r, i) => {
    const shown = fault?.kind === 'bad-part' && i === 1 ? { start: r.start + 1, end: r.end + 1 } : r;
    return Buffer.from(`\r\n--${boundary}\r\nContent-Type: ${fileHeaders['Content-Type']}\r\nContent-Range: bytes ${shown.start}-${shown.end}/${size}\r\n\r\n`);
  });
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const length = heads.reduce((sum, h, i) => sum + h.length + ranges[i]!.end - ranges[i]!.start + 1, tail.length);
  const { 'Content-Type': _type, ...rest } = fileHeaders;
  record.status = 206;
  res.writeHead(206, { ...rest, 'Content-Type': `multipart/byteranges; boundary=${boundary}`, 'Content-Length': String(length) });
  if (method === 'HEAD') {
    res.end();
    return;
  }
  const cut = fault?.kind === 'drop' ? fault.after : null;
  async function* body(): AsyncGenerator<Buffer> {
    for (const [i, r] of ranges.entries()) {
      yield heads[i]!;
      for await (const chunk of createReadStream(filePath, { start: r.start, end: r.end })) {
        let data = chunk as Buffer;
        if (cut !== null && record.bodyBytes + data.length > cut) data = data.subarray(0, cut - record.bodyBytes);
        record.bodyBytes += data.length;
        if (data.length > 0) yield data;
        if (cut !== null && record.bodyBytes >= cut) return;
      }
    }
    yield tail;
  }
  const source = Readable.from(body(), { objectMode: false });
  source.on('error', (err) => res.destroy(err));
  res.on('close', () => source.destroy());
  const piped = rate ? source.pipe(throttle(rate)) : source;
  piped.pipe(res, { end: cut === null });
  // everything up to the cut is handed to the kernel before the connection is closed
  if (cut !== null) piped.on('end', () => res.socket?.end());
}

/**
 * The server side of HTTP Digest (RFC 7616 §3.4), enough to test a client against: MD5 with qop=auth
 * (as Apache's mod_auth_digest) by default; `algorithm` may be `SHA-256`, `MD5-sess`… and `qop` the
 * offered list (e.g. `auth-int` for a server a client cannot answer).
 */
class DigestServer {
  private readonly nonces = new Set<string>();
  constructor(
    private readonly user: string,
    private readonly password: string,
    private readonly algorithm = 'MD5',
    private readonly qop = 'auth',
  ) {}

  challenge(): string {
    const nonce = randomBytes(16).toString('hex');
    this.nonces.add(nonce);
    return `Digest realm="${AUTH_REALM}", qop="${this.qop}", algorithm=${this.algorithm}, nonce="${nonce}", opaque="${randomBytes(8).toString('hex')}"`;
  }

  check(header: string | undefined, method: string, target: string): boolean {
    if (!header || !/^Digest\s/i.test(header)) return false;
    const params = new Map<string, string>();
    for (const m of header.slice(7).matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) params.set(m[1]!.toLowerCase(), (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1'));
    const nonce = params.get('nonce') ?? '';
    if (params.get('username') !== this.user || params.get('realm') !== AUTH_REALM || !this.nonces.has(nonce) || params.get('uri') !== target) return false;
    if ((params.get('algorithm') ?? 'MD5').toLowerCase() !== this.algorithm.toLowerCase()) return false;
    const base = this.algorithm.replace(/-sess$/i, '').toUpperCase();
    const h = (text: string): string => createHash(base === 'MD5' ? 'md5' : base === 'SHA-256' ? 'sha256' : 'sha512-256').update(text).digest('hex');
    let ha1 = h(`${this.user}:${AUTH_REALM}:${this.password}`);
    if (/-sess$/i.test(this.algorithm)) ha1 = h(`${ha1}:${nonce}:${params.get('cnonce')}`);
    const ha2 = h(`${method}:${target}`);
    const expected = params.get('qop') === 'auth' ? h(`${ha1}:${nonce}:${params.get('nc')}:${params.get('cnonce')}:auth:${ha2}`) : h(`${ha1}:${nonce}:${ha2}`);
    return params.get('response') === expected;
  }
}

/**
 * Starts a download server on `127.0.0.1` (or `opts.host`) on a random free port.
 *
 * Behaviour: `GET`/`HEAD` of files under `root` at `/download/letto/<path>` (streamed, with
 * `Content-Length`, `ETag`, `Last-Modified`, byte `Range` support: one range as a plain 206, several
 * as multipart/byteranges, as Apache); directories get an
 * Apache-autoindex-like listing (a directory URL without trailing `/` is redirected with 301);
 * missing → 404 HTML; `.`/`..`/encoded slashes in the path → 400; other methods → 405. With
 * `user`/`password`, every request without correct Basic credentials gets 401 with
 * `WWW-Authenticate: Basic realm="LeTTo Download"`.
 *
 * @param opts - see {@link DownloadServerOptions}.
 * @returns the running server; call `close()` in `afterAll`.
 */
export async function startDownloadServer(opts: DownloadServerOptions): Promise<DownloadServer> {
  const root = resolve(opts.root);
  const authRequired = opts.user !== undefined || opts.password !== undefined;
  const user = opts.user ?? '';
  const password = opts.password ?? '';
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];
  const digest = opts.auth === 'digest' ? new DigestServer(user, password, opts.digest?.algorithm, opts.digest?.qop) : null;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const rawTarget = req.url ?? '/';
    const authorized =
      !authRequired || (digest ? digest.check(req.headers.authorization, method, rawTarget) : checkBasicAuth(req.headers.authorization, user, password));
    const record: RecordedRequest = { method, path: rawTarget, authorized, headers: { ...(req.headers as IncomingHttpHeaders) }, bodyBytes: 0, status: 0 };
    requests.push(record);

    if (opts.onRequest && (await opts.onRequest(req, res))) return;

    const qIndex = rawTarget.indexOf('?');
    const rawPath = qIndex === -1 ? rawTarget : rawTarget.slice(0, qIndex);
    const query = qIndex === -1 ? '' : rawTarget.slice(qIndex + 1);
    const segments = rawPath.startsWith('/') ? decodeSegments(rawPath) : null;
    if (segments === null) {
      errorPage(res, method, 400, 'Bad Request', 'Your browser sent a request that this server could not understand.');
      return;
    }
    if (!authorized) {
      errorPage(
        res,
        method,
        401,
        'Unauthorized',
        "This server could not verify that you are authorized to access the document requested. Either you supplied the wrong credentials (e.g., bad password), or your browser doesn't understand how to supply the credentials required.",
        { 'WWW-Authenticate': digest ? digest.challenge() : `Basic realm="${AUTH_REALM}"` },
        opts.digest?.alsoOffer,
      );
      record.status = 401;
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      errorPage(res, method, 405, 'Method Not Allowed', `The requested method ${escapeHtml(method)} is not allowed for this URL.`, {
        Allow: 'GET,HEAD,OPTIONS',
      });
      return;
    }
    const notFound = (): void =>
      errorPage(res, method, 404, 'Not Found', 'The requested URL was not found on this server.');

    const decodedPath = segments.join('/');
    const prefixNoSlash = DOWNLOAD_PREFIX.slice(0, -1);
    if (decodedPath === prefixNoSlash) {
      res.writeHead(301, { Location: DOWNLOAD_PREFIX, 'Content-Length': '0' });
      res.end();
      return;
    }
    if (!decodedPath.startsWith(DOWNLOAD_PREFIX)) {
      notFound();
      return;
    }
    const relPath = decodedPath.slice(DOWNLOAD_PREFIX.length);
    const fsPath = resolve(root, ...relPath.split('/').filter((s) => s !== ''));
    const rel = relative(root, fsPath);
    if (rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
      notFound();
      return;
    }
    let st: Stats;
    try {
      st = await stat(fsPath);
    } catch {
      notFound();
      return;
    }
    if (st.isDirectory()) {
      if (!rawPath.endsWith('/')) {
        res.writeHead(301, { Location: `${rawPath}/${qIndex === -1 ? '' : `?${query}`}`, 'Content-Length': '0' });
        res.end();
        return;
      }
      const html = Buffer.from(await renderListing(fsPath, decodedPath, query), 'utf8');
      res.writeHead(200, { 'Content-Type': 'text/html;charset=UTF-8', 'Content-Length': String(html.length) });
      res.end(method === 'HEAD' ? undefined : html);
      return;
    }
    if (!st.isFile()) {
      notFound();
      return;
    }
    const faultIndex = method === 'GET' ? faults.findIndex((f) => rawPath.endsWith(f.match ?? '.war')) : -1;
    const fault = faultIndex >= 0 ? faults.splice(faultIndex, 1)[0] : undefined;
    await serveFile(req, res, fsPath, st, record, fault, opts.rate, opts.maxRanges ?? 200);
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        errorPage(res, req.method ?? 'GET', 500, 'Internal Server Error', escapeHtml(String(err)));
      } else {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    });
  };

  let server: Server;
  let caPem = '';
  if (opts.tls) {
    const { key, cert } = await getTestCertificate();
    caPem = cert;
    server = createHttpsServer({ key, cert }, listener);
  } else {
    server = createHttpServer(listener);
  }
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // TLS sockets are tracked through 'secureConnection' as well (they wrap the raw socket).
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(0, opts.host ?? '127.0.0.1', () => {
      server.off('error', rejectListen);
      resolveListen();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `${opts.tls ? 'https' : 'http'}://${opts.host ?? '127.0.0.1'}:${port}${DOWNLOAD_PREFIX}`;

  let closed: Promise<void> | undefined;
  return {
    url,
    caPem,
    requests,
    faults,
    bodyBytes: () => requests.reduce((sum, r) => sum + r.bodyBytes, 0),
    close(): Promise<void> {
      closed ??= new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      return closed;
    },
  };
}

/**
 * The first IPv4 address of this machine that is not loopback (e.g. the LAN address), or null when it
 * has none (then tests of "another host" cannot run here and are skipped with a reason).
 */
export function nonLoopbackAddress(): string | null {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('127.')) return a.address;
  }
  return null;
}

/** Options for {@link populateDownloadRoot}. */
export interface PopulateOptions {
  /** Revision of `letto-stable.war` / `stable-revision.txt`. */
  stable: number;
  /** Revision of `letto-daily.war` / `daily-revision.txt`. */
  daily: number;
  /** Revisions to put into `archiv/`. Default: none (but `archiv/` is still created). */
  archive?: number[];
  /** `'flat'` (default): `archiv/letto-<rev>.war`; `'folders'`: `archiv/<rev>/letto.war`. */
  archiveLayout?: 'flat' | 'folders';
  /** Revisions whose WARs are built with `healthy: false` (context fails to start on Tomcat). */
  brokenRevisions?: number[];
  /** Extra incompressible bytes in every WAR (buildWar's padBytes), e.g. so that a copy takes a moment. */
  padBytes?: number;
}

/**
 * Fills `root` (created if missing) like letto.at's `/download/letto/`: `letto-stable.war` +
 * `stable-revision.txt` (`${rev}\r\n`), `letto-daily.war` + `daily-revision.txt`, and the archive
 * WARs, all built with {@link buildWar}.
 *
 * @param root - directory to write into; existing files of the same names are overwritten.
 * @param opts - see {@link PopulateOptions}.
 */
export async function populateDownloadRoot(root: string, opts: PopulateOptions): Promise<void> {
  const broken = new Set(opts.brokenRevisions ?? []);
  const war = (path: string, rev: number): Promise<void> =>
    buildWar(path, { revision: rev, healthy: !broken.has(rev), ...(opts.padBytes ? { padBytes: opts.padBytes } : {}) });
  await mkdir(join(root, 'archiv'), { recursive: true });
  const jobs: Promise<void>[] = [
    war(join(root, 'letto-stable.war'), opts.stable),
    writeFile(join(root, 'stable-revision.txt'), `${opts.stable}\r\n`),
    war(join(root, 'letto-daily.war'), opts.daily),
    writeFile(join(root, 'daily-revision.txt'), `${opts.daily}\r\n`),
  ];
  for (const rev of opts.archive ?? []) {
    const p =
      opts.archiveLayout === 'folders'
        ? join(root, 'archiv', String(rev), 'letto.war')
        : join(root, 'archiv', `letto-${rev}.war`);
    jobs.push(war(p, rev));
  }
  await Promise.all(jobs);
}

/** Passes chunks on no faster than `rate` bytes per second on average (an absolute schedule, so timer slack does not add up). */
function throttle(rate: number): Transform {
  const started = performance.now();
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      const wait = started + (sent / rate) * 1000 - performance.now();
      if (wait > 1) setTimeout(() => callback(null, chunk), wait);
      else callback(null, chunk);
    },
  });
}

/**
 * What a config needs to reach `download` as user `letto`, written into the folder `etc`: the password
 * file (`etc/password`, mode 600) and the server's CA certificate (`etc/ca.pem`).
 * @returns the config's `[server]` table (url, user, password_file, ca_file, then the lines of `extra`)
 */
export async function writeServerSection(etc: string, download: DownloadServer, password: string, extra = ''): Promise<string> {
  await mkdir(etc, { recursive: true });
  await writeFile(join(etc, 'password'), `${password}\n`, { mode: 0o600 });
  await writeFile(join(etc, 'ca.pem'), download.caPem);
  return `[server]
url = "${download.url}"
user = "letto"
password_file = "${join(etc, 'password')}"
ca_file = "${join(etc, 'ca.pem')}"
${extra ? `${extra}\n` : ''}`;
}
