/**
 * docs/fleet.md's "Roll out in six steps", run as written: every `sh` line of that section, in order,
 * in a fresh home folder, with the real ansible-playbook and ansible-vault, against two LeTTo servers on
 * this machine (`ansible_connection=local`, each with its own TomEE stand-in) and one HTTPS download
 * server with its own CA. Each line must exit 0 as it stands: above all, every command after step 3
 * must find the vault password without being asked (issue 23, item 1).
 *
 * What stands in for the admin, and nothing else:
 * - `apt install ansible-core git` is not run (the suite needs both installed already; .ci/run installs them);
 * - `<letto-update repository>` is a git repository made of this working tree;
 * - `editor` (and `$EDITOR`, which `ansible-vault create` opens) is a script that writes what the admin
 *   would type: the test's inventory into inventory.yml, the download password into the vault. So
 *   `ansible-vault create` runs as written, without a terminal.
 */
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DemoLayout } from '../../demo/layout.js';
import { readWarRevision } from '../../src/war/verify.js';
import { CLI_BIN, REPO_ROOT } from '../support/cli.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { debugLines, describeWithAnsible, startFleetServer, tableRows, workingTreeRepository } from '../support/ansible.js';

const USER = 'letto';
const PASSWORD = 'docs-secret-4471';
const TARGET = 6886; // the revision docs/fleet.md's step 6 names
/** The canary is behind; the other server runs the revision already. */
const SERVERS = { 'letto-test': 6880, 'letto-current': TARGET } as const;
type Server = keyof typeof SERVERS;
const NAMES = Object.keys(SERVERS) as Server[];

/** The `sh` lines of the section "Roll out in six steps", in order, without blank and comment lines. */
async function documentedCommands(): Promise<string[]> {
  const doc = await readFile(join(REPO_ROOT, 'docs', 'fleet.md'), 'utf8');
  const start = doc.indexOf('## Roll out in six steps');
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1]!.split('\n'))
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

