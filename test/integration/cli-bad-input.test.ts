/**
 * The built CLI against bad input: a download server that answers wrongly, broken WARs, broken
 * config, wrong usage, and busy situations. Every case checks the exit code, a message fragment, and
 * that the server was not touched (letto.war bytes unchanged, no stop/start script, no backup made,
 * nothing left in staging or webapps).
 */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZipFile } from 'yazl';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildWar } from '../../fixtures/build-war.js';
import { listNames, makeServerLayout, runCli, writeConfig, type ConfigOverrides, type ServerLayout } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer, type RequestHook } from '../support/download-server.js';

const USER = 'letto';
const PASSWORD = 'richtig-Passwort-7';
const STABLE_WAR = '/download/letto/letto-stable.war';
const STABLE_REV = '/download/letto/stable-revision.txt';

let root: string;
let server: DownloadServer;
let hook: RequestHook | null = null;
const layouts: ServerLayout[] = [];
/** Bad WARs, built once. */
const wars: Record<'flipped' | 'truncated' | 'noWebXml' | 'otherRevision', Buffer> = {
  flipped: Buffer.alloc(0),
  truncated: Buffer.alloc(0),
  noWebXml: Buffer.alloc(0),
  otherRevision: Buffer.alloc(0),
};

/** A hook that answers `path` with `status` and `body`; other paths go to the normal server. */
function answer(path: string, status: number, body: string | Buffer, type = 'text/html'): RequestHook {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== path) return false;
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(buf.length) });
    res.end(buf);
    return true;
  };
}

/** A hook that announces the whole WAR but cuts the connection after half of it. */
function cutOff(path: string, whole: Buffer): RequestHook {
  return (req, res) => {
    if (req.url !== path) return false;
    res.writeHead(200, { 'Content-Type': 'application/java-archive', 'Content-Length': String(whole.length) });
    res.write(whole.subarray(0, Math.floor(whole.length / 2)), () => setTimeout(() => res.destroy(), 50));
    return true;
  };
}

const HTML_PAGE = '<!DOCTYPE html>\n<html><head><title>Wartung</title></head><body><h1>Der Server wird gewartet</h1></body></html>\n';

async function zipBuffer(entries: Record<string, string>): Promise<Buffer> {
  const zip = new ZipFile();
  for (const [name, text] of Object.entries(entries)) zip.addBuffer(Buffer.from(text), name);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A healthy WAR of revision 6886 with one byte flipped inside the (stored) padding entry's data. */
async function flippedWar(dir: string): Promise<Buffer> {
  const path = join(dir, 'flipped.war');
  await buildWar(path, { revision: 6886, padBytes: 4096 });
  const buf = await readFile(path);
  const name = Buffer.from('WEB-INF/lib/padding.bin');
  const header = buf.indexOf(name) - 30;
  expect(buf.readUInt32LE(header)).toBe(0x04034b50); // a local file header
  const data = header + 30 + buf.readUInt16LE(header + 26) + buf.readUInt16LE(header + 28);
  buf[data + 2000] = buf[data + 2000]! ^ 0xff;
  return buf;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-badroot-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6890, archive: [6870] });
  server = await startDownloadServer({
    root,
    tls: true,
    user: USER,
    password: PASSWORD,
    onRequest: (req, res) => (hook ? hook(req, res) : false),
  });
  wars.flipped = await flippedWar(root);
  const good = await readFile(join(root, 'letto-stable.war'));
  wars.truncated = good.subarray(0, Math.floor(good.length * 0.6));
  wars.noWebXml = await zipBuffer({ 'WEB-INF/classes/revision.txt': '6886\r\n', 'index.html': '<html></html>' });
  const other = join(root, 'other.war');
  await buildWar(other, { revision: 6885 });
  wars.otherRevision = await readFile(other);
});

afterAll(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

afterEach(async () => {
  hook = null;
  for (const l of layouts.splice(0)) await l.cleanup();
});

async function setup(overrides: ConfigOverrides = {}, revision = 6880): Promise<{ layout: ServerLayout; config: string }> {
  const layout = await makeServerLayout({ revision });
  layouts.push(layout);
  // transient failures (500, a cut connection) are retried: once, quickly, so these runs stay short
  const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, ...overrides, server: { retries: 1, retry_wait: 0.05, ...overrides.server } });
  return { layout, config };
}

