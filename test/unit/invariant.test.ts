/**
 * The webapps invariant checker (test/support/invariant.ts) must be able to fail: a stray WAR, a stray
 * folder, a visible temporary file, a linked or damaged letto.war, an unknown revision, a leftover
 * temporary copy after the run concluded.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildWar } from '../../fixtures/build-war.js';
import { expectWebappsInvariant } from '../support/invariant.js';

let dir: string;
let webapps: string;
let war: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'letto-inv-'));
  webapps = join(dir, 'webapps');
  await mkdir(webapps);
  war = join(dir, 'good.war');
  await buildWar(war, { revision: 6880 });
  await copyFile(war, join(webapps, 'letto.war'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('expectWebappsInvariant', () => {
  it('holds for letto.war, its exploded folder and (mid-run) the hidden temporary copy', async () => {
    await mkdir(join(webapps, 'letto'));
    await writeFile(join(webapps, '.letto.war.letto-update.tmp'), 'partial');
    expect(await expectWebappsInvariant(webapps, [6880])).toBe(6880);
  });

  const broken: Array<[string, () => Promise<void>, { settled?: boolean; known?: number[] }?]> = [
    ['a second WAR', () => copyFile(war, join(webapps, 'letto-6886.war'))],
    ['a temporary *.war', () => writeFile(join(webapps, 'letto.war.tmp.war'), 'x')],
    ['a stray folder', () => mkdir(join(webapps, 'letto-old'))],
    ['a visible stray file', () => writeFile(join(webapps, 'letto.war.bak'), 'x')],
    ['no letto.war', () => rm(join(webapps, 'letto.war'))],
    ['letto.war is a symlink', async () => {
      await rm(join(webapps, 'letto.war'));
      await symlink(war, join(webapps, 'letto.war'));
    }],
    ['a truncated letto.war', async () => {
      const bytes = await readFile(war);
      await writeFile(join(webapps, 'letto.war'), bytes.subarray(0, bytes.length - 100));
    }],
    ['an unknown revision', async () => undefined, { known: [6886] }],
    ['a temporary copy left after the run', () => writeFile(join(webapps, '.letto.war.letto-update.tmp'), 'x'), { settled: true }],
  ];

  it.each(broken)('fails for %s', async (_name, breakIt, opts = {}) => {
    await breakIt();
    await expect(expectWebappsInvariant(webapps, opts.known ?? [6880], { settled: opts.settled ?? false })).rejects.toThrow();
  });
});
