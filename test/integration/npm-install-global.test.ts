/**
 * `npm pack` and then `npm install -g` of the tarball gives a working `letto-update` (README, "Install
 * with npm"): the tarball carries bin/, dist/ (with the bundle) and docs, the global install pulls the
 * dependencies from the npm registry, and the installed command answers --version, --help and `check`
 * (a config error without a config file: exit 2, not a crash).
 *
 * Packs with --ignore-scripts (dist/ is already built by `npm test`; rebuilding it here would race the
 * other test files) and installs into a temporary prefix, not into the machine's global folder.
 */
import { execa } from 'execa';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';

describe('npm pack, then npm install -g of the tarball (into a temporary prefix)', () => {
  let work: string | undefined;
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('installs a letto-update that runs', async () => {
    work = await mkdtemp(join(tmpdir(), 'letto-npm-pack-'));
    const pack = await execa('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], { cwd: REPO_ROOT });
    const tarball = join(work, pack.stdout.trim().split('\n').at(-1)!);
    const listing = await execa('tar', ['-tzf', tarball]);
    for (const file of ['package/bin/letto-update.js', 'package/dist/cli.js', 'package/dist/bundle/cli.js', 'package/README.md']) {
      expect(listing.stdout.split('\n'), file).toContain(file);
    }
    const prefix = join(work, 'prefix');
    const install = await execa('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', tarball], { reject: false, timeout: 240_000 });
    expect(install.exitCode, `${install.stdout}\n${install.stderr}`).toBe(0);
    expect(await readdir(join(prefix, 'bin'))).toContain('letto-update');
    const bin = join(prefix, 'bin', 'letto-update');
    const env = { PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`, HOME: work };
    const version = await execa(bin, ['--version'], { env, extendEnv: false });
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
    const help = await execa(bin, ['--help'], { env, extendEnv: false });
    expect(help.stdout).toContain('Usage: letto-update');
    const check = await execa(bin, ['--config', join(work, 'missing.toml'), 'check'], { env, extendEnv: false, reject: false });
    expect(check.exitCode, check.stderr).toBe(2);
    expect(check.stderr).toContain('missing.toml');
  }, 300_000);
});
