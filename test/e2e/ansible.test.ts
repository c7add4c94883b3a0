/**
 * contrib/ansible against a fleet of three LeTTo servers on this machine: the real ansible-playbook
 * with `ansible_connection=local`, each host with its own TomEE-like server (demo/fake-tomee.mjs, own
 * port), its own /opt layout, config file and state folder (host variables), one HTTPS download server
 * with Basic auth for all of them (its CA installed by the role), and a fourth host in another group
 * that cannot be reached (ssh to a closed port): the playbooks leave it out unless letto_update_hosts
 * names it, and then list it as unreachable without stopping the rollout (unless asked to).
 *
 * The role installs the built-from-source letto-update (README's git way, from a git repository made
 * of this working tree) and writes every host's config; check.yml and rollout.yml then run that
 * installed copy. ansible-lint must pass on the role and the playbooks.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DemoLayout } from '../../demo/layout.js';
import { readWarRevision } from '../../src/war/verify.js';
import { REPO_ROOT } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { debugLines, describeWithAnsible, recap, runAnsible, startFleetServer, tableRows, workingTreeRepository, type ToolRun } from '../support/ansible.js';
import { freePort } from '../support/net.js';

const USER = 'letto';
const PASSWORD = 'fleet-secret-8125';
const VAULT_PASSWORD = 'vault-pass-5521';
const STABLE = 6886;
const BROKEN = 6890; // its web.xml names a listener class the WAR lacks: the context fails, health 404
const HOSTS = { 'letto-a': 6880, 'letto-b': 6880, 'letto-c': 6870 } as const;
type Host = keyof typeof HOSTS;
const NAMES = Object.keys(HOSTS) as Host[];
const OFFLINE = 'letto-offline';
/** Seconds a new revision gets to answer (the broken one is rolled back after this). */
const HEALTH_TIMEOUT = 6;