describeWithAnsible('docs/fleet.md: the six steps, run as written', () => {
  let tmp: string;
  let home: string;
  let download: DownloadServer;
  const servers = {} as Record<Server, { layout: DemoLayout; port: number }>;
  const env: Record<string, string> = {};
  /** stdout of each documented command, by the command as written */
  const output = new Map<string, string>();

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'letto-fleet-docs-'));
    home = join(tmp, 'home');
    await mkdir(home);
    const root = join(tmp, 'download');
    await populateDownloadRoot(root, { stable: TARGET, daily: TARGET, archive: [6880, TARGET] });
    download = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
    // the download server's CA on the controller: the role installs it (letto_update_ca_src)
    await writeFile(join(tmp, 'download-ca.pem'), download.caPem);

    for (const name of NAMES) {
      servers[name] = await startFleetServer(join(tmp, name), { installed: SERVERS[name], download, user: USER, password: PASSWORD, healthTimeout: 10, env: { FAKE_TOMEE_STARTUP_MS: '300' } });
    }

    // <letto-update repository>: a bare repository made of this working tree (uncommitted changes included)
    const source = join(tmp, 'letto-update.git');
    await workingTreeRepository(source);
    env['LETTO_DOCS_SOURCE'] = source;

    // What the admin types into inventory.yml: docs/fleet.md's example with these two servers.
    const inventory = {
      letto: {
        hosts: Object.fromEntries(
          NAMES.map((name) => {
            const { layout, port } = servers[name];
            return [name, {
              ansible_connection: 'local',
              letto_update_config_file: layout.config,
              letto_update_password_file: layout.passwordFile,
              letto_update_ca_file: layout.caFile,
              letto_update_cron_file: join(layout.root, 'cron.d-letto-update'),
              letto_update_settings: {
                tomee: {
                  webapps: layout.webapps,
                  start: layout.scripts.start,
                  stop: layout.scripts.stop,
                  status: layout.scripts.status,
                  health_url: `http://127.0.0.1:${port}/letto/test.jsf`,
                  health_timeout: 10,
                },
                paths: { staging: layout.staging, backups: layout.backups, state: layout.state, backup_lock: layout.backupLock },
              },
            }];
          }),
        ),
        vars: {
          // the playbooks use become; as root Ansible skips it, as another user there is no sudo here
          ...(process.getuid?.() === 0 ? {} : { ansible_become: false }),
          letto_update_install_method: 'none', // the git install is ansible.test.ts's; here the built CLI runs
          letto_update_bin: CLI_BIN,
          letto_update_scheduler: 'cron',
          letto_update_config_owner: (await execa('id', ['-un'])).stdout.trim(),
          letto_update_server_url: download.url,
          letto_update_server_user: USER,
          letto_update_download_password: '{{ vault_letto_download_password }}',
          letto_update_ca_src: join(tmp, 'download-ca.pem'),
          letto_update_nightly: false,
        },
      },
    };
    await writeFile(join(tmp, 'inventory.json'), JSON.stringify(inventory, null, 2));

    // `editor`: inventory.yml gets the inventory; anything else is the file `ansible-vault create` opens
    const bin = join(tmp, 'bin');
    await mkdir(bin);
    await writeFile(
      join(bin, 'editor'),
      `#!/bin/sh\ncase "$1" in\n  *inventory.yml) cp "${join(tmp, 'inventory.json')}" "$1" ;;\n  *) printf '%s\\n' 'vault_letto_download_password: "${PASSWORD}"' > "$1" ;;\nesac\n`,
    );
    await chmod(join(bin, 'editor'), 0o755);

    // A clean environment: no ANSIBLE_* or LETTO_UPDATE_* of the test's own, HOME the fresh home folder.
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !key.startsWith('LETTO_UPDATE_') && !key.startsWith('ANSIBLE_')) env[key] = value;
    }
    Object.assign(env, {
      HOME: home,
      PATH: `${bin}${delimiter}${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`,
      EDITOR: 'editor',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_HOST_KEY_CHECKING: 'False',
      FAKE_TOMEE_STARTUP_MS: '300',
    });
  }, 120_000);

  afterAll(async () => {
    for (const { layout } of Object.values(servers)) await execa(layout.scripts.stop, [], { reject: false, timeout: 20_000 });
    await download?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('every command of the six steps exits 0 as written, none asks for the vault password', async () => {
    const commands = await documentedCommands();
    expect(commands.filter((c) => c.startsWith('ansible-playbook ')), commands.join('\n')).toHaveLength(4);
    let cwd = home;
    for (const written of commands) {
      if (written.startsWith('apt install ')) continue; // see the header: installed already
      const command = written.replace('<letto-update repository>', env['LETTO_DOCS_SOURCE']!);
      // input: '' — a command that asks (a vault password prompt) gets end of input and fails
      const run = await execa('bash', ['-c', command], { cwd, env, extendEnv: false, reject: false, input: '', timeout: 300_000 });
      expect(run.exitCode, `${written}\n${run.stdout}\n${run.stderr}`).toBe(0);
      expect(`${run.stdout}${run.stderr}`).not.toContain(PASSWORD);
      output.set(written, run.stdout);
      if (/\bcd ~\/letto-fleet\b/.test(written)) cwd = join(home, 'letto-fleet');
    }

    // step 3: the download password is encrypted, and the vault password file is private
    const fleet = join(home, 'letto-fleet');
    expect(await readFile(join(fleet, 'group_vars', 'letto', 'vault.yml'), 'utf8')).toMatch(/^\$ANSIBLE_VAULT;/);
    expect((await stat(join(home, '.letto-fleet-vault-password'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(fleet, 'ansible.cfg'), 'utf8')).toMatch(/^vault_password_file = ~\/\.letto-fleet-vault-password$/m);

    // step 4: config, password and CA on each server
    for (const name of NAMES) {
      const { layout } = servers[name];
      expect(await readFile(layout.passwordFile, 'utf8')).toBe(`${PASSWORD}\n`);
      expect(await readFile(layout.caFile, 'utf8')).toBe(download.caPem);
      expect(await readFile(layout.config, 'utf8')).toContain(`ca_file = "${layout.caFile}"`);
    }

    // step 5: the table
    const check = output.get('ansible-playbook -i inventory.yml check.yml');
    expect(tableRows(debugLines(check ?? '', 'Print the table'), NAMES)).toEqual({
      'letto-test': ['6880', String(TARGET), 'behind'],
      'letto-current': [String(TARGET), String(TARGET), 'current'],
    });

    // step 6: the dry run tells the server that would restart from the one that would not; then the rollout
    const [dryRun, rollout] = commands.filter((c) => c.includes('rollout.yml')).map((c) => output.get(c) ?? '');
    const planned = debugLines(dryRun!, 'Print the summary');
    expect(tableRows(planned, NAMES)).toEqual({
      'letto-test': ['6880', String(TARGET), 'would update', '-'],
      'letto-current': [String(TARGET), String(TARGET), 'current', '-'],
    });
    expect(planned.at(-1)).toBe('Dry run (--check): nothing was changed. Would update and restart LeTTo: letto-test; would not restart: letto-current.');
    const done = debugLines(rollout!, 'Print the summary');
    expect(tableRows(done, NAMES)['letto-test']?.slice(0, 3)).toEqual(['6880', String(TARGET), 'updated']);
    expect(tableRows(done, NAMES)['letto-current']?.slice(0, 3)).toEqual([String(TARGET), String(TARGET), 'current']);
    expect(done.at(-1)).toBe('Rollout finished: all 2 hosts.');
    for (const name of NAMES) expect(await readWarRevision(servers[name].layout.war)).toBe(TARGET);
  }, 300_000);
});
