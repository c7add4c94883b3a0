/**
 * The download password never shows up in the argv of any process, in the environment of the
 * scripts letto-update starts, in its output (human, --verbose, --json) or in the files it writes.
 * The layout's status/stop/start scripts snapshot every process's command line (/proc/<pid>/cmdline)
 * and their own environment while the update runs.
 */
import { readFile, readdir, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { makeServerLayout, runCli, startFakeHealth, writeConfig, type FakeHealth, type ServerLayout } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';

const USER = 'letto';
const PASSWORD = 'Zz-very-secret-Pw-4711';
const BASIC = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');

let root: string;
let server: DownloadServer;
let layout: ServerLayout | null = null;
/** LeTTo's health page for the layout of the running test (200 while its fake TomEE runs). */
let health: FakeHealth;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-secrets-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6890 });
  server = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
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
});

/** Wraps each script so it first appends every process's argv and its own environment to `dump`. */
async function spyScripts(l: ServerLayout, dump: string): Promise<void> {
  for (const script of Object.values(l.scripts)) {
    const body = await readFile(script, 'utf8');
    const spy = `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < "$f" 2>/dev/null; echo; done >> '${dump}'\nenv >> '${dump}'\n`;
    await writeFile(script, body.replace('#!/bin/sh\n', `#!/bin/sh\n${spy}`));
    await chmod(script, 0o755);
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

describe.each([
  { source: 'password file', env: {} as Record<string, string>, password: PASSWORD },
  { source: 'LETTO_UPDATE_PASSWORD', env: { LETTO_UPDATE_PASSWORD: PASSWORD }, password: 'wrong-in-file' },
])('password from the $source', ({ env, password }) => {
  it('is in no argv, no script environment, no output and no written file', async () => {
    layout = await makeServerLayout({ revision: 6880 });
    const dump = join(layout.root, 'procs.txt');
    await spyScripts(layout, dump);
    const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password, tomee: { health_url: health.url, health_timeout: 5 } });
    const outputs: string[] = [];
    for (const args of [['--verbose', 'update', '--yes'], ['--json', 'update', '--yes', '--force'], ['--json', 'status'], ['--verbose', 'download', '--revision', '6886']]) {
      const r = await runCli(['--config', config, ...args], { env });
      // every run must succeed: a run that failed early would leak nothing and prove nothing
      expect(r.exitCode, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
      outputs.push(r.stdout, r.stderr);
    }
    const procs = await readFile(dump, 'utf8');
    expect(procs).toMatch(/letto-update\.js --config/); // the snapshot saw our own process …
    expect(procs).toMatch(/status\.sh|stop\.sh|start\.sh/); // … and the scripts
    expect(procs).not.toMatch(/^LETTO_UPDATE_/m); // no LETTO_UPDATE_* variable reaches a script
    const written = await Promise.all((await filesUnder(layout.root)).filter((f) => !f.endsWith('/password') && !f.endsWith('.war')).map((f) => readFile(f, 'utf8')));
    for (const text of [procs, ...outputs, ...written]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(BASIC);
    }
    // the runs really happened: installed, reinstalled, status, download
    expect(outputs.join('')).toMatch(/Revision 6886 runs and answers its health check/);
    expect(outputs.join('')).toMatch(/"result":"updated"/);
  });
});
