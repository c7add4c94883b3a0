/**
 * A package upgrade while a run is under way (`npm install -g` or `apt upgrade` of letto-update during
 * the nightly update): the bundle's chunks have content hashes in their names, so the new version's
 * files replace the old ones and a module the run had not loaded yet would be gone. Commands that may
 * change the install load every module they need before they start (Adapter.load, issue 11), so the
 * run finishes. Real files: a copy of bin/ and dist/bundle/, a download server that sends slowly, the
 * built CLI as a child process.
 */
import { execa } from 'execa';
import { cp, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWarRevision } from '../../src/war/verify.js';
import { type FakeHealth, makeServerLayout, REPO_ROOT, type ServerLayout, startFakeHealth, writeConfig } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';

let root: string;
let server: DownloadServer;
let health: FakeHealth;
let layout: ServerLayout | null = null;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-upgrade-'));
  await populateDownloadRoot(join(root, 'download'), { stable: 6886, daily: 6890, padBytes: 512 * 1024 });
  const size = (await stat(join(root, 'download', 'letto-stable.war'))).size;
  // the WAR takes about 3 s to arrive: time enough to "upgrade" the package under the running update
  server = await startDownloadServer({ root: join(root, 'download'), rate: Math.ceil(size / 3) });
  health = await startFakeHealth({ layout: () => layout, unhealthy: new Set() });
});

afterAll(async () => {
  await server?.close();
  await health?.close();
  await layout?.cleanup();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('a package upgrade during a run', () => {
  it('update finishes although every chunk of the bundle it started from is replaced half-way', async () => {
    layout = await makeServerLayout({ revision: 6880 });
    const config = await writeConfig(layout, { url: server.url, caPem: '', user: '' }, { tomee: { health_url: health.url, health_timeout: 5 }, server: { delta: false } });
    const pkg = join(root, 'pkg');
    await mkdir(join(pkg, 'dist'), { recursive: true });
    await cp(join(REPO_ROOT, 'bin'), join(pkg, 'bin'), { recursive: true });
    await cp(join(REPO_ROOT, 'dist', 'bundle'), join(pkg, 'dist', 'bundle'), { recursive: true });

    const run = execa(process.execPath, [join(pkg, 'bin', 'letto-update.js'), '--config', config, 'update', '--yes'], { reject: false, timeout: 60_000 });
    // wait until the download is under way, then take the old chunks away as an upgrade would
    const deadline = Date.now() + 20_000;
    while (!(await readdir(layout.staging)).some((name) => name.endsWith('.part')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await readdir(layout.staging)).toContainEqual(expect.stringMatching(/\.part$/));
    await rm(join(pkg, 'dist', 'bundle'), { recursive: true });
    await mkdir(join(pkg, 'dist', 'bundle'));

    const r = await run;
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(await readWarRevision(layout.war)).toBe(6886);
  }, 90_000);
});
