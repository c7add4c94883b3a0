/**
 * The shipped units under a real systemd: PID 1 in a Debian 12 container built from Debian packages
 * (test/support/systemd-container.ts). letto-update (this checkout, bind-mounted) runs from
 * contrib/systemd/*.service as installed by docs/operations.md; the server is the demo's TomEE
 * stand-in (demo/fake-tomee.mjs) with LeTTo-style scripts, the download server runs on the host.
 *
 * Checked: the timer's service runs an update that restarts TomEE, and TomEE still answers after the
 * unit has finished and runs at nice 0 with the default IO class (the unit has Nice=10, idle IO);
 * `systemctl stop` of the watchdog unit leaves a TomEE it restarted running, also when the stop comes
 * during the restart (the watchdog finishes that restart, then exits). A control run with systemd's
 * default KillMode=control-group shows that the check can fail: there TomEE dies with the unit.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDemoServer, demoLayout, type DemoLayout } from '../../demo/layout.js';
import { REPO_ROOT } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { describeWithSystemd, startSystemdContainer, systemdImage, type SystemdContainer } from '../support/systemd-container.js';
import { freePort } from '../support/net.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The health page's status and body (null when nothing answers). */
async function health(url: string): Promise<{ status: number; body: string } | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return { status: response.status, body: await response.text() };
  } catch {
    return null;
  }
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

