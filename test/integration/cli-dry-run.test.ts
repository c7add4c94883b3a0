/**
 * `update --dry-run` is a checked plan: a table of cases against real folders, real scripts, a real TLS
 * download server with Basic auth (which answers the HEAD for the WAR's size) and a real health page on
 * loopback. Each case changes one thing and expects one check to fail (or warn), exit 1 when the update
 * would not go ahead, and, always, nothing changed: no script but status ran, letto.war, staging,
 * backups and the state folder as they were, no lock, no journal, no run recorded.
 */
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { processIdentity } from '../../src/system/proc.js';
import { listNames, makeServerLayout, runCli, startFakeHealth, writeConfig, type ConfigOverrides, type FakeHealth, type ServerLayout } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';

let root: string;
let server: DownloadServer;
let health: FakeHealth;
let layout: ServerLayout | null = null;
let warSize: number;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-plan-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6890 });
  warSize = (await stat(join(root, 'letto-stable.war'))).size;
  server = await startDownloadServer({ root, tls: true, user: 'letto', password: 'geheim' });
  health = await startFakeHealth({ layout: () => layout });
});
afterAll(async () => {
  await server?.close();
  await health?.close();
  await rm(root, { recursive: true, force: true });
});
afterEach(async () => {
  await layout?.cleanup();
  layout = null;
  server.requests.length = 0;
});

interface Case {
  name: string;
  /** Changes the layout (and/or returns config overrides) before the dry run. */
  arrange?: (l: ServerLayout) => Promise<ConfigOverrides | void>;
  args?: string[];
  exitCode: 0 | 1;
  /** check name → expected result and a pattern its detail must match */
  expect: Record<string, [result: 'ok' | 'warn' | 'FAIL' | 'skip', detail?: RegExp]>;
}

