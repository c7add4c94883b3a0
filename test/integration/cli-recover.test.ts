/**
 * Recovery from a journal left by a killed run, through the built CLI with the layout's fake scripts
 * and a tiny health server: the leftovers a SIGKILL in the middle of a copy or a rename leaves
 * (temporary files, a swapped WAR, an exploded folder, our backup-lock marker) are cleaned up, the
 * known-good WAR is put back byte for byte, and a recovery that fails keeps the journal (exit 4).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildWar } from '../../fixtures/build-war.js';
import { processIdentity } from '../../src/system/proc.js';
import { readWarRevision } from '../../src/war/verify.js';
import { type FakeHealth, listNames, makeServerLayout, runCli, type ServerLayout, startFakeHealth, writeConfig } from '../support/cli.js';
import { expectWebappsInvariant } from '../support/invariant.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { startWebhook } from '../support/webhook.js';

let health: FakeHealth;
let healthUrl: string;
let current: ServerLayout | null = null;
const unhealthy = new Set<number>();
let root: string;
let war6886: string;
/** A plain-HTTP loopback download server without login (stable 6886), for the runs that read revisions. */
let download: DownloadServer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-recover-'));
  war6886 = join(root, 'letto-6886.war');
  await buildWar(war6886, { revision: 6886 });
  await populateDownloadRoot(join(root, 'download'), { stable: 6886, daily: 6890 });
  download = await startDownloadServer({ root: join(root, 'download') });
  health = await startFakeHealth({ layout: () => current, unhealthy });
  healthUrl = health.url;
});

afterAll(async () => {
  await health?.close();
  await download?.close();
  await rm(root, { recursive: true, force: true });
});

afterEach(async () => {
  unhealthy.clear();
  await current?.cleanup();
  current = null;
});

/** A dead PID: a process that has already exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

/**
 * The state a run killed right after its swap's rename leaves: letto.war is 6886, TomEE stopped, the
 * backup of 6880 made, a temporary copy and a half-written backup temp around, our marker in the backup lock.
 */
async function killedAfterSwap(step: string, serverUrl = 'http://127.0.0.1:9/download/letto/', extra = ''): Promise<{ layout: ServerLayout; config: string; pid: number; backup: string }> {
  const layout = await makeServerLayout({ revision: 6880, running: false });
  current = layout;
  const config = await writeConfig(layout, { url: serverUrl, caPem: '' }, { password: null, server: { user: '' }, tomee: { health_url: healthUrl, health_timeout: 2 }, extra });
  const pid = deadPid();
  const backup = join(layout.backups, 'letto-6880.war');
  await copyFile(layout.war, backup);
  await writeFile(`${backup}.tmp`, 'half a backup');
  await copyFile(war6886, layout.war);
  await writeFile(join(layout.webapps, '.letto.war.letto-update.tmp'), 'half a WAR');
  await mkdir(join(layout.webapps, 'letto/WEB-INF'), { recursive: true });
  const staged = join(layout.staging, 'letto-6886.war');
  await copyFile(war6886, staged);
  await writeFile(layout.backupLock, `letto-update pid=${pid} since=2026-01-01T00:00:00.000Z\n`);
  const journal = {
    version: 1,
    pid,
    command: 'update',
    started: '2026-01-01T00:00:00.000Z',
    written: '2026-01-01T00:00:05.000Z',
    step,
    from: 6880,
    to: 6886,
    target: staged,
    backup,
    wasRunning: true,
    backupLock: layout.backupLock,
    temps: [`${backup}.tmp`, join(layout.webapps, '.letto.war.letto-update.tmp')],
    healthy: false,
  };
  await writeFile(join(layout.state, 'journal.json'), JSON.stringify(journal));
  return { layout, config, pid, backup };
}

