import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context } from '../context.js';
import { ensureDir, writeFileAtomically } from '../system/files.js';
import { isAlive, isSameProcessAlive, processIdentity } from '../system/proc.js';
import { KILL_GRACE, endGroup, type ScriptGroup } from '../system/process.js';

/*
 * The script journal: `<state>/scripts/<pid>.json`, one file per letto-update process that has a
 * TomEE script (stop, start, restart, status) running, written before the script runs its first line
 * and removed when it has ended. A run killed while its script runs leaves the file behind; the next
 * run that takes the run lock waits for that script (up to its timeout) and ends its process group
 * before it looks at TomEE, so it never races a stop script that is still stopping TomEE, or a start
 * script that is still starting it ({@link settleScripts}).
 */

/** The record of one running script: its group ({@link ScriptGroup}), its name and the letto-update process that started it. */
export interface ScriptRecord extends ScriptGroup {
  name: ScriptName;
  owner: { pid: number; process: string | null };
}

/** TomEE's scripts, and `compose` for a compose command that changes containers (`up`, `restart`) of a Docker install. */
export type ScriptName = 'stop' | 'start' | 'restart' | 'status' | 'compose' | 'docker';

/** How a record is named in messages: `the stop script`, `the compose command`. */
export function scriptLabel(record: Pick<ScriptRecord, 'name'>): string {
  if (record.name === 'compose') return 'compose command';
  return record.name === 'docker' ? 'docker command' : `${record.name} script`;
}

function scriptsDir(ctx: Context): string {
  return join(ctx.state.dir, 'scripts');
}

function recordPath(ctx: Context, pid: number): string {
  return join(scriptsDir(ctx), `${pid}.json`);
}

/**
 * Writes the record of a script about to start (for {@link ProcessRunner.runScript}'s `beforeStart`).
 * Stop, start and restart run only under the run lock and must be recorded: a write error stops them.
 * A status script changes nothing; when its record cannot be written (a read-only user), it runs anyway.
 */
export async function recordScript(ctx: Context, name: ScriptName, group: ScriptGroup): Promise<void> {
  const record: ScriptRecord = { ...group, name, owner: { pid: process.pid, process: processIdentity(process.pid) } };
  try {
    await ensureDir(scriptsDir(ctx), ctx.serviceUser);
    await writeFileAtomically(recordPath(ctx, process.pid), JSON.stringify(record, null, 2) + '\n', ctx.serviceUser);
  } catch (error) {
    if (name !== 'status') throw error;
  }
}

/** Removes this process's record once its script has ended. */
export async function clearScript(ctx: Context): Promise<void> {
  await rm(recordPath(ctx, process.pid), { force: true }).catch(() => undefined);
}

/** Every record in the script journal (files that do not parse are skipped). */
export async function readScriptRecords(ctx: Context): Promise<Array<{ path: string; record: ScriptRecord }>> {
  const dir = scriptsDir(ctx);
  const names = await readdir(dir).catch(() => [] as string[]);
  const records: Array<{ path: string; record: ScriptRecord }> = [];
  for (const name of names) {
    if (!/^\d+\.json$/.test(name)) continue;
    try {
      const record = JSON.parse(await readFile(join(dir, name), 'utf8')) as ScriptRecord;
      if (typeof record.pgid === 'number' && record.owner && typeof record.owner.pid === 'number') records.push({ path: join(dir, name), record });
    } catch {
      // half-written by a killed writer cannot happen (atomic write); anything else is not ours
    }
  }
  return records;
}

/**
 * The scripts that dead letto-update runs left running (for `status`): records whose owner has died
 * while the script's own first process still runs. Changes nothing; the next run that takes the run
 * lock waits for them ({@link settleScripts}).
 */
export async function orphanedScripts(ctx: Context): Promise<ScriptRecord[]> {
  return (await readScriptRecords(ctx))
    .map(({ record }) => record)
    .filter((record) => !isSameProcessAlive(record.owner.pid, record.owner.process) && isSameProcessAlive(record.pgid, record.process));
}

/** What {@link settleScripts} did about one script of a dead run. */
export interface SettledScript {
  record: ScriptRecord;
  /** `finished`: it ended by itself (or had ended already); `ended`: it ran past its timeout and its group was ended. */
  outcome: 'finished' | 'ended';
  waitedSeconds: number;
}

/**
 * Before a run that holds the run lock looks at TomEE: every script that a dead letto-update process
 * left running is waited for until it ends, at most until its recorded timeout has run out (counted
 * from when it started); then its process group gets SIGTERM and, {@link KILL_GRACE} s later, SIGKILL.
 * Only the script's own first process counts as "the script running": TomEE, which a start script
 * leaves behind in the same group, is not waited for and not killed once the script has ended.
 * Records of live processes (a `status` or `health` running beside us) are left alone.
 * @returns what was found and done, one entry per record of a dead process.
 */
export async function settleScripts(ctx: Context): Promise<SettledScript[]> {
  const settled: SettledScript[] = [];
  // a writer killed in the middle of its atomic write leaves `<pid>.json.tmp-<pid>`
  for (const name of await readdir(scriptsDir(ctx)).catch(() => [] as string[])) {
    const writer = /^\d+\.json\.tmp-(\d+)$/.exec(name)?.[1];
    if (writer && (Number(writer) === process.pid || !isAlive(Number(writer)))) await rm(join(scriptsDir(ctx), name), { force: true });
  }
  for (const { path, record } of await readScriptRecords(ctx)) {
    if (record.owner.pid === process.pid) {
      await rm(path, { force: true });
      continue;
    }
    if (isSameProcessAlive(record.owner.pid, record.owner.process)) continue;
    const start = Date.now();
    let outcome: SettledScript['outcome'] = 'finished';
    if (isSameProcessAlive(record.pgid, record.process)) {
      const deadline = Date.parse(record.started) + record.timeout * 1000;
      const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      ctx.emit({
        type: 'warn',
        message: `The ${scriptLabel(record)} of an interrupted run (${record.command}, process group ${record.pgid}) still runs; waiting up to ${left} s for it to finish before anything else is done.`,
      });
      // real time: this waits for a real process, whatever clock the steps use
      while (isSameProcessAlive(record.pgid, record.process) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      if (isSameProcessAlive(record.pgid, record.process)) {
        outcome = 'ended';
        ctx.emit({ type: 'warn', message: `The ${scriptLabel(record)} ${record.command} ran past its ${record.timeout} s; its process group ${record.pgid} is ended (SIGTERM, then SIGKILL after ${KILL_GRACE} s).` });
        await endGroup(record.pgid);
      }
    }
    await rm(path, { force: true });
    settled.push({ record, outcome, waitedSeconds: Math.round((Date.now() - start) / 1000) });
  }
  return settled;
}