/** The server was not touched: no script but status ran, letto.war and webapps as before, no backup, nothing staged. */
async function expectUntouched(layout: ServerLayout, opts: { backupLock?: boolean } = {}): Promise<void> {
  expect((await layout.calls()).filter((c) => c !== 'status')).toEqual([]);
  expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
  expect(await listNames(layout.webapps)).toEqual(['letto.war']);
  expect(await listNames(layout.backups)).toEqual([]);
  expect(await listNames(layout.staging)).toEqual([]);
  if (!opts.backupLock) expect(await listNames(join(layout.backupLock, '..'))).toEqual([]);
}

interface DownloadCase {
  name: string;
  hook: () => RequestHook;
  fragment: RegExp;
  /** Where it fails: reading the revision file, or downloading/verifying the WAR. */
  stage: 'revision' | 'war';
}

describe('update with a download server that answers wrongly: exit 1, server untouched', () => {
  const cases: DownloadCase[] = [
    { name: 'revision file is an HTML page', hook: () => answer(STABLE_REV, 200, HTML_PAGE), fragment: /stable-revision\.txt is not usable: it is an HTML page/, stage: 'revision' },
    { name: 'revision file is empty', hook: () => answer(STABLE_REV, 200, ''), fragment: /stable-revision\.txt is not usable: the file is empty/, stage: 'revision' },
    { name: 'revision file is not a number', hook: () => answer(STABLE_REV, 200, 'latest\n', 'text/plain'), fragment: /"latest" is not a revision number/, stage: 'revision' },
    { name: 'revision file answers HTTP 500', hook: () => answer(STABLE_REV, 500, HTML_PAGE), fragment: /answered HTTP 500 for .*stable-revision\.txt/, stage: 'revision' },
    { name: 'revision file answers HTTP 404', hook: () => answer(STABLE_REV, 404, HTML_PAGE), fragment: /Not found on the download server \(HTTP 404\): .*stable-revision\.txt/, stage: 'revision' },
    { name: 'WAR answers HTTP 500', hook: () => answer(STABLE_WAR, 500, HTML_PAGE), fragment: /answered HTTP 500 for .*letto-stable\.war/, stage: 'war' },
    { name: 'WAR is an empty body (HTTP 200)', hook: () => answer(STABLE_WAR, 200, '', 'application/java-archive'), fragment: /letto-6886\.war\.part is empty, not a WAR/, stage: 'war' },
    { name: 'WAR answers HTTP 404', hook: () => answer(STABLE_WAR, 404, HTML_PAGE), fragment: /Not found on the download server \(HTTP 404\): .*letto-stable\.war/, stage: 'war' },
    { name: 'WAR is an HTML page (HTTP 200)', hook: () => answer(STABLE_WAR, 200, HTML_PAGE), fragment: /is an HTML page, not a WAR/, stage: 'war' },
    { name: 'WAR with a flipped byte inside an entry (CRC)', hook: () => answer(STABLE_WAR, 200, wars.flipped, 'application/java-archive'), fragment: /entry WEB-INF\/lib\/padding\.bin fails its CRC-32 check/, stage: 'war' },
    { name: 'truncated WAR (complete download of a cut file)', hook: () => answer(STABLE_WAR, 200, wars.truncated, 'application/java-archive'), fragment: /is not a complete, well-formed WAR/, stage: 'war' },
    { name: 'connection cut in the middle of the WAR', hook: () => cutOff(STABLE_WAR, wars.flipped), fragment: /broke off|incomplete/, stage: 'war' },
    { name: 'zip without WEB-INF/web.xml', hook: () => answer(STABLE_WAR, 200, wars.noWebXml, 'application/java-archive'), fragment: /not a web application: WEB-INF\/web\.xml is missing/, stage: 'war' },
    { name: 'WAR whose revision.txt differs from the revision file', hook: () => answer(STABLE_WAR, 200, wars.otherRevision, 'application/java-archive'), fragment: /carries revision 6885, but revision 6886 was expected/, stage: 'war' },
  ];

  it.each(cases)('$name', async ({ hook: makeHook, fragment, stage }) => {
    const { layout, config } = await setup();
    hook = makeHook();
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.stderr).toMatch(fragment);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/what to do: /);
    await expectUntouched(layout);
    // the failed run is recorded; the run lock is released
    if (stage === 'war') {
      // failures of the WAR download/verification are recorded as a failed run from 6880 to 6886
      expect(await recordedRuns(layout)).toEqual([expect.objectContaining({ command: 'update', result: 'failed', from: 6880, to: 6886 })]);
    }
    expect(await listNames(layout.state)).not.toContain('lock');
  });

  it('a run that fails reading the revision file is recorded too', async () => {
    const { layout, config } = await setup();
    hook = answer(STABLE_REV, 500, HTML_PAGE);
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode).toBe(1);
    expect(await recordedRuns(layout)).toEqual([expect.objectContaining({ command: 'update', result: 'failed', from: 6880 })]);
  });

  it('wrong password: exit 1, says the login was refused, never prints the password', async () => {
    const wrong = 'falsches-Passwort-42';
    const { layout, config } = await setup({ password: wrong });
    for (const args of [['update', '--yes'], ['check'], ['--json', 'check'], ['--verbose', 'download']]) {
      const r = await runCli(['--config', config, ...args]);
      expect(r.exitCode, args.join(' ')).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/refused the login \(HTTP 401\)/);
      expect(r.stdout + r.stderr).toMatch(/password/);
      expect(r.stdout).not.toContain(wrong);
      expect(r.stderr).not.toContain(wrong);
      expect(r.stderr).not.toContain(Buffer.from(`${USER}:${wrong}`).toString('base64'));
    }
    await expectUntouched(layout);
  });

  it('the password from LETTO_UPDATE_PASSWORD wins over the file and is not printed either', async () => {
    const { config } = await setup({ password: 'falsch' });
    const ok = await runCli(['--config', config, '--json', 'check'], { env: { LETTO_UPDATE_PASSWORD: PASSWORD } });
    expect(ok.exitCode).toBe(100);
    expect(ok.stdout).not.toContain(PASSWORD);
  });
});

