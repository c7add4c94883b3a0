/**
 * The run lock (src/lock.ts) on real files: a live holder is obeyed (exit 75), a dead one or a reused
 * PID is taken over, a half-written lock is obeyed only while fresh, and of several runs that find the
 * same stale lock exactly one takes it over.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BusyError } from '../../src/errors.js';
import { acquireRunLock } from '../../src/lock.js';
import { processIdentity } from '../../src/system/proc.js';
import type { Account } from '../../src/system/users.js';

let dir: string;
const me: Account = { name: 'me', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, home: '/' };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'letto-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lockFile = () => join(dir, 'lock');
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

describe('run lock', () => {
  it('holds pid, command and process identity; a second acquire is busy; release removes it', async () => {
    const lock = await acquireRunLock(dir, 'update', me);
    expect(JSON.parse(await readFile(lockFile(), 'utf8'))).toMatchObject({ pid: process.pid, command: 'update', process: processIdentity(process.pid) });
    await expect(acquireRunLock(dir, 'rollback', me)).rejects.toThrow(BusyError);
    await lock.release();
    await expect(readFile(lockFile())).rejects.toThrow();
  });

  it('a lock of a process that is gone is taken over', async () => {
    await writeFile(lockFile(), JSON.stringify({ pid: deadPid(), command: 'update', started: '2024-01-01T00:00:00Z' }));
    const lock = await acquireRunLock(dir, 'update', me);
    expect(JSON.parse(await readFile(lockFile(), 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('a live PID whose identity differs (reused after a reboot) is taken over', async () => {
    expect(processIdentity(process.pid)).toMatch(/^[0-9a-f-]+:\d+$/);
    await writeFile(lockFile(), JSON.stringify({ pid: process.pid, command: 'update', process: 'another-boot:1' }));
    const lock = await acquireRunLock(dir, 'update', me);
    expect(JSON.parse(await readFile(lockFile(), 'utf8')).process).toBe(processIdentity(process.pid));
    await lock.release();
  });

  it('a lock without a readable holder is obeyed while fresh (being written), taken over when old', async () => {
    await writeFile(lockFile(), '');
    await expect(acquireRunLock(dir, 'update', me)).rejects.toThrow(/is taking the run lock/);
    const old = new Date(Date.now() - 60_000);
    await utimes(lockFile(), old, old);
    const lock = await acquireRunLock(dir, 'update', me);
    await lock.release();
  });

  it('of five runs that find the same stale lock, exactly one takes it over', async () => {
    await writeFile(lockFile(), JSON.stringify({ pid: deadPid(), command: 'update' }));
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => acquireRunLock(dir, 'update', me)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(BusyError);
  });
});
