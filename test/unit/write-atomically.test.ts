/**
 * writeFileAtomically sets exactly the mode it is given, whatever the umask: the metrics textfile must
 * be 0644 for node_exporter under cron's umask 077, and a file asked for as 0600 or 0640 stays that.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomically } from '../../src/system/files.js';
import { currentAccount } from '../../src/system/users.js';

describe('writeFileAtomically', () => {
  let dir: string;
  let umask: number;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'letto-atomic-'));
    umask = process.umask(0o077);
  });
  afterEach(async () => {
    process.umask(umask);
    await rm(dir, { recursive: true, force: true });
  });

  it('under umask 077: exactly the mode asked for (default 0644), also when replacing a file of another mode', async () => {
    for (const [name, mode] of [['a.prom', 0o644], ['b.json', 0o640], ['c.json', 0o600]] as const) {
      await writeFileAtomically(join(dir, name), 'x\n', currentAccount(), mode);
      expect((await stat(join(dir, name))).mode & 0o777, name).toBe(mode);
    }
    await writeFile(join(dir, 'd.json'), 'old\n', { mode: 0o600 });
    await writeFileAtomically(join(dir, 'd.json'), 'new\n', currentAccount());
    expect((await stat(join(dir, 'd.json'))).mode & 0o777).toBe(0o644);
    expect(await readFile(join(dir, 'd.json'), 'utf8')).toBe('new\n');
  });
});
