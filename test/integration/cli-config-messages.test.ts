/**
 * What an admin meets first: which config was read, and config and password mistakes named precisely
 * (each by its text), all at once, before the network is touched. The built CLI against a real TLS
 * download server on loopback, which counts the requests it got.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_PATH } from '../../src/config/config.js';
import { makeServerLayout, runCli, writeConfig, type ConfigOverrides, type ServerLayout } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';

let root: string;
let server: DownloadServer;
let layout: ServerLayout;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'letto-msg-'));
  await populateDownloadRoot(root, { stable: 6886, daily: 6890 });
  server = await startDownloadServer({ root, tls: true, user: 'letto', password: 'geheim' });
});
afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});
afterEach(async () => {
  await layout?.cleanup();
  server.requests.length = 0;
});

async function setup(overrides: ConfigOverrides = {}): Promise<string> {
  layout = await makeServerLayout({ revision: 6880 });
  return writeConfig(layout, { url: server.url, caPem: server.caPem, user: 'letto' }, overrides);
}

describe('which config was read', () => {
  it('check and status name the config file they read', async () => {
    const config = await setup();
    const check = await runCli(['--config', config, 'check']);
    expect(check.exitCode).toBe(100);
    expect(check.stdout.split('\n')[0]).toBe(`config: ${config}`);
    const status = await runCli(['--config', config, 'status']);
    expect(status.stdout.split('\n')[0]).toBe(`config: ${config}`);
  });

  it.skipIf(existsSync(DEFAULT_CONFIG_PATH))('without a config file, an error that comes from a default says that no config was read', async () => {
    layout = await makeServerLayout({ revision: 6880 });
    const run = await runCli(['check'], { env: { LETTO_UPDATE_TOMEE_WEBAPPS: join(layout.root, 'nowhere') } });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(
      `error: Cannot tell which user runs TomEE: neither ${join(layout.root, 'nowhere/letto.war')} nor ${join(layout.root, 'nowhere')} exists. (No config file was read: ${DEFAULT_CONFIG_PATH} does not exist, so every setting is its default; create it or name one with --config.)\n`,
    );
  });

  it.skipIf(existsSync(DEFAULT_CONFIG_PATH))('without a config file, check says so in its first line', async () => {
    layout = await makeServerLayout({ revision: 6880 });
    const run = await runCli(['check'], {
      env: {
        LETTO_UPDATE_TOMEE_WEBAPPS: layout.webapps,
        LETTO_UPDATE_SERVER_URL: server.url,
        LETTO_UPDATE_SERVER_CA_FILE: await caFile(),
        LETTO_UPDATE_SERVER_USER: 'letto',
        LETTO_UPDATE_PASSWORD: 'geheim',
        LETTO_UPDATE_PATHS_STATE: layout.state,
      },
    });
    expect(run.exitCode, run.stderr).toBe(100);
    expect(run.stdout.split('\n')[0]).toBe(`config: none (${DEFAULT_CONFIG_PATH} does not exist; every setting is its default)`);
  });
});

async function caFile(): Promise<string> {
  const path = join(root, 'ca.pem');
  await writeFile(path, server.caPem);
  return path;
}

describe('password messages', () => {
  it('a missing password file is named (not "no password is set"), exit 2, nothing sent', async () => {
    const config = await setup({ password: null });
    const run = await runCli(['--config', config, 'check']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toBe(
      `error: server.password_file ${layout.passwordFile} does not exist.\n` +
        `what to do: Write the secret as the first line of ${layout.passwordFile} (chmod 600), or set LETTO_UPDATE_PASSWORD, or point server.password_file at the right file.\n`,
    );
    expect(server.requests).toEqual([]);
  });

  it('an empty password file is refused before the network, exit 2', async () => {
    const config = await setup({ password: '' });
    const run = await runCli(['--config', config, 'update', '--yes']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toBe(
      `error: server.password_file ${layout.passwordFile} is empty: its first line must be the secret. Nothing was contacted.\n` +
        `what to do: Write the secret as the first line of ${layout.passwordFile}, or set LETTO_UPDATE_PASSWORD.\n`,
    );
    expect(server.requests).toEqual([]);
    expect(await layout.calls()).toEqual([]);
  });
});

describe('config mistakes: named, all at once, exit 2', () => {
  it('a mistyped LETTO_UPDATE_ variable is an error like a mistyped key', async () => {
    const config = await setup();
    const run = await runCli(['--config', config, 'check'], { env: { LETTO_UPDATE_SERVER_CHANEL: 'daily' } });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/^error: Environment variable LETTO_UPDATE_SERVER_CHANEL: not a setting \(this section's are .*LETTO_UPDATE_SERVER_CHANNEL,/);
    expect(run.stderr).toContain('what to do: Fix the spelling of LETTO_UPDATE_SERVER_CHANEL or unset it; docs/configuration.md lists every key.\n');
    expect(server.requests).toEqual([]);
  });

  it('two bad values: one run names both, with their lines', async () => {
    const config = await setup({ server: { channel: 'nightly' }, tomee: { health_timeout: 'soon' } });
    const run = await runCli(['--config', config, 'check']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(
        `^error: Config file ${config.replace(/[./]/g, '\\$&')}: 2 problems \\(all of them; nothing was changed\\):\\n` +
          '  line 5: key server\\.channel must be "stable" or "daily"\\n' +
          '  line 15: key tomee\\.health_timeout must be a number of seconds or a duration like "90s", "5m" or "1h30m"\\n' +
          'what to do: Fix each of them',
      ),
    );
  });

  it('health_timeout = "5m" is taken like --random-delay 5m and health --timeout 5s', async () => {
    const config = await setup({ tomee: { health_timeout: '5m' }, server: { connect_timeout: '10s' } });
    const check = await runCli(['--config', config, 'check']);
    expect(check.exitCode, check.stderr).toBe(100);
    const health = await runCli(['--config', config, 'health', '--timeout', '2s', '--warning', '1500ms']);
    // the health URL of the layout does not answer: CRITICAL, and the thresholds were read as durations
    expect(health.stdout).toMatch(/;1\.5;;0;2\n$/);
  });
});