describe('recover after a SIGKILL in the middle of an update', () => {
  it('killed after the swap: puts 6880 back byte for byte, removes every leftover, starts TomEE, records it', async () => {
    const { layout, config, pid, backup } = await killedAfterSwap('start');
    const status = await runCli(['--config', config, 'status']);
    expect(status.stdout).toMatch(new RegExp(`interrupted run: An update from revision 6880 to 6886 \\(process ${pid}.*step "start"`));

    const r = await runCli(['--config', config, '--quiet', 'recover']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toBe(''); // --quiet: only the notice, on stderr (cron mails it)
    expect(r.stderr).toMatch(/letto-update: Recovered from an interrupted update: It was undone: revision 6880 was put back into webapps; TomEE runs and answers/);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect((await readFile(backup)).equals(layout.initialWar)).toBe(true);
    expect(await listNames(layout.webapps)).toEqual(['letto.war']);
    await expectWebappsInvariant(layout.webapps, [6880], { settled: true });
    expect(await listNames(layout.backups)).toEqual(['letto-6880.war']);
    expect(await listNames(join(layout.backupLock, '..'))).toEqual([]);
    expect(await listNames(layout.state)).not.toContain('journal.json');
    expect(await layout.calls()).toContain('start');
    const runs = (await readFile(join(layout.state, 'runs.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(runs).toEqual([expect.objectContaining({ command: 'recover', result: 'recovered', from: 6880, to: 6880 })]);
  });

  it('the previous revision does not come back: exit 4, the journal is kept, the notice says rollback-failed; once fixed, recover succeeds', async () => {
    const hook = await startWebhook<{ result: string; failure: boolean; message: string; logTail: { source: string } | null }>();
    const { layout, config } = await killedAfterSwap('health', undefined, `[notify]\nwebhook_url = "${hook.url}"\n`);
    unhealthy.add(6880);
    const failed = await runCli(['--config', config, 'update', '--yes']);
    await hook.close();
    expect(failed.exitCode, failed.stdout + failed.stderr).toBe(4);
    expect(failed.stderr).toMatch(/Recovering from the interrupted update failed: Revision 6880 did not answer its health check/);
    expect(failed.stderr).toMatch(/letto-update recover/);
    expect(await listNames(layout.state)).toContain('journal.json');
    // not "FAILED (nothing changed)": LeTTo may be down; the notice carries catalina.out's tail
    expect(hook.received.map((p) => p.body)).toEqual([expect.objectContaining({ result: 'rollback-failed', failure: true, message: expect.stringMatching(/LeTTo may be down/) })]);
    expect(hook.received[0]!.body.logTail?.source).toMatch(/catalina\.out$/);
    await expectWebappsInvariant(layout.webapps, [6880], { settled: true });

    unhealthy.clear();
    const r = await runCli(['--config', config, 'recover']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    // fixed by hand meanwhile (here: 6880 answers again): recovery finds it running healthy and adopts it
    expect(r.stderr).toMatch(/LeTTo runs revision 6880 \(the revision it started from\) and answers its health check .*left running as it is/);
    expect(await listNames(layout.state)).not.toContain('journal.json');
  });

  it('killed after the new revision passed its health check: only the clean-up is done, 6886 stays', async () => {
    const { layout, config } = await killedAfterSwap('installed');
    const journalPath = join(layout.state, 'journal.json');
    const journal = JSON.parse(await readFile(journalPath, 'utf8')) as Record<string, unknown>;
    await writeFile(journalPath, JSON.stringify({ ...journal, healthy: true }));
    await writeFile(layout.runningFlag, '');
    await rm(join(layout.webapps, 'letto'), { recursive: true });
    const r = await runCli(['--config', config, '--json', 'recover']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ command: 'recover', result: 'recovered', from: 6880, to: 6886 });
    expect(await readWarRevision(layout.war)).toBe(6886);
    expect(await layout.calls()).toEqual([]);
    expect(await listNames(layout.staging)).toEqual([]);
    expect(await listNames(layout.webapps)).toEqual(['letto.war']);
    expect(JSON.parse(await readFile(join(layout.state, 'state.json'), 'utf8'))).toMatchObject({ installed: 6886, lastKnownGood: 6886 });
    expect(await stat(layout.backupLock).catch(() => null)).toBeNull();
  });

  it('update --dry-run only mentions it; download recovers first, then downloads', async () => {
    const { layout, config } = await killedAfterSwap('swap', download.url);
    const dry = await runCli(['--config', config, 'update', '--dry-run', '--revision', '6886']);
    expect(dry.exitCode).toBe(0);
    // planned from what recovery will leave (6880), not from the half-done state (6886 in webapps)
    expect(dry.stdout).toMatch(/would first recover the interrupted run \(An update from revision 6880 to 6886 .*\), then update LeTTo from revision 6880 to 6886/);
    expect(await listNames(layout.state)).toContain('journal.json');
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual([]); // the plan asks the status script, nothing else

    const r = await runCli(['--config', config, 'download']);
    expect(r.stderr).toMatch(/Recovered from an interrupted update: It was undone: revision 6880 was put back/);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Revision 6886 is downloaded and verified/);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect(await listNames(layout.state)).not.toContain('journal.json');
  });

  it('a damaged backup is not put back: the complete WAR in webapps is kept and started', async () => {
    const { layout, config, backup } = await killedAfterSwap('start');
    const bytes = await readFile(backup);
    await writeFile(backup, bytes.subarray(0, bytes.length >> 1)); // cut in half
    const r = await runCli(['--config', config, 'recover']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/The backup .*letto-6880\.war is not usable/);
    expect(r.stderr).toMatch(/no usable backup of revision 6880, so webapps keeps revision 6886; TomEE runs and answers/);
    expect(await readWarRevision(layout.war)).toBe(6886);
    await expectWebappsInvariant(layout.webapps, [6886], { settled: true });
  });

  it('recovery killed itself (after putting the backup back): the next recover finishes it', async () => {
    const { layout, config } = await killedAfterSwap('start');
    const killed = await runCli(['--config', config, 'recover'], { env: { LETTO_UPDATE_FAULT: 'recover:swapped' } });
    expect(killed.signal).toBe('SIGKILL');
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect(await listNames(layout.state)).toContain('journal.json');
    expect(await listNames(join(layout.backupLock, '..'))).toEqual(['sqlsicherungaktiv']); // the recovering run's marker
    const r = await runCli(['--config', config, 'recover']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/webapps holds revision 6880 already; TomEE runs and answers/);
    await expectWebappsInvariant(layout.webapps, [6880], { settled: true });
    expect(await listNames(layout.state)).not.toContain('journal.json');
    expect(await listNames(join(layout.backupLock, '..'))).toEqual([]);
  });

  it('TomEE was stopped before the killed run: the backup is put back and TomEE stays stopped', async () => {
    const { layout, config } = await killedAfterSwap('start');
    const journalPath = join(layout.state, 'journal.json');
    await writeFile(journalPath, JSON.stringify({ ...(JSON.parse(await readFile(journalPath, 'utf8')) as object), wasRunning: false }));
    const r = await runCli(['--config', config, 'recover']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/revision 6880 was put back into webapps; TomEE was not running before and is left stopped/);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual([]);
  });

  it('the watchdog finds LeTTo down after a killed update: it recovers (puts 6880 back) instead of restarting 6886', async () => {
    const { layout, config } = await killedAfterSwap('start', undefined, '[watchdog]\nfailures = 1\n');
    const r = await runCli(['--config', config, 'watchdog', '--once']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/an interrupted update was recovered: It was undone: revision 6880 was put back/);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect(await listNames(layout.state)).not.toContain('journal.json');
    const runs = (await readFile(join(layout.state, 'runs.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(runs.map((r) => r.command)).toEqual(['recover', 'watchdog']);
  });

  it('a backup lock that is not ours is left alone by recovery', async () => {
    const { layout, config } = await killedAfterSwap('swap');
    await writeFile(layout.backupLock, 'sqlsicherung läuft\n');
    const r = await runCli(['--config', config, 'recover']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(await readFile(layout.backupLock, 'utf8')).toBe('sqlsicherung läuft\n');
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
  });

  it('status names a stop script that a killed run left running, until recovery has waited for it', async () => {
    const { layout, config } = await killedAfterSwap('stop');
    // what a SIGKILL of letto-update while TomEE's stop script runs leaves: the script, in a group of its own
    // 10 s: status and recover must both start while it still runs, also on a busy machine (2 s was not enough at load 20)
    const script = spawn('sleep', ['10'], { detached: true, stdio: 'ignore' });
    const owner = deadPid();
    await mkdir(join(layout.state, 'scripts'), { recursive: true });
    const record = { command: '/opt/letto/stop.sh', pgid: script.pid, process: processIdentity(script.pid!), started: new Date().toISOString(), timeout: 180, name: 'stop', owner: { pid: owner, process: null } };
    await writeFile(join(layout.state, 'scripts', `${owner}.json`), JSON.stringify(record));
    const status = await runCli(['--config', config, 'status']);
    expect(status.stdout).toMatch(new RegExp(`script still running: the stop script /opt/letto/stop.sh of an interrupted run \\(process group ${script.pid}, since .*\\); the next update, rollback or \`letto-update recover\` waits for it until `));

    const r = await runCli(['--config', config, 'recover']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/The stop script of an interrupted run .* still runs; waiting up to \d+ s/);
    expect((await runCli(['--config', config, 'status'])).stdout).not.toContain('script still running');
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
  });
});
