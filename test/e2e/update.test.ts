/**
 * End-to-end: the built CLI against a real Apache Tomcat (Debian's tomcat10-user) laid out like
 * /opt/tomee and /opt/letto, and a real HTTPS download server with Basic auth on loopback.
 * Runs as a separate service user when the tests run as root.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import type { DownloadServer } from '../support/download-server.js';
import { startE2eLetto, type E2eLetto } from '../support/e2e-letto.js';
import { describeWithTomcat, type LettoServer } from '../support/tomcat.js';
import { readWarRevision } from '../../src/war/verify.js';

describeWithTomcat('update, failed update and rollback against a real Tomcat', () => {
  let letto: E2eLetto;
  let server: LettoServer;
  let download: DownloadServer;
  let config: string;
  let state: string;
  let backupLock: string;

  beforeAll(async () => {
    letto = await startE2eLetto({
      installed: 6880,
      downloads: { stable: 6886, daily: 6890, archive: [6870, 6880, 6886], brokenRevisions: [6890] },
    });
    ({ server, download, config, state, backupLock } = letto);
  }, 240_000);

  afterAll(async () => {
    await letto?.close();
  });

  const cli = (...args: string[]) => runCli(['--config', config, ...args]);

  async function installedRevision(): Promise<number | null> {
    return readWarRevision(join(server.webapps, 'letto.war'));
  }

  /** Invariant: webapps holds letto.war (owned by the service user) and nothing else TomEE would deploy. */
  async function expectCleanWebapps(): Promise<void> {
    const names = (await readdir(server.webapps)).filter((n) => n.endsWith('.war') || !n.includes('.'));
    expect(names.filter((n) => n.endsWith('.war'))).toEqual(['letto.war']);
    expect((await readdir(server.webapps)).filter((n) => n.includes('letto-update'))).toEqual([]);
    expect((await stat(join(server.webapps, 'letto.war'))).uid).toBe(server.serviceUser.uid);
    await expect(stat(backupLock)).rejects.toThrow();
  }

  async function healthBody(): Promise<string> {
    const response = await fetch(server.healthUrl);
    expect(response.status).toBe(200);
    return response.text();
  }

  it('check reports the installed and the available revision', async () => {
    const result = await cli('--json', 'check');
    expect(result.exitCode).toBe(100);
    expect(JSON.parse(result.stdout)).toMatchObject({ channel: 'stable', installed: 6880, available: 6886, updateAvailable: true });
  });

  it('update installs the stable revision, keeps a backup and LeTTo answers', async () => {
    const result = await cli('update', '--yes');
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(await installedRevision()).toBe(6886);
    expect(await healthBody()).toContain('revision 6886');
    await expectCleanWebapps();
    expect((await readdir(join(server.letto, 'backup/war')))).toContain('letto-6880.war');
    const runs = (await readFile(join(state, 'runs.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(runs.at(-1)).toMatchObject({ command: 'update', from: 6880, to: 6886, result: 'updated' });
    expect(runs.at(-1).sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(result.stdout + result.stderr).not.toContain(letto.password);
  }, 240_000);

  it('a revision that fails its health check is rolled back by itself (exit 3)', async () => {
    const result = await cli('update', '--channel', 'daily', '--yes');
    expect(result.exitCode, result.stdout + result.stderr).toBe(3);
    expect(result.stderr).toContain('6890');
    expect(result.stderr).toContain('catalina.out');
    expect(await installedRevision()).toBe(6886);
    expect(await healthBody()).toContain('revision 6886');
    await expectCleanWebapps();
    // Tomcat logs why the context failed (the missing listener) into its logs folder
    const logs = join(server.tomee, 'logs');
    const texts = await Promise.all((await readdir(logs)).map((name) => readFile(join(logs, name), 'utf8')));
    expect(texts.join('\n')).toContain('DoesNotExist');
  }, 240_000);

  it('rollback --to an archived revision downloads it from archiv/ and installs it', async () => {
    const result = await cli('rollback', '--to', '6870', '--yes');
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(await installedRevision()).toBe(6870);
    expect(await healthBody()).toContain('revision 6870');
    expect(download.requests.some((r) => r.path.includes('archiv/letto-6870.war'))).toBe(true);
    await expectCleanWebapps();
  }, 240_000);

  it('rollback without --to returns to the revision installed before', async () => {
    const result = await cli('rollback', '--yes');
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(await installedRevision()).toBe(6886);
    expect(await healthBody()).toContain('revision 6886');
  }, 240_000);

  it('status says TomEE runs and answers, with the last run', async () => {
    const result = await cli('--json', 'status');
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ installed: 6886, running: true, healthy: true, lastRun: { command: 'rollback', to: 6886 } });
  }, 60_000);
});
