/**
 * `health` is a monitoring plugin: in every case exactly one line on stdout (`LETTO <STATE> - …`, then
 * optional perfdata) and the plugin exit code; the whole message and what to do go to stderr. stdout is
 * compared byte for byte. Real parts: the built CLI, real status scripts, a real HTTP server on loopback.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeServerLayout, runCli, writeConfig, type ServerLayout } from '../support/cli.js';

/** Answers every request with `status` (200 unless a test changes it), like LeTTo's test page. */
let status = 200;
let page: Server;
let pageUrl: string;
let layout: ServerLayout;
let config: string;

beforeAll(async () => {
  page = createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end('LeTTo\n');
  });
  await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
  pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/letto/test.jsf`;
});

afterAll(async () => {
  await new Promise((resolve) => page?.close(resolve));
});

afterEach(async () => {
  status = 200;
  await layout?.cleanup();
});

async function setup(overrides: Parameters<typeof writeConfig>[2] = {}): Promise<void> {
  layout = await makeServerLayout({ revision: 6880 });
  config = await writeConfig(layout, { url: 'https://127.0.0.1:9/download/letto/', caPem: '' }, { ...overrides, tomee: { health_url: pageUrl, ...overrides.tomee } });
}

const health = (...args: string[]) => runCli(['--config', config, 'health', ...args]);

describe('health: one line on stdout in every case, details on stderr', () => {
  it('OK: the line and perfdata, nothing on stderr', async () => {
    await setup();
    const run = await health();
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/^LETTO OK - revision 6880, HTTP 200 in \d+ ms \| time=\d+\.\d{3}s;5;;0;10\n$/);
    expect(run.stderr).toBe('');
  });

  it('the status script does not exist: UNKNOWN, one line; the hint on stderr', async () => {
    await setup();
    const missing = join(layout.root, 'opt/letto/nope.sh');
    const run = await runCli(['--config', config, 'health'], { env: { LETTO_UPDATE_TOMEE_STATUS: missing } });
    expect(run.exitCode).toBe(3);
    expect(run.stdout).toBe(`LETTO UNKNOWN - Cannot tell whether TomEE runs: the status script failed (${missing} does not exist (ENOENT))\n`);
    expect(run.stderr).toBe(`what to do: Check tomee.status (${missing}): it must exist, be executable by ${(await import('node:os')).userInfo().username}, and print the PID when TomEE runs.\n`);
  });

  it('the status script is not executable: UNKNOWN, one line', async () => {
    await setup();
    await chmod(layout.scripts.status, 0o644);
    const run = await health();
    expect(run.exitCode).toBe(3);
    expect(run.stdout).toMatch(new RegExp(`^LETTO UNKNOWN - Cannot tell whether TomEE runs: the status script failed \\(${layout.scripts.status} is not executable for \\S+ \\(EACCES\\)\\)\\n$`));
    expect(run.stderr).toMatch(/^what to do: Check tomee\.status/);
  });

  it('the status script says stopped but health_url answers: WARNING naming the disagreement, what to do on stderr', async () => {
    await setup();
    // status.sh says "not running" (exit 3) while the page answers 200: a monitoring user who cannot see TomEE's process
    await writeFile(layout.scripts.status, "#!/bin/sh\necho 'not running'\nexit 3\n");
    const run = await health();
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(
      new RegExp(`^LETTO WARNING - revision 6880, HTTP 200 in \\d+ ms from ${pageUrl.replace(/[./]/g, '\\$&')}, but the status script ${layout.scripts.status.replace(/[./]/g, '\\$&')} says TomEE is not running: the two disagree \\| time=\\d+\\.\\d{3}s;5;;0;10\\n$`),
    );
    expect(run.stderr).toMatch(/^what to do: LeTTo answers, so the status script is probably wrong for this user \(uid \d+\): a monitoring user often cannot see the processes of .*fix tomee\.health_url\.\n$/);
  });

  it('stopped and not answering: CRITICAL, one line', async () => {
    await setup();
    status = 503;
    await writeFile(layout.scripts.status, "#!/bin/sh\necho 'not running'\nexit 3\n");
    const run = await health();
    expect(run.exitCode).toBe(2);
    expect(run.stdout).toBe(`LETTO CRITICAL - TomEE is not running (${layout.scripts.status}), revision 6880\n`);
    expect(run.stderr).toBe('');
  });

  it('running but HTTP 500: CRITICAL with perfdata', async () => {
    await setup();
    status = 500;
    const run = await health();
    expect(run.exitCode).toBe(2);
    expect(run.stdout).toMatch(new RegExp(`^LETTO CRITICAL - revision 6880, HTTP 500 from ${pageUrl.replace(/[./]/g, '\\$&')} \\| time=\\d+\\.\\d{3}s;5;;0;10\\n$`));
  });

  it('a usage error: UNKNOWN, one line; commander’s message on stderr', async () => {
    await setup();
    const run = await health('--warning', 'fast');
    expect(run.exitCode).toBe(3);
    expect(run.stdout).toBe('LETTO UNKNOWN - usage error (see letto-update health --help)\n');
    expect(run.stderr).toMatch(/--warning/);
  });

  it('a config file that does not exist: UNKNOWN, one line; error and what to do on stderr', async () => {
    await setup();
    const missing = join(layout.root, 'missing|config.toml');
    const run = await runCli(['--config', missing, 'health']);
    expect(run.exitCode).toBe(3);
    // a `|` would start the perfdata: it becomes `/`
    expect(run.stdout).toBe(`LETTO UNKNOWN - Cannot read config file ${join(layout.root, 'missing/config.toml')}: it does not exist\n`);
    expect(run.stderr).toBe(`error: Cannot read config file ${missing}: it does not exist.\nwhat to do: Create it (see docs/configuration.md) or name another file with --config.\n`);
  });

  it('broken TOML: UNKNOWN, one line', async () => {
    await setup();
    await writeFile(config, '[tomee\nstatus = 1\n');
    const run = await health();
    expect(run.exitCode).toBe(3);
    expect(run.stdout).toMatch(new RegExp(`^LETTO UNKNOWN - Config file ${config.replace(/[./]/g, '\\$&')}, line 1, column \\d+: not valid TOML \\([^\\n]*\\)\\n$`));
    expect(run.stderr).toMatch(/^error: .*\nwhat to do: Fix the TOML syntax/);
  });

  it('several config problems: still one line on stdout, the list on stderr', async () => {
    await setup({ tomee: { health_timeout: 0 }, extra: '[watchdog]\nfailures = 0\n' });
    const run = await runCli(['--config', config, 'health'], { env: { LETTO_UPDATE_TOMEE_HEALHT_URL: 'x' } });
    expect(run.exitCode).toBe(3);
    expect(run.stdout.split('\n')).toHaveLength(2);
    expect(run.stdout).toMatch(
      /^LETTO UNKNOWN - Config file \S+: 3 problems \(all of them; nothing was changed\): environment variable LETTO_UPDATE_TOMEE_HEALHT_URL: not a setting .*; line \d+: key tomee\.health_timeout must be greater than 0; line \d+: key watchdog\.failures must be at least 1\n$/,
    );
    expect(run.stderr).toMatch(/^error: Config file \S+: 3 problems \(all of them; nothing was changed\):\n  environment variable LETTO_UPDATE_TOMEE_HEALHT_URL: .*\n  line \d+: key tomee\.health_timeout .*\n  line \d+: key watchdog\.failures .*\nwhat to do: Fix each of them/);
  });

  it('--json: one JSON object on stdout, nothing else there', async () => {
    await setup();
    await mkdir(join(layout.root, 'x'), { recursive: true });
    const run = await runCli(['--json', '--config', join(layout.root, 'x'), 'health']);
    expect(run.exitCode).toBe(3);
    expect(JSON.parse(run.stdout)).toMatchObject({ state: 'UNKNOWN', exitCode: 3, summary: expect.stringMatching(/it is a folder/) });
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
  });
});
