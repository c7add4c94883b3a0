/**
 * Unattended operation through the built CLI, with the layout's fake scripts (no TomEE), a real HTTPS
 * download server, a tiny health server (200 when "TomEE runs" and the installed revision is healthy),
 * a real SMTP listener and a real webhook receiver on loopback: `update --cron`, notifications,
 * `health`, `watchdog --once`, `history`. The same behaviour against a real Tomcat is in
 * test/e2e/unattended.test.ts.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readWarRevision } from '../../src/war/verify.js';
import { type ConfigOverrides, type FakeHealth, makeServerLayout, runCli, type ServerLayout, spawnCli, startFakeHealth, writeConfig } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { startWebhook, type WebhookPost, type WebhookReceiver } from '../support/webhook.js';
import { startSmtpListener, type SmtpListener } from '../support/smtp.js';

const USER = 'letto';
const PASSWORD = 'geheim-Download-1';
const SMTP_PASSWORD = 'smtp-Geheimnis-42';

let root: string;
let download: DownloadServer;
let smtp: SmtpListener;
let health: FakeHealth;
let healthUrl: string;
let hanging: TcpServer;
let hangingUrl: string;
const hangingSockets = new Set<Socket>();
let webhook: WebhookReceiver<unknown>;
let webhookUrl: string;
let webhookBodies: Array<WebhookPost<unknown>>;
/** Milliseconds the health server waits before answering. */
let healthDelay = 0;
let current: ServerLayout | null = null;
const unhealthy = new Set<number>([6890]);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-unattended-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6890, archive: [6870] });
  download = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
  smtp = await startSmtpListener({ user: 'mailer', password: SMTP_PASSWORD });
  health = await startFakeHealth({ layout: () => current, unhealthy, delayMs: () => healthDelay });
  healthUrl = health.url;
  // accepts connections and never answers: a hanging TomEE
  hanging = createTcpServer((socket) => {
    hangingSockets.add(socket);
    socket.on('close', () => hangingSockets.delete(socket));
  });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/letto/test.jsf`;
  webhook = await startWebhook('/hooks/T0KEN-secret');
  webhookUrl = webhook.url;
  webhookBodies = webhook.received;
});

afterAll(async () => {
  await download?.close();
  await smtp?.close();
  for (const s of hangingSockets) s.destroy();
  await health?.close();
  await new Promise((resolve) => hanging?.close(resolve));
  await webhook?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

afterEach(async () => {
  healthDelay = 0;
  await current?.cleanup();
  current = null;
});

/** A fresh layout (TomEE "running" revision 6880) with mail to the SMTP listener (password in a file). */
async function setup(extra = '', overrides: ConfigOverrides = {}): Promise<{ layout: ServerLayout; config: string; cli: (...args: string[]) => ReturnType<typeof runCli> }> {
  const layout = await makeServerLayout({ revision: 6880 });
  current = layout;
  const smtpPasswordFile = join(layout.root, 'etc/smtp-password');
  await writeFile(smtpPasswordFile, `${SMTP_PASSWORD}\n`, { mode: 0o600 });
  await mkdir(join(layout.root, 'opt/tomee/logs'), { recursive: true });
  // passwords in the log (the download and SMTP ones, a database password in a JDBC URL) must not reach the mail
  await writeFile(
    join(layout.root, 'opt/tomee/logs/catalina.out'),
    `INFO: startup\nINFO: download ${USER}/${PASSWORD}, mail ${SMTP_PASSWORD}\nINFO: jdbc:mysql://db/letto?user=letto&password=Db-Secret-9\nSEVERE: Context [/letto] startup failed due to previous errors\n`,
  );
  const notify = `[notify]\nemail_to = ["admin@schule.example", "it@schule.example"]\nemail_from = "letto@schule.example"\nsmtp_url = "${smtp.url}"\nsmtp_user = "mailer"\nsmtp_password_file = "${smtpPasswordFile}"\n`;
  const config = await writeConfig(
    layout,
    { url: download.url, caPem: download.caPem, user: USER },
    { password: PASSWORD, ...overrides, tomee: { health_url: healthUrl, health_timeout: 1, ...overrides.tomee }, extra: `${extra.includes('[notify]') ? '' : notify}${extra}` },
  );
  return { layout, config, cli: (...args: string[]) => runCli(['--config', config, ...args]) };
}

