/**
 * Running as a user who is neither root nor the service user: a clear error before anything happens.
 * Needs root (to start the CLI as `nobody`). When `nobody` cannot read this checkout (a clone in a
 * private temp folder), the built CLI and its production dependencies are copied to a folder it can read.
 */
import { chmod, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, REPO_ROOT, makeServerLayout, writeConfig, type ServerLayout } from '../support/cli.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

async function canRun(bin: string): Promise<boolean> {
  const probe = await execa(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(bin)})`], { uid: NOBODY, gid: NOBODY, reject: false });
  return probe.exitCode === 0;
}

/** Copies bin/, dist/, package.json and the production node_modules into a world-readable folder. */
async function readableCopy(): Promise<{ bin: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'letto-update-cli-'));
  await chmod(dir, 0o755);
  const { stdout } = await execa('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: REPO_ROOT, reject: false });
  const packages = stdout.split('\n').filter((line) => line.startsWith(join(REPO_ROOT, 'node_modules')));
  for (const item of ['bin', 'dist', 'package.json', ...packages.map((p) => relative(REPO_ROOT, p))]) {
    await cp(join(REPO_ROOT, item), join(dir, item), { recursive: true });
  }
  await execa('chmod', ['-R', 'a+rX', dir]);
  return { bin: join(dir, 'bin', 'letto-update.js'), dir };
}

describe.skipIf(!isRoot)('a user who is neither root nor the service user', () => {
  let layout: ServerLayout;
  let config: string;
  let bin = CLI_BIN;
  let copy: string | null = null;

  beforeAll(async () => {
    if (!(await canRun(CLI_BIN))) ({ bin, dir: copy } = await readableCopy());
    expect(await canRun(bin)).toBe(true);
    layout = await makeServerLayout();
    await chmod(layout.root, 0o755);
    await chmod(`${layout.root}/etc`, 0o755);
    config = await writeConfig(layout, { url: 'https://127.0.0.1:9/download/letto/', caPem: '', user: '' }, { password: null });
    await chmod(config, 0o644);
  });

  afterAll(async () => {
    await layout?.cleanup();
    if (copy) await rm(copy, { recursive: true, force: true });
  });

  it('update stops with exit 1, names both users, and changes nothing', async () => {
    const result = await execa(process.execPath, [bin, '--config', config, 'update', '--yes'], { uid: NOBODY, gid: NOBODY, reject: false, env: { HOME: '/' } });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`runs as uid ${NOBODY}`);
    expect(result.stderr).toMatch(/Run it as root or as root/);
    expect(await layout.calls()).toEqual([]);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
  });
});
