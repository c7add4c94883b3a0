/**
 * `update` through the built CLI with the layout's fake scripts (no TomEE) and a tiny health server
 * that answers 200 or 404 depending on the revision in webapps/letto.war: the exit codes 0 and 3 and
 * the --json contract of update.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readWarRevision } from '../../src/war/verify.js';
import { type FakeHealth, makeServerLayout, runCli, type ServerLayout, startFakeHealth, writeConfig } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';

const USER = 'letto';
const PASSWORD = 'geheim';

let root: string;
let server: DownloadServer;
let health: FakeHealth;
let healthUrl: string;
/** The layout whose webapps the health server looks at. */
let current: ServerLayout | null = null;
const unhealthy = new Set<number>([6890]);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-upd-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6890, archive: [6870] });
  server = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
  health = await startFakeHealth({ layout: () => current, unhealthy });
  healthUrl = health.url;
});

afterAll(async () => {
  await server?.close();
  await health?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

afterEach(async () => {
  await current?.cleanup();
  current = null;
});

async function setup(): Promise<{ layout: ServerLayout; config: string }> {
  const layout = await makeServerLayout({ revision: 6880 });
  current = layout;
  const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, tomee: { health_url: healthUrl, health_timeout: 1 } });
  return { layout, config };
}

describe('update through the CLI (fake scripts, real files, real health probe)', () => {
  it('installs the stable revision: exit 0, backup kept, run recorded, status shows it', async () => {
    const { layout, config } = await setup();
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/Revision 6886 runs and answers its health check/);
    expect(await readWarRevision(layout.war)).toBe(6886);
    expect(await readdir(layout.backups)).toEqual(['letto-6880.war']);
    expect((await readFile(join(layout.backups, 'letto-6880.war'))).equals(layout.initialWar)).toBe(true);
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual(['stop', 'start']);
    expect(await readdir(join(layout.backupLock, '..'))).toEqual([]);

    const status = await runCli(['--config', config, '--json', 'status']);
    expect(status.exitCode).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ installed: 6886, running: true, healthy: true, lastRun: { command: 'update', from: 6880, to: 6886, result: 'updated' } });

    // a second run finds it current and touches nothing
    const again = await runCli(['--config', config, 'update', '--yes']);
    expect(again.exitCode).toBe(0);
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual(['stop', 'start']);
  });

  it('update --json: one JSON object with result and exitCode', async () => {
    const { config } = await setup();
    const r = await runCli(['--config', config, '--json', 'update', '--yes']);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ command: 'update', result: 'updated', from: 6880, to: 6886, exitCode: 0 });
  });

  it('update --dry-run changes nothing', async () => {
    const { layout, config } = await setup();
    const r = await runCli(['--config', config, 'update', '--dry-run']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/Dry run: would update LeTTo from revision 6880 to 6886/);
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual([]);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
  });

  it('the new revision fails its health check: exit 3, the old WAR runs again, says where to look', async () => {
    const { layout, config } = await setup();
    const r = await runCli(['--config', config, 'update', '--yes', '--channel', 'daily']);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(/Revision 6890 did not answer .* with HTTP 200 within 1 s/);
    expect(r.stderr).toMatch(/Revision 6880 was put back and answers its health check again/);
    expect(r.stderr).toContain('catalina.out');
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual(['stop', 'start', 'stop', 'start']);
    expect(await readdir(join(layout.backupLock, '..'))).toEqual([]);
  });

  it('update --json when the new revision fails: still exactly one JSON object', async () => {
    const { config } = await setup();
    const r = await runCli(['--config', config, '--json', 'update', '--yes', '--channel', 'daily']);
    expect(r.exitCode).toBe(3);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ result: 'rolled-back', exitCode: 3, from: 6880, to: 6890 });
  });
});

describe('confirmation', () => {
  it('on a terminal, update asks first; answering no changes nothing (exit 1)', async () => {
    const { layout, config } = await setup();
    const { execa } = await import('execa');
    const { CLI_BIN } = await import('../support/cli.js');
    // `script` gives the CLI a real pseudo-terminal; the answer "n" is typed into it
    const command = [process.execPath, CLI_BIN, '--config', config, 'update'].map((a) => `'${a}'`).join(' ');
    const r = await execa('script', ['-qec', command, '/dev/null'], { input: 'n\n', reject: false, env: { LETTO_UPDATE_PASSWORD: PASSWORD, COLUMNS: '100' } });
    expect(r.stdout).toMatch(/Update LeTTo from revision 6880 to 6886 \(stable channel\); TomEE will be restarted\. Continue\? \[y\/N\]/);
    expect(r.stdout).toContain('Cancelled; nothing was changed.');
    expect(r.exitCode).toBe(1);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual([]);
  });

  it('without a terminal, update never asks', async () => {
    const { layout, config } = await setup();
    const r = await runCli(['--config', config, 'update']);
    expect(r.stdout).not.toContain('Continue?');
    expect(r.exitCode).toBe(0);
    expect(await readWarRevision(layout.war)).toBe(6886);
  });
});