/** A mail's text with its quoted-printable encoding undone (soft line breaks, `=XX`), so that words cut by it are found. */
function quotedPrintable(raw: string): string {
  return Buffer.from(raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
}

function expectNoSecrets(...texts: string[]): void {
  for (const text of texts) {
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(SMTP_PASSWORD);
  }
}

describe('update --cron', () => {
  it('updates with a short time-stamped log and sends exactly one mail naming both revisions; the next run is silent', async () => {
    const { cli } = await setup();
    const before = smtp.mails.length;
    const r = await cli('update', '--cron');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines.every((l) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?:[A-Z]{2,5}|[+-]\d\d:\d\d) /.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/updated: Revision 6886 runs and answers its health check .*\(6880 → 6886, [\d.]+ s\)$/);
    expect(smtp.mails.length - before).toBe(1);
    const mail = smtp.mails.at(-1)!;
    expect(mail.subject).toMatch(/update 6880 -> 6886: updated/);
    expect(mail.to).toEqual(['admin@schule.example', 'it@schule.example']);
    expect(mail.from).toBe('letto@schule.example');
    expect(mail.user).toBe('mailer');
    expect(mail.raw).toContain('from:     revision 6880');
    expect(mail.raw).toContain('to:       revision 6886');
    expect(mail.raw).not.toContain('catalina.out'); // no log tail when it went well
    expectNoSecrets(r.stdout, r.stderr, mail.raw);

    const again = await cli('update', '--cron');
    expect(again).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    expect(smtp.mails.length - before).toBe(1);
  });

  it('a revision that failed its health check is not retried by the next cron run; a newer one or --force is', async () => {
    const { layout, cli } = await setup();
    const before = smtp.mails.length;
    const failed = await cli('update', '--cron', '--channel', 'daily');
    expect(failed.exitCode, failed.stdout + failed.stderr).toBe(3);
    expect(failed.stderr).toMatch(/Revision 6890 did not answer/);
    expect(failed.stdout).toMatch(/Stopping TomEE/); // the log of what happened
    expect(smtp.mails.length - before).toBe(1);
    const mail = smtp.mails.at(-1)!;
    expect(mail.subject).toMatch(/update 6880 -> 6890: FAILED, previous revision restored/);
    expect(mail.raw).toContain('SEVERE: Context [/letto] startup failed'); // the tail of catalina.out
    const text = quotedPrintable(mail.raw);
    expect(text).toContain(`INFO: download ${USER}/********, mail ********`);
    expect(text).toContain('password=********');
    expect(text).not.toContain('Db-Secret-9');
    expectNoSecrets(text);
    const state = JSON.parse(await readFile(join(layout.state, 'state.json'), 'utf8')) as { failedRevision: { revision: number } };
    expect(state.failedRevision.revision).toBe(6890);
    const status = await cli('--json', 'status');
    expect(JSON.parse(status.stdout)).toMatchObject({ installed: 6880, failedRevision: { revision: 6890 }, watchdogPause: null });

    const requestsBefore = download.requests.length;
    const skipped = await cli('update', '--cron', '--channel', 'daily');
    expect(skipped).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    expect(download.requests.slice(requestsBefore).some((q) => q.path.endsWith('.war'))).toBe(false);
    expect(smtp.mails.length - before).toBe(1);
    expect(await readWarRevision(layout.war)).toBe(6880);

    const forced = await cli('update', '--cron', '--channel', 'daily', '--force');
    expect(forced.exitCode).toBe(3);
    expect(smtp.mails.length - before).toBe(2);

    // the stable revision is another one: installed, and the failed one is not forgotten (6886 < 6890)
    const stable = await cli('update', '--cron');
    expect(stable.exitCode).toBe(0);
    const history = await cli('--json', 'history');
    const runs = (JSON.parse(history.stdout) as { runs: { result: string; to: number }[] }).runs;
    expect(runs.map((x) => `${x.result} ${x.to}`)).toEqual(['rolled-back 6890', 'skipped 6890', 'rolled-back 6890', 'updated 6886']);
  });

  it('a mail server that cannot be reached does not change the exit code; it is a warning in the log', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const { layout, cli } = await setup(`[notify]\nemail_to = ["admin@schule.example"]\nsmtp_url = "smtp://mailer:${SMTP_PASSWORD}@127.0.0.1:${port}"\n`);
    const r = await cli('update', '--cron');
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/warning: The notification mail to admin@schule.example via smtp:\/\/127\.0\.0\.1:\d+ could not be sent \(.*ECONNREFUSED.*\); the run itself is not affected\./);
    expect(await readWarRevision(layout.war)).toBe(6886);
    expectNoSecrets(r.stdout, r.stderr);
  });

  it('webhook: a JSON POST with the revisions; when = "always" also tells about a run that had nothing to do', async () => {
    const { cli } = await setup(`[notify]\nwebhook_url = "${webhookUrl}"\nwhen = "always"\n`);
    const before = webhookBodies.length;
    expect((await cli('update', '--cron')).exitCode).toBe(0);
    const r = await cli('update', '--cron');
    expect(r).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    expect(webhookBodies.slice(before)).toMatchObject([
      { path: '/hooks/T0KEN-secret', type: 'application/json', body: { command: 'update', result: 'updated', from: 6880, to: 6886, failure: false, catalinaTail: null } },
      { body: { command: 'update', result: 'current', from: 6886, to: 6886 } },
    ]);
  });

  it('--random-delay takes durations like 2s or 30m; anything else is a usage error', async () => {
    const { cli } = await setup();
    const bad = await cli('update', '--cron', '--random-delay', 'soon');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--random-delay.*must be a duration like 30m/);
    const started = Date.now();
    const ok = await cli('update', '--cron', '--random-delay', '1s');
    expect(ok.exitCode).toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe('test-notify', () => {
  it('sends one test mail and says so; a wrong SMTP password is exit 1 with what to check', async () => {
    const { layout, cli } = await setup();
    const before = smtp.mails.length;
    const ok = await cli('test-notify');
    expect(ok.exitCode, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toBe('Sent: mail to admin@schule.example, it@schule.example.\n');
    expect(smtp.mails.length - before).toBe(1);
    expect(smtp.mails.at(-1)!.subject).toMatch(/test notification/);

    await writeFile(join(layout.root, 'etc/smtp-password'), 'wrong-password\n', { mode: 0o600 });
    const bad = await cli('test-notify');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/could not be sent \(.*Invalid username or password/);
    expect(bad.stderr).toMatch(/what to do: Check notify\.smtp_url/);
    expect(bad.stderr).not.toContain('wrong-password');
    expect(smtp.mails.length - before).toBe(1);
  });
});

describe('health (monitoring plugin)', () => {
  it('OK, slow (WARNING), not running and hanging (CRITICAL), config and usage errors (UNKNOWN)', async () => {
    const { layout, config, cli } = await setup();
    const ok = await cli('health');
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/^LETTO OK - revision 6880, HTTP 200 in \d+ ms \| time=\d+\.\d{3}s;5;;0;10\n$/);

    healthDelay = 600;
    const slow = await cli('health', '--warning', '0.3');
    expect(slow.exitCode).toBe(1);
    expect(slow.stdout).toMatch(/^LETTO WARNING - revision 6880, HTTP 200 in \d+ ms \(slower than 0.3 s\)/);
    const slowCritical = await cli('health', '-w', '0.1', '-c', '0.3');
    expect(slowCritical.exitCode).toBe(2);
    healthDelay = 0;

    const started = Date.now();
    const hang = await runCli(['--config', config, 'health', '--timeout', '1'], { env: { LETTO_UPDATE_TOMEE_HEALTH_URL: hangingUrl } });
    expect(hang.exitCode).toBe(2);
    expect(hang.stdout).toMatch(/^LETTO CRITICAL - revision 6880, http:\/\/127\.0\.0\.1:\d+\/letto\/test\.jsf: no answer within 1 s \| time=s;5;;0;1\n$/);
    expect(Date.now() - started).toBeLessThan(15_000);

    await rm(layout.runningFlag);
    const down = await cli('health');
    expect(down.exitCode).toBe(2);
    expect(down.stdout).toMatch(/^LETTO CRITICAL - TomEE is not running/);

    const json = await cli('--json', 'health');
    expect(JSON.parse(json.stdout)).toMatchObject({ state: 'CRITICAL', running: false, exitCode: 2 });

    const usage = await cli('health', '--warning', 'fast');
    expect(usage.exitCode).toBe(3);
    expect(usage.stdout).toBe('LETTO UNKNOWN - usage error (see letto-update health --help)\n');

    const badConfig = await runCli(['--config', join(layout.root, 'missing.toml'), 'health']);
    expect(badConfig.exitCode).toBe(3);
    expect(badConfig.stdout).toMatch(/^LETTO UNKNOWN - Cannot read config file .*missing\.toml/);

    const noScript = await runCli(['--config', config, 'health'], { env: { LETTO_UPDATE_TOMEE_STATUS: join(layout.root, 'nope.sh') } });
    expect(noScript.exitCode).toBe(3);
    expect(noScript.stdout).toMatch(/^LETTO UNKNOWN - Cannot tell whether TomEE runs/);
  });

  it('works for a user who cannot read the download password (it is not needed)', async () => {
    const { layout, cli } = await setup();
    await rm(layout.passwordFile);
    expect((await cli('health')).exitCode).toBe(0);
  });
});

describe('watchdog', () => {
  it('counts failures, holds back during a backup, restarts, then leaves a slow start alone during grace', async () => {
    const { layout, config, cli } = await setup('[watchdog]\nfailures = 2\ngrace = 300\n');
    const before = smtp.mails.length;
    const healthy = await cli('watchdog', '--once');
    expect(healthy).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });

    await rm(layout.runningFlag); // TomEE died
    const first = await cli('watchdog', '--once');
    expect(first.exitCode).toBe(0);
    expect(first.stdout).toMatch(/watchdog: LeTTo does not answer \(TomEE is not running.*\): failure 1 of 2/);

    await writeFile(layout.backupLock, 'backup\n');
    const backup = await cli('watchdog', '--once');
    expect(backup.stdout).toMatch(/a backup is running .*no restart during a backup/);
    expect(await layout.calls()).not.toContain('start');
    await rm(layout.backupLock);

    const restart = await cli('watchdog', '--once');
    expect(restart.exitCode, restart.stdout + restart.stderr).toBe(0);
    expect(restart.stdout).toMatch(/TomEE was restarted and answers again/);
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual(['start']);
    expect(smtp.mails.length - before).toBe(1);
    expect(smtp.mails.at(-1)!.subject).toMatch(/watchdog revision 6880: TomEE restarted by the watchdog/);

    await rm(layout.runningFlag); // and died again right away
    for (let i = 0; i < 3; i++) {
      const grace = await cli('watchdog', '--once');
      expect(grace.stdout).toMatch(/within the grace of 300 s: not counted/);
    }
    expect((await layout.calls()).filter((c) => c === 'start')).toHaveLength(1);

    const status = await cli('--json', 'watchdog', 'status');
    expect(JSON.parse(status.stdout)).toMatchObject({ failures: 0, lastAction: 'grace', pause: null });
    const history = await cli('history');
    expect(history.stdout).toMatch(/watchdog\s+6880\s+restarted/);
    void config;
  });

  it('a restart that fails is exit 1, mailed and recorded, and grace keeps it from looping; a status script that cannot run is not counted', async () => {
    const { layout, config, cli } = await setup('[watchdog]\nfailures = 1\n');
    await rm(layout.runningFlag);
    const before = smtp.mails.length;
    const env = { LETTO_UPDATE_TOMEE_START: '/bin/false' };
    const failed = await runCli(['--config', config, 'watchdog', '--once'], { env });
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr).toMatch(/error: watchdog: LeTTo did not answer 1 check in a row .*restarting TomEE failed: \/bin\/false failed: exit code 1/);
    expect(smtp.mails.length - before).toBe(1);
    expect(smtp.mails.at(-1)!.subject).toMatch(/watchdog restart FAILED: LeTTo is down/);
    expect(smtp.mails.at(-1)!.raw).toContain('Last lines of');
    const again = await runCli(['--config', config, 'watchdog', '--once'], { env });
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/within the grace of 300 s: not counted/);
    const history = JSON.parse((await cli('--json', 'history')).stdout) as { runs: { command: string; result: string }[] };
    expect(history.runs.at(-1)).toMatchObject({ command: 'watchdog', result: 'restart-failed' });

    const unknown = await runCli(['--config', config, 'watchdog', '--once'], { env: { LETTO_UPDATE_TOMEE_STATUS: join(layout.root, 'nope.sh') } });
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toMatch(/watchdog: cannot check: Cannot tell whether TomEE runs/);
  });

  it('a maintenance pause: nothing is restarted, health says WARNING; resume ends it', async () => {
    const { layout, cli } = await setup('[watchdog]\nfailures = 1\n');
    await rm(layout.runningFlag);
    const pause = await cli('watchdog', 'pause', '--reason', 'Java update', '--for', '2h');
    expect(pause.exitCode).toBe(0);
    expect(pause.stdout).toMatch(/Watchdog paused until \d{4}-/);
    expect(await cli('watchdog', '--once')).toMatchObject({ exitCode: 0, stdout: '' });
    expect(await layout.calls()).not.toContain('start');
    const health = await cli('health');
    expect(health.exitCode).toBe(1);
    expect(health.stdout).toMatch(/^LETTO WARNING - TomEE is not running .*; watchdog paused for maintenance \(Java update\)/);

    expect((await cli('watchdog', 'resume')).stdout).toContain('Watchdog resumed.');
    const restart = await cli('watchdog', '--once');
    expect(restart.stdout).toMatch(/TomEE was restarted/);
  });

  it('the loop (`watchdog` without --once) checks every interval, restarts, and ends on SIGTERM', async () => {
    const { layout, config } = await setup('[watchdog]\ninterval = 1\nfailures = 2\n');
    await rm(layout.runningFlag);
    const child = spawnCli(['--config', config, 'watchdog']);
    const deadline = Date.now() + 60_000; // a ceiling: a loaded machine may need long for two checks
    while (!(await layout.calls()).includes('start') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500)); // one more (healthy, silent) check
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(130);
    const lines = String(r.stdout).trim().split('\n');
    expect(lines[0]).toMatch(/watchdog: checking .* every 1 s; restart after 2 failed checks in a row, not again within 300 s\./);
    expect(lines[1]).toMatch(/failure 1 of 2/);
    expect(lines.slice(2, -1).join('\n')).toMatch(/\d\d:\d\d:\d\d \S+ Starting TomEE .*\n.*\d\d:\d\d:\d\d \S+ Waiting up to 1 s for/);
    expect(lines.at(-1)).toMatch(/watchdog: LeTTo did not answer 2 checks in a row .*TomEE was restarted and answers again/);
    expect(lines.every((l) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?:[A-Z]{2,5}|[+-]\d\d:\d\d) /.test(l))).toBe(true);
    expect(String(r.stderr).trim()).toBe('letto-update: SIGTERM received; the watchdog stopped.');
    expect((await layout.calls()).filter((c) => c === 'start')).toHaveLength(1);
  }, 90_000);

  it('does not act while an update holds the run lock', async () => {
    const { layout, cli } = await setup('[watchdog]\nfailures = 1\n');
    await rm(layout.runningFlag);
    await writeFile(join(layout.state, 'lock'), JSON.stringify({ pid: process.pid, command: 'update', started: new Date().toISOString() }));
    const r = await cli('watchdog', '--once');
    expect(r.stdout).toMatch(/update in progress \(process \d+\); not checking/);
    expect(await layout.calls()).not.toContain('start');
    const health = await cli('health');
    expect(health.exitCode).toBe(1);
    expect(health.stdout).toMatch(/an update is running/);
  });
});
