/**
 * installWar (src/kinds/tomee/install.ts) with fakes: a process runner whose status script answers from an
 * in-memory "running" flag, an HTTP client whose health probe answers 200 or 404 depending on the
 * revision installed in webapps, and a clock that never waits. Files are real (a temp folder).
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildWar } from '../../fixtures/build-war.js';
import { configSchema } from '../../src/config/config.js';
import type { Clock, Context, LettoEvent } from '../../src/context.js';
import { BusyError, ExitCode } from '../../src/errors.js';
import { installWar } from '../../src/kinds/tomee/install.js';
import { Journal } from '../../src/store/journal.js';
import { StateStore } from '../../src/store/state.js';
import type { HttpClient, ProbeResult } from '../../src/system/http.js';
import type { ProcessRunner, ScriptResult } from '../../src/system/process.js';
import type { Account } from '../../src/system/users.js';
import { readWarRevision } from '../../src/war/verify.js';

type ScriptName = 'start' | 'stop' | 'status';

interface Harness {
  ctx: Context;
  dir: string;
  war: string;
  webapps: string;
  backups: string;
  lockPath: string;
  staged: { path: string; revision: number };
  /** Everything that happened, in order: `script:<name>`, `step:<name>`, `probe:<status>`. */
  log: string[];
  events: LettoEvent[];
  tomee: { running: boolean };
  /** Revisions that answer their health check with 200. */
  healthy: Set<number>;
  /** Revision in webapps each time the start script ran. */
  started: Array<number | null>;
  /** Extra behaviour per script run (n: how many times this script ran before, from 0). */
  onScript: Partial<Record<ScriptName, (n: number) => ScriptResult | void | Promise<ScriptResult | void>>>;
  /** Content of the backup lock (null: absent) seen at each script run and probe. */
  lockSeen: Array<{ at: string; content: string | null }>;
  clock: { t: number };
  originalWar: Buffer;
}

let h: Harness;

async function readOrNull(path: string): Promise<string | null> {
  return readFile(path, 'utf8').catch(() => null);
}

async function makeHarness(opts: { installed?: number; target?: number; running?: boolean } = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'letto-install-'));
  const webapps = join(dir, 'tomee/webapps');
  const war = join(webapps, 'letto.war');
  await buildWar(war, { revision: opts.installed ?? 6880 });
  await mkdir(join(webapps, 'letto/WEB-INF'), { recursive: true });
  await writeFile(join(webapps, 'letto/WEB-INF/web.xml'), '<web-app/>');
  const target = opts.target ?? 6886;
  const stagedPath = join(dir, 'staging', `letto-${target}.war`);
  await buildWar(stagedPath, { revision: target });
  const backups = join(dir, 'backup/war');
  const lockPath = join(dir, 'sicherung/sqlsicherungaktiv');
  const config = configSchema.parse({
    server: { url: 'https://letto.example/download/letto/' },
    tomee: {
      webapps,
      start: '/fake/start.sh',
      stop: '/fake/stop.sh',
      status: '/fake/status.sh',
      health_url: 'http://127.0.0.1:8088/letto/test.jsf',
      health_timeout: 10,
    },
    paths: { staging: join(dir, 'staging'), backups, state: join(dir, 'state'), backup_lock: lockPath, keep: 3 },
  });
  const account: Account = { name: 'letto-test', uid: process.getuid?.() ?? 1000, gid: process.getgid?.() ?? 1000, home: dir };
  const harness: Harness = {
    ctx: undefined as unknown as Context,
    dir,
    war,
    webapps,
    backups,
    lockPath,
    staged: { path: stagedPath, revision: target },
    log: [],
    events: [],
    tomee: { running: opts.running ?? true },
    healthy: new Set<number>([opts.installed ?? 6880, target]),
    started: [],
    onScript: {},
    lockSeen: [],
    clock: { t: Date.parse('2024-05-01T02:00:00Z') },
    originalWar: await readFile(war),
  };
  const counts: Record<ScriptName, number> = { start: 0, stop: 0, status: 0 };

  const processes: ProcessRunner = {
    async runScript(command, runAs, timeoutSeconds) {
      expect(runAs).toBe(account);
      expect(timeoutSeconds).toBeGreaterThan(0);
      const name = basename(command, '.sh') as ScriptName;
      harness.log.push(`script:${name}`);
      harness.lockSeen.push({ at: name, content: await readOrNull(lockPath) });
      const n = counts[name]++;
      const override = await harness.onScript[name]?.(n);
      if (override) return override;
      switch (name) {
        case 'status':
          return harness.tomee.running ? ok('4242') : { exitCode: 3, stdout: 'TomEE is not running', stderr: '', timedOut: false };
        case 'stop':
          harness.tomee.running = false;
          return ok('');
        case 'start':
          harness.started.push(await readWarRevision(war));
          harness.tomee.running = true;
          return ok('Tomcat started.');
      }
    },
  };
  const http: HttpClient = {
    getText: () => Promise.reject(new Error('no network in unit tests')),
    getOptionalText: () => Promise.reject(new Error('no network in unit tests')),
    download: () => Promise.reject(new Error('no network in unit tests')),
    size: () => Promise.reject(new Error('no network in unit tests')),
    readRange: () => Promise.reject(new Error('no network in unit tests')),
    readRanges: () => Promise.reject(new Error('no network in unit tests')),
    async probe(url): Promise<ProbeResult> {
      expect(url).toBe(config.tomee.health_url);
      harness.lockSeen.push({ at: 'probe', content: await readOrNull(lockPath) });
      if (!harness.tomee.running) {
        harness.log.push('probe:refused');
        return { ok: false, error: 'connect ECONNREFUSED 127.0.0.1:8088', ms: 1 };
      }
      const revision = await readWarRevision(war);
      const status = revision !== null && harness.healthy.has(revision) ? 200 : 404;
      harness.log.push(`probe:${status}`);
      return { ok: true, status, ms: 5 };
    },
    close: async () => undefined,
  };
  const clock: Clock = {
    now: () => new Date(harness.clock.t),
    sleep: async (seconds) => {
      harness.clock.t += seconds * 1000;
    },
  };
  harness.ctx = {
    config,
    services: { http, processes, clock },
    serviceUser: account,
    state: new StateStore(join(dir, 'state'), account),
    emit: (event) => {
      harness.events.push(event);
      if (event.type === 'step') harness.log.push(`step:${event.step}`);
    },
  } satisfies Context;
  return harness;
}

