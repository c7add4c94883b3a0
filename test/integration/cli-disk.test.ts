/**
 * Disk space: the free-space check before the download, and a real ENOSPC in the middle of a run.
 * Folders are put on small tmpfs mounts (needs root with CAP_SYS_ADMIN; the suite skips with the
 * reason otherwise). The new WAR is made much bigger than the installed one, so the check (which
 * estimates the new WAR by the installed one) passes and the disk really fills up mid-step.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildWar } from '../../fixtures/build-war.js';
import { type FakeHealth, listNames, makeServerLayout, runCli, type ServerLayout, startFakeHealth, writeConfig } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { expectWebappsInvariant } from '../support/invariant.js';

const USER = 'letto';
const PASSWORD = 'geheim-Disk-3';

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, not in every container). */
function canMount(): { ok: true } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not running as root' };
  const dir = spawnSync('mktemp', ['-d'], { encoding: 'utf8' }).stdout.trim();
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    spawnSync('rmdir', [dir]);
    return { ok: false, reason: `mount -t tmpfs is not permitted here (${(mounted.stderr || '').trim()})` };
  }
  spawnSync('umount', [dir]);
  spawnSync('rmdir', [dir]);
  return { ok: true };
}

const mountable = canMount();
if (!mountable.ok) console.warn(`\n*** DISK-FULL TESTS SKIPPED: ${mountable.reason}. The free-space check is still covered by its own case. ***\n`);

let root: string;
let server: DownloadServer;
let health: FakeHealth;
let healthUrl: string;
let current: ServerLayout | null = null;
const mounts: string[] = [];

function mountTmpfs(dir: string, size: string): void {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount failed: ${r.stderr}`);
  mounts.push(dir);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-disk-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6890 });
  await buildWar(join(root, 'letto-stable.war'), { revision: 6886, padBytes: 3 * 1024 * 1024 }); // ~3 MiB, incompressible
  server = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
  health = await startFakeHealth({ layout: () => current });
  healthUrl = health.url;
});

afterAll(async () => {
  await server?.close();
  await health?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

afterEach(async () => {
  for (const dir of mounts.splice(0)) spawnSync('umount', [dir]);
  await current?.cleanup();
  current = null;
});

async function setup(margin: number): Promise<{ layout: ServerLayout; config: string }> {
  const layout = await makeServerLayout({ revision: 6880 });
  current = layout;
  const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, {
    password: PASSWORD,
    tomee: { health_url: healthUrl, health_timeout: 2 },
    paths: { free_space_margin: margin },
  });
  return { layout, config };
}

function warDownloads(): number {
  return server.requests.filter((r) => r.path.endsWith('.war')).length;
}

describe('free space is checked before the download', () => {
  it('a margin larger than the free space: exit 1, says how much is free and needed, nothing downloaded or changed', async () => {
    const { layout, config } = await setup(100 * 1024 * 1024); // 100 TiB
    server.requests.length = 0;
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/Not enough free disk space for .*: [\d.]+ MiB free, [\d.]+ MiB needed \(4 × the WAR's [\d.]+ MiB \+ 104857600 MiB margin\)\. Nothing was changed\./);
    expect(r.stderr).toMatch(/what to do: Free space/);
    expect(warDownloads()).toBe(0);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect(await layout.calls()).toEqual([]);
  });

  it.skipIf(!mountable.ok)('backups on a 1 MiB file system and a 2 MiB installed WAR: exit 1 naming the backups folder', async () => {
    const { layout, config } = await setup(0);
    await buildWar(layout.war, { revision: 6880, padBytes: 2 * 1024 * 1024 });
    const initial = await layout.warBytes();
    mountTmpfs(layout.backups, '1m');
    server.requests.length = 0;
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`Not enough free disk space for ${layout.backups}:`);
    expect(warDownloads()).toBe(0);
    expect((await layout.warBytes()).equals(initial)).toBe(true);
    expect(await listNames(layout.backups)).toEqual([]);
  });
});

describe.skipIf(!mountable.ok)('ENOSPC in the middle of a run (real, on tmpfs): a clear error, nothing lost', () => {
  it('staging fills up during the download: exit 1, the server untouched, no partial file left', async () => {
    const { layout, config } = await setup(0);
    mountTmpfs(layout.staging, '1m');
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/The disk is full while downloading into .*opt\/letto\/war\. Nothing was changed\./);
    expect(r.stderr).toMatch(/what to do: /);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect(await layout.calls()).not.toContain('stop');
    expect(await listNames(layout.staging)).toEqual([]);
    expect(await listNames(layout.state)).not.toContain('journal.json');
  });

  it('the state folder is full: exit 1 with a clear message, no empty run lock left, the server untouched', async () => {
    const { layout, config } = await setup(0);
    mountTmpfs(layout.state, '256k');
    await writeFile(join(layout.state, 'filler'), Buffer.alloc(256 * 1024)).catch(() => undefined); // fills it up
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/The disk is full \(no space left on device\)/);
    expect(r.stderr).toMatch(/what to do: Free space/);
    expect(await listNames(layout.state)).toEqual(['filler']);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual([]);
  });

  it('webapps fills up during the swap (TomEE already stopped): the old WAR is kept, TomEE runs it again (exit 3)', async () => {
    const { layout, config } = await setup(0);
    const before = (await stat(layout.war)).size;
    expect(before).toBeLessThan(256 * 1024);
    mountTmpfs(layout.webapps, '2m');
    await writeFile(layout.war, layout.initialWar);
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toMatch(/disk is full/i);
    expect(r.stderr).toMatch(/Revision 6880 was put back and answers its health check again/);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    await expectWebappsInvariant(layout.webapps, [6880], { settled: true });
    const calls = await layout.calls();
    expect(calls.filter((c) => c !== 'status')).toEqual(['stop', 'start']);
    expect(await listNames(layout.state)).not.toContain('journal.json');
  });
});
