/**
 * The download engine against a real TLS loopback server that injects faults: dropped and stalled
 * connections, 5xx/429, servers that ignore Range or If-Range, a file replaced between requests,
 * Basic and Digest. Every case asserts the bytes on disk and the bytes the server sent.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DownloadError } from '../../src/errors.js';
import { createHttpClient, type HttpClient, type HttpOptions, type Validators } from '../../src/system/http.js';
import { startDownloadServer, type DownloadServer, type RecordedRequest } from '../support/download-server.js';

const MiB = 1024 * 1024;
const SIZE = 3 * MiB + 12345;
const USER = 'letto';
const PASSWORD = 'geheim';

let root: string;
let work: string;
let content: Buffer;
let basic: DownloadServer;
let digest: DownloadServer;
let other: DownloadServer;
let clients: HttpClient[] = [];

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-dl-root-'));
  content = randomBytes(SIZE);
  await writeFile(join(root, 'file.war'), content);
  await writeFile(join(root, 'small.txt'), 'hello\n');
  basic = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
  digest = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD, auth: 'digest' });
  other = await startDownloadServer({ root, tls: true });
});

afterAll(async () => {
  await Promise.all([basic?.close(), digest?.close(), other?.close()]);
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'letto-dl-'));
  for (const server of [basic, digest, other]) {
    server.requests.length = 0;
    server.faults.length = 0;
  }
  // the file as it was at the start (a test may replace it)
  await writeFile(join(root, 'file.war'), content);
  await utimes(join(root, 'file.war'), new Date('2026-11-01T10:00:00Z'), new Date('2026-11-01T10:00:00Z'));
});

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  clients = [];
  await rm(work, { recursive: true, force: true });
});

/** A client for `server` with fast retries (10 ms) and a short idle timeout (0.5 s). */
function client(server: DownloadServer, extra: Partial<HttpOptions> = {}): HttpClient {
  const http = createHttpClient({
    serverUrl: server.url,
    credentials: { user: USER, password: PASSWORD },
    extraCaPem: server.caPem,
    idleTimeout: 0.5,
    retry: { retries: 3, wait: 0.01, maxWait: 2 },
    env: {},
    ...extra,
  });
  clients.push(http);
  return http;
}

const gets = (server: DownloadServer) => server.requests.filter((r) => r.method === 'GET' && r.path.endsWith('.war'));

/** The file at `path` holds exactly `bytes` (compared as buffers: a deep toEqual of MiBs is very slow). */
async function expectFile(path: string, bytes: Buffer): Promise<void> {
  const actual = await readFile(path);
  expect(actual.length).toBe(bytes.length);
  expect(actual.equals(bytes)).toBe(true);
}

/** The first byte a request asked for with `Range: bytes=N-`. */
function resumeOffset(request: RecordedRequest): number {
  const match = /^bytes=(\d+)-$/.exec(String(request.headers.range ?? ''));
  if (!match) throw new Error(`no Range in ${JSON.stringify(request.headers)}`);
  return Number(match[1]);
}

