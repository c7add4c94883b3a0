/**
 * A real systemd as PID 1 in a Docker container made from Debian packages: fixtures/debian-rootfs.sh
 * (debootstrap, cached) → `docker import` (cached per rootfs tarball) → `docker run` with
 * `--cap-add SYS_ADMIN`, tmpfs on /run and /tmp, and the host's cgroup file system (read-only on
 * cgroup v1; on v2 with the host's cgroup namespace, read-write). `--privileged` is not needed;
 * `--cap-add SYS_NICE` gives root inside what root has on a real machine (lowering a nice level).
 * The host network is shared (`--network host`), so servers on the host's loopback are reachable from
 * the container and the other way round. `binds` are `path` (mounted at the same place inside) or
 * `source:target`.
 *
 * {@link describeWithSystemd} skips loudly where that cannot be done (no Docker, not root, no
 * debootstrap, a rootfs that cannot be built, a systemd that does not boot) and fails instead under
 * LETTO_E2E_REQUIRED=1 (CI).
 */
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, it } from 'vitest';
import { REPO_ROOT } from './cli.js';

/** A running container with systemd as PID 1. */
export interface SystemdContainer {
  name: string;
  /** Runs a command inside (as root); never throws for a non-zero exit. */
  exec(command: string[], opts?: { timeoutMs?: number }): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Runs `sh -c script` inside; throws with the output when it exits non-zero. */
  sh(script: string, opts?: { timeoutMs?: number }): Promise<string>;
  /** Stops and removes the container. */
  destroy(): Promise<void>;
}

/** Why systemd cannot be booted here, or null when it can be tried. */
export function systemdUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root (debootstrap and docker need root)';
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 });
  } catch {
    return 'no Docker engine (`docker info` fails)';
  }
  if (!existsSync('/usr/sbin/debootstrap')) return 'debootstrap is not installed';
  return null;
}

/**
 * `describe` for a suite that needs a real systemd: without one, a failing test under
 * LETTO_E2E_REQUIRED=1, else a printed warning and a skipped suite.
 */
export function describeWithSystemd(name: string, body: () => void): void {
  const reason = systemdUnavailable();
  if (reason) {
    if (process.env.LETTO_E2E_REQUIRED === '1') {
      describe(name, () => {
        it('needs Docker and debootstrap to boot systemd (LETTO_E2E_REQUIRED=1)', () => {
          throw new Error(`LETTO_E2E_REQUIRED=1 but systemd cannot be booted in a container here: ${reason}.`);
        });
      });
      return;
    }
    console.warn(`\n*** SYSTEMD SUITE SKIPPED (${name}): ${reason}. ***\n`);
  }
  describe.skipIf(reason !== null)(name, body);
}

/** The Docker image of a Debian `suite` root file system with systemd (built and imported once, then cached). */
export async function systemdImage(suite = 'bookworm', extraPackages: string[] = []): Promise<string> {
  const outdir = `/var/tmp/lu-systemd-rootfs-${process.pid}`;
  const built = await execa(join(REPO_ROOT, 'fixtures', 'debian-rootfs.sh'), [suite, outdir, 'systemd', 'systemd-sysv', 'dbus', 'procps', ...extraPackages], {
    reject: false,
    timeout: 900_000,
  });
  await execa('rm', ['-rf', '--one-file-system', outdir], { reject: false });
  if (built.exitCode !== 0) throw new Error(`fixtures/debian-rootfs.sh ${suite} failed (exit ${built.exitCode}):\n${built.stderr}`);
  const tarball = built.stdout.trim().split('\n').pop()!;
  const image = `lu-systemd-test:${basename(tarball, '.tar')}`;
  const known = await execa('docker', ['image', 'inspect', image], { reject: false });
  if (known.exitCode !== 0) {
    const imported = await execa('docker', ['import', '--change', 'CMD ["/sbin/init"]', tarball, image], { reject: false, timeout: 300_000 });
    if (imported.exitCode !== 0) throw new Error(`docker import ${tarball} failed: ${imported.stderr}`);
  }
  return image;
}

/**
 * Boots `image` with systemd as PID 1 and waits until `systemctl is-system-running` says running or
 * degraded (at most 60 s). `binds`: host paths mounted at the same path (read-write unless listed in
 * `readOnly`).
 * @throws with the container's log when systemd does not come up.
 */
export async function startSystemdContainer(image: string, opts: { binds: string[]; readOnly?: string[] }): Promise<SystemdContainer> {
  const name = `lu-systemd-${process.pid}-${Date.now().toString(36)}`;
  const v2 = (await execa('docker', ['info', '--format', '{{.CgroupVersion}}'], { reject: false })).stdout.trim() === '2';
  const cgroup = v2 ? ['--cgroupns', 'host', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw'] : ['-v', '/sys/fs/cgroup:/sys/fs/cgroup:ro'];
  const binds = opts.binds.flatMap((bind) => {
    const [source, target = source] = bind.split(':');
    return ['-v', `${source}:${target}:${opts.readOnly?.includes(bind) ? 'ro' : 'rw'}`];
  });
  const run = await execa(
    'docker',
    // SYS_NICE: root on a real machine may lower a nice level (letto-update resets its scripts to 0); Docker drops it by default
    ['run', '-d', '--name', name, '--network', 'host', '--cap-add', 'SYS_ADMIN', '--cap-add', 'SYS_NICE', '--tmpfs', '/run', '--tmpfs', '/run/lock', '--tmpfs', '/tmp', ...cgroup, ...binds, '--stop-signal', 'SIGRTMIN+3', image, '/sbin/init'],
    { reject: false },
  );
  if (run.exitCode !== 0) throw new Error(`docker run failed: ${run.stderr}`);
  const container: SystemdContainer = {
    name,
    async exec(command, o = {}) {
      const r = await execa('docker', ['exec', name, ...command], { reject: false, timeout: o.timeoutMs ?? 120_000 });
      return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
    async sh(script, o = {}) {
      const r = await container.exec(['sh', '-c', script], o);
      if (r.exitCode !== 0) throw new Error(`in ${name}: sh -c ${JSON.stringify(script)} exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    },
    async destroy() {
      await execa('docker', ['rm', '-f', name], { reject: false });
    },
  };
  const deadline = Date.now() + 60_000;
  let state = '';
  while (Date.now() < deadline) {
    state = (await container.exec(['systemctl', 'is-system-running'])).stdout.trim();
    if (state === 'running' || state === 'degraded') return container;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const logs = await execa('docker', ['logs', '--tail', '40', name], { reject: false, all: true });
  await container.destroy();
  throw new Error(`systemd did not boot in ${name} within 60 s (state "${state}"):\n${logs.all ?? ''}`);
}
