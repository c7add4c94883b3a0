/**
 * Running as a user who is neither root nor the service user: a clear error before anything happens.
 * Needs root (to start the CLI as `nobody`); elsewhere the case is covered by the service user's own runs.
 */
import { chmod } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, makeServerLayout, writeConfig, type ServerLayout } from '../support/cli.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

async function nobodyCanRun(): Promise<boolean> {
  const probe = await execa(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(CLI_BIN)})`], { uid: NOBODY, gid: NOBODY, reject: false });
  return probe.exitCode === 0;
}

describe.skipIf(!isRoot)('a user who is neither root nor the service user', () => {
  let layout: ServerLayout;
  let config: string;
  let usable = false;

  beforeAll(async () => {
    usable = await nobodyCanRun();
    if (!usable) console.warn('cli-privilege: the checkout is not readable by nobody; the wrong-user test cannot run here.');
    layout = await makeServerLayout();
    await chmod(layout.root, 0o755);
    await chmod(`${layout.root}/etc`, 0o755);
    config = await writeConfig(layout, { url: 'https://127.0.0.1:9/download/letto/', caPem: '', user: '' }, { password: null });
    await chmod(config, 0o644);
  });

  afterAll(async () => layout?.cleanup());

  it('update stops with exit 1, names both users, and changes nothing', async (ctx) => {
    if (!usable) ctx.skip();
    const result = await execa(process.execPath, [CLI_BIN, '--config', config, 'update', '--yes'], { uid: NOBODY, gid: NOBODY, reject: false, env: { HOME: '/' } });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`runs as uid ${NOBODY}`);
    expect(result.stderr).toMatch(/Run it as root or as root/);
    expect(await layout.calls()).toEqual([]);
    expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
  });
});
