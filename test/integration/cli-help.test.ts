/**
 * `--help` names the documentation folder that is really there: from a git clone (bin/ loads the bundle
 * dist/bundle/cli.js, two folders below docs/) it is the clone's docs/, which holds usage.md.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../support/cli.js';

describe('--help', () => {
  it('names a documentation folder that holds usage.md', async () => {
    const run = await runCli(['--help']);
    expect(run.exitCode).toBe(0);
    const folder = /^Documentation: (\S+) \(usage\.md/m.exec(run.stdout)?.[1];
    expect(folder, run.stdout).toBeDefined();
    expect(existsSync(join(folder!, 'usage.md')) || existsSync(join(folder!, 'usage.md.gz')), folder).toBe(true);
    if (!process.env.LETTO_TEST_CLI) expect(folder).toBe(join(REPO_ROOT, 'docs'));
  });
});
