/**
 * The Debian package in the Debian releases LeTTo runs on: root file systems of Debian 11, 12 and 13
 * made by debootstrap (fixtures/debian-rootfs.sh, minbase: no Node.js in them), entered with chroot
 * (with /proc). In each: apt installs build/letto-update_<version>_amd64.deb (from `npm run package`);
 * `letto-update --version`, `--help` and `check` work; an `update` and then a `rollback` succeed against
 * the test download server (TLS + Basic auth) and a TomEE-like server, both on the host's loopback,
 * which the chroot shares: start/stop/status scripts in the chroot switch a flag file, and the health
 * page (startFakeHealth) answers 200 while the flag is set and the installed WAR holds a revision.
 * Then letto-update-enable switches the cron jobs on, an upgrade keeps config and state, remove keeps
 * them, purge removes them.
 *
 * Needs root, debootstrap, chroot and the .deb; without them the suite is skipped with a warning, and
 * fails under LETTO_E2E_REQUIRED=1 (CI). LETTO_DEB_SUITES=bookworm limits the releases (default all three).
 */
import { execa } from 'execa';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWar } from '../../fixtures/build-war.js';
import { readWarRevision } from '../../src/war/verify.js';
import { REPO_ROOT, startFakeHealth, type FakeHealth, type ServerLayout } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const DEB = join(REPO_ROOT, 'build', `letto-update_${VERSION}_amd64.deb`);
const SUITES = (process.env.LETTO_DEB_SUITES ?? 'bullseye,bookworm,trixie').split(',').filter(Boolean);
const USER = 'letto';
const PASSWORD = 'deb-test-secret';

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function packageTestAvailable(): { ok: true } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (debootstrap, chroot, mount)' };
  for (const tool of ['debootstrap', 'chroot', 'dpkg-deb', 'mount']) if (!onPath(tool)) return { ok: false, reason: `${tool} is not installed` };
  if (!existsSync(DEB)) return { ok: false, reason: `${DEB} is missing (run npm run package)` };
  return { ok: true };
}

/**
 * Runs `args` inside the root file system `root` as root, with a clean environment. Asynchronous: the
 * download server and the health page answer from this process's event loop meanwhile.
 */
