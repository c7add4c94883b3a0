/**
 * The built CLI against a real TLS download server with Basic auth on loopback: check, list --remote,
 * download. None of these commands may touch the server (no stop/start, letto.war unchanged).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyWar } from '../../src/war/verify.js';
import { listNames, makeServerLayout, runCli, writeConfig, type ServerLayout } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';

const USER = 'letto';
const PASSWORD = 'geheim-Ü9';

async function expectUntouched(layout: ServerLayout): Promise<void> {
  expect((await layout.calls()).filter((c) => c !== 'status')).toEqual([]);
  expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
  expect(await listNames(layout.webapps)).toEqual(['letto.war']);
}

describe.each(['flat', 'folders'] as const)('CLI against a TLS download server (archive layout %s)', (archiveLayout) => {
  let root: string;
  let server: DownloadServer;
  const layouts: ServerLayout[] = [];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'letto-dlroot-'));
    await populateDownloadRoot(root, { stable: 6886, daily: 6890, archive: [6870, 6880, 6875, 6886], archiveLayout });
    server = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
  });
  afterAll(async () => {
    await server?.close();
    await rm(root, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const l of layouts.splice(0)) await l.cleanup();
  });

  async function setup(revision: number | null = 6880): Promise<{ layout: ServerLayout; config: string }> {
    const layout = await makeServerLayout({ revision });
    layouts.push(layout);
    const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD });
    return { layout, config };
  }

  it('check: prints installed and available, exit 100 when a newer revision is available', async () => {
    const { layout, config } = await setup(6880);
    const r = await runCli(['--config', config, 'check']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(100);
    expect(r.stdout).toContain('installed: 6880');
    expect(r.stdout).toContain('available (stable): 6886');
    expect(r.stdout).toMatch(/update is available/i);
    // it logged in: every request carried the right credentials
    expect(server.requests.length).toBeGreaterThan(0);
    expect(server.requests.every((q) => q.authorized)).toBe(true);
    await expectUntouched(layout);
  });

  it('check: exit 0 when the installed revision is current', async () => {
    const { layout, config } = await setup(6886);
    const r = await runCli(['--config', config, 'check']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('installed: 6886');
    expect(r.stdout).toMatch(/up to date/i);
    await expectUntouched(layout);
  });

  it('check: exit 0 when the installed revision is newer than the channel', async () => {
    const { config } = await setup(6888);
    const r = await runCli(['--config', config, 'check']);
    expect(r.exitCode).toBe(0);
  });

  it('check --json: exactly one JSON object on stdout, revisions as numbers', async () => {
    const { config } = await setup(6880);
    const r = await runCli(['--config', config, '--json', 'check']);
    expect(r.exitCode).toBe(100);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(report).toMatchObject({ channel: 'stable', installed: 6880, available: 6886, updateAvailable: true });
    expect(typeof report.installed).toBe('number');
    expect(typeof report.available).toBe('number');
  });

  it('check --json when current: updateAvailable false, exit 0', async () => {
    const { config } = await setup(6886);
    const r = await runCli(['--json', '--config', config, 'check']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ installed: 6886, available: 6886, updateAvailable: false });
  });

  it('check --channel daily reads daily-revision.txt', async () => {
    const { config } = await setup(6886);
    server.requests.length = 0;
    const r = await runCli(['--config', config, '--json', 'check', '--channel', 'daily']);
    expect(r.exitCode).toBe(100);
    expect(JSON.parse(r.stdout)).toMatchObject({ channel: 'daily', installed: 6886, available: 6890, updateAvailable: true });
    expect(server.requests.map((q) => q.path)).toContain('/download/letto/daily-revision.txt');
    expect(server.requests.map((q) => q.path)).not.toContain('/download/letto/stable-revision.txt');
  });

  it('check: the installed revision is unknown without revision.txt and state → update available', async () => {
    const { config } = await setup(null);
    const r = await runCli(['--config', config, '--json', 'check']);
    expect(r.exitCode).toBe(100);
    expect(JSON.parse(r.stdout)).toMatchObject({ installed: null, available: 6886, updateAvailable: true });
  });

  it('check --channel nightly is a usage error (exit 2)', async () => {
    const { config } = await setup();
    const r = await runCli(['--config', config, 'check', '--channel', 'nightly']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/nightly/);
  });

  it('list --remote: the archive revisions, newest first', async () => {
    const { layout, config } = await setup(6880);
    const r = await runCli(['--config', config, 'list', '--remote']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('installed: 6880');
    const revisions = [...r.stdout.matchAll(/^ {2}(\d+) {2}https:\S+$/gm)].map((m) => Number(m[1]));
    expect(revisions).toEqual([6886, 6880, 6875, 6870]);
    await expectUntouched(layout);
  });

  it('list --remote --json: one object with backups and remote entries (absolute URLs under archiv/)', async () => {
    const { config } = await setup(6880);
    const r = await runCli(['--config', config, '--json', 'list', '--remote']);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]!) as { installed: number; backups: unknown[]; remote: Array<{ revision: number; url: string; kind: string }> };
    expect(report.installed).toBe(6880);
    expect(report.backups).toEqual([]);
    expect(report.remote.map((e) => e.revision)).toEqual([6886, 6880, 6875, 6870]);
    for (const entry of report.remote) {
      expect(entry.url.startsWith(`${server.url}archiv/`)).toBe(true);
      expect(entry.kind).toBe(archiveLayout === 'flat' ? 'war' : 'folder');
    }
  });

  it('list without --remote does not ask the server for the archive', async () => {
    const { config } = await setup(6880);
    server.requests.length = 0;
    const r = await runCli(['--config', config, '--json', 'list']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).not.toHaveProperty('remote');
    expect(server.requests.filter((q) => q.path.includes('archiv'))).toEqual([]);
  });

  it('download: a verified letto-<rev>.war lands in staging; webapps is untouched', async () => {
    const { layout, config } = await setup(6880);
    const r = await runCli(['--config', config, 'download']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Revision 6886 is downloaded and verified');
    expect(await listNames(layout.staging)).toEqual(['letto-6886.war']);
    expect(await verifyWar(join(layout.staging, 'letto-6886.war'), 6886)).toMatchObject({ revision: 6886 });
    await expectUntouched(layout);
  });

  it('download --json --channel daily: one object with revision, path and sha256', async () => {
    const { layout, config } = await setup(6880);
    const r = await runCli(['--config', config, '--json', 'download', '--channel', 'daily']);
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as { revision: number; path: string; sha256: string };
    expect(out.revision).toBe(6890);
    expect(out.path).toBe(join(layout.staging, 'letto-6890.war'));
    expect(out.sha256).toMatch(/^[0-9a-f]{64}$/);
    await expectUntouched(layout);
  });

  it('download --revision N fetches an older revision from the archive', async () => {
    const { layout, config } = await setup(6880);
    server.requests.length = 0;
    const r = await runCli(['--config', config, 'download', '--revision', '6875']);
    expect(r.exitCode).toBe(0);
    expect(await listNames(layout.staging)).toEqual(['letto-6875.war']);
    expect(await verifyWar(join(layout.staging, 'letto-6875.war'), 6875)).toMatchObject({ revision: 6875 });
    const expected = archiveLayout === 'flat' ? '/download/letto/archiv/letto-6875.war' : '/download/letto/archiv/6875/letto.war';
    expect(server.requests.map((q) => q.path)).toContain(expected);
    await expectUntouched(layout);
  });

  it('download --revision N of a revision the archive lacks: exit 1, names the newest ones', async () => {
    const { layout, config } = await setup(6880);
    const r = await runCli(['--config', config, 'download', '--revision', '6000']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('Revision 6000 is not in the server');
    expect(r.stderr).toContain('6886');
    expect(await listNames(layout.staging)).toEqual([]);
    await expectUntouched(layout);
  });
});