describe('download: resume and retries', () => {
  it('a clean download is one request; bytes, SHA-256 and validators are reported', async () => {
    const dest = join(work, 'out.war');
    const result = await client(basic).download(`${basic.url}file.war`, dest);
    await expectFile(dest, content);
    expect(result).toMatchObject({ bytes: SIZE, sha256: sha(content), resumedFrom: 0, transferred: SIZE, attempts: 1 });
    expect(result.validators.etag).toMatch(/^"/);
    expect(result.validators.total).toBe(SIZE);
    expect(basic.bodyBytes()).toBe(SIZE);
  });

  it('a connection dropped midway is resumed with Range + If-Range, not restarted', async () => {
    basic.faults.push({ kind: 'drop', after: MiB });
    const dest = join(work, 'out.war');
    const retries: string[] = [];
    const result = await client(basic, { onRetry: (m) => retries.push(m) }).download(`${basic.url}file.war`, dest);
    await expectFile(dest, content);
    expect(result.sha256).toBe(sha(content));
    expect(result.attempts).toBe(2);
    const [first, second] = gets(basic);
    expect(first!.status).toBe(200);
    expect(first!.bodyBytes).toBe(MiB);
    // what was still in flight when the connection broke is lost; the rest is continued from the file's end
    const kept = resumeOffset(second!);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(MiB);
    expect(second!.status).toBe(206);
    expect(second!.headers['if-range']).toBe(result.validators.etag);
    expect(second!.bodyBytes).toBe(SIZE - kept);
    expect(basic.bodyBytes()).toBe(MiB + SIZE - kept);
    // the client counts what reached it, including bytes in flight that never made it to the disk
    expect(result.transferred).toBeGreaterThanOrEqual(SIZE);
    expect(result.transferred).toBeLessThanOrEqual(basic.bodyBytes());
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatch(/attempt 1 failed/);
    expect(retries[0]).not.toContain(PASSWORD);
  });

  it('a stalled server is given up after the idle timeout and the download resumes', async () => {
    basic.faults.push({ kind: 'stall', after: MiB });
    const dest = join(work, 'out.war');
    const result = await client(basic).download(`${basic.url}file.war`, dest);
    await expectFile(dest, content);
    expect(result.sha256).toBe(sha(content));
    expect(gets(basic).map((r) => r.status)).toEqual([200, 206]);
    const kept = resumeOffset(gets(basic)[1]!);
    expect(kept).toBeLessThanOrEqual(MiB);
    expect(basic.bodyBytes()).toBe(MiB + SIZE - kept);
    // the client counts what reached it, including bytes in flight that never made it to the disk
    expect(result.transferred).toBeGreaterThanOrEqual(SIZE);
    expect(result.transferred).toBeLessThanOrEqual(basic.bodyBytes());
  });

  it('500 then 200: retried, the file arrives once', async () => {
    basic.faults.push({ kind: 'status', status: 500 });
    const dest = join(work, 'out.war');
    const result = await client(basic).download(`${basic.url}file.war`, dest);
    await expectFile(dest, content);
    expect(gets(basic).map((r) => r.status)).toEqual([500, 200]);
    expect(basic.bodyBytes()).toBe(SIZE);
    expect(result.transferred).toBe(SIZE);
  });

  it('429 with Retry-After waits as long as the server asks before the next attempt', async () => {
    basic.faults.push({ kind: 'status', status: 429, retryAfter: '1' });
    const dest = join(work, 'out.war');
    const started = performance.now();
    await client(basic).download(`${basic.url}file.war`, dest);
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
    expect(gets(basic).map((r) => r.status)).toEqual([429, 200]);
    await expectFile(dest, content);
    expect(basic.bodyBytes()).toBe(SIZE);
  });

  it('retries are bounded: after server.retries more failures the last error is thrown', async () => {
    for (let i = 0; i < 3; i++) basic.faults.push({ kind: 'status', status: 503 });
    const http = client(basic, { retry: { retries: 2, wait: 0.01, maxWait: 1 } });
    const error = await http.download(`${basic.url}file.war`, join(work, 'out.war')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as Error).message).toMatch(/HTTP 503/);
    expect(gets(basic)).toHaveLength(3);
    expect(basic.bodyBytes()).toBe(0);
  });

  it.each([
    [404, 'missing.war', /HTTP 404/],
    [401, 'file.war', /refused the login \(HTTP 401\)/],
  ])('HTTP %i is not retried', async (_status, name, message) => {
    const http = _status === 401 ? client(basic, { credentials: { user: USER, password: 'wrong' } }) : client(basic);
    await expect(http.download(`${basic.url}${name}`, join(work, 'out.war'))).rejects.toThrow(message);
    expect(gets(basic)).toHaveLength(1);
    expect(basic.bodyBytes()).toBe(0);
  });

  it('403 is not retried', async () => {
    basic.faults.push({ kind: 'status', status: 403 });
    await expect(client(basic).download(`${basic.url}file.war`, join(work, 'out.war'))).rejects.toThrow(/HTTP 403/);
    expect(gets(basic)).toHaveLength(1);
  });

  it('a server that ignores Range (200 instead of 206) is followed from byte 0, not appended', async () => {
    basic.faults.push({ kind: 'drop', after: MiB }, { kind: 'ignore-range' });
    const dest = join(work, 'out.war');
    const result = await client(basic).download(`${basic.url}file.war`, dest);
    await expectFile(dest, content);
    expect(result.sha256).toBe(sha(content));
    expect(gets(basic).map((r) => r.status)).toEqual([200, 200]);
    const kept = resumeOffset(gets(basic)[1]!);
    expect(basic.bodyBytes()).toBe(MiB + SIZE);
    expect(result.transferred).toBeGreaterThanOrEqual(kept + SIZE);
    expect(result.transferred).toBeLessThanOrEqual(MiB + SIZE);
  });
});