describeWithSystemd('the shipped systemd units under a real systemd (PID 1, Debian 12 container)', () => {
  let c: SystemdContainer;
  let l: DemoLayout;
  let download: DownloadServer;
  let url: string;
  const password = 'systemd-Pässword-7';

  /** The PID status.sh prints inside the container (null: TomEE not running). */
  async function tomeePid(): Promise<number | null> {
    const r = await c.exec([l.scripts.status]);
    return r.exitCode === 0 ? Number(r.stdout.trim()) : null;
  }

  /** The stable revision the download server offers (what the next `update --cron` installs). */
  async function offer(revision: number): Promise<void> {
    await populateDownloadRoot(l.downloadRoot, { stable: revision, daily: revision, archive: [6880, revision] });
  }

  /** Why systemd could not be booted here (outside CI the tests then skip, loudly). */
  let unbootable: string | null = null;
  const needSystemd = (ctx: { skip: () => void }): void => {
    if (unbootable) ctx.skip();
  };

  beforeAll(async () => {
    let image: string;
    try {
      image = await systemdImage('bookworm');
    } catch (error) {
      if (process.env.LETTO_E2E_REQUIRED === '1') throw error;
      unbootable = (error as Error).message;
      console.warn(`\n*** SYSTEMD SUITE SKIPPED: the Debian rootfs could not be built or imported: ${unbootable} ***\n`);
      return;
    }
    const root = await mkdtemp('/var/tmp/lu-systemd-');
    l = demoLayout(root);
    await mkdir(l.downloadRoot, { recursive: true });
    await offer(6886);
    download = await startDownloadServer({ root: l.downloadRoot, tls: true, user: 'letto', password });
    const port = await freePort();
    url = `http://127.0.0.1:${port}/letto/test.jsf`;
    await createDemoServer(l, { installed: 6880, tomeePort: port, download: { url: download.url, user: 'letto', password, caPem: download.caPem }, healthTimeout: 60 });
    await appendFile(l.config, '\n[watchdog]\ninterval = 1\nfailures = 1\ngrace = 5\n');
    const node = process.execPath;
    try {
      c = await startSystemdContainer(image, { binds: [root, REPO_ROOT, `${realpathSync(node)}:${node}`], readOnly: [REPO_ROOT, `${realpathSync(node)}:${node}`] });
    } catch (error) {
      if (process.env.LETTO_E2E_REQUIRED === '1') throw error;
      unbootable = (error as Error).message;
      console.warn(`\n*** SYSTEMD SUITE SKIPPED: systemd does not boot in a container here: ${unbootable} ***\n`);
      return;
    }
    // installed as docs/operations.md says
    await c.sh(
      [
        `[ -x /usr/bin/node ] || ln -s ${node} /usr/local/bin/node`,
        'mkdir -p /etc/letto-update',
        `ln -s ${l.config} /etc/letto-update/config.toml`,
        `ln -s ${REPO_ROOT}/bin/letto-update.js /usr/local/bin/letto-update`,
        `cp ${REPO_ROOT}/contrib/systemd/letto-update.service ${REPO_ROOT}/contrib/systemd/letto-update.timer ${REPO_ROOT}/contrib/systemd/letto-update-watchdog.service /etc/systemd/system/`,
        'systemctl daemon-reload',
        'systemctl enable --now letto-update.timer',
      ].join(' && '),
    );
    // TomEE started by hand, as an admin would (outside any letto-update unit)
    await c.sh(l.scripts.start);
    await waitFor('the installed revision to answer', async () => (await health(url))?.status === 200, 30_000);
  }, 900_000);

  afterAll(async () => {
    await c?.exec(['sh', '-c', `${l.scripts.stop} >/dev/null 2>&1`]).catch(() => undefined);
    await c?.destroy();
    await download?.close();
    if (l) await rm(l.root, { recursive: true, force: true });
  });

  it('the timer is loaded; its service updates and restarts TomEE, which answers after the unit ended, at nice 0 and default IO', async (ctx) => {
    needSystemd(ctx);
    expect(await c.sh('systemctl list-timers --all --no-pager letto-update.timer')).toMatch(/letto-update\.timer\s+letto-update\.service/);
    const before = await tomeePid();
    expect(before).not.toBeNull();
    const run = await c.exec(['systemctl', 'start', 'letto-update.service'], { timeoutMs: 300_000 });
    const log = await c.sh('journalctl -u letto-update.service --no-pager -o cat');
    expect(run.exitCode, `${run.stderr}\n${log}`).toBe(0);
    expect(await c.sh('systemctl show -p Result -p ExecMainStatus -p ActiveState letto-update.service')).toMatch(/Result=success[\s\S]*ExecMainStatus=0|ExecMainStatus=0[\s\S]*Result=success/);
    expect(log).toMatch(/Revision 6886 runs and answers its health check/);
    await sleep(2000); // systemd acts on a unit's leftover processes as soon as it has ended
    const answer = await health(url);
    expect(answer?.status, 'TomEE must outlive the unit').toBe(200);
    expect(answer?.body).toContain('revision 6886');
    const pid = await tomeePid();
    expect(pid).not.toBeNull();
    expect(pid).not.toBe(before); // restarted by the update
    const stat = await c.sh(`cat /proc/${pid}/stat`);
    expect(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16], 'nice level of TomEE (unit: Nice=10)').toBe('0');
    expect(await c.sh(`ionice -p ${pid}`), 'IO class of TomEE (unit: best-effort 7)').toMatch(/^(none: prio 0|best-effort: prio 4)/);
  }, 400_000);

  it('control: with systemd\'s default KillMode=control-group, TomEE dies with the unit (so the check above can fail)', async (ctx) => {
    needSystemd(ctx);
    await offer(6890);
    await c.sh('mkdir -p /etc/systemd/system/letto-update.service.d && printf "[Service]\\nKillMode=control-group\\n" > /etc/systemd/system/letto-update.service.d/control.conf && systemctl daemon-reload');
    try {
      const run = await c.exec(['systemctl', 'start', 'letto-update.service'], { timeoutMs: 300_000 });
      expect(run.exitCode, run.stderr).toBe(0);
      expect(await c.sh('journalctl -u letto-update.service --no-pager -o cat')).toMatch(/Revision 6890 runs and answers its health check/);
      await sleep(2000);
      expect(await health(url), 'killed with the unit').toBeNull();
    } finally {
      await c.sh('rm -rf /etc/systemd/system/letto-update.service.d && systemctl daemon-reload');
      await c.sh(l.scripts.start);
      await waitFor('TomEE started by hand', async () => (await health(url))?.status === 200, 30_000);
    }
  }, 400_000);

  it('systemctl stop of the watchdog leaves the TomEE it restarted running', async (ctx) => {
    needSystemd(ctx);
    await c.sh(l.scripts.stop);
    expect(await health(url)).toBeNull();
    await c.sh('systemctl start letto-update-watchdog.service');
    await waitFor('the watchdog to restart TomEE', async () => (await health(url))?.status === 200, 90_000);
    await waitFor('the restart to be recorded', async () => (await readFile(join(l.state, 'runs.jsonl'), 'utf8').catch(() => '')).includes('"result":"restarted"'), 60_000);
    const pid = await tomeePid();
    const started = Date.now();
    const stop = await c.exec(['systemctl', 'stop', 'letto-update-watchdog.service'], { timeoutMs: 120_000 });
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);
    await sleep(2000);
    expect((await health(url))?.status, 'TomEE must outlive the watchdog unit').toBe(200);
    expect(await tomeePid()).toBe(pid);
  }, 300_000);

  it('systemctl stop during a restart: the watchdog finishes that restart, exits, and TomEE keeps running', async (ctx) => {
    needSystemd(ctx);
    await c.sh(l.scripts.stop);
    await writeFile(join(l.state, 'runs.jsonl'), '');
    await writeFile(join(l.state, 'watchdog.json'), '{}'); // no grace left from the restart before
    // a TomEE that takes 5 s to answer: a restart long enough to be stopped in the middle of
    await c.sh('mkdir -p /etc/systemd/system/letto-update-watchdog.service.d && printf "[Service]\nEnvironment=FAKE_TOMEE_STARTUP_MS=5000\n" > /etc/systemd/system/letto-update-watchdog.service.d/slow.conf && systemctl daemon-reload');
    await c.sh('systemctl start letto-update-watchdog.service');
    // the moment its start script is recorded (src/store/script-groups.ts), the restart is in progress
    const scripts = join(l.state, 'scripts');
    const startRecorded = (): boolean =>
      existsSync(scripts) &&
      readdirSync(scripts).some((name) => {
        try {
          return /"name": "start"/.test(readFileSync(join(scripts, name), 'utf8'));
        } catch {
          return false;
        }
      });
    const deadline = Date.now() + 90_000;
    while (!startRecorded()) {
      if (Date.now() > deadline) throw new Error('the watchdog did not start TomEE within 90 s');
      await sleep(2);
    }
    const started = Date.now();
    const stop = await c.exec(['systemctl', 'stop', 'letto-update-watchdog.service'], { timeoutMs: 300_000 });
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect(Date.now() - started, 'the stop waits only for the restart in progress').toBeLessThan(90_000);
    const log = await c.sh('journalctl -u letto-update-watchdog.service --no-pager -o cat');
    expect(log).toMatch(/SIGTERM received while TomEE is being restarted; finishing the restart in progress; then the watchdog stops/);
    expect(await c.sh('systemctl show -p Result letto-update-watchdog.service')).toMatch(/Result=success/);
    await sleep(2000);
    expect((await health(url))?.status, 'TomEE must outlive the watchdog unit').toBe(200);
    expect(await readFile(join(l.state, 'runs.jsonl'), 'utf8')).toMatch(/"result":"restarted"/);
    await c.sh('rm -rf /etc/systemd/system/letto-update-watchdog.service.d && systemctl daemon-reload');
  }, 300_000);
});
