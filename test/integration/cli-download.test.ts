/**
 * `letto-update download` through the built CLI against the TLS + Basic-auth loopback server:
 * a run killed mid-download is continued by the next run, a staged WAR is not fetched again, a
 * checksum the server publishes is compared. Bytes on disk and bytes sent are asserted. These are about
 * the full download: the delta download (`server.delta`) is off here; see delta-download.test.ts.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildSizedWar } from '../../fixtures/sized-war.js';
import { CLI_BIN, makeServerLayout, runCli, spawnCli, writeConfig, type ServerLayout } from '../support/cli.js';
import { startDownloadServer, type DownloadServer } from '../support/download-server.js';

const USER = 'letto';
const PASSWORD = 'geheim';
const REVISION = 6886;

let root: string;
let server: DownloadServer;
let war: Buffer;
let layout: ServerLayout;
let config: string;
/** While true, the server never answers a request for a `.sha256` file (a run hangs in its verification). */
let hangSha256 = false;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-cli-dl-'));
  // a WAR like Maven builds it (sizes in the local headers), a few MiB
  await buildSizedWar(join(root, 'letto-stable.war'), 4, REVISION);
  await writeFile(join(root, 'stable-revision.txt'), `${REVISION}\r\n`);
  war = await readFile(join(root, 'letto-stable.war'));
  server = await startDownloadServer({
    root,
    tls: true,
    user: USER,
    password: PASSWORD,
    onRequest: (req) => (hangSha256 && req.url?.endsWith('.sha256') ? new Promise<boolean>(() => undefined) : false),
  });
});

afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  hangSha256 = false;
  server.requests.length = 0;
  server.faults.length = 0;
  await rm(join(root, 'letto-stable.war.sha256'), { force: true });
  layout = await makeServerLayout({ revision: 6880 });
  config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, server: { retry_wait: 0.05, idle_timeout: 30, delta: false } });
});

afterEach(async () => {
  await layout.cleanup();
});

