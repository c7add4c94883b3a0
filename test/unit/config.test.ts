import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_PATH, configSchema, isLoopbackHost, loadConfig, readPassword } from '../../src/config/config.js';
import { ConfigError, ExitCode } from '../../src/errors.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'letto-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(text: string, name = 'config.toml'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** Calls loadConfig and returns the ConfigError it throws (fails when it does not throw one). */
async function configError(...args: Parameters<typeof loadConfig>): Promise<ConfigError> {
  const error = await loadConfig(...args).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  const ce = error as ConfigError;
  expect(ce.exitCode).toBe(ExitCode.usage);
  expect(ce.hint).not.toBe('');
  return ce;
}

describe('loadConfig: defaults < file < environment < flags', () => {
  it('an empty file gives the defaults of a standard LeTTo install', async () => {
    const path = await file('');
    const { config, source } = await loadConfig(path, {});
    expect(source).toBe(path);
    expect(config).toEqual({
      server: {
        url: 'https://letto.at/download/letto/',
        user: '',
        password_file: '/etc/letto-update/password',
        channel: 'stable',
        ca_file: '',
        retries: 5,
        retry_wait: 2,
        retry_max_wait: 60,
        connect_timeout: 30,
        idle_timeout: 60,
        interactive_timeout: 15,
        allow_plain_http: false,
        delta: true,
      },
      tomee: {
        webapps: '/opt/tomee/webapps',
        war_name: 'letto.war',
        user: '',
        start: '/opt/letto/start.sh',
        stop: '/opt/letto/stop.sh',
        status: '/opt/letto/status.sh',
        health_url: 'https://localhost/letto/test.jsf',
        health_timeout: 300,
        restart: '',
        status_timeout: 30,
        stop_timeout: 180,
        start_timeout: 180,
        restart_timeout: 360,
      },
      paths: { staging: '/opt/letto/war', backups: '/opt/letto/backup/war', keep: 5, state: '/var/lib/letto-update', backup_lock: '/sicherung/sqlsicherungaktiv', free_space_margin: 100 },
      notify: { email_to: [], email_from: '', smtp_url: '', smtp_user: '', smtp_password_file: '', sendmail: '/usr/sbin/sendmail', webhook_url: '', when: 'change' },
      watchdog: { interval: 60, failures: 3, grace: 300 },
      metrics: { textfile: '' },
    });
    expect(configSchema.parse({})).toEqual(config);
  });

  it('[notify] and [watchdog]: lists from TOML arrays or comma-separated environment values, checked URLs and choices', async () => {
    const path = await file('[notify]\nemail_to = ["admin@schule.at", "it@schule.at"]\nsmtp_url = "smtps://mail.schule.at"\nwhen = "error"\n[watchdog]\nfailures = 5\n');
    const { config } = await loadConfig(path, {});
    expect(config.notify).toMatchObject({ email_to: ['admin@schule.at', 'it@schule.at'], smtp_url: 'smtps://mail.schule.at', when: 'error' });
    expect(config.watchdog).toEqual({ interval: 60, failures: 5, grace: 300 });
    const fromEnv = await loadConfig(path, { LETTO_UPDATE_NOTIFY_EMAIL_TO: 'a@x.at, b@x.at', LETTO_UPDATE_WATCHDOG_GRACE: '600' });
    expect(fromEnv.config.notify.email_to).toEqual(['a@x.at', 'b@x.at']);
    expect(fromEnv.config.watchdog.grace).toBe(600);
    expect((await configError(await file('[notify]\nsmtp_url = "mail.schule.at"\n', 'n1.toml'), {})).message).toMatch(/notify\.smtp_url must be empty \(local sendmail\) or a URL like smtp:/);
    expect((await configError(await file('[notify]\nwhen = "sometimes"\n', 'n2.toml'), {})).message).toMatch(/notify\.when must be "change", "error" or "always"/);
    expect((await configError(await file('[watchdog]\nfailures = 0\n', 'n3.toml'), {})).message).toMatch(/watchdog\.failures must be at least 1/);
  });

  it.skipIf(existsSync(DEFAULT_CONFIG_PATH))('without --config and LETTO_UPDATE_CONFIG, a missing default file means defaults (source null)', async () => {
    const { config, source } = await loadConfig(undefined, {});
    expect(source).toBeNull();
    expect(config.server.channel).toBe('stable');
  });

  it('LETTO_UPDATE_CONFIG names the file when --config is not given; --config wins', async () => {
    const a = await file('[server]\nchannel = "daily"\n', 'a.toml');
    const b = await file('[server]\nchannel = "stable"\n', 'b.toml');
    expect((await loadConfig(undefined, { LETTO_UPDATE_CONFIG: a })).config.server.channel).toBe('daily');
    expect((await loadConfig(b, { LETTO_UPDATE_CONFIG: a })).source).toBe(b);
  });

  it('file values override defaults; keys not in the file keep their defaults', async () => {
    const path = await file('[server]\nuser = "schule1"\nchannel = "daily"\n\n[tomee]\nhealth_timeout = 120\n[paths]\nkeep = 2\n');
    const { config } = await loadConfig(path, {});
    expect(config.server).toMatchObject({ user: 'schule1', channel: 'daily', url: 'https://letto.at/download/letto/' });
    expect(config.tomee.health_timeout).toBe(120);
    expect(config.tomee.webapps).toBe('/opt/tomee/webapps');
    expect(config.paths.keep).toBe(2);
  });

  it('environment LETTO_UPDATE_<SECTION>_<KEY> overrides the file; numbers are converted', async () => {
    const path = await file('[server]\nchannel = "stable"\n[tomee]\nhealth_timeout = 60\n');
    const { config } = await loadConfig(path, {
      LETTO_UPDATE_SERVER_CHANNEL: 'daily',
      LETTO_UPDATE_TOMEE_HEALTH_TIMEOUT: '120',
      LETTO_UPDATE_PATHS_STAGING: '/srv/war',
    });
    expect(config.server.channel).toBe('daily');
    expect(config.tomee.health_timeout).toBe(120);
    expect(config.paths.staging).toBe('/srv/war');
  });

  it('flags win over environment and file', async () => {
    const path = await file('[server]\nchannel = "daily"\n');
    const { config } = await loadConfig(path, { LETTO_UPDATE_SERVER_CHANNEL: 'daily' }, { channel: 'stable' });
    expect(config.server.channel).toBe('stable');
  });

  it('plain http to another host is accepted only with server.allow_plain_http = true (file or environment)', async () => {
    const url = 'http://10.0.0.5/download/letto/';
    const path = await file(`[server]\nurl = "${url}"\nallow_plain_http = true\n`);
    const { config } = await loadConfig(path, {});
    expect(config.server).toMatchObject({ url, allow_plain_http: true });
    const viaEnv = await loadConfig(await file(`[server]\nurl = "${url}"\n`, 'env.toml'), { LETTO_UPDATE_SERVER_ALLOW_PLAIN_HTTP: 'true' });
    expect(viaEnv.config.server.allow_plain_http).toBe(true);
    // the option does not make other schemes acceptable
    expect((await configError(await file('[server]\nurl = "ftp://10.0.0.5/x/"\nallow_plain_http = true\n', 'ftp.toml'), {})).message).toMatch(/not https/);
  });

  it('plain http is allowed to loopback hosts', async () => {
    for (const url of ['http://127.0.0.1:8080/download/letto/', 'http://localhost/download/letto/', 'http://[::1]:9/x/']) {
      const path = await file(`[server]\nurl = "${url}"\n`);
      expect((await loadConfig(path, {})).config.server.url).toBe(url);
    }
  });
});

describe('loadConfig errors: exit 2, naming the file, the line or key, and the fix', () => {
  it('an explicit file that does not exist', async () => {
    const missing = join(dir, 'nope.toml');
    const error = await configError(missing, {});
    expect(error.message).toContain(missing);
    expect(error.message).toMatch(/does not exist/);
    await configError(undefined, { LETTO_UPDATE_CONFIG: missing });
  });

  it('broken TOML names the file and the line', async () => {
    const path = await file('[server]\nuser = "x"\nchannel = stable\n');
    const error = await configError(path, {});
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/line 3\b/);
  });

  it('an unknown key is named with its section', async () => {
    const path = await file('[paths]\nkep = 3\n');
    const error = await configError(path, {});
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/unknown key paths\.kep/);
  });

  it('an unknown section is named', async () => {
    const error = await configError(await file('[tomcat]\nwebapps = "/x"\n'), {});
    expect(error.message).toMatch(/unknown key tomcat/);
  });

  it.each([
    ['[tomee]\nhealth_timeout = "abc"\n', /tomee\.health_timeout/],
    ['[tomee]\nhealth_timeout = 0\n', /tomee\.health_timeout/],
    ['[tomee]\nhealth_timeout = 1.5\n', /tomee\.health_timeout.*whole number/],
    ['[paths]\nkeep = 0\n', /paths\.keep.*at least 1/],
    ['[server]\nchannel = "nightly"\n', /server\.channel must be "stable" or "daily"/],
    ['[server]\nurl = "letto.at/download"\n', /server\.url must be a URL/],
    ['[tomee]\nwar_name = "sub/letto.war"\n', /tomee\.war_name/],
    ['[tomee]\nwar_name = "letto.zip"\n', /tomee\.war_name/],
    ['[paths]\nstaging = ""\n', /paths\.staging must not be empty/],
    ['server = "x"\n', /key server/],
  ])('wrong value %j', async (text, message) => {
    const error = await configError(await file(text), {});
    expect(error.message).toMatch(message);
  });

  it.each([['http://letto.example.org/download/letto/'], ['http://10.0.0.5/download/letto/'], ['ftp://127.0.0.1/x/'], ['http://127.0.0.1.evil.example/x/']])(
    'server.url %s is refused (not https, not loopback)',
    async (url) => {
      const path = await file(`[server]\nurl = "${url}"\n`);
      const error = await configError(path, {});
      expect(error.message).toMatch(/server\.url/);
      expect(error.message).toMatch(/not https/);
      if (url.startsWith('http:')) expect(error.hint).toMatch(/server\.allow_plain_http = true/);
    },
  );

  it('server.allow_plain_http must be a boolean, in the file and in the environment', async () => {
    const error = await configError(await file('[server]\nallow_plain_http = "yes"\n'), {});
    expect(error.message).toMatch(/line 2: key server\.allow_plain_http must be true or false/);
    const fromEnv = await configError(await file(''), { LETTO_UPDATE_SERVER_ALLOW_PLAIN_HTTP: 'maybe' });
    expect(fromEnv.message).toContain('LETTO_UPDATE_SERVER_ALLOW_PLAIN_HTTP');
  });

  it('a bad value from the environment is refused too', async () => {
    const error = await configError(await file(''), { LETTO_UPDATE_TOMEE_HEALTH_TIMEOUT: 'abc' });
    expect(error.message).toMatch(/tomee\.health_timeout/);
  });

  it('a bad value from the environment names the environment variable', async () => {
    const error = await configError(await file(''), { LETTO_UPDATE_TOMEE_HEALTH_TIMEOUT: 'abc' });
    expect(`${error.message} ${error.hint}`).toContain('LETTO_UPDATE_TOMEE_HEALTH_TIMEOUT');
  });
});

