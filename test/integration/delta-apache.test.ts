/**
 * The delta download against a real Apache httpd (Debian's apache2, TLS, Basic auth; see
 * test/support/apache.ts), through the built CLI. Each case asserts the staged WAR byte for byte and what
 * Apache's access log says it sent (status, body bytes, Range and If-Range of every request).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { buildDeltaWar, type DeltaWarOptions } from '../../fixtures/delta-wars.js';
import { TAIL } from '../../src/war/delta/remote-directory.js';
import { directoryOfFile } from '../../src/war/delta/zip-directory.js';
import { startApache, type Apache, type ApacheRequest } from '../support/apache.js';
import { describeWithApache } from '../support/describe-apache.js';
import { makeServerLayout, runCli, spawnCli, writeConfig, type ServerLayout } from '../support/cli.js';
import { testSeed } from '../support/seeded.js';

const USER = 'letto';
const PASSWORD = 'geheim';
const OLD = 6885;
const NEW = 6886;

let root: string;
let apache: Apache;
let layout: ServerLayout;
let seen = 0;

const serverWar = () => join(root, 'letto-stable.war');
const staged = () => join(layout.staging, `letto-${NEW}.war`);
/** The ranges of a logged `Range: bytes=a-b,c-d` (inclusive ends); [] for none or a suffix range. */
const rangesOf = (header: string | null): Array<{ start: number; end: number }> =>
  (header ?? '').replace(/^bytes=/, '').split(',').flatMap((spec) => {
    const m = /^(\d+)-(\d+)$/.exec(spec);
    return m ? [{ start: Number(m[1]), end: Number(m[2]) }] : [];
  });