const warGets = () => server.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/letto-stable.war'));
const staged = () => join(layout.staging, `letto-${REVISION}.war`);
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function waitFor(condition: () => Promise<boolean>, what: string, seconds = 20): Promise<void> {
  const until = Date.now() + seconds * 1000;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('letto-update download', () => {
  it('a run killed mid-download is continued by the next run (Range + If-Range), not restarted', async () => {
    const stalled = 1024 * 1024 + 123;
    server.faults.push({ kind: 'stall', after: stalled });
    const part = `${staged()}.part`;
    // as root, the partial file and its sidecar must belong to the service user (here: nobody), so a
    // later run as that user can continue them
    const asRoot = process.getuid?.() === 0;
    if (asRoot) config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, server: { retry_wait: 0.05, idle_timeout: 30, delta: false }, tomee: { user: 'nobody' } });
    const first = spawnCli(['--config', config, 'download']);
    // the first run has written what the server sent before it went silent, and the sidecar
    await waitFor(async () => (await stat(part).then((s) => s.size, () => 0)) === stalled, 'the partial file');
    expect(JSON.parse(await readFile(`${part}.json`, 'utf8'))).toMatchObject({ revision: REVISION, url: `${server.url}letto-stable.war` });
    if (asRoot) {
      expect((await stat(part)).uid).toBe(65534);
      expect((await stat(`${part}.json`)).uid).toBe(65534);
    }
    first.kill('SIGKILL');
    await first;

    const second = await runCli(['--config', config, '--json', 'download']);
    expect(second.stderr).toBe('');
    expect(second.exitCode).toBe(0);
    const result = JSON.parse(second.stdout) as { revision: number; path: string; sha256: string };
    expect(result).toEqual({ revision: REVISION, path: staged(), sha256: sha(war), download: expect.objectContaining({ mode: 'full', total: war.length, fetched: war.length }) });
    expect((await readFile(staged())).equals(war)).toBe(true);
    const [killed, resumed] = warGets();
    expect(killed!.bodyBytes).toBe(stalled);
    expect(resumed!.headers.range).toBe(`bytes=${stalled}-`);
    expect(resumed!.headers['if-range']).toMatch(/^"/);
    expect(resumed!.status).toBe(206);
    expect(server.bodyBytes() - server.requests.filter((r) => !r.path.endsWith('.war')).reduce((s, r) => s + r.bodyBytes, 0)).toBe(war.length);
    // neither the partial file nor its sidecar is left behind
    expect((await readdir(layout.staging)).sort()).toEqual([`letto-${REVISION}.war`]);
  });

  // kill points: before the first byte, after one byte, one byte short of the end, and after the last
  // byte (the run hangs in its verification, waiting for the server's .sha256)
  it.each([
    ['before the first byte of the body', () => 0],
    ['after the first byte', () => 1],
    ['one byte before the end', () => war.length - 1],
    ['after the last byte, while verifying', () => war.length],
  ])('a run killed %s is finished by the next run, and no byte is fetched twice', async (_when, at) => {
    const bytes = at();
    if (bytes < war.length) server.faults.push({ kind: 'stall', after: bytes });
    else hangSha256 = true;
    const part = `${staged()}.part`;
    const first = spawnCli(['--config', config, 'download']);
    await waitFor(async () => existsSync(`${part}.json`) && (await stat(part).then((s) => s.size, () => -1)) === bytes, `${bytes} bytes in the partial file`);
    if (bytes === war.length) await waitFor(async () => server.requests.some((r) => r.path.endsWith('.sha256')), 'the .sha256 request');
    first.kill('SIGKILL');
    expect((await first).signal).toBe('SIGKILL');
    hangSha256 = false;

    const second = await runCli(['--config', config, '--json', 'download']);
    expect(second.exitCode).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual({ revision: REVISION, path: staged(), sha256: sha(war), download: expect.objectContaining({ mode: 'full', total: war.length }) });
    expect((await readFile(staged())).equals(war)).toBe(true);
    const gets = warGets();
    expect(gets).toHaveLength(2);
    if (bytes > 0) {
      expect(gets[1]!.headers.range).toBe(`bytes=${bytes}-`);
      // everything on disk: the server says so with 416 (range not satisfiable), and nothing is sent again
      expect(gets[1]!.status).toBe(bytes === war.length ? 416 : 206);
    }
    expect(gets.reduce((sum, r) => sum + r.bodyBytes, 0) - (gets[1]!.status === 416 ? gets[1]!.bodyBytes : 0)).toBe(war.length);
    expect((await readdir(layout.staging)).sort()).toEqual([`letto-${REVISION}.war`]);
  });

  it('a WAR already downloaded and verified in staging is not fetched again', async () => {
    expect((await runCli(['--config', config, 'download'])).exitCode).toBe(0);
    expect(warGets()).toHaveLength(1);
    const again = await runCli(['--config', config, '--json', 'download']);
    expect(again.exitCode).toBe(0);
    // not downloaded by this run: nothing fetched to tell of
    expect(JSON.parse(again.stdout)).toEqual({ revision: REVISION, path: staged(), sha256: sha(war), download: null });
    expect(warGets()).toHaveLength(1);
    const human = await runCli(['--config', config, 'download']);
    expect(human.stdout).toMatch(/already downloaded and verified .*not downloading it again/);
    expect(warGets()).toHaveLength(1);
  });

  it('a transient 503 is retried (with a warning) and the download completes', async () => {
    server.faults.push({ kind: 'status', status: 503 });
    const run = await runCli(['--config', config, 'download']);
    expect(run.exitCode).toBe(0);
    expect(run.stderr).toMatch(/warning: Download of .* attempt 1 failed \(.*HTTP 503.*\); 2 more to go/); // a command run by hand: at most 2 retries (server.retries = 5 is the nightly run's)
    expect(run.stderr).not.toContain(PASSWORD);
    expect(warGets().map((r) => r.status)).toEqual([503, 200]);
    expect((await readFile(staged())).equals(war)).toBe(true);
  });

  it('compares the SHA-256 the server publishes beside the WAR', async () => {
    await writeFile(join(root, 'letto-stable.war.sha256'), `${sha(war)}  letto-stable.war\n`);
    const ok = await runCli(['--config', config, 'download']);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain('SHA-256 matches');

    await rm(staged());
    await writeFile(join(root, 'letto-stable.war.sha256'), `${'0'.repeat(64)}  letto-stable.war\n`);
    const bad = await runCli(['--config', config, 'download']);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/SHA-256 .* differs from the one the server publishes/);
    expect(await readdir(layout.staging)).toEqual([]);
  });

  it('on a terminal shows bytes, rate and time left; with --json nothing of it', async () => {
    const slow = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, server: { retry_wait: 0.05, idle_timeout: 1.5, delta: false } });
    // the server goes silent for a while after 1 MiB, so the progress line is on screen for a while
    const inPty = (args: string) =>
      execa('script', ['-qec', `stty cols 120 rows 40; ${process.execPath} ${CLI_BIN} --config ${slow} ${args}`, '/dev/null'], { reject: false });
    server.faults.push({ kind: 'stall', after: 1024 * 1024 });
    const human = await inPty('download');
    expect(human.exitCode).toBe(0);
    expect(String(human.stdout)).toMatch(/\d+\.\d MiB of \d+\.\d MiB \(\d+\.\d MiB\/s(, \d+ s left)?\)/);

    await rm(staged());
    server.faults.push({ kind: 'stall', after: 1024 * 1024 });
    const json = await inPty('--json download');
    expect(json.exitCode).toBe(0);
    expect(String(json.stdout)).not.toMatch(/MiB\/s/);
    expect(String(json.stdout)).toContain('"sha256"');
  });

  it('a wrong password is not retried and leaves nothing in staging', async () => {
    const wrong = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: 'falsch', server: { retry_wait: 0.05, delta: false } });
    const run = await runCli(['--config', wrong, 'download']);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(/refused the login \(HTTP 401\)/);
    expect(server.requests).toHaveLength(1);
    expect(await readdir(layout.staging).catch(() => [])).toEqual([]);
  });
});
