/**
 * The Docker half of `npm run demo`: a throw-away LeTTo Docker install on the machine's Docker engine —
 * a registry on loopback (Debian's docker-registry, TLS, htpasswd), LeTTo-like images built here FROM
 * scratch with busybox (revisions 100, 101, and 102 whose lettoserver never turns healthy), two compose
 * folders run by docker-compose — and the real CLI: status → update --dry-run → update → update to the
 * broken daily revision (every service rolled back; the failure notice, received by a webhook on
 * loopback, carries the failed service's `docker logs`) → status → rollback --to 100 (its images are
 * still kept here; `rollback --to` pulls them when they are not) → list --remote.
 *
 * Needs root (the registry's CA goes to /etc/docker/certs.d) and Docker, compose, docker-registry,
 * htpasswd and busybox-static; without them it says so plainly and skips (`npm run demo` still passes).
 * Everything is named `lu-docker-demo-…` (LETTO_TEST_DOCKER_PREFIX replaces `lu-docker`) and removed at the end.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDownloadServer, type DownloadServer } from '../test/support/download-server.js';
import { startWebhook, type WebhookReceiver } from '../test/support/webhook.js';
import {
  dockerUnavailable,
  installRevision,
  publishRevision,
  removeInstall,
  runningRevisions,
  startRegistry,
  writeComposeInstall,
  type ComposeInstall,
  type TestRegistry,
} from '../test/support/docker.js';

/** What the Docker demo did: null when it was skipped (with the reason), else whether every step ended as expected. */
export type DockerDemoResult = { skipped: string } | { ok: boolean; steps: Array<{ args: string[]; exit: number | null; expectExit: number; revisions: string; ok: boolean }> };

/**
 * Runs the Docker demo, printing through `say`. @param cli the built CLI (bin/letto-update.js).
 * @returns what happened; never throws for a failed step (it is reported), only for a broken setup.
 */
export async function runDockerDemo(cli: string, say: (s?: string) => void, bold: (s: string) => string, dim: (s: string) => string): Promise<DockerDemoResult> {
  const missing = dockerUnavailable();
  if (missing) return { skipped: missing };
  const id = `${process.env.LETTO_TEST_DOCKER_PREFIX ?? 'lu-docker'}-demo-${process.pid.toString(36)}`;
  const prefix = `${id}/`;
  const root = await mkdtemp(join(tmpdir(), 'lu-docker-demo-'));
  let registry: TestRegistry | null = null;
  let install: ComposeInstall | null = null;
  let download: DownloadServer | null = null;
  let webhook: WebhookReceiver<{ result: string; logTail: { source: string; text: string } | null }> | null = null;
  try {
    say(dim('Setting up: registry on loopback, images for revisions 100, 101, 102 (102: lettoserver broken), compose folders …'));
    registry = await startRegistry(root);
    await publishRevision(root, prefix, registry, 100);
    await publishRevision(root, prefix, registry, 101);
    await publishRevision(root, prefix, registry, 102, { broken: ['lettoserver'] });
    install = await writeComposeInstall(root, id, prefix);
    await installRevision(install, prefix, registry, 100);
    await mkdir(join(root, 'download'), { recursive: true });
    await writeFile(join(root, 'download', 'stable-revision.txt'), '101\r\n');
    await writeFile(join(root, 'download', 'daily-revision.txt'), '102\r\n');
    download = await startDownloadServer({ root: join(root, 'download'), tls: false });
    // the failure notices ([notify] webhook_url), to show what the admin would be told
    webhook = await startWebhook();
    const hook = webhook.url;
    const config = join(root, 'config.toml');
    await writeFile(
      config,
      `[server]\nurl = "${download.url}"\n\n[paths]\nstate = "${join(root, 'state')}"\nbackup_lock = "${join(root, 'sqlsicherungaktiv')}"\n\n[docker]\ncompose_dirs = ${JSON.stringify(install.dirs)}\nimage_prefix = "${prefix}"\nregistry = "${registry.host}"\nhealth_url = "${install.healthUrl}"\nhealth_timeout = 20\n\n[notify]\nwebhook_url = "${hook}"\nwhen = "error"\n`,
    );
    say(`  registry        https://${registry.host}  (TLS, htpasswd; docker login in DOCKER_CONFIG)`);
    say(`  compose folders ${install.dirs.join(', ')}  (3 LeTTo services, running revision 100)`);
    say(`  config          ${config}`);
    const steps = [
      { title: 'Status: each service and its revision', args: ['status'], expectExit: 0 },
      { title: 'Dry run: what the update would do (images to pull, tags to move, folders in order); nothing changes', args: ['update', '--dry-run'], expectExit: 0 },
      { title: 'Update to the stable revision 101 (pull, point every service, up -d, health)', args: ['update', '--yes'], expectExit: 0 },
      { title: 'Update to the daily revision 102: its lettoserver never turns healthy, so every service goes back to 101', args: ['update', '--channel', 'daily', '--yes'], expectExit: 3 },
      { title: 'Status', args: ['status'], expectExit: 0 },
      { title: 'Roll back by hand to revision 100', args: ['rollback', '--to', '100', '--yes'], expectExit: 0 },
      { title: 'Revisions here and in the registry', args: ['list', '--remote'], expectExit: 0 },
    ];
    const results: Extract<DockerDemoResult, { ok: boolean }>['steps'] = [];
    for (const [index, step] of steps.entries()) {
      say();
      say(bold(`── Docker ${index + 1}/${steps.length} ${step.title}`));
      say(dim(`$ letto-update --config ${config} ${step.args.join(' ')}`));
      const exit = await runShown(process.execPath, [cli, '--config', config, ...step.args], { DOCKER_CONFIG: registry.dockerConfig });
      const running = await runningRevisions(install);
      const revisions = Object.entries(running).map(([service, revision]) => `${service} ${revision}`).join(', ');
      const ok = exit === step.expectExit && new Set(Object.values(running)).size === 1;
      results.push({ args: step.args, exit, expectExit: step.expectExit, revisions, ok });
      say(`${ok ? '✓' : '✗'} exit ${exit} (expected ${step.expectExit}) · containers run: ${revisions}`);
      const notice = webhook.received.splice(0).at(-1)?.body;
      if (notice?.logTail) {
        say(dim(`The failure notice ([notify] webhook; a mail reads the same) carries the last lines of ${notice.logTail.source}:`));
        for (const line of notice.logTail.text.split('\n')) say(dim(`    ${line}`));
      }
    }
    return { ok: results.every((r) => r.ok), steps: results };
  } finally {
    await download?.close();
    await webhook?.close();
    await removeInstall(install, prefix, registry?.host ?? null);
    await registry?.close();
    await rm(root, { recursive: true, force: true });
  }
}

/** Runs a command with its output passed through; resolves with its exit code (null: killed after 600 s). */
function runShown(command: string, args: string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { ...env };
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LETTO_UPDATE_') && !(k in env)) childEnv[k] = v;
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
    child.stdout.on('data', (d: Buffer) => process.stdout.write(d));
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}