describe('download: a partial file from an earlier run', () => {
  /** A partial file of `bytes` bytes as an interrupted run leaves it, with the validators its sidecar keeps. */
  async function earlierRun(bytes: number): Promise<{ dest: string; validators: Validators }> {
    const dest = join(work, 'out.war');
    const { validators } = await client(basic).download(`${basic.url}file.war`, dest);
    await truncate(dest, bytes);
    basic.requests.length = 0;
    return { dest, validators };
  }

  it('is continued where it stopped; the SHA-256 covers the whole file', async () => {
    const { dest, validators } = await earlierRun(MiB);
    const result = await client(basic).download(`${basic.url}file.war`, dest, { resume: validators });
    await expectFile(dest, content);
    expect(result).toMatchObject({ bytes: SIZE, sha256: sha(content), resumedFrom: MiB, transferred: SIZE - MiB, attempts: 1 });
    expect(gets(basic).map((r) => r.status)).toEqual([206]);
    expect(basic.bodyBytes()).toBe(SIZE - MiB);
  });

  it('that is already complete needs no body (416 for the range past its end)', async () => {
    const { dest, validators } = await earlierRun(SIZE);
    const result = await client(basic).download(`${basic.url}file.war`, dest, { resume: validators });
    await expectFile(dest, content);
    expect(result).toMatchObject({ bytes: SIZE, sha256: sha(content), resumedFrom: SIZE, transferred: 0 });
    expect(basic.bodyBytes()).toBe(0);
  });

  it('is never stitched to a replaced file: If-Range fails, the new file comes whole', async () => {
    const { dest, validators } = await earlierRun(MiB);
    const replaced = randomBytes(SIZE - 1000);
    await writeFile(join(root, 'file.war'), replaced);
    const result = await client(basic).download(`${basic.url}file.war`, dest, { resume: validators });
    await expectFile(dest, replaced);
    expect(result).toMatchObject({ bytes: replaced.length, sha256: sha(replaced), resumedFrom: 0, transferred: replaced.length });
    expect(result.validators.etag).not.toBe(validators.etag);
    expect(gets(basic).map((r) => r.status)).toEqual([200]);
    expect(basic.bodyBytes()).toBe(replaced.length);
  });

  it('is never stitched even when a broken server ignores If-Range: a 206 with another ETag is thrown away', async () => {
    const { dest, validators } = await earlierRun(MiB);
    const replaced = randomBytes(SIZE + 1000);
    await writeFile(join(root, 'file.war'), replaced);
    basic.faults.push({ kind: 'ignore-if-range' });
    const result = await client(basic).download(`${basic.url}file.war`, dest, { resume: validators });
    await expectFile(dest, replaced);
    expect(result.sha256).toBe(sha(replaced));
    expect(gets(basic).map((r) => r.status)).toEqual([206, 200]);
    // the 206 was abandoned after at most its first chunks; the whole new file came with the 200
    expect(gets(basic)[1]!.bodyBytes).toBe(replaced.length);
    expect(result.transferred).toBe(replaced.length);
  });

  it('without validators the partial file is not trusted and the download starts at 0', async () => {
    const { dest } = await earlierRun(MiB);
    const result = await client(basic).download(`${basic.url}file.war`, dest);
    await expectFile(dest, content);
    expect(result.resumedFrom).toBe(0);
    expect(gets(basic)[0]!.headers.range).toBeUndefined();
    expect(basic.bodyBytes()).toBe(SIZE);
  });
});

describe('download: authentication and redirects', () => {
  it('Digest: the challenge is answered, later requests answer it up front', async () => {
    const http = client(digest);
    expect((await http.getText(`${digest.url}small.txt`)).trim()).toBe('hello');
    const dest = join(work, 'out.war');
    await http.download(`${digest.url}file.war`, dest);
    await expectFile(dest, content);
    expect(digest.requests.map((r) => r.status)).toEqual([401, 200, 200]);
    expect(digest.requests[1]!.headers.authorization).toMatch(/^Digest username="letto"/);
    expect(digest.requests.every((r) => !String(r.headers.authorization ?? '').includes(PASSWORD))).toBe(true);
    expect(gets(digest)[0]!.bodyBytes).toBe(SIZE);
  });

  it('Digest with a wrong password fails once, without a retry loop', async () => {
    const http = client(digest, { credentials: { user: USER, password: 'wrong' } });
    await expect(http.download(`${digest.url}file.war`, join(work, 'out.war'))).rejects.toThrow(/refused the login \(HTTP 401\)/);
    expect(digest.requests.map((r) => r.status)).toEqual([401, 401]);
    expect(digest.bodyBytes()).toBe(0);
  });

  it('Digest resumes a dropped download too', async () => {
    digest.faults.push({ kind: 'drop', after: MiB });
    const dest = join(work, 'out.war');
    const result = await client(digest).download(`${digest.url}file.war`, dest);
    await expectFile(dest, content);
    expect(result.sha256).toBe(sha(content));
    const resumed = digest.requests.find((r) => r.status === 206)!;
    expect(digest.bodyBytes()).toBe(MiB + SIZE - resumeOffset(resumed));
  });

  it('a cross-host redirect of the WAR carries no credentials', async () => {
    const target = `${other.url.replace('127.0.0.1', 'localhost')}file.war`;
    const redirecting = await startDownloadServer({
      root,
      tls: true,
      user: USER,
      password: PASSWORD,
      onRequest(req, res) {
        if (req.url?.endsWith('/moved.war')) {
          res.writeHead(302, { location: target }).end();
          return true;
        }
        return false;
      },
    });
    try {
      const dest = join(work, 'out.war');
      await client(redirecting).download(`${redirecting.url}moved.war`, dest);
      await expectFile(dest, content);
      expect(redirecting.requests[0]!.headers.authorization).toMatch(/^Basic /);
      expect(other.requests).toHaveLength(1);
      expect(other.requests[0]!.headers.authorization).toBeUndefined();
      expect(other.bodyBytes()).toBe(SIZE);
    } finally {
      await redirecting.close();
    }
  });
});
