/**
 * Helpers for the Ansible suite (contrib/ansible): whether ansible-playbook, ansible-lint and git are
 * installed, running a playbook with a clean environment, and reading what the playbooks print
 * (the tables of check.yml and rollout.yml, the PLAY RECAP).
 */
import { execa } from 'execa';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { describe, it } from 'vitest';
import { createDemoServer, demoLayout, type DemoLayout } from '../../demo/layout.js';
import { REPO_ROOT } from './cli.js';
import type { DownloadServer } from './download-server.js';
import { freePort } from './net.js';

/** contrib/ansible: playbooks, role, ansible.cfg. */
export const ANSIBLE_DIR = join(REPO_ROOT, 'contrib', 'ansible');

/** The programs the suite needs, with the Debian package that brings each. */
const TOOLS: Array<[command: string, debianPackage: string]> = [
  ['ansible-playbook', 'ansible-core'],
  ['ansible-vault', 'ansible-core'],
  ['ansible-lint', 'ansible-lint'],
  ['git', 'git'],
  ['ssh', 'openssh-client'],
];

function onPath(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, cmd), fsConstants.X_OK);
      return statSync(join(dir, cmd)).isFile();
    } catch {
      return false;
    }
  });
}

/** `{ ok: true }`, or why the suite cannot run here. */
export function ansibleAvailable(): { ok: true } | { ok: false; reason: string } {
  const missing = TOOLS.filter(([cmd]) => !onPath(cmd));
  if (missing.length === 0) return { ok: true };
  const packages = [...new Set(missing.map(([, pkg]) => pkg))].join(' ');
  return { ok: false, reason: `${missing.map(([cmd]) => cmd).join(', ')} not found on PATH (install the Debian packages ${packages})` };
}

/**
 * `describe` that skips loudly when Ansible is not installed, and fails instead when
 * `LETTO_E2E_REQUIRED=1` (CI), like `describeWithTomcat`.
 */
export function describeWithAnsible(name: string, body: () => void): void {
  const available = ansibleAvailable();
  if (!available.ok) {
    if (process.env.LETTO_E2E_REQUIRED === '1') {
      describe(name, () => {
        it('needs Ansible (LETTO_E2E_REQUIRED=1)', () => {
          throw new Error(`LETTO_E2E_REQUIRED=1 but the Ansible suite cannot run: ${available.reason}.`);
        });
      });
      return;
    }
    console.warn(`\n*** ANSIBLE SUITE SKIPPED (${name}): ${available.reason}. ***\n`);
  }
  describe.skipIf(!available.ok)(name, body);
}

/** What an ansible-playbook (or ansible-lint) run returned. */
export interface ToolRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command args…` in contrib/ansible with contrib/ansible/ansible.cfg, no colours, Ansible's
 * temp folders under `tmp`, this Node.js first on PATH (bin/letto-update.js runs `env node`), and
 * without the test's own `LETTO_UPDATE_*` variables.
 */
export async function runAnsible(command: string, args: string[], opts: { tmp: string; env?: Record<string, string>; timeoutMs?: number }): Promise<ToolRun> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('LETTO_UPDATE_') && !key.startsWith('ANSIBLE_')) env[key] = value;
  }
  Object.assign(env, {
    PATH: `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`,
    ANSIBLE_CONFIG: join(ANSIBLE_DIR, 'ansible.cfg'),
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_FORCE_COLOR: '0',
    ANSIBLE_LOCAL_TEMP: join(opts.tmp, 'ansible-local'),
    ANSIBLE_REMOTE_TEMP: join(opts.tmp, 'ansible-remote'),
    ANSIBLE_HOST_KEY_CHECKING: 'False',
    NO_COLOR: '1',
    ...opts.env,
  });
  const result = await execa(command, args, {
    cwd: ANSIBLE_DIR,
    env,
    extendEnv: false,
    reject: false,
    input: '',
    timeout: opts.timeoutMs ?? 300_000,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/**
* The `msg` list that the last run of the debug task named `task` printed (the default callback prints
 * `ok: [host] => {` + JSON + `}`). Throws when the task printed none.
 */
export function debugLines(stdout: string, task: string): string[] {
  const start = stdout.lastIndexOf(`TASK [${task}`);
  if (start < 0) throw new Error(`The task "${task}" did not run; output:\n${stdout}`);
  const open = stdout.indexOf('=> {\n', start);
  const nextTask = stdout.indexOf('\nTASK [', start + 1);
  if (open < 0 || (nextTask >= 0 && open > nextTask)) throw new Error(`The task "${task}" printed nothing; output:\n${stdout}`);
  const close = stdout.indexOf('\n}\n', open);
  const json = JSON.parse(stdout.slice(open + 3, close + 2)) as { msg?: unknown };
  if (!Array.isArray(json.msg)) throw new Error(`The task "${task}" printed no list: ${JSON.stringify(json)}`);
  return json.msg.map(String);
}

/** Table lines (`host  col  col…`, two or more spaces apart) by their first cell; other lines are left out. */
export function tableRows(lines: string[], hosts: string[]): Record<string, string[]> {
  const rows: Record<string, string[]> = {};
  for (const line of lines) {
    const cells = line.trim().split(/\s{2,}/);
    if (cells[0] !== undefined && hosts.includes(cells[0])) rows[cells[0]] = cells.slice(1);
  }
  return rows;
}

/** PLAY RECAP counters by host, e.g. `{ 'letto-a': { ok: 5, changed: 0, failed: 0, … } }`. */
export function recap(stdout: string): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  const at = stdout.lastIndexOf('PLAY RECAP');
  for (const line of stdout.slice(at).split('\n').slice(1)) {
    const match = /^(\S+)\s+:\s+(.*)$/.exec(line);
    if (!match) continue;
    out[match[1]!] = Object.fromEntries([...match[2]!.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
  }
  return out;
}

/**
 * One LeTTo server of a fleet on this machine: the demo layout in `dir` with `installed`, its TomEE
 * stand-in on a port of its own and started (with `env`); its config, password and CA file removed,
 * since the role writes them.
 */
export async function startFleetServer(
  dir: string,
  opts: { installed: number; download: DownloadServer; user: string; password: string; healthTimeout: number; env: Record<string, string> },
): Promise<{ layout: DemoLayout; port: number }> {
  const layout = demoLayout(dir);
  const port = await freePort();
  await createDemoServer(layout, {
    installed: opts.installed,
    tomeePort: port,
    download: { url: opts.download.url, user: opts.user, password: opts.password, caPem: opts.download.caPem },
    healthTimeout: opts.healthTimeout,
  });
  for (const file of [layout.config, layout.passwordFile, layout.caFile]) await rm(file); // the role writes them
  await execa(layout.scripts.start, [], { env: { ...process.env, ...opts.env } });
  return { layout, port };
}

/**
 * A bare git repository at `path` holding this working tree as one commit (uncommitted changes
 * included; .gitignore keeps node_modules and dist out): what the role installs from, with no network.
 */
export async function workingTreeRepository(path: string): Promise<void> {
  await execa('git', ['init', '-q', '--bare', path]);
  const git = (...args: string[]) => execa('git', ['--git-dir', path, '--work-tree', REPO_ROOT, '-c', 'user.name=test', '-c', 'user.email=test@localhost', ...args]);
  await git('add', '-A');
  await git('commit', '-q', '-m', 'working tree for the test');
}
