/**
 * TomEE scripts as real child processes (src/system/process.ts, src/store/script-groups.ts): each runs in a
 * session and process group of its own, is recorded before its first line runs, is ended with its
 * whole group after its timeout, runs at nice 0; a script a dead run left running is waited for (up
 * to its timeout) and then ended by the next run, while the daemon a finished start script left in
 * its group is not touched.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, chmod, readdir } from 'node:fs/promises';
import { getPriority, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/config.js';
import { systemClock, type Context, type LettoEvent } from '../../src/context.js';
import { readScriptRecords, settleScripts } from '../../src/store/script-groups.js';
import { StateStore } from '../../src/store/state.js';
import { isSameProcessAlive, processIdentity } from '../../src/system/proc.js';

/** Alive and not a zombie (PID 1 in a container may reap orphans late). */
const isAlive = (pid: number) => isSameProcessAlive(pid, null);
import { createProcessRunner, type ScriptGroup } from '../../src/system/process.js';
import type { Account } from '../../src/system/users.js';

const me: Account = { name: 'me', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, home: '/' };
const runner = createProcessRunner();
let dir: string;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function script(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat. */
async function statField(pid: number, n: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]!;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'letto-scripts-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runScript: a process group of its own, recorded first, a timeout for the whole group', () => {
  it('runs in a new session and group (not ours), at nice 0 even when we run niced, recorded before its first line', async () => {
    const marker = join(dir, 'ran');
    const path = await script('status.sh', `touch ${marker}; echo "$$ $(cut -d' ' -f5,6,19 /proc/$$/stat)"`);
    const niced = me.uid === 0;
    if (niced) setPriority(process.pid, 7);
    let recorded: ScriptGroup | null = null;
    try {
      const result = await runner.runScript(path, me, 10, {
        beforeStart: async (group) => {
          // the script has not run a line yet when its group is recorded
          await expect(readFile(marker)).rejects.toThrow();
          expect(processIdentity(group.pgid)).toBe(group.process);
          recorded = group;
        },
      });
      expect(result.failure).toBeUndefined();
      const [pid, pgrp, session, nice] = result.stdout.split(' ').map(Number);
      expect(pid).toBe(recorded!.pgid);
      expect(pgrp).toBe(pid); // its own group …
      expect(session).toBe(pid); // … and session
      expect(pgrp).not.toBe(Number(await statField(process.pid, 5)));
      if (niced) expect(nice).toBe(0);
    } finally {
      if (niced) setPriority(process.pid, 0);
    }
    if (!niced) console.warn('script-groups: not root, the nice-0 reset is not checked (lowering a nice level needs root)');
  });

  it('a script whose record cannot be written never runs', async () => {
    const marker = join(dir, 'ran');
    const path = await script('stop.sh', `touch ${marker}`);
    await expect(runner.runScript(path, me, 10, { beforeStart: () => Promise.reject(new Error('disk full')) })).rejects.toThrow('disk full');
    await sleep(200);
    await expect(readFile(marker)).rejects.toThrow();
  });

  it('after its timeout the whole group is ended (a child ignoring SIGTERM too); the failure says so', async () => {
    const pids = join(dir, 'pids');
    const path = await script('stop.sh', `(trap '' TERM; sleep 60) & echo $! > ${pids}; sleep 60`);
    const started = Date.now();
    const result = await runner.runScript(path, me, 1);
    expect(result.timedOut).toBe(true);
    expect(result.failure).toMatch(/did not finish within 1 s; its process group \d+ was ended \(SIGTERM, then SIGKILL/);
    const child = Number((await readFile(pids, 'utf8')).trim());
    await sleep(300); // SIGKILL is delivered asynchronously
    expect(isAlive(child)).toBe(false); // the child that ignored TERM got KILL
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 20_000);

  it('a program with arguments in a folder (how compose up runs): arguments passed as they are, no shell', async () => {
    const result = await runner.runScript('/bin/sh', me, 5, { args: ['-c', 'pwd; printf "%s|" "$@"', 'sh', 'up', '-d', 'two words', '$HOME;'], cwd: dir });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(`${dir}\nup|-d|two words|$HOME;|`);
  });

  it('a missing script is a failure, not an exit code', async () => {
    const result = await runner.runScript(join(dir, 'missing.sh'), me, 5);
    expect(result.failure).toBe(`${join(dir, 'missing.sh')} does not exist (ENOENT)`);
  });
});

describe('settleScripts: the scripts of a dead run are waited for, then ended', () => {
  let ctx: Context;
  const events: LettoEvent[] = [];
  beforeEach(async () => {
    const config = configSchema.parse({});
    ctx = { config, services: { clock: systemClock } as Context['services'], serviceUser: me, state: new StateStore(join(dir, 'state'), me), emit: (e) => events.push(e) };
  });

  /** A detached script as a killed letto-update leaves it: its record names a dead owner. */
  async function orphan(name: string, body: string, timeout: number): Promise<number> {
    const path = await script(`${name}.sh`, body);
    const child = spawn(path, [], { detached: true, stdio: 'ignore' });
    child.unref();
    const pgid = child.pid!;
    const dead = spawn('true');
    await new Promise((resolve) => dead.once('exit', resolve));
    const owner = { pid: dead.pid!, process: `${processIdentity(process.pid)!.split(':')[0]}:1` };
    await rm(join(dir, 'state', 'scripts'), { recursive: true, force: true }).catch(() => undefined);
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'state', 'scripts'), { recursive: true }));
    const record = { command: path, pgid, process: processIdentity(pgid), started: new Date().toISOString(), timeout, name, owner };
    await writeFile(join(dir, 'state', 'scripts', `${owner.pid}.json`), JSON.stringify(record));
    // and what a writer killed in the middle of its atomic write leaves
    await writeFile(join(dir, 'state', 'scripts', `${owner.pid}.json.tmp-${owner.pid}`), '{"half');
    return pgid;
  }

  it('a stop script still running is waited for until it ends by itself', async () => {
    const pgid = await orphan('stop', 'sleep 1.5', 30);
    const started = Date.now();
    const settled = await settleScripts(ctx);
    expect(settled).toMatchObject([{ outcome: 'finished', record: { name: 'stop', pgid } }]);
    expect(Date.now() - started).toBeGreaterThan(1000);
    expect(await readScriptRecords(ctx)).toEqual([]);
    expect(events.map((e) => (e.type === 'warn' ? e.message : ''))).toContainEqual(expect.stringMatching(/The stop script of an interrupted run .* still runs; waiting up to \d+ s/));
  });

  it('one that runs past its timeout is ended with its group', async () => {
    const pgid = await orphan('stop', 'sleep 60 & sleep 60', 1);
    const settled = await settleScripts(ctx);
    expect(settled).toMatchObject([{ outcome: 'ended' }]);
    await sleep(100);
    expect(() => process.kill(-pgid, 0)).toThrow(); // the whole group is gone
  }, 20_000);

  it('a start script that ended leaves its daemon alone, even in the same group', async () => {
    const pids = join(dir, 'daemon');
    const pgid = await orphan('start', `sleep 60 & echo $! > ${pids}`, 30);
    await sleep(300);
    expect(isAlive(pgid)).toBe(false);
    const settled = await settleScripts(ctx);
    expect(settled).toMatchObject([{ outcome: 'finished' }]);
    const daemon = Number((await readFile(pids, 'utf8')).trim());
    expect(isAlive(daemon)).toBe(true);
    process.kill(daemon, 'SIGKILL');
    expect(await readdir(join(dir, 'state', 'scripts'))).toEqual([]);
  });
});
