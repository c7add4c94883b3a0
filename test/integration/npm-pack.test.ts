/**
 * `npm pack` in a fresh clone (the committed tree, with this checkout's node_modules for the build that
 * `prepare` runs) leaves nothing untracked, and the package names its repository.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';

const isGitCheckout = existsSync(join(REPO_ROOT, '.git'));
if (!isGitCheckout) console.warn('NPM PACK TEST SKIPPED: this tree is not a git checkout, so "untracked" means nothing here.');

describe.skipIf(!isGitCheckout)('npm pack', () => {
  it('leaves nothing untracked in the tree; the tarball holds bin, dist, docs, contrib and package.json', async () => {
    const clone = await mkdtemp(join(tmpdir(), 'letto-pack-'));
    try {
      await execa('git', ['clone', '--quiet', '--no-hardlinks', REPO_ROOT, clone]);
      await symlink(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'));
      // .gitignore's `node_modules/` matches the real folder, not a link: the link is excluded here
      await appendFile(join(clone, '.git', 'info', 'exclude'), '/node_modules\n');
      const pack = await execa('npm', ['pack', '--json'], { cwd: clone, env: { npm_config_update_notifier: 'false' } });
      const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
      expect(existsSync(join(clone, info!.filename))).toBe(true);
      const paths = info!.files.map((f) => f.path);
      for (const path of ['bin/letto-update.js', 'dist/cli.js', 'docs/usage.md', 'contrib/bash-completion/letto-update', 'package.json']) expect(paths).toContain(path);
      const status = await execa('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: clone });
      expect(status.stdout).toBe('');
      const manifest = JSON.parse(await readFile(join(clone, 'package.json'), 'utf8')) as { repository?: { type: string; url: string } };
      expect(manifest.repository).toMatchObject({ type: 'git', url: expect.stringMatching(/^git\+https:\/\/.+\.git$/) });
    } finally {
      await rm(clone, { recursive: true, force: true });
    }
  }, 120_000);
});