const cases: Case[] = [
  {
    name: 'everything in order: every check ok, the update would go ahead',
    exitCode: 0,
    expect: {
      'run lock': ['ok', /^free \(/],
      'backup lock': ['ok', /no backup running/],
      'interrupted run': ['ok', /^none$/],
      'service user': ['ok'],
      revisions: ['ok', /installed 6880, stable 6886: install 6886/],
      'status script': ['ok', /TomEE runs \(PID 4242\)/],
      'stop script': ['ok', /exists and is executable for/],
      'start script': ['ok', /exists and is executable for/],
      webapps: ['ok', /is writable/],
      staging: ['ok', /is writable/],
      backups: ['ok', /is writable/],
      'state folder': ['ok', /is writable/],
      symlinks: ['ok', /none of the \d+ names the update writes is a symbolic link/],
      'database dump': ['warn', /^not dumped before updates: the config has no \[database\] section \(see docs\/database\.md\)/],
      'WAR on server': ['ok', /^\d+\.\d MiB \(HEAD https:\/\/127\.0\.0\.1:\d+\/download\/letto\/letto-stable\.war\)$/],
      'free space': ['ok', /the WAR is \d+\.\d MiB; .* free, .* needed/],
      health_url: ['ok', /HTTP 200 in \d+ ms/],
    },
  },
  {
    name: 'a revision the archive does not have: the failed check says so, free space is not judged',
    args: ['--revision', '6875'],
    exitCode: 1,
    expect: { 'WAR on server': ['FAIL', /Revision 6875 is not in the server's archive/], 'free space': ['skip', /the WAR was not found on the server/] },
  },
  { name: 'a backup is running', arrange: async (l) => void (await writeFile(l.backupLock, 'backup\n')), exitCode: 1, expect: { 'backup lock': ['FAIL', /exists: a backup is running, the update would exit 75/] } },
  {
    name: 'another run holds the run lock',
    arrange: async (l) => void (await writeFile(join(l.state, 'lock'), JSON.stringify({ pid: process.pid, command: 'update', started: '2026-11-21T02:15:03.000Z', process: processIdentity(process.pid) }))),
    exitCode: 1,
    expect: { 'run lock': ['FAIL', new RegExp(`held by process ${process.pid} \\(update, since 2026-11-2[01] \\d\\d:\\d\\d:03 \\S+\\): the update would exit 75`)] },
  },
  { name: 'not enough free space for the WAR’s real size', arrange: async () => ({ paths: { free_space_margin: 1024 * 1024 * 1024 } }), exitCode: 1, expect: { 'free space': ['FAIL', /Not enough free disk space for .*: .* free, .* needed/] } },
  { name: 'the start script is not executable', arrange: async (l) => void (await chmod(l.scripts.start, 0o644)), exitCode: 1, expect: { 'start script': ['FAIL', /start\.sh is not executable for \S+ \(mode 644\)/] } },
  { name: 'the stop script does not exist', arrange: async (l) => void (await rm(l.scripts.stop)), exitCode: 1, expect: { 'stop script': ['FAIL', /stop\.sh does not exist/] } },
  { name: 'the backups folder cannot be created (a file is in the way)', arrange: async (l) => ({ paths: { backups: join(l.war, 'backup') } }), exitCode: 1, expect: { backups: ['FAIL', /letto\.war is not a folder, so .* cannot be created/] } },
  { name: 'staging does not exist yet: it can be created', arrange: async (l) => ({ paths: { staging: join(l.root, 'new/war') } }), exitCode: 0, expect: { staging: ['ok', /new\/war does not exist yet; .* is writable, so the update can create it/] } },
  { name: 'LeTTo does not answer now', arrange: async () => ({ tomee: { health_url: 'http://127.0.0.1:9/letto/test.jsf' } }), exitCode: 1, expect: { health_url: ['FAIL', /no answer .*LeTTo does not answer now/] } },
  {
    name: 'TomEE is stopped: the WAR would be swapped and TomEE left stopped',
    arrange: async (l) => void (await rm(l.runningFlag)),
    exitCode: 0,
    expect: { 'status script': ['ok', /TomEE is not running/], health_url: ['ok', /not needed: TomEE is not running/] },
  },
  {
    name: 'a planted symlink in staging',
    arrange: async (l) => void (await symlink('/etc/passwd', join(l.staging, 'letto-6886.war.part'))),
    exitCode: 1,
    expect: { symlinks: ['FAIL', /letto-6886\.war\.part.*symbolic link|symlink/i] },
  },
  {
    name: 'nothing to do: the installed revision is current',
    args: ['--channel', 'stable', '--revision', '6880'],
    exitCode: 0,
    expect: { revisions: ['ok', /Revision 6880 is installed; it is the current one asked for/], 'free space': ['skip', /not needed: nothing to install/], health_url: ['skip'] },
  },
  {
    name: 'the download server refuses the login',
    arrange: async (l) => void (await writeFile(l.passwordFile, 'wrong\n', { mode: 0o600 })),
    exitCode: 1,
    expect: { revisions: ['FAIL', /refused the login \(HTTP 401\)/], 'free space': ['skip', /cannot be judged: the revisions are unknown/] },
  },
];

describe('update --dry-run: a checked plan, nothing changed', () => {
  it.each(cases)('$name', async (c) => {
    layout = await makeServerLayout({ revision: 6880 });
    const l = layout;
    await writeConfig(l, { url: server.url, caPem: server.caPem, user: 'letto' }, { password: 'geheim', tomee: { health_url: health.url } });
    const overrides = (await c.arrange?.(l)) ?? undefined;
    const config = overrides
      ? await writeConfig(l, { url: server.url, caPem: server.caPem, user: 'letto' }, { password: c.name.includes('login') ? 'wrong' : 'geheim', ...overrides, tomee: { health_url: health.url, ...overrides.tomee } })
      : l.configPath;
    const warBefore = await l.warBytes();
    const namesBefore = { staging: await listNames(l.staging), backups: await listNames(l.backups), state: await listNames(l.state), sicherung: await listNames(join(l.backupLock, '..')) };

    const run = await runCli(['--config', config, 'update', '--dry-run', ...(c.args ?? [])]);

    const lines = run.stdout.split('\n');
    expect(lines[0]).toBe(`config: ${config}`);
    expect(lines[1]).toMatch(/^Dry run: /);
    const table = new Map(
      lines
        .map((line) => /^ {2}(ok|warn|FAIL|skip) +(\S.*?) {2,}(\S.*)$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[2]!.trim(), { result: m[1]!, detail: m[3]! }]),
    );
    expect([...table.keys()]).toEqual(['run lock', 'backup lock', 'interrupted run', 'service user', 'revisions', 'status script', 'stop script', 'start script', 'webapps', 'staging', 'backups', 'state folder', 'symlinks', 'database dump', 'WAR on server', 'free space', 'health_url']);
    for (const [name, [result, detail]] of Object.entries(c.expect)) {
      expect(table.get(name)?.result, `${name}: ${table.get(name)?.detail}`).toBe(result);
      if (detail) expect(table.get(name)!.detail).toMatch(detail);
    }
    // the checks not named in the case are ok (or skipped/failed as a consequence of the named one)
    if (c.exitCode === 0) expect([...table.values()].filter((v) => v.result === 'FAIL')).toEqual([]);
    expect(run.exitCode, run.stdout + run.stderr).toBe(c.exitCode);
    if (c.exitCode === 0) {
      expect(run.stderr).toBe('');
      expect(lines.at(-2)).toMatch(/^(The update would go ahead: 17 checks, none failed\. )?Nothing was changed\.$/);
    } else {
      const failed = Object.entries(c.expect).filter(([, [r]]) => r === 'FAIL').map(([n]) => n);
      expect(run.stderr).toMatch(new RegExp(`^error: The update would not go ahead: \\d checks? failed \\(.*${failed[0]}.*\\)\\. Nothing was changed\\.\\nwhat to do: `));
    }

    // nothing changed
    expect((await l.calls()).filter((call) => call !== 'status')).toEqual([]);
    expect((await l.warBytes()).equals(warBefore)).toBe(true);
    // the status script's run record (<state>/scripts/, see src/system/process.ts) is removed when it ends: at most its empty folder stays
    const state = (await listNames(l.state)).filter((name) => name !== 'scripts');
    expect(await listNames(join(l.state, 'scripts'))).toEqual([]);
    expect({ staging: await listNames(l.staging), backups: await listNames(l.backups), state, sicherung: await listNames(join(l.backupLock, '..')) }).toEqual(namesBefore);
    expect(server.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);
    expect(server.requests.filter((r) => r.method === 'GET' && r.path.endsWith('.war'))).toEqual([]);
  });

  it('the WAR’s size comes from a HEAD with the credentials; --json carries the table', async () => {
    layout = await makeServerLayout({ revision: 6880 });
    const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: 'letto' }, { password: 'geheim', tomee: { health_url: health.url } });
    const run = await runCli(['--json', '--config', config, 'update', '--dry-run']);
    expect(run.exitCode).toBe(0);
    const report = JSON.parse(run.stdout) as { result: string; goAhead: boolean; from: number; to: number; checks: Array<{ name: string; result: string; detail: string }> };
    expect(report).toMatchObject({ command: 'update', result: 'dry-run', goAhead: true, from: 6880, to: 6886, action: 'install', exitCode: 0 });
    expect(report.checks.find((c) => c.name === 'WAR on server')!.detail).toContain(`${(warSize / 1024 / 1024).toFixed(1)} MiB (HEAD `);
    const heads = server.requests.filter((r) => r.method === 'HEAD');
    expect(heads).toHaveLength(1);
    expect(heads[0]).toMatchObject({ path: '/download/letto/letto-stable.war', authorized: true, status: 200 });
  });

  it('an interrupted run waiting: a warning, the plan is made from what its recovery leaves, exit 0', async () => {
    layout = await makeServerLayout({ revision: 6880 });
    const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: 'letto' }, { password: 'geheim', tomee: { health_url: health.url } });
    // a real run killed right after its journal recorded the download step
    const killed = await runCli(['--config', config, 'update', '--yes'], { env: { LETTO_UPDATE_FAULT: 'download' } });
    expect(killed.signal).toBe('SIGKILL');
    const journal = await readFile(join(layout.state, 'journal.json'), 'utf8');
    const run = await runCli(['--config', config, 'update', '--dry-run']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^ {2}warn {2}interrupted run {2}An update from revision 6880 to 6886 .* The update finishes or undoes it first; revision 6880 is what it plans from\.$/m);
    expect(run.stdout).toMatch(/Dry run: would first recover the interrupted run \(.*\), then update LeTTo from revision 6880 to 6886/);
    // the dry run recovered nothing
    expect(await readFile(join(layout.state, 'journal.json'), 'utf8')).toBe(journal);
  });
});