describe('durations: one way everywhere (file, environment, flags)', () => {
  it.each([
    ['[tomee]\nhealth_timeout = "5m"\n', 'tomee', 'health_timeout', 300],
    ['[tomee]\nhealth_timeout = "1h30m"\n', 'tomee', 'health_timeout', 5400],
    ['[tomee]\nhealth_timeout = "90"\n', 'tomee', 'health_timeout', 90],
    ['[tomee]\nhealth_timeout = 90\n', 'tomee', 'health_timeout', 90],
    ['[server]\nconnect_timeout = "500ms"\n', 'server', 'connect_timeout', 0.5],
    ['[server]\ninteractive_timeout = "20s"\n', 'server', 'interactive_timeout', 20],
    ['[watchdog]\ngrace = "10 minutes"\n', 'watchdog', 'grace', 600],
  ] as const)('%j', async (text, sectionName, key, seconds) => {
    const { config } = await loadConfig(await file(text), {});
    expect((config[sectionName] as Record<string, unknown>)[key]).toBe(seconds);
  });

  it('from the environment too: LETTO_UPDATE_TOMEE_HEALTH_TIMEOUT=2m', async () => {
    expect((await loadConfig(await file(''), { LETTO_UPDATE_TOMEE_HEALTH_TIMEOUT: '2m' })).config.tomee.health_timeout).toBe(120);
  });

  it('what is no duration is refused with the forms that are', async () => {
    const error = await configError(await file('[tomee]\nhealth_timeout = "soon"\n'), {});
    expect(error.message).toBe(`Config file ${join(dir, 'config.toml')}, line 2: key tomee.health_timeout must be a number of seconds or a duration like "90s", "5m" or "1h30m".`);
    expect((await configError(await file('[tomee]\nhealth_timeout = "1.5s"\n'), {})).message).toMatch(/health_timeout must be a whole number of seconds/);
  });
});

