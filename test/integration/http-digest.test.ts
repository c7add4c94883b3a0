/**
 * HTTP Digest edge cases against the real loopback test server (TLS, Digest per RFC 7616): a password
 * with colons, SHA-256 and the -sess variants, and challenges letto-update cannot answer (an unknown
 * algorithm, qop=auth-int only), which must fail at once with a clear error, without a wasted answer.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildSizedWar } from '../../fixtures/sized-war.js';
import { DownloadError } from '../../src/errors.js';
import { createHttpClient } from '../../src/system/http.js';
import { makeServerLayout, runCli, writeConfig } from '../support/cli.js';
import { startDownloadServer, type DownloadServer, type DownloadServerOptions } from '../support/download-server.js';

const USER = 'letto';
const PASSWORD = 'ge:heim:42';
const SIZE = 1024 * 1024 + 777;
let root: string;
let work: string;
let content: Buffer;
const servers: DownloadServer[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-digest-'));
  content = randomBytes(SIZE);
  await writeFile(join(root, 'file.war'), content);
  await writeFile(join(root, 'small.txt'), 'hello\n');
  work = await mkdtemp(join(tmpdir(), 'letto-digest-out-'));
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

async function digestServer(digest: DownloadServerOptions['digest'] = {}, password = PASSWORD): Promise<DownloadServer> {
  const server = await startDownloadServer({ root, tls: true, user: USER, password, auth: 'digest', digest });
  servers.push(server);
  return server;
}

/** getText of small.txt, then download of file.war, with one client; returns the file's bytes. */
async function fetchBoth(server: DownloadServer, password = PASSWORD): Promise<Buffer> {
  const http = createHttpClient({ serverUrl: server.url, credentials: { user: USER, password }, extraCaPem: server.caPem, retry: { retries: 2, wait: 0.01 }, env: {} });
  try {
    expect((await http.getText(`${server.url}small.txt`)).trim()).toBe('hello');
    const dest = join(work, `out-${randomBytes(4).toString('hex')}.war`);
    await http.download(`${server.url}file.war`, dest);
    return await readFile(dest);
  } finally {
    await http.close();
  }
}

describe('Digest', () => {
  it('a password with colons is used whole (the old digest-header call cut it at the first colon)', async () => {
    const server = await digestServer();
    const bytes = await fetchBoth(server);
    expect(bytes.equals(content)).toBe(true);
    expect(server.requests.map((r) => r.status)).toEqual([401, 200, 200]);
    expect(server.requests.every((r) => !String(r.headers.authorization ?? '').includes('heim'))).toBe(true);
    expect(server.requests.at(-1)!.bodyBytes).toBe(SIZE);
  });

  it.each([['SHA-256'], ['SHA-256-sess'], ['MD5-sess']])('algorithm=%s is answered, and later requests answer it up front', async (algorithm) => {
    const server = await digestServer({ algorithm });
    expect((await fetchBoth(server)).equals(content)).toBe(true);
    expect(server.requests.map((r) => r.status)).toEqual([401, 200, 200]);
    expect(server.requests[2]!.headers.authorization).toMatch(new RegExp(`algorithm=${algorithm}, .*nc=00000002`));
  });

  it('qop="auth-int,auth": the client picks auth', async () => {
    const server = await digestServer({ qop: 'auth-int,auth' });
    expect((await fetchBoth(server)).equals(content)).toBe(true);
    expect(server.requests[1]!.headers.authorization).toMatch(/qop=auth, /);
  });

  it('a Digest challenge after another scheme\'s (two WWW-Authenticate headers, joined by Node) is found and answered', async () => {
    const server = await digestServer({ alsoOffer: 'Negotiate' });
    expect((await fetchBoth(server)).equals(content)).toBe(true);
    expect(server.requests.map((r) => r.status)).toEqual([401, 200, 200]);
  });

  it.each([
    [{ algorithm: 'SHA-512' }, /algorithm=SHA-512, which letto-update does not support/],
    [{ qop: 'auth-int' }, /only with qop=auth-int, which letto-update does not support/],
  ])('a challenge it cannot answer (%j) fails at once with a clear error, no answer sent, no retry', async (digest, reason) => {
    const server = await digestServer(digest);
    const http = createHttpClient({ serverUrl: server.url, credentials: { user: USER, password: PASSWORD }, extraCaPem: server.caPem, retry: { retries: 3, wait: 0.01 }, env: {} });
    try {
      const dest = join(work, 'refused.war');
      const error = await http.download(`${server.url}file.war`, dest).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DownloadError);
      const { message, hint } = error as DownloadError;
      expect(message).toMatch(/^The download server 127\.0\.0\.1:\d+ wants HTTP Digest authentication that letto-update cannot answer: /);
      expect(message).toMatch(reason);
      expect(message).toMatch(/Nothing was downloaded\.$/);
      expect(hint).toMatch(/Ask the download server admin to accept HTTP Basic over https/);
      // one request (Basic up front, answered with the challenge); the challenge was not answered
      expect(server.requests.map((r) => r.status)).toEqual([401]);
      expect(server.bodyBytes()).toBe(0);
    } finally {
      await http.close();
    }
  });

  it('a server that offers Basic as well as a Digest it cannot answer has refused the Basic login: the usual 401 error', async () => {
    const server = await digestServer({ algorithm: 'SHA-512', alsoOffer: 'Basic realm="LeTTo Download"' });
    const http = createHttpClient({ serverUrl: server.url, credentials: { user: USER, password: 'wrong' }, extraCaPem: server.caPem, retry: { retries: 3, wait: 0.01 }, env: {} });
    try {
      await expect(http.getText(`${server.url}small.txt`)).rejects.toThrow(/refused the login \(HTTP 401\)/);
      expect(server.requests).toHaveLength(1);
    } finally {
      await http.close();
    }
  });

  it('letto-update download against a SHA-512 Digest server: exit 1, the algorithm named, staging empty', async () => {
    const server = await digestServer({ algorithm: 'SHA-512' });
    await buildSizedWar(join(root, 'letto-stable.war'), 1, 6886);
    await writeFile(join(root, 'stable-revision.txt'), '6886\r\n');
    const layout = await makeServerLayout({ revision: 6880 });
    try {
      const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, server: { retry_wait: 0.05 } });
      const run = await runCli(['--config', config, 'download']);
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toMatch(/error: The download server 127\.0\.0\.1:\d+ wants HTTP Digest authentication that letto-update cannot answer: the server asks for Digest algorithm=SHA-512/);
      expect(run.stderr).toMatch(/what to do: Ask the download server admin/);
      expect(run.stderr).not.toContain(PASSWORD);
      expect(server.requests).toHaveLength(1);
      expect(await readdir(layout.staging).catch(() => [])).toEqual([]);
    } finally {
      await layout.cleanup();
    }
  });
});