function ok(stdout: string): ScriptResult {
  return { exitCode: 0, stdout, stderr: '', timedOut: false };
}

/** The log without status calls and repeated probes, for order assertions. */
function essentials(log: string[]): string[] {
  const out: string[] = [];
  for (const entry of log) {
    if (entry === 'script:status' || entry === 'step:health' || entry === 'step:rollback') continue;
    if (entry === out.at(-1) && entry.startsWith('probe:')) continue;
    out.push(entry);
  }
  return out;
}

beforeEach(async () => {
  h = await makeHarness();
});
afterEach(async () => {
  await rm(h.dir, { recursive: true, force: true });
});

describe('installWar', () => {
  it('success: backup → stop → swap → start → health, in that order', async () => {
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome).toMatchObject({ result: 'installed', started: true });
    expect(essentials(h.log)).toEqual(['step:backup', 'step:stop', 'script:stop', 'step:swap', 'step:start', 'script:start', 'probe:200']);
    // TomEE was stopped before the swap and started with the new WAR in place
    expect(h.started).toEqual([6886]);
    expect(h.tomee.running).toBe(true);
    expect(await readWarRevision(h.war)).toBe(6886);
    expect((await readFile(h.war)).equals(await readFile(h.staged.path))).toBe(true);
    // the exploded folder is gone, no temporary file is left where TomEE would deploy it
    expect(await readdir(h.webapps)).toEqual(['letto.war']);
    // the previous WAR is kept as a backup named by its revision
    expect(await readdir(h.backups)).toEqual(['letto-6880.war']);
    expect((await readFile(join(h.backups, 'letto-6880.war'))).equals(h.originalWar)).toBe(true);
  });

  it('creates the backup lock with its own marker for the restart, and removes it afterwards', async () => {
    await installWar(h.ctx, 6880, h.staged);
    // every script run and probe happened while the lock carried our marker
    expect(h.lockSeen.map((s) => s.at)).toEqual(expect.arrayContaining(['status', 'stop', 'start', 'probe']));
    for (const seen of h.lockSeen) expect(seen.content, seen.at).toMatch(new RegExp(`^letto-update pid=${process.pid} since=\\S+ process=\\S+\\n$`));
    expect(await readOrNull(h.lockPath)).toBeNull();
  });

  it('leaves the backup lock alone when someone else replaced its content meanwhile', async () => {
    h.onScript.start = async () => {
      await writeFile(h.lockPath, 'sqlsicherung läuft\n');
    };
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome.result).toBe('installed');
    expect(await readOrNull(h.lockPath)).toBe('sqlsicherung läuft\n');
  });

  it('health check fails: the previous WAR is put back, TomEE restarted and healthy → rolled-back', async () => {
    h.healthy = new Set([6880]);
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome.result).toBe('rolled-back');
    if (outcome.result !== 'rolled-back') return;
    expect(outcome.error.exitCode).toBe(ExitCode.failed);
    expect(outcome.error.message).toContain('Revision 6886 did not answer http://127.0.0.1:8088/letto/test.jsf with HTTP 200 within 10 s');
    expect(outcome.error.message).toContain('HTTP 404');
    expect(outcome.error.hint).toContain(join(h.dir, 'tomee/logs/catalina.out'));
    expect(outcome.message).toMatch(/Revision 6880 was put back/);
    expect(essentials(h.log)).toEqual([
      'step:backup',
      'step:stop',
      'script:stop',
      'step:swap',
      'step:start',
      'script:start',
      'probe:404',
      'step:stop',
      'script:stop',
      'step:swap',
      'step:start',
      'script:start',
      'probe:200',
    ]);
    expect(h.started).toEqual([6886, 6880]);
    expect(h.tomee.running).toBe(true);
    expect((await readFile(h.war)).equals(h.originalWar)).toBe(true);
    expect(await readdir(h.webapps)).toEqual(['letto.war']);
    // it waited the whole health_timeout (fake time) before giving up
    expect(h.clock.t - Date.parse('2024-05-01T02:00:00Z')).toBeGreaterThanOrEqual(10_000);
    expect(await readOrNull(h.lockPath)).toBeNull();
  });

  it('the previous revision fails its health check too → rollback-failed, saying where to look', async () => {
    h.healthy = new Set();
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome.result).toBe('rollback-failed');
    if (outcome.result !== 'rollback-failed') return;
    expect(outcome.message).toContain('catalina.out');
    expect(outcome.message).toContain(h.backups);
    expect(outcome.message).toMatch(/revision 6880 did not answer its health check either/);
    expect(h.started).toEqual([6886, 6880]);
    // the previous WAR is in place anyway
    expect((await readFile(h.war)).equals(h.originalWar)).toBe(true);
    expect(await readOrNull(h.lockPath)).toBeNull();
  });

  it('the start script fails: TomEE is started again with the previous WAR → rolled-back', async () => {
    h.onScript.start = (n) => (n === 0 ? { exitCode: 1, stdout: '', stderr: 'JAVA_HOME is not set', timedOut: false } : undefined);
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome.result).toBe('rolled-back');
    if (outcome.result !== 'rolled-back') return;
    expect(outcome.error.message).toContain('JAVA_HOME is not set');
    expect(h.started).toEqual([6880]);
    expect((await readFile(h.war)).equals(h.originalWar)).toBe(true);
  });

  it('TomEE does not stop: failed, nothing changed, TomEE still runs the old WAR', async () => {
    h.onScript.stop = () => ok(''); // the stop script "succeeds" but TomEE keeps running
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome.result).toBe('failed');
    if (outcome.result !== 'failed') return;
    expect(outcome.error.message).toMatch(/did not stop within 120 s \(process 4242 still runs\)/);
    expect(h.log).not.toContain('script:start');
    expect(h.log).not.toContain('step:swap');
    expect((await readFile(h.war)).equals(h.originalWar)).toBe(true);
    expect(await readOrNull(h.lockPath)).toBeNull();
  });

  it('a backup is running (lock present, not ours): failed with exit 75; TomEE and letto.war untouched', async () => {
    await mkdir(join(h.dir, 'sicherung'), { recursive: true });
    await writeFile(h.lockPath, 'backup\n');
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome.result).toBe('failed');
    if (outcome.result !== 'failed') return;
    expect(outcome.error).toBeInstanceOf(BusyError);
    expect(outcome.error.exitCode).toBe(ExitCode.busy);
    expect(h.log.filter((l) => l.startsWith('script:'))).toEqual([]);
    expect((await readFile(h.war)).equals(h.originalWar)).toBe(true);
    expect(await readOrNull(h.lockPath)).toBe('backup\n');
  });

  it('TomEE was not running: the WAR is swapped, TomEE is left stopped, no health check', async () => {
    await rm(h.dir, { recursive: true, force: true });
    h = await makeHarness({ running: false });
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome).toMatchObject({ result: 'installed', started: false });
    expect(h.log).not.toContain('script:start');
    expect(h.log).not.toContain('script:stop');
    // one probe only, to make sure LeTTo really is down (it is): no health check after the swap
    expect(h.log.filter((l) => l.startsWith('probe:'))).toEqual(['probe:refused']);
    expect(h.log).not.toContain('step:health');
    expect(await readWarRevision(h.war)).toBe(6886);
    expect(h.events.some((e) => e.type === 'warn' && /not running/.test(e.message))).toBe(true);
    expect(await readOrNull(h.lockPath)).toBeNull();
  });

  it('keeps an existing backup of the same revision and size as it is', async () => {
    await mkdir(h.backups, { recursive: true });
    await writeFile(join(h.backups, 'letto-6880.war'), h.originalWar);
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome.result).toBe('installed');
    expect(h.events.some((e) => e.type === 'step' && e.step === 'backup' && /already/.test(e.message))).toBe(true);
  });
});