describe('unknown LETTO_UPDATE_* variables are errors, like unknown keys', () => {
  it('a mistyped key variable names itself and the variables of its section', async () => {
    const error = await configError(await file(''), { LETTO_UPDATE_SERVER_CHANEL: 'daily' });
    expect(error.message).toMatch(/^Environment variable LETTO_UPDATE_SERVER_CHANEL: not a setting \(this section's are LETTO_UPDATE_SERVER_URL, .*LETTO_UPDATE_SERVER_CHANNEL, /);
    expect(error.hint).toBe('Fix the spelling of LETTO_UPDATE_SERVER_CHANEL or unset it; docs/configuration.md lists every key.');
  });

  it('a variable of no section names the sections and the other variables', async () => {
    const error = await configError(await file(''), { LETTO_UPDATE_PASSWROD: 'x' });
    expect(error.message).toMatch(/LETTO_UPDATE_PASSWROD: not a setting \(sections: LETTO_UPDATE_SERVER_…, LETTO_UPDATE_TOMEE_…, .*LETTO_UPDATE_PASSWORD/);
  });

  it('LETTO_UPDATE_CONFIG, _PASSWORD, _SMTP_PASSWORD and the test hook _FAULT are not settings but known', async () => {
    const path = await file('');
    await expect(loadConfig(path, { LETTO_UPDATE_CONFIG: path, LETTO_UPDATE_PASSWORD: 'x', LETTO_UPDATE_SMTP_PASSWORD: 'y', LETTO_UPDATE_FAULT: '' })).resolves.toBeTruthy();
  });
});

describe('all config problems at once', () => {
  it('two wrong values, an unknown key and a mistyped variable: one run, one message, one line each', async () => {
    const path = await file('[server]\nchannel = "nightly"\n\n[tomee]\nhealth_timeout = 0\nhelth_url = "x"\n');
    const error = await configError(path, { LETTO_UPDATE_TOMEE_STAUS: '/x' });
    expect(error.message).toBe(
      [
        `Config file ${path}: 4 problems (all of them; nothing was changed):`,
        "  environment variable LETTO_UPDATE_TOMEE_STAUS: not a setting (this section's are LETTO_UPDATE_TOMEE_WEBAPPS, LETTO_UPDATE_TOMEE_WAR_NAME, LETTO_UPDATE_TOMEE_USER, LETTO_UPDATE_TOMEE_START, LETTO_UPDATE_TOMEE_STOP, LETTO_UPDATE_TOMEE_STATUS, LETTO_UPDATE_TOMEE_HEALTH_URL, LETTO_UPDATE_TOMEE_HEALTH_TIMEOUT, LETTO_UPDATE_TOMEE_RESTART, LETTO_UPDATE_TOMEE_STATUS_TIMEOUT, LETTO_UPDATE_TOMEE_STOP_TIMEOUT, LETTO_UPDATE_TOMEE_START_TIMEOUT, LETTO_UPDATE_TOMEE_RESTART_TIMEOUT)",
        '  line 2: key server.channel must be "stable" or "daily"',
        '  line 5: key tomee.health_timeout must be greater than 0',
        '  line 6: unknown key tomee.helth_url',
      ].join('\n'),
    );
    expect(error.hint).toBe('Fix each of them (docs/configuration.md lists every key and its values), then run again.');
  });

  it('a wrong server.url scheme is reported together with the other problems', async () => {
    const path = await file('[server]\nurl = "http://10.0.0.5/x/"\n');
    const error = await configError(path, { LETTO_UPDATE_WATCHDOG_INTERVALL: '5' });
    expect(error.message).toMatch(/2 problems/);
    expect(error.message).toMatch(/line 2: key server\.url = "http:\/\/10\.0\.0\.5\/x\/" is not https/);
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['localhost', true],
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['[::1]', true],
    ['10.0.0.1', false],
    ['letto.at', false],
    ['localhost.evil.example', false],
    ['127.0.0.1.evil.example', false],
  ])('%s → %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});

describe('readPassword', () => {
  const withFile = (password_file: string) => configSchema.parse({ server: { password_file } });

  it('reads the first line of a 0600 file, without the newline', async () => {
    const path = await file('s3cr3t Passwort\r\nsecond line\n', 'pw');
    await chmod(path, 0o600);
    expect(await readPassword(withFile(path), {})).toBe('s3cr3t Passwort');
  });

  it('LETTO_UPDATE_PASSWORD wins over the file', async () => {
    const path = await file('from-file\n', 'pw');
    await chmod(path, 0o600);
    expect(await readPassword(withFile(path), { LETTO_UPDATE_PASSWORD: 'from-env' })).toBe('from-env');
  });

  it('a missing file means no password when server.user is empty (no login)', async () => {
    expect(await readPassword(withFile(join(dir, 'none')), {})).toBeNull();
  });

  const withUser = (password_file: string) => configSchema.parse({ server: { user: 'letto', password_file } });

  it('with server.user set, a missing file is named, and the way around it', async () => {
    const missing = join(dir, 'none');
    const error = await readPassword(withUser(missing), {}).then(() => null, (e: unknown) => e as ConfigError);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.message).toBe(`server.password_file ${missing} does not exist.`);
    expect(error!.hint).toBe(`Write the secret as the first line of ${missing} (chmod 600), or set LETTO_UPDATE_PASSWORD, or point server.password_file at the right file.`);
  });

  it.each([['', 'empty'], ['\n', 'a bare newline'], ['\nsecond line\n', 'an empty first line']])('an empty password file (%j: %s) is refused before the network', async (text) => {
    const path = await file(text, 'pw');
    await chmod(path, 0o600);
    const error = await readPassword(withUser(path), {}).then(() => null, (e: unknown) => e as ConfigError);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.message).toBe(`server.password_file ${path} is empty: its first line must be the secret. Nothing was contacted.`);
  });

  it.each([0o644, 0o640, 0o604, 0o660])('refuses a file with mode %o and says chmod 600', async (mode) => {
    const path = await file('secret\n', 'pw');
    await chmod(path, mode);
    const error = await readPassword(withFile(path), {}).then(
      () => null,
      (e: unknown) => e as ConfigError,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.exitCode).toBe(2);
    expect(error!.message).toContain(path);
    expect(error!.hint).toBe(`Run: chmod 600 ${path}`);
    expect(`${error!.message} ${error!.hint}`).not.toContain('secret');
  });
});
