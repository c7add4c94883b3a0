/**
 * The delta download (`server.delta`) through the built CLI against the TLS + Basic-auth loopback
 * server: the new WAR is assembled from the entries of the installed WAR or a backup and Range requests
 * for the rest. Each case asserts the bytes on disk (the staged WAR is byte for byte the server's file)
 * and the bytes the server sent.
 */
import { createHash } from 'node:crypto';
import { existsSync, utimesSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TAIL } from '../../src/war/delta/remote-directory.js';
import { directoryOfFile } from '../../src/war/delta/zip-directory.js';
import { buildDeltaWar, type DeltaWarOptions } from '../../fixtures/delta-wars.js';
import { makeServerLayout, runCli, spawnCli, writeConfig, type ServerLayout } from '../support/cli.js';
import { startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { prng, testSeed } from '../support/seeded.js';

const USER = 'letto';
const PASSWORD = 'geheim';
const OLD = 6885;
const NEW = 6886;

let root: string;
let server: DownloadServer;
let layout: ServerLayout;
let config: string;
/** Decides per request whether the test server answers it itself (see the cases below). */
let hook: (req: IncomingMessage, res: ServerResponse) => boolean = () => false;

const serverWar = () => join(root, 'letto-stable.war');
const staged = () => join(layout.staging, `letto-${NEW}.war`);
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const warRequests = () => server.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/letto-stable.war'));
const sent = () => warRequests().reduce((sum, r) => sum + r.bodyBytes, 0);
/** The ranges of a `Range: bytes=a-b,c-d` header (inclusive ends); [] for none or a suffix range. */
const rangesOf = (header: unknown): Array<{ start: number; end: number }> =>
  String(header ?? '').replace(/^bytes=/, '').split(',').flatMap((spec) => {
    const m = /^(\d+)-(\d+)$/.exec(spec);
    return m ? [{ start: Number(m[1]), end: Number(m[2]) }] : [];
  });

/** Every Range header is sorted, non-overlapping, not adjacent, and within 100 ranges (far inside Apache's limits). */
function expectWellFormedRanges(): void {
  for (const r of warRequests()) {
    const ranges = rangesOf(r.headers.range);
    expect(ranges.length).toBeLessThanOrEqual(100);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.start, String(r.headers.range)).toBeGreaterThan(ranges[i - 1]!.end + 1);
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-delta-'));
  await writeFile(join(root, 'stable-revision.txt'), `${NEW}\r\n`);
  server = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD, onRequest: (req, res) => hook(req, res) });
});

afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  hook = () => false;
  server.requests.length = 0;
  server.faults.length = 0;
  layout = await makeServerLayout({ revision: OLD });
  config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, server: { retry_wait: 0.05, idle_timeout: 30 } });
});

afterEach(async () => {
  await layout.cleanup();
});

/** The installed WAR is revision OLD built with `old`, the server's revision NEW with `now`. */
async function builds(old: Partial<DeltaWarOptions>, now: Partial<DeltaWarOptions>): Promise<Buffer> {
  await buildDeltaWar(layout.war, { revision: OLD, ...old });
  await buildDeltaWar(serverWar(), { revision: NEW, ...now });
  return readFile(serverWar());
}

async function download(): Promise<{ json: { download: { mode: string; fetched: number; total: number; text: string } | null; sha256: string }; stderr: string }> {
  const result = await runCli(['--config', config, '--json', 'download']);
  expect(result.exitCode, result.stderr).toBe(0);
  return { json: JSON.parse(result.stdout), stderr: result.stderr };
}

/** A plain (not --json) run: its step lines tell why the delta download was not used. */
async function downloadText(): Promise<string> {
  const result = await runCli(['--config', config, 'download']);
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout + result.stderr;
}

/** The staged WAR is the server's file, and no delta download file is left. */
async function expectStagedIs(war: Buffer): Promise<void> {
  expect((await readFile(staged())).equals(war)).toBe(true);
  expect(await readdir(layout.staging)).toEqual([`letto-${NEW}.war`]);
}

