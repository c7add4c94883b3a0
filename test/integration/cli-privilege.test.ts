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

  const asNobody = (...args: string[]) => execa(process.execPath, [bin, ...args], { uid: NOBODY, gid: NOBODY, reject: false, env: { HOME: '/' }, stripFinalNewline: false });

  it('a config file it may not read: exit 2, "permission denied" and how to get access, not "Create it"', async () => {
    await chmod(config, 0o600);
    try {
      const result = await asNobody('--config', config, 'check');
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toBe(
        `error: Cannot read config file ${config}: permission denied for uid ${NOBODY}.\n` +
          `what to do: Run letto-update as a user who may read it (root, or the user of the nightly run), or give that user read access (e.g. chgrp and chmod 640 ${config}).\n`,
      );
      expect(result.stdout).toBe('');
      // health: the plugin line alone on stdout, error and what to do on stderr
      const health = await asNobody('--config', config, 'health');
      expect(health.exitCode).toBe(3);
      expect(health.stdout).toBe(`LETTO UNKNOWN - Cannot read config file ${config}: permission denied for uid ${NOBODY}\n`);
      expect(health.stderr).toMatch(/^error: Cannot read config file .*\nwhat to do: Run letto-update as a user who may read it/);
    } finally {
      await chmod(config, 0o644);
    }
  });

  it('a password file it may not read: exit 2 naming the file and "permission denied"', async () => {
    const withUser = await writeConfig(layout, { url: 'https://127.0.0.1:9/download/letto/', caPem: '', user: 'letto' }, { password: 'geheim' });
    await chmod(withUser, 0o644);
    try {
      const result = await asNobody('--config', withUser, 'check');
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`error: Cannot read server.password_file ${layout.passwordFile}: permission denied for uid ${NOBODY}.`);
      expect(result.stderr).toContain('or set LETTO_UPDATE_PASSWORD');
      expect(result.stderr).not.toContain('geheim');
    } finally {
      await writeConfig(layout, { url: 'https://127.0.0.1:9/download/letto/', caPem: '', user: '' }, { password: null });
      await chmod(config, 0o644);
    }
  });
});
