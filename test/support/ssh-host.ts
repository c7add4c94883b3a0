/**
 * A Debian server as Ansible meets one: systemd as PID 1 and sshd, in a Docker container made from
 * Debian packages (fixtures/debian-rootfs.sh: debootstrap, cached), reached by ssh as root with a key
 * made for the test. The container shares the host's network (`--network host`); sshd listens on a
 * free port of 127.0.0.1 only. Booted the way test/e2e's systemd suites boot theirs: `--cap-add
 * SYS_ADMIN`, tmpfs on /run and /tmp, the host's cgroup file system (read-only on cgroup v1; on v2
 * with the host's cgroup namespace, read-write).
 *
 * {@link describeWithSshHost} skips loudly where that cannot be done and fails instead under
 * LETTO_E2E_REQUIRED=1 (CI).
 */
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { REPO_ROOT } from './cli.js';
import { ansibleAvailable } from './ansible.js';

/** Debian packages of the server's root file system (besides debootstrap's minbase). */
export const SSH_HOST_PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'procps', 'openssh-server', 'python3', 'python3-apt'];

/** A running server: its container, and how Ansible logs in. */
export interface SshHost {
  container: string;
  /** sshd's port on 127.0.0.1. */
  port: number;
  /** The private key that logs in as root. */
  keyFile: string;
  /** Runs a command inside as root; never throws for a non-zero exit. */
  exec(command: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Stops and removes the container. */
  destroy(): Promise<void>;
}

/** Why such a server cannot be started here, or null. */
export function sshHostUnavailable(): string | null {
  const ansible = ansibleAvailable();
  if (!ansible.ok) return ansible.reason;
  if (process.getuid?.() !== 0) return 'not root (debootstrap and docker need root)';
  if (!existsSync('/usr/sbin/debootstrap')) return 'debootstrap is not installed';
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 });
  } catch {
    return 'no Docker engine (`docker info` fails)';
  }
  return null;
}

/** `describe` that needs {@link startSshHost}: skipped loudly without it, failing under LETTO_E2E_REQUIRED=1. */
export function describeWithSshHost(name: string, body: () => void): void {
  const reason = sshHostUnavailable();
  if (reason) {
    if (process.env.LETTO_E2E_REQUIRED === '1') {
      describe(name, () => {
        it('needs Ansible, Docker and debootstrap (LETTO_E2E_REQUIRED=1)', () => {
          throw new Error(`LETTO_E2E_REQUIRED=1 but a Debian server with systemd and sshd cannot be started here: ${reason}.`);
        });
      });
      return;
    }
    console.warn(`\n*** SSH/SYSTEMD ANSIBLE SUITE SKIPPED (${name}): ${reason}. ***\n`);
  }
  describe.skipIf(reason !== null)(name, body);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** The Docker image of the server's root file system (debootstrap and `docker import` once, then cached). */
async function image(): Promise<string> {
  const outdir = `/var/tmp/lu-ansible-rootfs-${process.pid}`;
  const built = await execa(join(REPO_ROOT, 'fixtures', 'debian-rootfs.sh'), ['bookworm', outdir, ...SSH_HOST_PACKAGES], { reject: false, timeout: 900_000 });
  await execa('rm', ['-rf', '--one-file-system', outdir], { reject: false });
  if (built.exitCode !== 0) throw new Error(`fixtures/debian-rootfs.sh bookworm failed (exit ${built.exitCode}):\n${built.stderr}`);
  const tarball = built.stdout.trim().split('\n').pop()!;
  const tag = `lu-ansible-test:${/([0-9a-f]{12})\.tar$/.exec(tarball)?.[1] ?? 'latest'}`;
  if ((await execa('docker', ['image', 'inspect', tag], { reject: false })).exitCode !== 0) {
    const imported = await execa('docker', ['import', '--change', 'CMD ["/sbin/init"]', tarball, tag], { reject: false, timeout: 300_000 });
    if (imported.exitCode !== 0) throw new Error(`docker import ${tarball} failed: ${imported.stderr}`);
  }
  return tag;
}

/**
 * Boots the server and waits (at most 90 s) until systemd runs and root can log in by ssh.
 * `dir`: a folder of the test for the key and sshd's settings. `binds`: `source:target[:ro]` mounts.
 * @throws with the container's log when it does not come up.
 */
export async function startSshHost(dir: string, binds: string[] = []): Promise<SshHost> {
  const tag = await image();
  const keyFile = join(dir, 'id_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
  const port = await freePort();
  const sshdConf = join(dir, 'sshd-test.conf');
  await writeFile(sshdConf, `Port ${port}\nListenAddress 127.0.0.1\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n`);
  const container = `lu-ansible-${process.pid}-${Date.now().toString(36)}`;
  const v2 = (await execa('docker', ['info', '--format', '{{.CgroupVersion}}'], { reject: false })).stdout.trim() === '2';
  const cgroup = v2 ? ['--cgroupns', 'host', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw'] : ['-v', '/sys/fs/cgroup:/sys/fs/cgroup:ro'];
  const mounts = [`${keyFile}.pub:/root/.ssh/authorized_keys:ro`, `${sshdConf}:/etc/ssh/sshd_config.d/test.conf:ro`, ...binds].flatMap((b) => ['-v', b]);
  const run = await execa(
    'docker',
    ['run', '-d', '--name', container, '--network', 'host', '--cap-add', 'SYS_ADMIN', '--tmpfs', '/run', '--tmpfs', '/run/lock', '--tmpfs', '/tmp', ...cgroup, ...mounts, '--stop-signal', 'SIGRTMIN+3', tag, '/sbin/init'],
    { reject: false },
  );
  if (run.exitCode !== 0) throw new Error(`docker run failed: ${run.stderr}`);
  const host: SshHost = {
    container,
    port,
    keyFile,
    async exec(command) {
      const r = await execa('docker', ['exec', container, ...command], { reject: false, timeout: 120_000 });
      return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    },
    async destroy() {
      await execa('docker', ['rm', '-f', container], { reject: false });
    },
  };
  const deadline = Date.now() + 90_000;
  let last = '';
  while (Date.now() < deadline) {
    const state = (await host.exec(['systemctl', 'is-system-running'])).stdout.trim();
    if (state === 'running' || state === 'degraded') {
      const ssh = await execa('ssh', ['-i', keyFile, '-p', String(port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=5', 'root@127.0.0.1', 'true'], { reject: false });
      if (ssh.exitCode === 0) return host;
      last = `systemd ${state}; ssh: ${ssh.stderr.trim()}`;
    } else last = `systemd ${state}`;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const logs = await execa('docker', ['logs', '--tail', '40', container], { reject: false, all: true });
  await host.destroy();
  throw new Error(`The Debian server in ${container} did not come up within 90 s (${last}):\n${logs.all ?? ''}`);
}