const ARCHIVE = '/download/letto/archiv/';

/** An autoindex page listing `hrefs`. */
function listing(hrefs: string[]): string {
  return `<html><body><h1>Index of /download/letto/archiv</h1><pre>${hrefs.map((h) => `<a href="${h}">${h}</a>`).join('\n')}</pre></body></html>`;
}

interface ArchiveCase {
  name: string;
  hrefs: string[];
}

describe('an archiv/ listing with names that try path traversal or are not revisions: exit 1, nothing fetched outside, server untouched', () => {
  const cases: ArchiveCase[] = [
    { name: 'parent-folder names (../)', hrefs: ['../letto-6870.war', '../../../../etc/letto-6870.war', 'sub/../../letto-6870.war'] },
    { name: 'percent-encoded traversal (%2e%2e%2f, %2f)', hrefs: ['%2e%2e/letto-6870.war', '%2e%2e%2fletto-6870.war', 'x%2f..%2f..%2fletto-6870.war', '..%5cletto-6870.war'] },
    { name: 'absolute paths and other hosts', hrefs: ['/etc/letto-6870.war', '/download/letto/letto-6870.war', 'https://evil.example/archiv/letto-6870.war', '//evil.example/letto-6870.war', 'file:///etc/letto-6870.war'] },
    { name: 'names that are not revisions', hrefs: ['letto.war', 'letto-latest.war', 'letto-68.war', 'letto-6870.war.sha256', 'letto-6870.zip', '.letto-6870.war', 'README.txt', '?C=N;O=D'] },
  ];

  it.each(cases)('$name', async ({ hrefs }) => {
    const { layout, config } = await setup();
    hook = answer(ARCHIVE, 200, listing(hrefs));
    server.requests.length = 0;
    const r = await runCli(['--config', config, 'update', '--revision', '6870', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/Revision 6870 is not in the server's archive/);
    expect(r.stderr).toMatch(/what to do: The archive listing is empty/);
    // nothing but the revision file and the listing was asked for
    expect(server.requests.map((q) => q.path).filter((p) => p !== STABLE_REV && p !== ARCHIVE)).toEqual([]);
    await expectUntouched(layout);

    const list = await runCli(['--config', config, '--json', 'list', '--remote']);
    expect(list.exitCode).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject({ remote: [] });
  });

  it('a revision folder whose listing points outside: "holds no single WAR file"', async () => {
    const { layout, config } = await setup();
    hook = (req, res) => {
      const body = req.url === ARCHIVE ? listing(['6870/']) : req.url === `${ARCHIVE}6870/` ? listing(['../../letto-stable.war', '/download/letto/letto-stable.war', 'https://evil.example/letto.war']) : null;
      if (body === null) return false;
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(body);
      return true;
    };
    server.requests.length = 0;
    const r = await runCli(['--config', config, 'update', '--revision', '6870', '--yes']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/archiv\/6870\/ holds no single WAR file/);
    expect(server.requests.some((q) => q.path.endsWith('.war'))).toBe(false);
    await expectUntouched(layout);
  });
});

interface ConfigCase {
  name: string;
  /** Writes the broken config and returns the fragments the message must hold. */
  prepare: (layout: ServerLayout, config: string) => Promise<RegExp[]>;
  args?: string[];
}

describe('config and usage errors: exit 2 before anything happens', () => {
  const cases: ConfigCase[] = [
    {
      name: 'broken TOML names the file and the line',
      prepare: async (_layout, config) => {
        const lines = (await readFile(config, 'utf8')).split('\n');
        const at = lines.findIndex((l) => l.startsWith('channel = '));
        lines[at] = 'channel = stable'; // unquoted string
        await writeFile(config, lines.join('\n'));
        return [new RegExp(escape(config)), new RegExp(`line ${at + 1}\\b`), /not valid TOML/];
      },
    },
    {
      name: 'unknown key',
      prepare: async (layout) => {
        const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, paths: { kep: 3 } });
        const line = (await readFile(config, 'utf8')).split('\n').findIndex((l) => l.startsWith('kep = ')) + 1;
        return [new RegExp(`${escape(config)}, line ${line}: unknown key paths\\.kep`), /spelling/];
      },
    },
    {
      name: 'wrong type (health_timeout = "abc")',
      prepare: async (layout) => {
        const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, tomee: { health_timeout: 'abc' } });
        const line = (await readFile(config, 'utf8')).split('\n').findIndex((l) => l.startsWith('health_timeout = ')) + 1;
        return [new RegExp(`${escape(config)}, line ${line}: key tomee\\.health_timeout must be a number of seconds or a duration like`), /what to do: Set tomee\.health_timeout to a valid value/];
      },
    },
    {
      name: 'wrong type (paths.keep = "five")',
      prepare: async (layout) => {
        const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, paths: { keep: 'five' } });
        const line = (await readFile(config, 'utf8')).split('\n').findIndex((l) => l.startsWith('keep = ')) + 1;
        return [new RegExp(`${escape(config)}, line ${line}: key paths\\.keep expected number`)];
      },
    },
    {
      name: 'an unknown section',
      prepare: async (layout) => {
        const config = await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, extra: '[tomcat]\nwebapps = "/opt/tomee/webapps"' });
        const line = (await readFile(config, 'utf8')).split('\n').findIndex((l) => l.startsWith('[tomcat]')) + 1;
        return [new RegExp(`${escape(config)}, line ${line}: unknown key tomcat`)];
      },
    },
    {
      name: 'password file readable by others (0644)',
      prepare: async (layout) => {
        await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, passwordMode: 0o644 });
        return [new RegExp(escape(layout.passwordFile)), /chmod 600/];
      },
    },
    {
      name: 'password file readable by the group (0640)',
      prepare: async (layout) => {
        await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, passwordMode: 0o640 });
        return [new RegExp(escape(layout.passwordFile)), /mode 640/, /chmod 600/];
      },
    },
    {
      name: 'plain http:// to a host that is not this machine',
      prepare: async (layout) => {
        await writeConfig(layout, { url: 'http://letto.example.org/download/letto/', caPem: '', user: USER }, { password: PASSWORD });
        return [/server\.url/, /not https/];
      },
    },
    {
      name: 'the config file named by --config does not exist',
      prepare: async (layout) => {
        await rm(layout.configPath);
        return [new RegExp(escape(layout.configPath)), /does not exist/];
      },
    },
    {
      name: 'usage: update --revision abc',
      prepare: async () => [/--revision/, /revision number/],
      args: ['update', '--revision', 'abc'],
    },
    {
      name: 'usage: unknown option',
      prepare: async () => [/unknown option '--frce'/],
      args: ['update', '--frce'],
    },
  ];

  it.each(cases)('$name', async ({ prepare, args }) => {
    const { layout, config } = await setup();
    const fragments = await prepare(layout, config);
    server.requests.length = 0;
    const r = await runCli(['--config', config, ...(args ?? ['update', '--yes'])]);
    expect(r.exitCode).toBe(2);
    for (const f of fragments) expect(r.stderr).toMatch(f);
    expect(r.stdout).not.toContain(PASSWORD);
    expect(r.stderr).not.toContain(PASSWORD);
    expect(await layout.calls()).toEqual([]);
    expect(server.requests).toEqual([]);
    await expectUntouched(layout);
  });

  it('a config error with --json is one JSON object on stdout', async () => {
    const { layout } = await setup();
    await writeConfig(layout, { url: server.url, caPem: server.caPem, user: USER }, { password: PASSWORD, tomee: { health_timeout: 'abc' } });
    const r = await runCli(['--config', layout.configPath, '--json', 'check']);
    expect(r.exitCode).toBe(2);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ error: { message: expect.stringContaining('tomee.health_timeout') as string } });
  });
});

