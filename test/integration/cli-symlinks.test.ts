/**
 * Symlinks planted in webapps, staging, backups or the state folder, at every name a run writes to
 * (the WAR, the swap's temporary name, the exploded folder, the backup and its temporary name, the
 * staged WAR, its .part and the .part's sidecar, the journal): `update` refuses, and `download` for the
 * staging names; the run refuses with exit 1 naming the link, TomEE is not
 * stopped, and the file the link points to, outside, is byte for byte as it was.
 */
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listNames, makeServerLayout, runCli, writeConfig, type ServerLayout } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';

const USER = 'letto';
const PASSWORD = 'geheim-Link-5';

let root: string;
let server: DownloadServer;
let layout: ServerLayout | null = null;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-links-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6890 });
  server = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
});
afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});
afterEach(async () => {
  await layout?.cleanup();
  layout = null;
});

interface LinkCase {
  name: string;
  /** Where the link is planted, from the layout. */
  at: (l: ServerLayout) => string;
  /** The link points at a folder (with a file in it) instead of a file. */
  folder?: boolean;
  /** The victim holds a copy of the installed WAR (so reading through the link would "work"). */
  war?: boolean;
}

const cases: LinkCase[] = [
  { name: 'webapps/letto.war', at: (l) => l.war, war: true },
  { name: 'webapps/.letto.war.letto-update.tmp (the swap temp)', at: (l) => join(l.webapps, '.letto.war.letto-update.tmp') },
  { name: 'webapps/letto/ (the exploded folder)', at: (l) => join(l.webapps, 'letto'), folder: true },
  { name: 'backups/letto-6880.war (the backup name)', at: (l) => join(l.backups, 'letto-6880.war') },
  { name: 'backups/letto-6880.war.tmp (the backup temp)', at: (l) => join(l.backups, 'letto-6880.war.tmp') },
  { name: 'staging/letto-6886.war (the staged WAR)', at: (l) => join(l.staging, 'letto-6886.war') },
  { name: 'staging/letto-6886.war.part (the partial download)', at: (l) => join(l.staging, 'letto-6886.war.part') },
  { name: 'staging/letto-6886.war.part.json (its sidecar)', at: (l) => join(l.staging, 'letto-6886.war.part.json') },
  { name: 'state/journal.json', at: (l) => join(l.state, 'journal.json') },
];

describe('a symlink planted where a run writes: refused, nothing written outside', () => {
  it.each(cases)('$name', async ({ at, folder, war }) => {
    layout = await makeServerLayout({ revision: 6880 });
    const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD });
    const outside = join(layout.root, 'outside');
    await mkdir(outside);
    const victim = folder ? join(outside, 'dir') : join(outside, 'victim');
    const victimFile = folder ? join(victim, 'keep.txt') : victim;
    if (folder) await mkdir(victim);
    const precious = war ? layout.initialWar : Buffer.from('precious bytes that must stay\n');
    await writeFile(victimFile, precious);
    const link = at(layout);
    if (war) await rm(link);
    await symlink(victim, link);

    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`${link} is a symbolic link`);
    expect(r.stderr).toMatch(/what to do: /);
    expect((await readFile(victimFile)).equals(precious)).toBe(true);
    if (folder) expect(await listNames(victim)).toEqual(['keep.txt']);
    expect(await listNames(outside)).toEqual([folder ? 'dir' : 'victim']);
    expect(await readlink(link)).toBe(victim); // the link itself is left for the admin to inspect
    expect((await layout.calls()).filter((c) => c !== 'status')).toEqual([]); // TomEE not stopped
    if (!war) expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
    expect((await lstat(layout.war)).isSymbolicLink()).toBe(Boolean(war));
    expect(await listNames(layout.backupLock + '/..')).toEqual([]);
  });
});

describe('`download` too refuses a symlink planted among the staging names', () => {
  it.each(cases.filter((c) => c.name.startsWith('staging/')))('$name', async ({ at }) => {
    layout = await makeServerLayout({ revision: 6880 });
    const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD });
    const outside = join(layout.root, 'outside');
    await mkdir(outside);
    const victim = join(outside, 'victim');
    const precious = Buffer.from('precious bytes that must stay\n');
    await writeFile(victim, precious);
    const link = at(layout);
    await symlink(victim, link);

    server.requests.length = 0;
    const r = await runCli(['--config', config, 'download']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`${link} is a symbolic link`);
    expect((await readFile(victim)).equals(precious)).toBe(true);
    expect(await listNames(outside)).toEqual(['victim']);
    expect(await readlink(link)).toBe(victim);
    expect(server.requests.filter((req) => req.path.endsWith('.war'))).toEqual([]); // refused before the download
  });
});