async function inChroot(root: string, args: string[], env: Record<string, string> = {}) {
  const vars = Object.entries({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive', ...env }).map(([k, v]) => `${k}=${v}`);
  const result = await execa('chroot', [root, '/usr/bin/env', '-i', ...vars, ...args], { reject: false, timeout: 300_000, stdin: 'ignore', stripFinalNewline: false });
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  return { exitCode: result.exitCode ?? -1, stdout, stderr, output: `${stdout}${stderr}` };
}

const available = packageTestAvailable();
if (!available.ok && process.env.LETTO_E2E_REQUIRED !== '1') {
  console.warn(`\n*** DEBIAN PACKAGE SUITE SKIPPED: ${available.reason}. ***\n`);
}

describe.skipIf(!available.ok && process.env.LETTO_E2E_REQUIRED !== '1')('the Debian package in Debian 11, 12 and 13 root file systems', () => {
  let work: string;
  let upgradeDeb: string;
  let server: DownloadServer;

  beforeAll(async () => {
    if (!available.ok) throw new Error(`LETTO_E2E_REQUIRED=1 but the Debian package cannot be tested: ${available.reason}.`);
    work = await mkdtemp(join(tmpdir(), 'letto-deb-'));
    // the upgrade: the same package with a higher version, repacked (fast, no compression worth the time)
    const unpacked = join(work, 'upgrade');
    await execa('dpkg-deb', ['-R', DEB, unpacked]);
    const control = join(unpacked, 'DEBIAN', 'control');
    await writeFile(control, (await readFile(control, 'utf8')).replace(/^Version: .*$/m, `Version: ${VERSION}+upgrade1`));
    upgradeDeb = join(work, `letto-update_${VERSION}+upgrade1_amd64.deb`);
    await execa('dpkg-deb', ['-Zgzip', '-z1', '--root-owner-group', '-b', unpacked, upgradeDeb]);
    await rm(unpacked, { recursive: true, force: true });
    const downloads = join(work, 'downloads');
    await populateDownloadRoot(downloads, { stable: 6886, daily: 6887, archive: [6870] });
    server = await startDownloadServer({ root: downloads, tls: true, user: USER, password: PASSWORD });
  }, 300_000);

  afterAll(async () => {
    await server?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const suite of SUITES) {
    describe(`Debian ${suite}`, () => {
      let root: string;
      let health: FakeHealth;
      let procMounted = false;
      const flag = () => join(root, 'run', 'tomee.running');
      const war = () => join(root, 'opt', 'tomee', 'webapps', 'letto.war');
      const letto = (...args: string[]) => inChroot(root, ['letto-update', ...args]);

      beforeAll(async () => {
        root = join(work, suite);
        // a root file system by debootstrap, cached as a tarball for the next run (fixtures/debian-rootfs.sh);
        // asynchronous, like every command here, so that vitest's worker stays responsive meanwhile
        await execa(join(REPO_ROOT, 'fixtures', 'debian-rootfs.sh'), [suite, root], { stdin: 'ignore', stdout: 'ignore', stderr: 'inherit', timeout: 1_200_000 });
        await execa('mount', ['-t', 'proc', 'proc', join(root, 'proc')]);
        procMounted = true;
        await cp(DEB, join(root, 'tmp', 'letto-update.deb'));
        await cp(upgradeDeb, join(root, 'tmp', 'letto-update-upgrade.deb'));
        health = await startFakeHealth({ layout: () => ({ runningFlag: flag(), war: war() }) as ServerLayout });
      }, 1_500_000);

      afterAll(async () => {
        await health?.close();
        if (procMounted) await execa('umount', ['-l', join(root, 'proc')], { reject: false });
        if (root) await rm(root, { recursive: true, force: true });
      });

      it('apt installs the .deb in a system without Node.js; --version and --help work; files in place, nothing enabled', async () => {
        expect((await inChroot(root, ['sh', '-c', 'command -v node nodejs'])).exitCode, 'the root file system must not have Node.js').not.toBe(0);
        const install = await inChroot(root, ['apt-get', 'install', '-y', '-q', '/tmp/letto-update.deb']);
        expect(install.exitCode, install.output).toBe(0);
        expect(await letto('--version')).toMatchObject({ exitCode: 0, stdout: `${VERSION}\n` });
        const help = await letto('--help');
        expect(help.exitCode).toBe(0);
        expect(help.stdout).toContain('Usage: letto-update');
        for (const path of [
          'etc/letto-update/config.toml',
          'etc/logrotate.d/letto-update',
          'usr/lib/systemd/system/letto-update.service',
          'usr/lib/systemd/system/letto-update.timer',
          'usr/lib/systemd/system/letto-update-watchdog.service',
          'usr/share/man/man1/letto-update.1.gz',
          'usr/sbin/letto-update-enable',
        ]) {
          expect(existsSync(join(root, path)), path).toBe(true);
        }
        // installed inactive: no cron job runs, no unit is enabled
        const cron = readFileSync(join(root, 'etc/cron.d/letto-update'), 'utf8');
        expect(cron.split('\n').filter((line) => /^[0-9*]/.test(line))).toEqual([]);
        expect(existsSync(join(root, 'etc/systemd/system/timers.target.wants/letto-update.timer'))).toBe(false);
        expect(existsSync(join(root, 'var/lib/letto-update'))).toBe(true);
      }, 300_000);

      it('check, update and rollback against a download server and a TomEE-like server', async () => {
        // a LeTTo server in the chroot: revision 6880 installed, scripts that switch the flag file
        await mkdir(join(root, 'opt/tomee/webapps'), { recursive: true });
        await mkdir(join(root, 'opt/letto/war'), { recursive: true });
        await mkdir(join(root, 'opt/letto/backup/war'), { recursive: true });
        await buildWar(war(), { revision: 6880 });
        const script = async (name: string, body: string) => {
          await writeFile(join(root, 'opt/letto', `${name}.sh`), `#!/bin/sh\n${body}\n`);
          await chmod(join(root, 'opt/letto', `${name}.sh`), 0o755);
        };
        await script('start', 'touch /run/tomee.running');
        await script('stop', 'rm -f /run/tomee.running');
        await script('status', 'if [ -e /run/tomee.running ]; then echo 4242; else echo "not running"; exit 3; fi');
        await writeFile(flag(), '');
        await writeFile(join(root, 'etc/letto-update/ca.pem'), server.caPem);
        await writeFile(join(root, 'etc/letto-update/password'), `${PASSWORD}\n`, { mode: 0o600 });
        await writeFile(
          join(root, 'etc/letto-update/config.toml'),
          [
            '[server]',
            `url = "${server.url}"`,
            `user = "${USER}"`,
            'ca_file = "/etc/letto-update/ca.pem"',
            'retries = 1',
            '[tomee]',
            `health_url = "${health.url}"`,
            'health_timeout = 60',
            '',
          ].join('\n'),
        );

        const check = await letto('check');
        expect(check.exitCode, check.output).toBe(100);
        expect(check.stdout).toContain('available (stable): 6886');
        const update = await letto('update', '--yes');
        expect(update.exitCode, update.output).toBe(0);
        expect(await readWarRevision(war())).toBe(6886);
        const status = await letto('health');
        expect(status.stdout, status.output).toMatch(/^LETTO OK - revision 6886/);
        const rollback = await letto('rollback', '--yes');
        expect(rollback.exitCode, rollback.output).toBe(0);
        expect(await readWarRevision(war())).toBe(6880);
        expect(existsSync(join(root, 'opt/letto/backup/war/letto-6886.war'))).toBe(true);
      }, 600_000);

      it('letto-update-enable switches the cron jobs on; an upgrade and remove keep config and state, purge removes them', async () => {
        const enable = await inChroot(root, ['letto-update-enable']);
        expect(enable.exitCode, enable.output).toBe(0);
        const cron = readFileSync(join(root, 'etc/cron.d/letto-update'), 'utf8');
        expect(cron).toMatch(/^15 3 \* \* \* +root +\/?\S*letto-update update --cron/m);
        expect(cron).toMatch(/^\* \* \* \* \* +root +\S*letto-update watchdog --once/m);
        const config = readFileSync(join(root, 'etc/letto-update/config.toml'), 'utf8');

        const upgrade = await inChroot(root, ['dpkg', '-i', '/tmp/letto-update-upgrade.deb']);
        expect(upgrade.exitCode, upgrade.output).toBe(0);
        expect((await inChroot(root, ['dpkg-query', '-W', '-f', '${Version}', 'letto-update'])).stdout.trim()).toBe(`${VERSION}+upgrade1`);
        expect(readFileSync(join(root, 'etc/letto-update/config.toml'), 'utf8')).toBe(config);
        expect(readFileSync(join(root, 'etc/cron.d/letto-update'), 'utf8')).toBe(cron);
        expect(existsSync(join(root, 'var/lib/letto-update/runs.jsonl'))).toBe(true);

        const remove = await inChroot(root, ['apt-get', 'remove', '-y', '-q', 'letto-update']);
        expect(remove.exitCode, remove.output).toBe(0);
        expect(existsSync(join(root, 'usr/bin/letto-update'))).toBe(false);
        expect(readFileSync(join(root, 'etc/letto-update/config.toml'), 'utf8')).toBe(config);
        expect(existsSync(join(root, 'etc/letto-update/password'))).toBe(true);
        expect(existsSync(join(root, 'var/lib/letto-update/runs.jsonl'))).toBe(true);

        const purge = await inChroot(root, ['apt-get', 'purge', '-y', '-q', 'letto-update']);
        expect(purge.exitCode, purge.output).toBe(0);
        for (const path of ['etc/letto-update', 'var/lib/letto-update', 'etc/cron.d/letto-update', 'etc/logrotate.d/letto-update']) {
          expect(existsSync(join(root, path)), path).toBe(false);
        }
      }, 300_000);
    });
  }
});
