/**
 * A Debian server as Ansible meets one: systemd as PID 1 and sshd, in a Docker container booted by
 * test/support/systemd-container.ts (a root file system from fixtures/debian-rootfs.sh with sshd and
 * Python added), reached by ssh as root with a key made for the test. The container shares the host's
 * network; sshd listens on a free port of 127.0.0.1 only.
 *
 * {@link describeWithSshHost} skips loudly where that cannot be done and fails instead under
 * LETTO_E2E_REQUIRED=1 (CI).
 */
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { ansibleAvailable } from './ansible.js';
import { startSystemdContainer, systemdImage, systemdUnavailable, type SystemdContainer } from './systemd-container.js';
import { freePort } from './net.js';

/** Debian packages added to systemd's root file system: sshd, and Python with apt for Ansible's modules. */
export const SSH_HOST_PACKAGES = ['openssh-server', 'python3', 'python3-apt'];

/** A running server: its container, and how Ansible logs in. */
export interface SshHost {
  container: SystemdContainer;
  /** sshd's port on 127.0.0.1. */
  port: number;
  /** The private key that logs in as root. */
  keyFile: string;
}

/** Why such a server cannot be started here, or null. */
export function sshHostUnavailable(): string | null {
  const ansible = ansibleAvailable();
  if (!ansible.ok) return ansible.reason;
  return systemdUnavailable();
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

/**
 * Boots the server and waits (at most 90 s) until root can log in by ssh. `dir`: a folder of the test
 * for the key and sshd's settings. `binds`: `source:target` mounts, read-only.
 * @throws with the reason when ssh does not answer.
 */
export async function startSshHost(dir: string, binds: string[] = []): Promise<SshHost> {
  const image = await systemdImage('bookworm', SSH_HOST_PACKAGES);
  const keyFile = join(dir, 'id_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
  const port = await freePort();
  const sshdConf = join(dir, 'sshd-test.conf');
  await writeFile(sshdConf, `Port ${port}\nListenAddress 127.0.0.1\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n`);
  const mounts = [`${keyFile}.pub:/root/.ssh/authorized_keys`, `${sshdConf}:/etc/ssh/sshd_config.d/test.conf`, ...binds];
  const container = await startSystemdContainer(image, { binds: mounts, readOnly: mounts });
  const deadline = Date.now() + 90_000;
  let last = '';
  while (Date.now() < deadline) {
    const ssh = await execa('ssh', ['-i', keyFile, '-p', String(port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=5', 'root@127.0.0.1', 'true'], { reject: false });
    if (ssh.exitCode === 0) return { container, port, keyFile };
    last = ssh.stderr.trim();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const sshd = await container.exec(['systemctl', 'status', '--no-pager', 'ssh']);
  await container.destroy();
  throw new Error(`ssh to ${container.name} (127.0.0.1:${port}) did not answer within 90 s (${last}):\n${sshd.stdout}`);
}
