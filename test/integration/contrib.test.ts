/**
 * The contrib files find letto-update wherever the install put it: none names an absolute path to the
 * program (/usr/local/bin is where only some installs put it; npm -g puts it in $(npm prefix -g)/bin),
 * and their command lines, run as the files say with the program's folder in PATH, reach the real CLI.
 */
import { execa } from 'execa';
import { mkdtemp, readFile, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_BIN, REPO_ROOT } from '../support/cli.js';

const CONTRIB = join(REPO_ROOT, 'contrib');

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'ansible') out.push(...(await files(path))); // the Ansible role has its own install paths and tests
    } else out.push(path);
  }
  return out;
}

describe('contrib files', () => {
  it('name no absolute path to the program', async () => {
    const offenders: string[] = [];
    for (const file of await files(CONTRIB)) {
      const lines = (await readFile(file, 'utf8')).split('\n');
      lines.forEach((line, i) => {
        if (/\/(?:usr\/)?(?:local\/)?s?bin\/letto-update\b/.test(line)) offenders.push(`${relative(REPO_ROOT, file)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });

  it('their command lines run the CLI found in PATH (systemd ExecStart with its Environment=PATH, monit, Icinga)', async () => {
    // the program in a folder of its own, as `npm install -g` with another prefix leaves it
    const bin = await mkdtemp(join(tmpdir(), 'letto-prefix-bin-'));
    try {
      await symlink(CLI_BIN, join(bin, 'letto-update'));
      // and node beside it (as with nvm or an official Node.js tarball), for the program's `#!/usr/bin/env node`
      await symlink(process.execPath, join(bin, 'node'));
      const unit = await readFile(join(CONTRIB, 'systemd', 'letto-update.service'), 'utf8');
      const execStart = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(' ');
      const unitPath = /^Environment=PATH=(.*)$/m.exec(unit)![1]!;
      // systemd runs ExecStart with the unit's PATH; the documented drop-in puts the program's folder first
      const viaUnit = await execa(execStart[0]!, [...execStart.slice(1, 2), '--version'], { env: { PATH: `${bin}:${unitPath}` }, extendEnv: false, reject: false });
      expect(viaUnit.exitCode, viaUnit.stderr).toBe(0);
      expect(viaUnit.stdout).toMatch(/^\d+\.\d+\.\d+$/);

      const monit = /check program letto with path "([^"]+)"/.exec(await readFile(join(CONTRIB, 'monit', 'letto'), 'utf8'))![1]!.split(' ');
      expect(monit.slice(0, 2)).toEqual(['/usr/bin/env', 'PATH=/usr/local/bin:/usr/bin:/bin']);
      // as the comment says: the program's folder first
      const viaMonit = await execa(monit[0]!, [`PATH=${bin}:/usr/local/bin:/usr/bin:/bin`, monit[2]!, '--version'], { env: { PATH: '/bin:/usr/bin:/sbin:/usr/sbin' }, extendEnv: false, reject: false });
      expect(viaMonit.exitCode, viaMonit.stderr).toBe(0);

      const icinga = /command = \[ (.*) \]/.exec(await readFile(join(CONTRIB, 'icinga', 'letto.conf'), 'utf8'))![1]!.split(', ').map((w) => JSON.parse(w) as string);
      expect(icinga).toEqual(['/usr/bin/env', 'PATH=/usr/local/bin:/usr/bin:/bin', 'letto-update', 'health']);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });
});