/** The revision LeTTo answers with on `port` (the fixture's test.jsf says `revision N`), else null. */
async function answering(port: number): Promise<number | null> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/letto/test.jsf`, { signal: AbortSignal.timeout(3000) });
    const match = /revision (\d+)/.exec(await response.text());
    return response.status === 200 && match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

async function waitForRevision(port: number, revision: number, seconds = 20): Promise<number | null> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const now = await answering(port);
    if (now === revision || Date.now() > deadline) return now;
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface FleetHost {
  name: Host;
  layout: DemoLayout;
  port: number;
  cronFile: string;
}

describeWithAnsible('contrib/ansible: role, check.yml and rollout.yml on a fleet of three LeTTo servers', () => {
  let tmp: string;
  let download: DownloadServer;
  let hosts: Record<Host, FleetHost>;
  let inventory: string;
  let vaultFile: string;
  let vaultPasswordFile: string;
  let binLink: string;
  const env = { FAKE_TOMEE_STARTUP_MS: '300' };

  const ansible = (command: string, args: string[]): Promise<ToolRun> => runAnsible(command, args, { tmp, env });
  // no --limit: the playbooks run on the group letto by themselves (the inventory has another group)
  const playbook = (name: string, ...args: string[]): Promise<ToolRun> => ansible('ansible-playbook', ['-i', inventory, name, ...args]);
  const warRevision = (h: Host): Promise<number | null> => readWarRevision(hosts[h].layout.war);
  /** The host's runs.jsonl (`time` is when a run ended). */
  const runs = async (h: Host): Promise<Array<{ command: string; result: string; from: number; to: number; time: string; durationSeconds: number }>> => {
    const text = await readFile(join(hosts[h].layout.state, 'runs.jsonl'), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map((line) => JSON.parse(line));
  };
  /** The output must never carry the download password (no_log, vault). */
  const expectNoPassword = (run: ToolRun): void => {
    expect(run.stdout + run.stderr).not.toContain(PASSWORD);
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'letto-ansible-'));
    // The download server, like https://letto.at/download/letto/.
    const root = join(tmp, 'download');
    await populateDownloadRoot(root, { stable: STABLE, daily: BROKEN, archive: [6870, 6880, STABLE, BROKEN], brokenRevisions: [BROKEN] });
    download = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });

    // Three LeTTo servers; the role writes their config and password, so the demo's copies go.
    hosts = {} as Record<Host, FleetHost>;
    for (const name of NAMES) {
      // the role writes config, password and CA (letto_update_ca_pem, _ca_src)
      const { layout, port } = await startFleetServer(join(tmp, name), { installed: HOSTS[name], download, user: USER, password: PASSWORD, healthTimeout: HEALTH_TIMEOUT, env });
      await mkdir(join(layout.root, 'etc', 'cron.d'), { recursive: true });
      expect(await waitForRevision(port, HOSTS[name])).toBe(HOSTS[name]);
      hosts[name] = { name, layout, port, cronFile: join(layout.root, 'etc', 'cron.d', 'letto-update') };
    }

    // The role installs from a git repository: one made of this working tree, so the test needs no network and no commit.
    const source = join(tmp, 'source.git');
    await workingTreeRepository(source);
    binLink = join(tmp, 'bin', 'letto-update');
    await mkdir(join(tmp, 'bin'));

    // The password in an ansible-vault file, as docs/fleet.md says.
    vaultPasswordFile = join(tmp, 'vault-password');
    await writeFile(vaultPasswordFile, `${VAULT_PASSWORD}\n`, { mode: 0o600 });
    vaultFile = join(tmp, 'vault.yml');
    await writeFile(vaultFile, `vault_letto_download_password: ${PASSWORD}\n`);
    const encrypted = await ansible('ansible-vault', ['encrypt', '--vault-password-file', vaultPasswordFile, vaultFile]);
    expect(encrypted.exitCode, encrypted.stderr).toBe(0);
    expect(await readFile(vaultFile, 'utf8')).not.toContain(PASSWORD);

    // The download server's CA on the controller, for letto_update_ca_src.
    const caOnController = join(tmp, 'download-ca.pem');
    await writeFile(caOnController, download.caPem);

    // One inventory (JSON is YAML): connection local, every path a host variable.
    const hostVars = (h: FleetHost) => ({
      ansible_connection: 'local',
      letto_update_install_method: h.name === 'letto-a' ? 'git' : 'none',
      letto_update_config_file: h.layout.config,
      letto_update_password_file: h.layout.passwordFile,
      letto_update_cron_file: h.cronFile,
      letto_update_watchdog: h.name === 'letto-a',
      // the private CA: as text on the canary, as a file on the controller for the others
      ...(h.name === 'letto-a' ? { letto_update_ca_pem: download.caPem } : { letto_update_ca_src: caOnController }),
      letto_update_ca_file: h.layout.caFile,
      letto_update_settings: {
        tomee: {
          webapps: h.layout.webapps,
          start: h.layout.scripts.start,
          stop: h.layout.scripts.stop,
          status: h.layout.scripts.status,
          health_url: `http://127.0.0.1:${h.port}/letto/test.jsf`,
          health_timeout: HEALTH_TIMEOUT,
        },
        paths: { staging: h.layout.staging, backups: h.layout.backups, state: h.layout.state, backup_lock: h.layout.backupLock },
      },
    });
    inventory = join(tmp, 'inventory.yml');
    await writeFile(
      inventory,
      JSON.stringify({
        all: {
          // the playbooks use become; as root Ansible skips it, as another user there is no sudo here
          vars: process.getuid?.() === 0 ? {} : { ansible_become: false },
          children: {
            letto: {
              vars: {
                letto_update_git_repo: source,
                letto_update_git_version: 'HEAD',
                letto_update_install_dir: join(tmp, 'install', 'letto-update'),
                letto_update_bin_link: binLink,
                letto_update_bin: binLink,
                letto_update_config_owner: userInfo().username,
                letto_update_scheduler: 'cron',
                letto_update_server_url: download.url,
                letto_update_server_user: USER,
                letto_update_download_password: '{{ vault_letto_download_password }}',
              },
              hosts: Object.fromEntries(NAMES.map((name) => [name, hostVars(hosts[name])])),
            },
            offline: {
              hosts: { [OFFLINE]: { ansible_connection: 'ssh', ansible_host: '127.0.0.1', ansible_port: await freePort(), ansible_ssh_common_args: '-o ConnectTimeout=5' } },
            },
          },
        },
      }, null, 2),
    );
  }, 120_000);

  afterAll(async () => {
    for (const h of Object.values(hosts ?? {})) await execa(h.layout.scripts.stop, [], { reject: false, timeout: 20_000 });
    await download?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('ansible-lint passes on the role and the playbooks', async () => {
    const lint = await ansible('ansible-lint', ['--offline', '-p', 'install.yml', 'check.yml', 'rollout.yml', 'roles/letto_update']);
    expect(lint.exitCode, `${lint.stdout}\n${lint.stderr}`).toBe(0);
    expect(lint.stdout + lint.stderr).toMatch(/Passed with production profile: 0 failure\(s\), 0 warning\(s\)/);
  }, 120_000);

  it('the role installs letto-update (git), writes config.toml and the vault password (mode 600), and the cron lines; a second run changes nothing', async () => {
    const vault = ['-e', `@${vaultFile}`, '--vault-password-file', vaultPasswordFile];
    const first = await playbook('install.yml', '--diff', '-v', ...vault);
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    expectNoPassword(first);

    const version = await execa(binLink, ['--version'], { env: { PATH: `${join(process.execPath, '..')}:${process.env['PATH'] ?? ''}` } });
    expect(version.stdout.trim()).toBe(JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')).version);
    for (const name of NAMES) {
      const { layout, port, cronFile } = hosts[name];
      const config = await readFile(layout.config, 'utf8');
      expect(config).toContain(`url = "${download.url}"`);
      expect(config).toContain(`user = "${USER}"`);
      expect(config).toContain(`health_url = "http://127.0.0.1:${port}/letto/test.jsf"`);
      expect(config).toContain(`health_timeout = ${HEALTH_TIMEOUT}`);
      expect(config).toContain(`ca_file = "${layout.caFile}"`);
      expect(await readFile(layout.caFile, 'utf8')).toBe(download.caPem);
      expect((await stat(layout.caFile)).mode & 0o777).toBe(0o644);
      expect(config).not.toContain(PASSWORD);
      expect(await readFile(layout.passwordFile, 'utf8')).toBe(`${PASSWORD}\n`);
      expect((await stat(layout.passwordFile)).mode & 0o777).toBe(0o600);
      const cron = await readFile(cronFile, 'utf8');
      expect(cron).toMatch(new RegExp(`^15 3 \\* \\* \\*\\s+root\\s+${binLink} --config ${layout.config} update --cron --random-delay 30m$`, 'm'));
      expect(cron).toMatch(/^PATH=/m);
      if (name === 'letto-a') expect(cron).toMatch(new RegExp(`^\\* \\* \\* \\* \\*\\s+root\\s+${binLink} --config ${layout.config} watchdog --once >> /var/log/letto-update-watchdog.log 2>&1$`, 'm'));
      else expect(cron).not.toContain('watchdog');
    }

    const second = await playbook('install.yml', ...vault);
    expect(second.exitCode, second.stdout + second.stderr).toBe(0);
    const counts = recap(second.stdout);
    for (const name of NAMES) expect(counts[name], second.stdout).toMatchObject({ changed: 0, failed: 0 });
  }, 360_000);

  it('check.yml prints one table of the group letto only (each host’s revisions, over HTTPS with the CA the role installed); letto_update_hosts adds the host it cannot reach', async () => {
    const own = await playbook('check.yml');
    expect(own.exitCode, own.stdout + own.stderr).toBe(0);
    expect(tableRows(debugLines(own.stdout, 'Print the table'), [...NAMES, OFFLINE])).toEqual({
      'letto-a': ['6880', String(STABLE), 'behind'],
      'letto-b': ['6880', String(STABLE), 'behind'],
      'letto-c': ['6870', String(STABLE), 'behind'],
    });
    expect(own.stdout).not.toContain(OFFLINE);

    const check = await playbook('check.yml', '-e', 'letto_update_hosts=all');
    expect(check.exitCode, check.stdout + check.stderr).toBe(0);
    const lines = debugLines(check.stdout, 'Print the table');
    expect(lines[0]).toMatch(/^host\s+installed\s+available\s+state$/);
    const rows = tableRows(lines, [...NAMES, OFFLINE]);
    expect(rows).toEqual({
      'letto-a': ['6880', String(STABLE), 'behind'],
      'letto-b': ['6880', String(STABLE), 'behind'],
      'letto-c': ['6870', String(STABLE), 'behind'],
      [OFFLINE]: ['-', '-', 'unreachable'],
    });
    expectNoPassword(check);
  }, 120_000);

  it('rollout.yml --check changes nothing and says what each host would do', async () => {
    const wars = await Promise.all(NAMES.map((h) => readFile(hosts[h].layout.war)));
    const run = await playbook('rollout.yml', '--check');
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    const lines = debugLines(run.stdout, 'Print the summary');
    const rows = tableRows(lines, NAMES);
    for (const h of NAMES) expect(rows[h]?.slice(0, 3)).toEqual([String(HOSTS[h]), String(STABLE), 'would update']);
    expect(lines.at(-1)).toBe('Dry run (--check): nothing was changed. Would update and restart LeTTo: letto-a, letto-b, letto-c; would not restart: none.');
    for (const [i, h] of NAMES.entries()) {
      expect((await readFile(hosts[h].layout.war)).equals(wars[i]!)).toBe(true);
      expect(await runs(h)).toEqual([]);
    }
  }, 120_000);

  it('rollout.yml --check tells the hosts that would restart from those already current (letto-update’s "action")', async () => {
    // letto-a and letto-b run 6880 already; letto-c (6870) would move to it
    const run = await playbook('rollout.yml', '--check', '-e', 'letto_update_revision=6880');
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    const lines = debugLines(run.stdout, 'Print the summary');
    expect(tableRows(lines, NAMES)).toEqual({
      'letto-a': ['6880', '6880', 'current', '-'],
      'letto-b': ['6880', '6880', 'current', '-'],
      'letto-c': ['6870', '6880', 'would update', '-'],
    });
    expect(lines.at(-1)).toBe('Dry run (--check): nothing was changed. Would update and restart LeTTo: letto-c; would not restart: letto-a, letto-b.');
    for (const h of NAMES) expect(await runs(h)).toEqual([]);
  }, 120_000);

  it('a failing dry run names its failed checks per host, and checks every host (nothing is changed, so the canary does not stop it)', async () => {
    const missing = 6875; // not in the download server's archive
    const run = await playbook('rollout.yml', '--check', '-e', `letto_update_revision=${missing}`);
    expect(run.exitCode, run.stdout).toBe(2);
    const lines = debugLines(run.stdout, 'Print the summary');
    const rows = tableRows(lines, NAMES);
    for (const h of NAMES) expect(rows[h]?.slice(0, 3)).toEqual([String(HOSTS[h]), String(missing), 'dry run failed (exit 1)']);
    expect(lines).toContain('Dry run (--check): nothing was changed. Would update and restart LeTTo: none; would not restart: none; dry run failed: letto-a, letto-b, letto-c.');
    for (const h of NAMES) {
      const failedChecks = lines.filter((l) => l.startsWith(`${h}: failed check "`));
      expect(failedChecks.length, lines.join('\n')).toBeGreaterThan(0);
      expect(failedChecks.join('\n')).toContain(String(missing));
    }
    expect(run.stdout).toMatch(/The dry run failed on letto-a, letto-b, letto-c; the summary above names the failed checks\./);
    for (const h of NAMES) expect(await runs(h)).toEqual([]);
  }, 120_000);

  it('a revision that fails its health check on the canary stops the rollout: the canary is rolled back (exit 3), the others are not touched', async () => {
    const wars = await Promise.all(NAMES.map((h) => readFile(hosts[h].layout.war)));
    const run = await playbook('rollout.yml', '-e', `letto_update_revision=${BROKEN}`);
    expect(run.exitCode, run.stdout).not.toBe(0);
    const lines = debugLines(run.stdout, 'Print the summary');
    const rows = tableRows(lines, NAMES);
    expect(rows['letto-a']?.slice(0, 3)).toEqual(['6880', String(BROKEN), 'rolled-back (exit 3)']);
    expect(rows['letto-a']?.[3]).toMatch(/^\d+\.\d s$/);
    expect(rows['letto-b']).toEqual(['-', '-', 'not touched', '-']);
    expect(rows['letto-c']).toEqual(['-', '-', 'not touched', '-']);
    expect(lines.join('\n')).toMatch(/Rollout STOPPED: letto-a failed/);
    // only the canary's batch ran: the later batches' hosts never started a task
    expect(run.stdout).not.toMatch(/^(ok|changed|fatal): \[letto-[bc]\]/m);

    expect(await warRevision('letto-a')).toBe(6880);
    expect(await answering(hosts['letto-a'].port)).toBe(6880);
    expect((await runs('letto-a')).map((r) => r.result)).toEqual(['rolled-back']);
    for (const [i, h] of NAMES.entries()) {
      if (h === 'letto-a') continue;
      expect((await readFile(hosts[h].layout.war)).equals(wars[i]!)).toBe(true);
      expect(await answering(hosts[h].port)).toBe(HOSTS[h]);
      expect(await runs(h)).toEqual([]);
    }
  }, 180_000);

  it('exit 75 (a backup is running on the canary) is tried again a bounded number of times, then stops the rollout', async () => {
    const lock = hosts['letto-a'].layout.backupLock;
    await writeFile(lock, '');
    try {
      const run = await playbook('rollout.yml', '-e', 'letto_update_busy_retries=2', '-e', 'letto_update_busy_delay=1');
      expect(run.exitCode, run.stdout).not.toBe(0);
      expect(run.stdout.match(/FAILED - RETRYING: \[letto-a\]/g)).toHaveLength(2);
      const rows = tableRows(debugLines(run.stdout, 'Print the summary'), NAMES);
      expect(rows['letto-a']?.[2]).toBe('busy (exit 75, 3 tries)');
      expect(rows['letto-b']?.[2]).toBe('not touched');
      expect(rows['letto-c']?.[2]).toBe('not touched');
      for (const h of NAMES) expect(await warRevision(h)).toBe(HOSTS[h]);
    } finally {
      await rm(lock, { force: true });
    }
  }, 120_000);

  it('with letto_update_stop_on_unreachable=true an unreachable canary stops the rollout; nothing is touched', async () => {
    const before = await Promise.all(NAMES.map(runs));
    const run = await playbook('rollout.yml', '-e', `letto_update_hosts=${OFFLINE}:letto`, '-e', 'letto_update_stop_on_unreachable=true');
    expect(run.exitCode, run.stdout).toBe(2);
    const lines = debugLines(run.stdout, 'Print the summary');
    expect(tableRows(lines, [OFFLINE, ...NAMES])).toEqual({
      [OFFLINE]: ['-', '-', 'unreachable', '-'],
      'letto-a': ['-', '-', 'not touched', '-'],
      'letto-b': ['-', '-', 'not touched', '-'],
      'letto-c': ['-', '-', 'not touched', '-'],
    });
    expect(lines).toContain(`Rollout STOPPED: ${OFFLINE} unreachable (letto_update_stop_on_unreachable); hosts marked "not touched" still run their old revision.`);
    expect(await Promise.all(NAMES.map(runs))).toEqual(before);
  }, 120_000);

  it('rollout.yml updates every host, canary first, the later ones to the canary’s revision, lists an unreachable host without stopping, and prints one summary', async () => {
    // the switched-off host in the last batch with letto-c: listed, not touched, the others go on
    const run = await playbook('rollout.yml', '-v', '-e', `letto_update_hosts=letto:${OFFLINE}`);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    const lines = debugLines(run.stdout, 'Print the summary');
    const rows = tableRows(lines, [...NAMES, OFFLINE]);
    for (const h of NAMES) {
      expect(rows[h]?.slice(0, 3)).toEqual([String(HOSTS[h]), String(STABLE), 'updated']);
      expect(rows[h]?.[3]).toMatch(/^\d+\.\d s$/);
    }
    expect(rows[OFFLINE]).toEqual(['-', '-', 'unreachable', '-']);
    expect(lines.at(-1)).toBe(`Rollout finished: 3 of 4 hosts; unreachable, not touched: ${OFFLINE}.`);
    // no revision was named: the canary takes the channel's, the later batches are pinned to it
    const cmd = (h: Host) => new RegExp(`^changed: \\[${h}\\] => .*"cmd": \\[([^\\]]*)\\]`, 'm').exec(run.stdout)?.[1];
    expect(cmd('letto-a')).toContain('"update", "--yes"');
    expect(cmd('letto-a')).not.toContain('--revision');
    expect(cmd('letto-b')).toContain(`"--revision", "${STABLE}"`);
    expect(cmd('letto-c')).toContain(`"--revision", "${STABLE}"`);
    // three plays' worth of batches: the canary alone, then the others
    expect(run.stdout.match(/^PLAY \[Roll LeTTo out, canary first\]/gm)).toHaveLength(3);
    for (const h of NAMES) {
      expect(await warRevision(h)).toBe(STABLE);
      expect(await waitForRevision(hosts[h].port, STABLE, 5)).toBe(STABLE);
    }
    const canaryDone = (await runs('letto-a')).at(-1)!;
    expect(canaryDone).toMatchObject({ result: 'updated', from: 6880, to: STABLE });
    for (const h of ['letto-b', 'letto-c'] as const) {
      const last = (await runs(h)).at(-1)!;
      expect(last).toMatchObject({ result: 'updated', to: STABLE });
      // started after the canary had finished (durations have one decimal: 100 ms of slack)
      expect(Date.parse(last.time) - last.durationSeconds * 1000).toBeGreaterThanOrEqual(Date.parse(canaryDone.time) - 100);
    }

    const check = await playbook('check.yml');
    expect(tableRows(debugLines(check.stdout, 'Print the table'), NAMES)).toEqual({
      'letto-a': [String(STABLE), String(STABLE), 'current'],
      'letto-b': [String(STABLE), String(STABLE), 'current'],
      'letto-c': [String(STABLE), String(STABLE), 'current'],
    });
  }, 180_000);
});