describe('busy: exit 75 and nothing changes', () => {
  it('a backup is running (backup lock exists): update exits 75 and leaves the lock alone', async () => {
    const { layout, config } = await setup();
    await writeFile(layout.backupLock, 'sqlsicherung 2024-05-01\n');
    server.requests.length = 0;
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode).toBe(75);
    expect(r.stderr).toMatch(/backup is running/);
    expect(r.stderr).toContain(layout.backupLock);
    expect(await readFile(layout.backupLock, 'utf8')).toBe('sqlsicherung 2024-05-01\n');
    expect(server.requests).toEqual([]);
    expect(await listNames(layout.state)).not.toContain('lock');
    await expectUntouched(layout, { backupLock: true });
  });

  it('a live process holds the run lock: exit 75, the lock stays', async () => {
    const { layout, config } = await setup();
    const body = JSON.stringify({ pid: process.pid, command: 'update', started: new Date().toISOString() });
    await writeFile(join(layout.state, 'lock'), body);
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode).toBe(75);
    expect(r.stderr).toContain(`process ${process.pid}`);
    expect(await readFile(join(layout.state, 'lock'), 'utf8')).toBe(body);
    expect(server.requests.filter((q) => q.path.endsWith('.war'))).toEqual([]);
    await expectUntouched(layout);
  });

  it('a stale run lock (its process is gone) is taken over', async () => {
    const { layout, config } = await setup({}, 6886);
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    expect(dead).toBeGreaterThan(0);
    await writeFile(join(layout.state, 'lock'), JSON.stringify({ pid: dead, command: 'update', started: '2024-01-01T00:00:00Z' }));
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/Revision 6886 is installed/);
    expect(await listNames(layout.state)).not.toContain('lock');
    expect(await recordedRuns(layout)).toEqual([
      expect.objectContaining({ result: 'current', from: 6886, to: 6886 }),
    ]);
    await expectUntouched(layout);
  });
});

describe('locks whose PID now belongs to another process (after a reboot or PID reuse) are not obeyed', () => {
  it('a run lock naming a live PID with another process identity is taken over', async () => {
    const { layout, config } = await setup({}, 6886);
    // process.pid is alive (this test worker), but the lock says it was written by a process of another boot
    await writeFile(join(layout.state, 'lock'), JSON.stringify({ pid: process.pid, command: 'update', started: '2024-01-01T00:00:00Z', process: 'another-boot:12345' }));
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Revision 6886 is installed/);
    expect(await listNames(layout.state)).not.toContain('lock');
  });

  it('our backup-lock marker naming a live PID of another boot is removed, not taken for a running backup', async () => {
    const { layout, config } = await setup({}, 6886);
    await writeFile(layout.backupLock, `letto-update pid=${process.pid} since=2024-01-01T00:00:00.000Z process=another-boot:12345\n`);
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await listNames(join(layout.backupLock, '..'))).toEqual([]);
  });
});

async function recordedRuns(layout: ServerLayout): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(join(layout.state, 'runs.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