describeWithApache('delta download against Apache httpd', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'letto-delta-apache-'));
    await writeFile(join(root, 'stable-revision.txt'), `${NEW}\r\n`);
    apache = await startApache({ root, user: USER, password: PASSWORD, rateKiB: 512 });
  });

  afterAll(async () => {
    await apache?.close();
    await rm(root, { recursive: true, force: true });
  });

  beforeEach(async () => {
    layout = await makeServerLayout({ revision: OLD });
    seen = (await apache.requests()).length;
  });

  afterEach(async () => {
    await layout.cleanup();
  });

  /** Config for the prefix `prefix` of the Apache server. */
  const configFor = (prefix: string) => writeConfig(layout, { url: `${apache.base}${prefix}/letto/`, caPem: apache.caPem, user: USER }, { password: PASSWORD, server: { retry_wait: 0.05, idle_timeout: 30 } });

  async function builds(old: Partial<DeltaWarOptions>, now: Partial<DeltaWarOptions>): Promise<Buffer> {
    await buildDeltaWar(layout.war, { revision: OLD, ...old });
    await buildDeltaWar(serverWar(), { revision: NEW, ...now });
    // published a while ago: Apache makes the ETag of a file changed within the last second weak (no If-Range then)
    await utimes(serverWar(), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    return readFile(serverWar());
  }

  /**
   * The WAR requests Apache logged since the test began. Apache's worker processes write their lines
   * when a connection is done with, so the log is read once it has stopped growing.
   */
  async function warRequests(): Promise<ApacheRequest[]> {
    let lines = -1;
    for (let i = 0; i < 50; i++) {
      const now = (await apache.requests()).length;
      if (now === lines) break;
      lines = now;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    return (await apache.requests()).slice(seen).filter((r) => r.path.endsWith('/letto-stable.war'));
  }

  /** One `download` run (its output: the step lines say why a delta download was not used, and what was fetched). */
  async function download(prefix: string): Promise<{ out: string }> {
    const result = await runCli(['--config', await configFor(prefix), 'download']);
    expect(result.exitCode, result.stderr).toBe(0);
    return { out: result.stdout + result.stderr };
  }

  async function expectStagedIs(war: Buffer): Promise<void> {
    expect((await readFile(staged())).equals(war)).toBe(true);
    expect(await readdir(layout.staging)).toEqual([`letto-${NEW}.war`]);
  }

  it('reuses the unchanged jars: Apache answers several ranges per request (multipart/byteranges), each request guarded by If-Range', async () => {
    const war = await builds({}, { changedClasses: true, changedJars: ['lib-3.jar'] });
    const { out } = await download('download');
    expect(out).toMatch(new RegExp(`fetched [\\d.]+ MiB of [\\d.]+ MiB; \\d+ % reused from revision ${OLD}`));
    expect(out).not.toMatch(/one range at a time/);
    await expectStagedIs(war);
    const gets = await warRequests();
    expect(gets[0]!.range).toMatch(/^bytes=-\d+$/);
    for (const r of gets) expect(r.status).toBe(206);
    const lists = gets.slice(1).map((r) => rangesOf(r.range));
    expect(lists.some((ranges) => ranges.length > 1)).toBe(true);
    for (const ranges of lists) {
      expect(ranges.length).toBeLessThanOrEqual(100);
      // sorted, apart, not adjacent: Apache merges nothing and answers each range as asked
      for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.start).toBeGreaterThan(ranges[i - 1]!.end + 1);
    }
    for (const r of gets.slice(1)) expect(r.ifRange).toMatch(/^"[^"]+"$/);
    // %B: body bytes with the multipart framing (a few dozen bytes a part)
    const sent = gets.reduce((sum, r) => sum + r.bytes, 0);
    expect(sent).toBeLessThan(TAIL + 256 * 1024 + 128 * 1024);
  });

  it('MaxRanges 1: the multipart request gets the whole file (200, dropped unread), then one range per request', async () => {
    // large enough (24 MiB) that the 200 cannot all go into the sockets' buffers before it is dropped
    const war = await builds({ jars: 24, jarBytes: 1 << 20 }, { jars: 24, jarBytes: 1 << 20, changedClasses: true, changedJars: ['lib-3.jar', 'lib-9.jar'] });
    const { out } = await download('strict');
    expect(out).toMatch(/Asking for one range at a time: the server answered a request for \d+ ranges with HTTP 200 and the whole file \(not read\)/);
    expect(out).toMatch(new RegExp(`fetched [\\d.]+ MiB of [\\d.]+ MiB; \\d+ % reused from revision ${OLD}`));
    await expectStagedIs(war);
    const gets = await warRequests();
    const refused = gets.filter((r) => r.status === 200);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(rangesOf(r.range).length).toBeGreaterThan(1);
      // %O: what went over the connection before the client dropped it
      expect(r.wire).toBeLessThan(war.length);
    }
    const singles = gets.filter((r) => r.status === 206);
    for (const r of singles) expect(r.range).toMatch(/^bytes=(\d+-\d+|-\d+)$/);
    for (const r of singles.slice(1)) expect(r.ifRange).toMatch(/^"[^"]+"$/);
    expect(singles.reduce((sum, r) => sum + r.bytes, 0)).toBeLessThan(TAIL + 2 * (1 << 20) + 512 * 1024);
  }, 60_000);

  it('everything changed: one range for the directory, then the whole file', async () => {
    const war = await builds({}, { changedAll: true });
    const { out } = await download('download');
    expect(out).toMatch(/Delta download not used: only 0 % of it could be reused/);
    await expectStagedIs(war);
    const gets = await warRequests();
    expect(gets.map((r) => r.status)).toEqual([206, 200]);
    expect(gets[1]!.bytes).toBe(war.length);
  });

  it('Range ignored (MaxRanges none): the 200 is dropped unread and the whole file downloaded once', async () => {
    // large enough (24 MiB) that the first answer cannot all go into the sockets' buffers before it is dropped
    const war = await builds({ jars: 24, jarBytes: 1 << 20 }, { jars: 24, jarBytes: 1 << 20, changedJars: ['lib-3.jar'] });
    const { out } = await download('norange');
    expect(out).toMatch(/Delta download not used: the server answered a Range request with HTTP 200 and the whole file/);
    await expectStagedIs(war);
    const gets = await warRequests();
    expect(gets.map((r) => r.status)).toEqual([200, 200]);
    // %O: what went over the connection before the client dropped it
    expect(gets[0]!.wire).toBeLessThan(war.length);
    expect(gets[1]!.bytes).toBe(war.length);
  });

  it('a backup with a damaged entry: that entry is fetched, not copied', async () => {
    const war = await builds({}, { changedClasses: true });
    const backup = join(layout.backups, `letto-${OLD}.war`);
    await copyFile(layout.war, backup);
    await buildDeltaWar(layout.war, { revision: 6000, changedAll: true });
    const local = (await directoryOfFile(backup)).entries.find((e) => e.name === 'WEB-INF/lib/lib-5.jar')!;
    const bytes = await readFile(backup);
    const start = local.offset + 30 + bytes.readUInt16LE(local.offset + 26) + bytes.readUInt16LE(local.offset + 28);
    bytes[start + 1000] = bytes[start + 1000]! ^ 0xff;
    await writeFile(backup, bytes);
    const { out } = await download('download');
    expect(out).toMatch(new RegExp(`reused from revision ${OLD}`));
    await expectStagedIs(war);
    const remote = (await directoryOfFile(serverWar())).entries.find((e) => e.name === 'WEB-INF/lib/lib-5.jar')!;
    const at = remote.offset + 30 + war.readUInt16LE(remote.offset + 26) + war.readUInt16LE(remote.offset + 28);
    const gets = await warRequests();
    expect(gets.some((r) => rangesOf(r.range).some((m) => m.start <= at && m.end >= at + remote.compressedSize - 1))).toBe(true);
    expect(gets.reduce((sum, r) => sum + r.bytes, 0)).toBeLessThan(TAIL + 256 * 1024 + 128 * 1024);
  });

  it('a zip64 WAR: reused through its zip64 records', async () => {
    const war = await builds({ zip64: true }, { zip64: true, changedJars: ['lib-3.jar'] });
    const { out } = await download('download');
    expect(out).toMatch(/reused from revision/);
    await expectStagedIs(war);
    expect((await warRequests()).every((r) => r.status === 206)).toBe(true);
  });

  it('the WAR changes on the server between its directory and its data: Apache answers If-Range with 200, the new file is downloaded whole', async () => {
    const war = await builds({ jars: 16 }, { jars: 16, changedClasses: true, changedJars: ['lib-2.jar', 'lib-7.jar'] });
    const config = await configFor('slow');
    // a first run reads the directory (the sidecar holds its ETag) and is killed before it asks for any
    // data (the fault point, not a timed kill: on a loaded machine a timed one came after the last range)
    const first = await runCli(['--config', config, 'download'], { env: { LETTO_UPDATE_FAULT: 'delta:directory' } });
    expect(first.signal).toBe('SIGKILL');
    expect(existsSync(join(layout.staging, `letto-${NEW}.war.delta.json`))).toBe(true);
    // then the server's file gets a new date (a new ETag), as when it is replaced; the next run continues with the old ETag
    await utimes(serverWar(), new Date(), new Date(Date.now() - 30_000));
    await new Promise((resolve) => setTimeout(resolve, 500)); // Apache logs the killed connection's request when it is done
    const before = (await warRequests()).length;
    const result = await runCli(['--config', config, 'download']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Delta download not used: the WAR changed on the server meanwhile/);
    await expectStagedIs(war);
    const gets = (await warRequests()).slice(before);
    // the ranges asked for with the old ETag were answered with 200 (and dropped); then the whole file
    expect(gets[0]).toMatchObject({ status: 200 });
    expect(gets[0]!.ifRange).toMatch(/^"[^"]+"$/);
    expect(gets[0]!.wire).toBeLessThan(war.length);
    expect(gets.at(-1)).toMatchObject({ status: 200, range: null, bytes: war.length });
  }, 60_000);

  it('a kill at a random moment (slow line: mod_ratelimit), then the next run: no byte fetched twice', async () => {
    const seed = testSeed('apache delta kill test');
    const war = await builds({ jars: 16 }, { jars: 16, changedClasses: true, changedJars: ['lib-2.jar', 'lib-7.jar', 'lib-12.jar'] });
    const config = await configFor('slow');
    const child = spawnCli(['--config', config, 'download']);
    await new Promise((resolve) => setTimeout(resolve, 300 + (seed % 2500)));
    child.kill('SIGKILL');
    await child;
    if ((await readdir(layout.staging)).includes(`letto-${NEW}.war`)) expect((await readFile(staged())).equals(war)).toBe(true);
    const log = join(layout.staging, `letto-${NEW}.war.delta.log`);
    const recorded = (await readFile(log, 'utf8').catch(() => '')).split('\n').flatMap((line) => {
      const m = /^f (\d+) (\d+)$/.exec(line);
      return m ? [{ start: Number(m[1]), end: Number(m[2]) }] : [];
    });
    // Apache logs a request when it is done: wait for the killed connections' lines
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = (await warRequests()).length;
    const result = await runCli(['--config', config, 'download']);
    expect(result.exitCode, result.stderr).toBe(0);
    await expectStagedIs(war);
    for (const r of (await warRequests()).slice(before)) {
      for (const m of rangesOf(r.range)) for (const done of recorded) expect(m.end < done.start || m.start >= done.end, `${r.range} overlaps ${done.start}-${done.end}`).toBe(true);
    }
  }, 60_000);
});
