/**
 * createExclusive (src/system/files.ts) on a file system without hard links (vfat, CIFS without Unix
 * extensions: a backup share mounted at /sicherung, for example). No such file system can be mounted
 * here (no vfat in this kernel, no FUSE), so link(2) is made to fail as those do, with EPERM or ENOSYS:
 * the lock is then created in place, once, and the temporary file is gone.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const linkFails = vi.hoisted(() => ({ code: null as string | null }));
vi.mock('node:fs/promises', async (original) => {
  const real = await original<typeof import('node:fs/promises')>();
  return {
    ...real,
    link: async (existing: string, target: string) => {
      if (linkFails.code) throw Object.assign(new Error(`${linkFails.code}: operation not permitted, link`), { code: linkFails.code });
      return real.link(existing, target);
    },
  };
});

const { createExclusive } = await import('../../src/system/files.js');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'letto-excl-'));
});
afterEach(async () => {
  linkFails.code = null;
  await rm(dir, { recursive: true, force: true });
});

describe('createExclusive', () => {
  it('with hard links: the file appears with its content, once; no temporary file is left', async () => {
    const path = join(dir, 'lock');
    expect(await createExclusive(path, 'first\n', null)).toBe(true);
    expect(await createExclusive(path, 'second\n', null)).toBe(false);
    expect(await readFile(path, 'utf8')).toBe('first\n');
    expect(await readdir(dir)).toEqual(['lock']);
  });

  for (const code of ['EPERM', 'ENOSYS']) {
    it(`without hard links (link fails with ${code}): created in place, once; no temporary file is left`, async () => {
      linkFails.code = code;
      const path = join(dir, 'sqlsicherungaktiv');
      expect(await createExclusive(path, 'letto-update pid=1\n', null)).toBe(true);
      expect(await createExclusive(path, 'letto-update pid=2\n', null)).toBe(false);
      expect(await readFile(path, 'utf8')).toBe('letto-update pid=1\n');
      expect(await readdir(dir)).toEqual(['sqlsicherungaktiv']);
    });
  }

  it('another failure of link (EACCES) is thrown, and nothing is left', async () => {
    linkFails.code = 'EACCES';
    await expect(createExclusive(join(dir, 'lock'), 'x\n', null)).rejects.toMatchObject({ code: 'EACCES' });
    expect(await readdir(dir)).toEqual([]);
  });
});