describe('delta download', () => {
  it('reuses the unchanged jars of the installed WAR: a byte-for-byte copy of the server file for a fraction of its bytes', async () => {
    const war = await builds({}, { changedClasses: true, changedJars: ['lib-3.jar'] });
    const { json } = await download();
    const onDisk = await readFile(staged());
    expect(onDisk.equals(war)).toBe(true);
    expect(json.sha256).toBe(sha(war));
    expect(json.download).toMatchObject({ mode: 'delta', total: war.length });
    expect(json.download!.text).toMatch(new RegExp(`^fetched [\\d.]+ MiB of [\\d.]+ MiB; \\d+ % reused from revision ${OLD}$`));
    // the last 512 KiB (directory), the changed jar (256 KiB), the classes and the local headers
    expect(sent()).toBeLessThan(TAIL + 256 * 1024 + 128 * 1024);
    expect(sent()).toBe(json.download!.fetched);
    const gets = warRequests();
    // the directory (a suffix range), then the rest in multipart answers of several ranges each
    expect(gets[0]!.headers.range).toMatch(/^bytes=-\d+$/);
    for (const r of gets) expect(r.status).toBe(206);
    expect(gets.slice(1).some((r) => rangesOf(r.headers.range).length > 1)).toBe(true);
    expect(gets.length).toBeLessThan(1 + gets.slice(1).reduce((sum, r) => sum + rangesOf(r.headers.range).length, 0));
    expectWellFormedRanges();
    // every request after the first one is tied to the same file
    for (const r of gets.slice(1)) expect(r.headers['if-range']).toBeTruthy();
    expect(await readdir(layout.staging)).toEqual([`letto-${NEW}.war`]);
  });

  it('everything changed: too little to reuse, the whole file is downloaded (one line says why)', async () => {
    const war = await builds({}, { changedAll: true });
    const out = await downloadText();
    expect(out).toMatch(/Delta download not used: only 0 % of it could be reused/);
    await expectStagedIs(war);
    const gets = warRequests();
    // the directory (one range), then the whole file once
    expect(gets.map((r) => r.status)).toEqual([206, 200]);
    expect(sent()).toBe(Math.min(TAIL, war.length) + war.length);
  });

  it('a server that ignores Range: the 200 is not read, the whole file is downloaded once', async () => {
    // large enough (24 MiB) that the first answer cannot all go into the sockets' buffers before it is dropped
    const war = await builds({ jars: 24, jarBytes: 1 << 20 }, { jars: 24, jarBytes: 1 << 20, changedJars: ['lib-3.jar'] });
    server.faults.push({ kind: 'ignore-range' });
    const out = await downloadText();
    expect(out).toMatch(/Delta download not used: the server answered a Range request with HTTP 200 and the whole file/);
    await expectStagedIs(war);
    const gets = warRequests();
    expect(gets.map((r) => r.status)).toEqual([200, 200]);
    // the first answer was dropped after what the sockets had buffered, not read to its end
    expect(gets[0]!.bodyBytes).toBeLessThan(war.length);
    expect(gets[1]!.bodyBytes).toBe(war.length);
  });

  it('a server that answers too many ranges with 200 (as Apache over MaxRanges): that answer is dropped unread, the ranges are asked for one by one', async () => {
    // large enough (24 MiB) that the 200 cannot all go into the sockets' buffers before it is dropped
    const war = await builds({ jars: 24, jarBytes: 1 << 20 }, { jars: 24, jarBytes: 1 << 20, changedJars: ['lib-1.jar', 'lib-5.jar', 'lib-9.jar', 'lib-13.jar', 'lib-17.jar'] });
    const strict = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD, maxRanges: 2 });
    try {
      config = await writeConfig(layout, { url: strict.url, caPem: strict.caPem, user: USER }, { password: PASSWORD, server: { retry_wait: 0.05, idle_timeout: 30 } });
      const out = await downloadText();
      expect(out).toMatch(/Asking for one range at a time: the server answered a request for \d+ ranges with HTTP 200 and the whole file \(not read\)/);
      expect(out).toMatch(new RegExp(`reused from revision ${OLD}`));
      await expectStagedIs(war);
      const gets = strict.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/letto-stable.war'));
      const refused = gets.filter((r) => r.status === 200);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) {
        expect(rangesOf(r.headers.range).length).toBeGreaterThan(2);
        expect(r.bodyBytes).toBeLessThan(war.length);
      }
      const singles = gets.filter((r) => r.status === 206);
      for (const r of singles.slice(1)) expect(rangesOf(r.headers.range)).toHaveLength(1);
      // the bytes of the new WAR the server sent in 206 answers: the changed jars, the classes, the headers and the directory
      expect(singles.reduce((sum, r) => sum + r.bodyBytes, 0)).toBeLessThan(TAIL + 5 * (1 << 20) + 256 * 1024);
    } finally {
      await strict.close();
    }
  }, 60_000);

  it('a multipart answer with one part, or one that cannot be read: the rest is asked for one range at a time', async () => {
    const war = await builds({ jars: 24 }, { jars: 24, changedClasses: true, changedJars: ['lib-1.jar', 'lib-5.jar', 'lib-9.jar'] });
    for (const kind of ['single-part', 'bad-part'] as const) {
      server.requests.length = 0;
      await rm(staged(), { force: true });
      let multi = 0;
      hook = (req) => {
        if (rangesOf(req.headers.range).length > 1 && ++multi === 1) server.faults.push({ kind });
        return false;
      };
      const out = await downloadText();
      expect(out, kind).toMatch(kind === 'single-part' ? /Asking for one range at a time: the server answered a request for \d+ ranges with one part/ : /Asking for one range at a time: the multipart answer holds bytes \d+-\d+, which were not asked for/);
      await expectStagedIs(war);
      const gets = warRequests();
      const first = gets.findIndex((r) => rangesOf(r.headers.range).length > 1);
      // after the odd answer, single ranges only; each asked byte of the new WAR came once, apart from that answer
      expect(gets.slice(first + 1).every((r) => rangesOf(r.headers.range).length === 1)).toBe(true);
      const singles = gets.slice(first + 1).flatMap((r) => rangesOf(r.headers.range));
      const asked = rangesOf(gets[first]!.headers.range);
      for (const s of singles) expect(asked.some((a) => a.start <= s.start && s.end <= a.end)).toBe(true);
      expectWellFormedRanges();
    }
  });

  it('a multipart answer that breaks off: only the bytes not yet received are asked for again', async () => {
    const war = await builds({ jars: 24 }, { jars: 24, changedClasses: true, changedJars: ['lib-1.jar', 'lib-5.jar', 'lib-9.jar'] });
    let multi = 0;
    hook = (req) => {
      if (rangesOf(req.headers.range).length > 1 && ++multi === 1) server.faults.push({ kind: 'drop', after: 300 * 1024 });
      return false;
    };
    const { json } = await download();
    await expectStagedIs(war);
    expect(json.download).toMatchObject({ mode: 'delta' });
    const gets = warRequests();
    const dropped = gets.findIndex((r) => rangesOf(r.headers.range).length > 1);
    expect(gets[dropped]!.bodyBytes).toBe(300 * 1024);
    // the retry asks for what was not received: all but the bytes that reached the client (less what was
    // in flight when the connection broke: the socket buffers, the parser's look-ahead for the boundary)
    const before = rangesOf(gets[dropped]!.headers.range);
    const total = (ranges: Array<{ start: number; end: number }>) => ranges.reduce((sum, r) => sum + r.end - r.start + 1, 0);
    const again = gets.slice(dropped + 1).map((r) => rangesOf(r.headers.range)).find((ranges) => ranges.some((a) => before.some((b) => a.start <= b.end && b.start <= a.end)))!;
    expect(again).toBeDefined();
    expect(total(before) - total(again)).toBeGreaterThan(300 * 1024 - 64 * 1024);
    expect(total(before) - total(again)).toBeLessThanOrEqual(300 * 1024);
    expect(again[0]!.start).toBeGreaterThan(before[0]!.start);
    expect(sent() - json.download!.fetched).toBeGreaterThanOrEqual(0);
    expect(sent() - json.download!.fetched).toBeLessThan(64 * 1024);
  });

  it('a server that answers 200 to ranges after a while: falls back to the whole file, nothing of the delta download is left', async () => {
    const war = await builds({ jars: 24 }, { jars: 24, changedJars: ['lib-1.jar', 'lib-5.jar', 'lib-9.jar', 'lib-13.jar', 'lib-17.jar'] });
    let ranges = 0;
    hook = (req) => {
      // the first multipart request gets 200 (so single ranges follow), and so does the second single range
      if (req.headers.range && [2, 4].includes(++ranges)) server.faults.push({ kind: 'ignore-range' });
      return false;
    };
    const out = await downloadText();
    expect(out).toMatch(/Asking for one range at a time: the server answered a request for \d+ ranges with HTTP 200/);
    expect(out).toMatch(/Delta download not used: the server answered a Range request with HTTP 200/);
    await expectStagedIs(war);
    const gets = warRequests();
    expect(gets.filter((r) => r.status === 200)).toHaveLength(3);
    expect(gets.at(-1)).toMatchObject({ status: 200, bodyBytes: war.length });
    expect(gets.at(-1)!.headers.range).toBeUndefined();
  });

  it('the WAR changes on the server between its directory and its data: If-Range catches it, the new file is downloaded whole', async () => {
    const war = await builds({}, { changedJars: ['lib-3.jar'] });
    let ranges = 0;
    let etag = '';
    hook = (req) => {
      // the server's file gets a new date (so a new ETag) after its directory was read, as when it is replaced
      if (req.headers.range && ++ranges === 2) {
        etag = String(req.headers['if-range']);
        utimesSync(serverWar(), new Date(), new Date(Date.now() + 5000));
      }
      return false;
    };
    const out = await downloadText();
    expect(out).toMatch(/Delta download not used: the WAR changed on the server meanwhile/);
    await expectStagedIs(war);
    const gets = warRequests();
    // the first range request's ETag guarded the second; the server answered it with 200, which was not read
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(gets[1]).toMatchObject({ status: 200 });
    expect(gets[1]!.bodyBytes).toBeLessThan(war.length);
    expect(gets.at(-1)).toMatchObject({ status: 200, bodyBytes: war.length });
    expect(gets.at(-1)!.headers.range).toBeUndefined();
  });

  it('a backup with a damaged entry: that entry is fetched, not copied', async () => {
    const war = await builds({}, { changedClasses: true });
    // the installed WAR is some other build; the backup of revision OLD holds the jars, one of them damaged
    const backup = join(layout.backups, `letto-${OLD}.war`);
    await copyFile(layout.war, backup);
    await buildDeltaWar(layout.war, { revision: 6000, changedAll: true });
    const entry = (await directoryOfFile(backup)).entries.find((e) => e.name === 'WEB-INF/lib/lib-5.jar')!;
    const bytes = await readFile(backup);
    const start = entry.offset + 30 + bytes.readUInt16LE(entry.offset + 26) + bytes.readUInt16LE(entry.offset + 28);
    bytes[start + 1000] = bytes[start + 1000]! ^ 0xff;
    await writeFile(backup, bytes);
    const { json } = await download();
    await expectStagedIs(war);
    expect(json.download).toMatchObject({ mode: 'delta' });
    expect(json.download!.text).toMatch(new RegExp(`reused from revision ${OLD}$`));
    // the damaged jar's data (256 KiB) came from the server: some request covers it in the server's file
    const remote = (await directoryOfFile(serverWar())).entries.find((e) => e.name === 'WEB-INF/lib/lib-5.jar')!;
    const at = remote.offset + 30 + war.readUInt16LE(remote.offset + 26) + war.readUInt16LE(remote.offset + 28);
    const served = warRequests().flatMap((r) => rangesOf(r.headers.range));
    expect(served.some((m) => m.start <= at && m.end >= at + remote.compressedSize - 1)).toBe(true);
    expect(sent()).toBe(json.download!.fetched);
    expect(sent()).toBeLessThan(TAIL + 256 * 1024 + 128 * 1024);
  });

  it('an installed WAR whose SHA-256 an update recorded: its entries are copied without inflating them; once damaged, it is checked entry by entry again', async () => {
    const war = await builds({}, { changedClasses: true, changedJars: ['lib-3.jar'] });
    const installed = await readFile(layout.war);
    // what `update` records after it verified and installed this WAR
    await mkdir(layout.state, { recursive: true });
    await writeFile(join(layout.state, 'runs.jsonl'), `${JSON.stringify({ time: new Date().toISOString(), command: 'update', from: 6884, to: OLD, result: 'updated', durationSeconds: 9, message: 'updated', sha256: sha(installed) })}\n`);
    let out = await downloadText();
    expect(out).toMatch(/entries copied from local WARs \((\d+) of them from a WAR whose SHA-256 is that of one verified and installed before, so not inflated again\)/);
    await expectStagedIs(war);
    expect(sent()).toBeLessThan(TAIL + 256 * 1024 + 128 * 1024);

    // the same WAR with one byte of a jar changed on disk: its SHA-256 no longer matches, every entry is inflated and checked
    await rm(staged());
    server.requests.length = 0;
    const entry = (await directoryOfFile(layout.war)).entries.find((e) => e.name === 'WEB-INF/lib/lib-5.jar')!;
    const start = entry.offset + 30 + installed.readUInt16LE(entry.offset + 26) + installed.readUInt16LE(entry.offset + 28);
    installed[start + 1000] = installed[start + 1000]! ^ 0xff;
    await writeFile(layout.war, installed);
    out = await downloadText();
    expect(out).not.toMatch(/not inflated again/);
    await expectStagedIs(war);
    // the damaged jar (256 KiB) came from the server
    expect(sent()).toBeGreaterThan(256 * 1024);
    expect(sent()).toBeLessThan(TAIL + 2 * 256 * 1024 + 128 * 1024);
  });

  it('a zip64 WAR: its directory is read through the zip64 records and its jars are reused', async () => {
    const war = await builds({ zip64: true }, { zip64: true, changedJars: ['lib-3.jar'] });
    expect(war.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true);
    const { json } = await download();
    await expectStagedIs(war);
    expect(json.download).toMatchObject({ mode: 'delta' });
    expect(sent()).toBe(json.download!.fetched);
    expect(sent()).toBeLessThan(TAIL + 256 * 1024 + 128 * 1024);
  });

  it('a kill at a random moment of a delta download: nothing looks like a WAR, the next run fetches no byte twice', async () => {
    const seed = testSeed('delta kill test');
    const random = prng(seed);
    const war = await builds({ jars: 16 }, { jars: 16, changedClasses: true, changedJars: ['lib-2.jar', 'lib-7.jar', 'lib-12.jar'] });
    // a slow server (256 KiB/s) so that the kill falls into the download
    const slow = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD, rate: 256 * 1024 });
    try {
      config = await writeConfig(layout, { url: slow.url, caPem: slow.caPem, user: USER }, { password: PASSWORD, server: { retry_wait: 0.05, idle_timeout: 30 } });
      const child = spawnCli(['--config', config, 'download']);
      const log = join(layout.staging, `letto-${NEW}.war.delta.log`);
      // the kill moment: anywhere from before the first range to the end of the fetching
      await new Promise((resolve) => setTimeout(resolve, 300 + random() * 4000));
      child.kill('SIGKILL');
      await child;
      const names = await readdir(layout.staging);
      // a WAR in staging only if it is the complete, verified file (the kill came after the rename)
      if (names.includes(`letto-${NEW}.war`)) expect((await readFile(staged())).equals(war)).toBe(true);
      const recorded = existsSync(log) ? (await readFile(log, 'utf8')).split('\n').flatMap((line) => {
        const m = /^f (\d+) (\d+)$/.exec(line);
        return m ? [{ start: Number(m[1]), end: Number(m[2]) }] : [];
      }) : [];
      const firstRun = slow.requests.length;
      const result = await runCli(['--config', config, '--json', 'download']);
      expect(result.exitCode, result.stderr).toBe(0);
      await expectStagedIs(war);
      // no range of the second run asks again for a byte the first run had written and recorded
      for (const r of slow.requests.slice(firstRun)) {
        for (const m of rangesOf(r.headers.range)) for (const done of recorded) expect(m.end < done.start || m.start >= done.end, `${r.headers.range} overlaps ${done.start}-${done.end}`).toBe(true);
      }
      const json = JSON.parse(result.stdout) as { download: { fetched: number } | null };
      if (json.download) {
        const both = slow.requests.filter((r) => r.path.endsWith('.war')).reduce((sum, r) => sum + r.bodyBytes, 0);
        // everything sent over both runs was used, apart from what was in flight at the kill (socket buffers)
        expect(both).toBeLessThanOrEqual(json.download.fetched + 4 * 1024 * 1024);
      }
    } finally {
      await slow.close();
    }
  }, 60_000);
});
