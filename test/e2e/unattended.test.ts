/**
 * End-to-end, unattended operation: the built CLI against one real Apache Tomcat (as in update.test.ts),
 * the HTTPS download server and a real SMTP listener on loopback. The nightly `update --cron` and its
 * mail, a failed revision that the next nightly run leaves alone, `health` with TomEE up, hanging and
 * down, and `watchdog --once` restarting a dead TomEE — but not while the backup lock exists, and not
 * again within the grace period.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readWarRevision } from '../../src/war/verify.js';
import { runCli } from '../support/cli.js';
import { startE2eLetto, type E2eLetto } from '../support/e2e-letto.js';
import { startSmtpListener, type SmtpListener } from '../support/smtp.js';
import { describeWithTomcat, type LettoServer } from '../support/tomcat.js';

describeWithTomcat('unattended operation against a real Tomcat', () => {
  let letto: E2eLetto;
  let server: LettoServer;
  let smtp: SmtpListener;
  let hanging: Server;
  const sockets = new Set<Socket>();
  let config: string;
  let backupLock: string;

  beforeAll(async () => {
    smtp = await startSmtpListener();
    hanging = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    letto = await startE2eLetto({
      installed: 6880,
      downloads: { stable: 6886, daily: 6890, archive: [6880, 6886], brokenRevisions: [6890] },
      extraConfig: `[notify]
email_to = ["admin@schule.example"]
smtp_url = "${smtp.url}"

[watchdog]
failures = 2
grace = 300
`,
    });
    server = letto.server;
    config = letto.config;
    backupLock = letto.backupLock;
  }, 240_000);

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => hanging?.close(resolve));
    await smtp?.close();
    await letto?.close();
  });

  const cli = (...args: string[]) => runCli(['--config', config, ...args], { timeoutMs: 120_000 });
  const installed = () => readWarRevision(join(server.webapps, 'letto.war'));

  it('health: OK while TomEE answers, CRITICAL when it hangs (timeout)', async () => {
    const ok = await cli('health');
    expect(ok.exitCode, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^LETTO OK - revision 6880, HTTP 200 in \d+ ms \| time=/);

    const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/letto/test.jsf`;
    const hang = await runCli(['--config', config, 'health', '--timeout', '2'], { env: { LETTO_UPDATE_TOMEE_HEALTH_URL: url } });
    expect(hang.exitCode).toBe(2);
    expect(hang.stdout).toMatch(/^LETTO CRITICAL - revision 6880, .*: no answer within 2 s/);
  }, 60_000);

  it('update --cron installs the new revision and sends exactly one mail naming both revisions', async () => {
    const r = await cli('update', '--cron');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/updated: Revision 6886 runs and answers its health check/);
    expect(await installed()).toBe(6886);
    expect(smtp.mails).toHaveLength(1);
    expect(smtp.mails[0]!.subject).toMatch(/update 6880 -> 6886: updated/);
    expect(smtp.mails[0]!.raw).toMatch(/from: +revision 6880/);
    expect(smtp.mails[0]!.raw).toMatch(/to: +revision 6886/);
    expect(r.stdout + r.stderr + smtp.mails[0]!.raw).not.toContain(letto.password);

    const again = await cli('update', '--cron');
    expect(again).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    expect(smtp.mails).toHaveLength(1);
  }, 240_000);

  it('a revision that failed its health check is not retried by the next cron run', async () => {
    const failed = await cli('update', '--cron', '--channel', 'daily');
    expect(failed.exitCode, failed.stdout + failed.stderr).toBe(3);
    expect(await installed()).toBe(6886);
    expect(smtp.mails).toHaveLength(2);
    expect(smtp.mails[1]!.subject).toMatch(/update 6886 -> 6890: FAILED, previous revision restored/);
    expect(smtp.mails[1]!.raw).toContain('Last lines of');

    const requests = letto.download.requests.length;
    const next = await cli('update', '--cron', '--channel', 'daily');
    expect(next).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    expect(letto.download.requests.slice(requests).map((q) => q.path).filter((p) => p.endsWith('.war'))).toEqual([]);
    expect(smtp.mails).toHaveLength(2);
    expect(await installed()).toBe(6886);
  }, 240_000);

  it('watchdog --once: counts a dead TomEE, never restarts it during a backup, restarts it, then not again within grace', async () => {
    await server.stop();
    const down = await cli('health');
    expect(down.exitCode).toBe(2);
    expect(down.stdout).toMatch(/^LETTO CRITICAL - TomEE is not running/);

    const first = await cli('watchdog', '--once');
    expect(first.stdout, first.stderr).toMatch(/failure 1 of 2/);

    await mkdir(join(backupLock, '..'), { recursive: true });
    await writeFile(backupLock, 'backup running\n');
    const duringBackup = await cli('watchdog', '--once');
    expect(duringBackup.stdout).toMatch(/a backup is running .*no restart during a backup/);
    expect(await server.isRunning()).toBe(false);
    await rm(backupLock);

    const restart = await cli('watchdog', '--once');
    expect(restart.exitCode, restart.stdout + restart.stderr).toBe(0);
    expect(restart.stdout).toMatch(/TomEE was restarted and answers again/);
    expect(await server.isRunning()).toBe(true);
    expect((await cli('health')).exitCode).toBe(0);
    expect(smtp.mails).toHaveLength(3);
    expect(smtp.mails[2]!.subject).toMatch(/watchdog revision 6886: TomEE restarted by the watchdog/);

    await server.stop();
    for (let i = 0; i < 2; i++) {
      const grace = await cli('watchdog', '--once');
      expect(grace.stdout).toMatch(/within the grace of 300 s: not counted/);
    }
    expect(await server.isRunning()).toBe(false);
    expect(smtp.mails).toHaveLength(3);
  }, 240_000);
});