describe('installWar when the status script cannot be trusted', () => {
  it('a status script that cannot be run stops the run before anything changes (exit 1)', async () => {
    h.onScript.status = () => ({ exitCode: -1, stdout: '', stderr: '', timedOut: false, failure: 'spawn /fake/status.sh ENOENT' });
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome.result).toBe('failed');
    if (outcome.result !== 'failed') return;
    expect(outcome.error.exitCode).toBe(ExitCode.failed);
    expect(outcome.error.message).toContain('Cannot tell whether TomEE runs');
    expect(h.log.filter((e) => e === 'script:stop' || e === 'script:start')).toEqual([]);
    expect((await readFile(h.war)).equals(h.originalWar)).toBe(true);
    expect(await readOrNull(h.lockPath)).toBeNull();
  });

  it('status says stopped but LeTTo answers: nothing is swapped under the running server', async () => {
    h.onScript.status = () => ({ exitCode: 0, stdout: 'TomEE is not running', stderr: '', timedOut: false });
    const outcome = await installWar(h.ctx, 6880, h.staged);
    expect(outcome.result).toBe('failed');
    if (outcome.result !== 'failed') return;
    expect(outcome.error.message).toContain('answers HTTP 200');
    expect((await readFile(h.war)).equals(h.originalWar)).toBe(true);
    expect(h.log).not.toContain('step:swap');
  });
});

