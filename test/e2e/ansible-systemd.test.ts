/**
 * The letto_update role over ssh against a Debian server with systemd as PID 1 (a container,
 * test/support/ssh-host.ts on test/support/systemd-container.ts): what the fleet suite on this machine cannot show, since it has no
 * systemd. With `letto_update_scheduler: auto` the role finds systemd and enables the nightly timer
 * and the watchdog service from contrib/systemd, names a non-default config file in a drop-in, and
 * turns both off again; it copies the download server's private CA from the controller (letto_update_ca_src)
 * and names it in the config; check.yml reads that server's revision through ssh and become. Then the server
 * moves to the Debian package (`letto_update_install_method: deb`, build/ from `npm run package`).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildWar } from '../../fixtures/build-war.js';
import { REPO_ROOT } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { debugLines, recap, runAnsible, tableRows, type ToolRun } from '../support/ansible.js';
import { describeWithSshHost, startSshHost, type SshHost } from '../support/ssh-host.js';

const PASSWORD = 'systemd-secret-3306';
const CONFIG = '/etc/letto-update/fleet.toml';
const HOST = 'debian-systemd';
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const DEB = join(REPO_ROOT, 'build', `letto-update_${VERSION}_amd64.deb`);

describeWithSshHost('contrib/ansible over ssh: the role on a Debian server with systemd', () => {
  let tmp: string;
  let host: SshHost;
  let download: DownloadServer;
  let inventory: string;

  const playbook = (name: string, ...args: string[]): Promise<ToolRun> => runAnsible('ansible-playbook', ['-i', inventory, name, ...args], { tmp });
  const inside = async (...command: string[]): Promise<string> => {
    const r = await host.container.exec(command);
    return `${r.stdout}${r.stderr}`.trim();
  };
  const unitState = async (unit: string) => ({
    enabled: await inside('systemctl', 'is-enabled', unit),
    active: await inside('systemctl', 'is-active', unit),
  });

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'letto-ansible-ssh-'));
    await chmod(tmp, 0o755);
    await populateDownloadRoot(join(tmp, 'download'), { stable: 6886, daily: 6890 });
    download = await startDownloadServer({ root: join(tmp, 'download'), tls: true, user: 'letto', password: PASSWORD });
    // What the server holds besides letto-update: an installed WAR. The download server's CA is on the
    // controller only; the role copies it over.
    const srv = join(tmp, 'srv');
    await mkdir(join(srv, 'webapps'), { recursive: true });
    await buildWar(join(srv, 'webapps', 'letto.war'), { revision: 6880 });
    await writeFile(join(tmp, 'download-ca.pem'), download.caPem);
    const node = realpathSync(process.execPath);
    host = await startSshHost(tmp, [`${REPO_ROOT}:${REPO_ROOT}:ro`, `${node}:/usr/local/bin/node:ro`, `${srv}:/srv/letto:ro`]);
    // letto-update and its units, put in place by hand as docs/operations.md says (install method none)
    const setup = await host.container.exec([
      'sh',
      '-c',
      `cp ${REPO_ROOT}/contrib/systemd/letto-update.service ${REPO_ROOT}/contrib/systemd/letto-update.timer ${REPO_ROOT}/contrib/systemd/letto-update-watchdog.service /etc/systemd/system/ && ln -s ${REPO_ROOT}/bin/letto-update.js /usr/local/bin/letto-update && letto-update --version`,
    ]);
    expect(setup.exitCode, setup.stderr).toBe(0);

    inventory = join(tmp, 'inventory.yml');
    await writeFile(
      inventory,
      JSON.stringify({
        letto: {
          hosts: {
            [HOST]: {
              ansible_host: '127.0.0.1',
              ansible_port: host.port,
              ansible_user: 'root',
              ansible_ssh_private_key_file: host.keyFile,
              ansible_ssh_common_args: '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null',
            },
          },
          vars: {
            letto_update_install_method: 'none',
            letto_update_config_file: CONFIG,
            letto_update_server_url: download.url,
            letto_update_server_user: 'letto',
            letto_update_download_password: PASSWORD,
            letto_update_watchdog: true,
            letto_update_ca_src: join(tmp, 'download-ca.pem'),
            letto_update_settings: {
              tomee: { webapps: '/srv/letto/webapps', health_url: 'http://127.0.0.1:9/letto/test.jsf' },
            },
          },
        },
      }),
    );
  }, 900_000);

  afterAll(async () => {
    await host?.container.destroy();
    await download?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('finds systemd, enables the nightly timer and the watchdog service, names the config file in a drop-in', async () => {
    const run = await playbook('install.yml', '--diff', '-v');
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(run.stdout + run.stderr).not.toContain(PASSWORD);
    expect(await unitState('letto-update.timer')).toEqual({ enabled: 'enabled', active: 'active' });
    expect((await unitState('letto-update-watchdog.service')).enabled).toBe('enabled');
    for (const unit of ['letto-update.service', 'letto-update-watchdog.service']) {
      // the unit's own Environment= (PATH, see contrib/systemd) stays; the drop-in adds the config file
      const environment = await inside('systemctl', 'show', '-p', 'Environment', unit);
      expect(environment).toMatch(/^Environment=/);
      expect(environment.slice('Environment='.length).split(' ')).toContain(`LETTO_UPDATE_CONFIG=${CONFIG}`);
    }
    expect(await inside('stat', '-c', '%a %U', '/etc/letto-update/password')).toBe('600 root');
    expect(await inside('cat', '/etc/letto-update/password')).toBe(PASSWORD);
    expect(await inside('stat', '-c', '%a %U', '/etc/letto-update/ca.pem')).toBe('644 root');
    expect(await inside('cat', '/etc/letto-update/ca.pem')).toBe(download.caPem.trim());
    expect(await inside('cat', CONFIG)).toContain('ca_file = "/etc/letto-update/ca.pem"');
    expect(await inside('sh', '-c', 'ls /etc/cron.d')).not.toContain('letto-update-ansible');
  }, 360_000);

  it('check.yml reads the server’s revision through ssh and become (over HTTPS, with the CA the role copied)', async () => {
    const run = await playbook('check.yml', '-e', `letto_update_config_file=${CONFIG}`);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(tableRows(debugLines(run.stdout, 'Print the table'), [HOST])).toEqual({ [HOST]: ['6880', '6886', 'behind'] });
  }, 120_000);

  it('turns the timer and the watchdog off again (values given as strings with -e), and a second run changes nothing', async () => {
    const off = ['-e', 'letto_update_nightly=false', '-e', 'letto_update_watchdog=false'];
    const run = await playbook('install.yml', ...off);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(await unitState('letto-update.timer')).toEqual({ enabled: 'disabled', active: 'inactive' });
    expect(await unitState('letto-update-watchdog.service')).toEqual({ enabled: 'disabled', active: 'inactive' });
    const again = await playbook('install.yml', ...off);
    expect(again.exitCode, again.stdout + again.stderr).toBe(0);
    expect(recap(again.stdout)[HOST]).toMatchObject({ changed: 0, failed: 0 });
  }, 360_000);

  // build/letto-update_<version>_amd64.deb comes from `npm run package` (.ci/run makes it before the tests)
  it.skipIf(!existsSync(DEB) && process.env.LETTO_E2E_REQUIRED !== '1')('moves the server to the Debian package (install method deb): apt installs it, the timer runs the package\'s letto-update with the drop-in', async () => {
    expect(existsSync(DEB), `${DEB} is missing: run npm run package`).toBe(true);
    // the admin takes the by-hand install away; the package brings its own units (/usr/lib/systemd/system)
    await inside('sh', '-c', 'rm -f /usr/local/bin/letto-update /etc/systemd/system/letto-update.service /etc/systemd/system/letto-update.timer /etc/systemd/system/letto-update-watchdog.service && systemctl daemon-reload');
    const deb = ['-e', 'letto_update_install_method=deb', '-e', `letto_update_deb_file=${DEB}`];
    const run = await playbook('install.yml', ...deb);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(run.stdout + run.stderr).not.toContain(PASSWORD);
    expect(await inside('dpkg-query', '-W', '-f', '${Status} ${Version}', 'letto-update')).toBe(`install ok installed ${VERSION}`);
    expect(await inside('/usr/bin/letto-update', '--version')).toContain(VERSION);
    // /lib is /usr/lib on a merged-/usr system; systemd may name either
    expect(await inside('systemctl', 'show', '-p', 'FragmentPath', 'letto-update.service')).toMatch(/^FragmentPath=(\/usr)?\/lib\/systemd\/system\/letto-update\.service$/);
    expect(await inside('systemctl', 'show', '-p', 'ExecStart', 'letto-update.service')).toContain('argv[]=/usr/bin/env letto-update update --cron ;');
    expect(await unitState('letto-update.timer')).toEqual({ enabled: 'enabled', active: 'active' });
    const environment = (await inside('systemctl', 'show', '-p', 'Environment', 'letto-update.service')).slice('Environment='.length).split(' ');
    expect(environment).toContain(`LETTO_UPDATE_CONFIG=${CONFIG}`);
    // the unit's PATH finds the package's executable (the by-hand link is gone)
    const path = environment.find((v) => v.startsWith('PATH='))!;
    expect(await inside('env', '-i', path, 'sh', '-c', 'command -v letto-update')).toBe('/usr/bin/letto-update');
    // the packaged executable reads the server's revision for check.yml, through ssh and become
    const check = await playbook('check.yml', '-e', `letto_update_config_file=${CONFIG}`, ...deb);
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    expect(tableRows(debugLines(check.stdout, 'Print the table'), [HOST])).toEqual({ [HOST]: ['6880', '6886', 'behind'] });
    const again = await playbook('install.yml', ...deb);
    expect(again.exitCode, again.stdout + again.stderr).toBe(0);
    expect(recap(again.stdout)[HOST]).toMatchObject({ changed: 0, failed: 0 });
  }, 360_000);
});
