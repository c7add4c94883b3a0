/**
 * The journal (src/store/journal.ts) on real files: nothing is written before the first step, each record
 * replaces the file atomically (no temporary file left), temporary names accumulate, finish removes it,
 * and a file that is not a journal is ignored rather than acted upon.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/config.js';
import type { Context } from '../../src/context.js';
import { Journal, journalPath, readJournal } from '../../src/store/journal.js';
import { StateStore } from '../../src/store/state.js';
import { processIdentity } from '../../src/system/proc.js';

let dir: string;
let ctx: Context;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'letto-journal-'));
  const account = { name: 'me', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, home: dir };
  ctx = {
    config: configSchema.parse({ paths: { state: dir } }),
    services: {} as Context['services'],
    serviceUser: account,
    state: new StateStore(dir, account),
    emit: () => undefined,
  };
  ctx.services.clock = { now: () => new Date('2026-11-21T02:15:00Z'), sleep: async () => undefined };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Journal', () => {
  it('writes nothing before the first step; records merge fields and temps; finish removes it', async () => {
    const journal = new Journal(ctx, 'update');
    await journal.finish();
    expect(await readdir(dir)).toEqual([]);
    await journal.record('backup', { from: 6880, to: 6886, temps: ['/a.tmp'] });
    await journal.record('stop', { wasRunning: true, temps: ['/b.tmp', '/a.tmp'] });
    expect(await readdir(dir)).toEqual(['journal.json']); // no temporary file left beside it
    expect(await readJournal(dir)).toMatchObject({
      version: 1,
      pid: process.pid,
      process: processIdentity(process.pid),
      command: 'update',
      step: 'stop',
      from: 6880,
      to: 6886,
      wasRunning: true,
      temps: ['/a.tmp', '/b.tmp'],
      started: '2026-11-21T02:15:00.000Z',
    });
    await journal.finish();
    expect(await readdir(dir)).toEqual([]);
  });

  it.each([
    ['not JSON', '{"version":1,"pid":'],
    ['another version', JSON.stringify({ version: 2, pid: 1, step: 'swap' })],
    ['an unknown step', JSON.stringify({ version: 1, pid: 1, step: 'explode' })],
  ])('a file that is %s is ignored', async (_name, text) => {
    await writeFile(journalPath(dir), text);
    expect(await readJournal(dir)).toBeNull();
  });
});