describe('installWar with a journal', () => {
  async function journalOnDisk(): Promise<Record<string, unknown> | null> {
    const text = await readOrNull(join(h.dir, 'state/journal.json'));
    return text === null ? null : (JSON.parse(text) as Record<string, unknown>);
  }

  it('records each step before doing it, with what recovery needs', async () => {
    const journal = new Journal(h.ctx, 'update');
    const seenAt: Record<string, unknown> = {};
    h.onScript.stop = async () => void (seenAt.stop = (await journalOnDisk())?.step);
    h.onScript.start = async () => void (seenAt.start = (await journalOnDisk())?.step);
    const outcome = await installWar(h.ctx, 6880, h.staged, journal);
    expect(outcome).toMatchObject({ result: 'installed' });
    expect(seenAt).toEqual({ stop: 'stop', start: 'start' });
    expect(await journalOnDisk()).toMatchObject({
      version: 1,
      pid: process.pid,
      command: 'update',
      step: 'installed',
      healthy: true,
      from: 6880,
      to: 6886,
      target: h.staged.path,
      backup: join(h.backups, 'letto-6880.war'),
      wasRunning: true,
      backupLock: h.lockPath,
      temps: [join(h.backups, 'letto-6880.war.tmp'), join(h.webapps, '.letto.war.letto-update.tmp')],
    });
    await journal.finish();
    expect(await journalOnDisk()).toBeNull();
  });

  it('a failed health check records "undo" before putting the previous revision back', async () => {
    h.healthy.delete(6886);
    const journal = new Journal(h.ctx, 'update');
    let atSecondStart: unknown = null;
    h.onScript.start = async (n) => void (n === 1 && (atSecondStart = (await journalOnDisk())?.step));
    const outcome = await installWar(h.ctx, 6880, h.staged, journal);
    expect(outcome.result).toBe('rolled-back');
    expect(atSecondStart).toBe('undo');
    expect(journal.current).toMatchObject({ step: 'undo' }); // the run removes it when it concludes
  });

  it('when putting the previous revision back fails too, the journal is kept for the next run', async () => {
    h.healthy.clear();
    const journal = new Journal(h.ctx, 'update');
    const outcome = await installWar(h.ctx, 6880, h.staged, journal);
    expect(outcome.result).toBe('rollback-failed');
    expect(journal.current).toBeNull();
    await journal.finish(); // what run.ts does: nothing, the entry was handed over to the next run
    expect(await journalOnDisk()).toMatchObject({ step: 'undo', from: 6880, to: 6886 });
  });
});
