import { releaseBackupLock, takeBackupLock } from '../../store/backup-lock.js';
import type { Context } from '../../context.js';
import { LettoError, asLettoError } from '../../errors.js';
import type { ComposeCall, ImagePointer, Journal } from '../../store/journal.js';
import type { LogTail } from '../../system/log-tail.js';
import type { Revision } from '../../revision.js';
import { UndoList } from '../../runbook/undo.js';
import { activeCalls, composeUp, type LettoService } from './compose.js';
import { imageId, localImages, tag } from './engine.js';
import type { DockerFetched } from './fetch.js';
import { requireLettoServices } from './fetch.js';
import { describeUnhealthy, waitServicesHealthy } from './health.js';
import { parseRef, repositoryOf, revisionTag } from './refs.js';
import { schoolsOf } from './schools.js';
import type { InstallOptions, InstallOutcome } from '../types.js';
import type { DumpRecord } from '../../database/dump.js';
import { dumpAll, prepareDumps, type DatabaseOutcome, type PreparedDumps } from '../../database/steps.js';
import { loadChosenDumps, restoreAfterPointBack, stopWriters } from './database.js';

/** The tag that keeps the previous images when their revision is unknown. */
export const PREVIOUS_TAG = 'letto-update-previous';

/** What the runbook found before anything changed. */
interface Found {
  previous: ImagePointer[];
  calls: ComposeCall[];
  schools: string[];
  /** `[database]`: the databases to dump and how (null without the section). */
  databases: PreparedDumps | null;
}

/**
 * What the unwinding needs: `touched` (a tag moved or a container was stopped), `dumpFailed` (the update
 * is then refused, exit 1), `dumps` (made with the writers stopped), `database` (what the way back did
 * with them), `log` (the failed containers' logs, read before the undo recreates them).
 */
interface InstallState {
  touched: boolean;
  dumpFailed: boolean;
  dumps: DumpRecord[] | null;
  database: DatabaseOutcome | null;
  log: LogTail | null;
}

/**
 * The runbook of a Docker install, the same shape as installWar's: remember the images running now
 * (by id, in the journal) and keep them tagged; take the backup lock; with `[database]`, stop every LeTTo
 * container but the database's and dump each database (src/kinds/docker/database.ts); point every LeTTo
 * image reference the compose files name at the target revision at once; `up -d` each compose folder in
 * order; health check. Any failure after the first tag moved: every reference back to the remembered
 * ids (and the databases whose schema changed restored from the dumps), `up -d`, health again.
 * @param options `restoreDumps`: `rollback --restore-database`'s dumps, loaded after the current ones were made.
 * @returns the outcome (never throws for expected failures).
 */
export async function installImages(ctx: Context, from: Revision | null, target: DockerFetched, journal: Journal, options: InstallOptions = {}): Promise<InstallOutcome> {
  const lockPath = ctx.config.paths.backup_lock;
  let found: Found;
  try {
    found = await findAndKeep(ctx, from, target, journal);
    await journal.record('backup-lock', { backupLock: lockPath });
  } catch (error) {
    return { result: 'failed', error: asLettoError(error) };
  }
  const { previous, calls, schools } = found;
  const lock = await takeBackupLock(lockPath, ctx.serviceUser.name, 'LeTTo');
  if ('error' in lock) return { result: 'failed', error: lock.error };
  const undo = new UndoList();
  const state: InstallState = { touched: false, dumpFailed: false, dumps: null, database: null, log: null };
  const fromLabel = `revision ${from ?? 'unknown'}`;
  ctx.emit({ type: 'critical', active: true });
  try {
    undo.push(`bring every compose folder up with ${fromLabel} and check its health`, async () => {
      await upAll(ctx, calls);
      const health = await waitServicesHealthy(ctx, byRef(previous), calls);
      if (!health.healthy) throw new Error(`${fromLabel} did not become healthy either (${health.last})`);
    });
    if (found.databases) await dumpWithWritersStopped(ctx, found.databases, from, state, journal, options.restoreDumps ?? []);
    undo.push(`point every LeTTo image back at ${fromLabel}${found.databases ? ' and restore the databases whose schema changed' : ''}`, async () => {
      if (state.dumps) await stopWriters(ctx); // the new revision must not write while its databases are restored
      await pointAt(ctx, previous);
      if (state.dumps) state.database = await restoreAfterPointBack(ctx, state.dumps, calls, async (restoring) => journal.record('restore', { restoring }));
    });
    await journal.record('swap');
    state.touched = true;
    await pointAt(ctx, target.images);
    await journal.record('start');
    await upAll(ctx, calls);
    await journal.record('health');
    const health = await waitServicesHealthy(ctx, byRef(target.images), calls);
    if (!health.healthy) {
      state.log = health.log ?? null; // read before the undo recreates the failed containers
      throw new LettoError(`Revision ${target.revision ?? 'unknown'} ${describeUnhealthy(health, ctx.config.docker!.health_timeout)}.`, {
        hint: 'Look at `docker ps -a` and the logs of the LeTTo containers (`docker logs NAME`) for why it did not start.',
      });
    }
    await journal.record('installed', { healthy: true });
    undo.clear();
    return { result: 'installed', started: true, message: `Revision ${target.revision} runs in every LeTTo container${moved(schools)} and answers its health check (after ${health.seconds} s).` };
  } catch (caught) {
    return unwindFailed(ctx, asLettoError(caught), undo, state, `${fromLabel}`, schools, journal);
  } finally {
    await releaseBackupLock(lockPath, lock.marker).catch(() => undefined);
    ctx.emit({ type: 'critical', active: false });
  }
}

/**
 * Before anything changes: the LeTTo services, the image ids they run (journal step `backup`, with the
 * compose calls that are up), those images kept under a tag, and with `[database]` the dump's checks.
 * @throws LettoError (exit 1, nothing changed) when a check fails.
 */
async function findAndKeep(ctx: Context, from: Revision | null, target: DockerFetched, journal: Journal): Promise<Found> {
  const services = await requireLettoServices(ctx);
  const previous = await runningImages(ctx, services);
  const calls = activeCalls(services);
  const schools = schoolsOf(services.filter((s) => !s.stopped));
  const databases = await prepareDumps(ctx, from);
  await journal.record('backup', { from, to: target.revision, previousImages: previous, targetImages: target.images, composeGroups: calls });
  await keepRunningImages(ctx, previous, from);
  return { previous, calls, schools, databases };
}

/**
 * Steps `stop` and `dump`: every LeTTo container but the database's stopped, each database dumped;
 * then `restore` (`rollback --restore-database`) loaded. A failure sets `state.dumpFailed` (the update
 * is refused, exit 1, once the undo brought every container up again).
 * @throws the LettoError of the stop or the dump.
 */
async function dumpWithWritersStopped(ctx: Context, databases: PreparedDumps, from: Revision | null, state: InstallState, journal: Journal, restore: DumpRecord[]): Promise<void> {
  try {
    await journal.record('stop');
    state.touched = true;
    await stopWriters(ctx);
    state.dumps = await dumpAll(ctx, databases, from, journal);
  } catch (error) {
    state.dumpFailed = true;
    throw error;
  }
  await loadChosenDumps(ctx, restore, journal);
}

/**
 * After a failed step: runs the undo list and tells how it ended: `failed` (nothing had been touched,
 * or the dump failed and every container runs again), `rolled-back` (the previous revision answers
 * again) or `rollback-failed` (the journal is kept on disk for the next run).
 */
async function unwindFailed(ctx: Context, error: LettoError, undo: UndoList, state: InstallState, fromLabel: string, schools: string[], journal: Journal): Promise<InstallOutcome> {
  ctx.emit({ type: 'warn', message: error.message });
  if (state.touched) await journal.record('undo').catch(() => undefined);
  const unwind = await undo.unwind(ctx.emit);
  if (state.dumpFailed && unwind.ok) {
    const again = `every LeTTo container runs ${fromLabel} again (stopped for the dump and started again; no image tag had moved)`;
    return { result: 'failed', error: new LettoError(`${error.message} The update was refused: no dump, no update; ${again}.`, { hint: error.hint, cause: error }) };
  }
  if (!state.touched && unwind.ok) return { result: 'failed', error };
  const logs = state.log ? { log: state.log } : {};
  const database = state.database ? { database: state.database.summary } : {};
  if (unwind.ok) {
    return { result: 'rolled-back', error, message: `Every LeTTo service${moved(schools)} runs ${fromLabel} again and answers its health check.${state.database ? ` ${state.database.sentence}` : ''}`, ...logs, ...database };
  }
  journal.abandon(); // kept on disk: the next run (or `letto-update recover`) tries again
  const failures = unwind.failures.map((f) => `${f.label}: ${f.error instanceof Error ? f.error.message : String(f.error)}`).join('; ');
  return {
    result: 'rollback-failed',
    error,
    message: `Putting ${fromLabel} back failed too (${failures}). LeTTo may be down: look at \`docker ps -a\` and the containers' logs; \`letto-update recover\` tries again.`,
    ...logs,
  };
}

/**
 * The image id each LeTTo image reference runs now: a running container's, else the one the reference
 * names (a stopped school's container may still hold an older image; the reference is the way back).
 */
export async function runningImages(ctx: Context, services: LettoService[]): Promise<ImagePointer[]> {
  const pointers = new Map<string, string>();
  for (const s of [...services.filter((x) => !x.stopped), ...services.filter((x) => x.stopped)]) {
    if (pointers.has(s.ref)) continue;
    const id = (s.stopped ? null : s.container?.imageId) ?? (await imageId(ctx, s.ref));
    if (id) pointers.set(s.ref, id);
  }
  return [...pointers].map(([ref, id]) => ({ ref, id }));
}

/**
 * Keeps the images running now, so that moving the compose tag away never leaves one untagged. An image
 * that already carries the revision tag of `from` under its own name (e.g.
 * `localhost:5000/lettohub/lettoserver:rev6880`, as it was pulled from the registry) keeps that and
 * gets no other. Any other gets it (or `letto-update-previous` when the revision is unknown) in the
 * repository the compose file names, registry included (`localhost:5000/lettohub/lettoserver:rev6880`
 * for `localhost:5000/lettohub/lettoserver:stable`): never a name the admin's image did not have, such
 * as a short `lettohub/lettoserver:rev6880` that looks as if it came from Docker Hub. Retention and
 * `rollback --to` find a revision tag under any registry.
 * @throws LettoError when docker cannot list the images or tag one.
 */
export async function keepRunningImages(ctx: Context, previous: ImagePointer[], from: Revision | null): Promise<void> {
  const keep = from === null ? PREVIOUS_TAG : revisionTag(ctx.config.docker!, from);
  ctx.emit({ type: 'step', step: 'backup', message: `Keeping the running images (${keep})` });
  const images = from === null ? [] : await localImages(ctx);
  for (const p of previous) {
    const { name } = parseRef(p.ref);
    const tags = images.find((i) => i.id === p.id)?.tags ?? [];
    if (tags.some((t) => parseRef(t).name === name && parseRef(t).tag === keep)) continue;
    await tag(ctx, p.id, `${repositoryOf(p.ref)}:${keep}`);
  }
}

/** Points every reference at its image id (`docker tag ID REF`): what compose's `up -d` then runs. */
export async function pointAt(ctx: Context, pointers: ImagePointer[]): Promise<void> {
  ctx.emit({ type: 'step', step: 'swap', message: `Pointing ${pointers.map((p) => p.ref).join(', ')} at ${pointers.map((p) => p.id.slice(7, 19)).join(', ')}` });
  for (const p of pointers) await tag(ctx, p.id, p.ref);
}

/** `up -d` of each compose call, in order (the groups that were up when the run started; never a stopped school's). */
export async function upAll(ctx: Context, calls: ComposeCall[]): Promise<void> {
  for (const call of calls) await composeUp(ctx, call);
}

/** ` (3 schools: a, b, c)`, or nothing on a server without school files. */
function moved(schools: string[]): string {
  return schools.length ? ` (${schools.length} school${schools.length > 1 ? 's' : ''}: ${schools.join(', ')})` : '';
}

/** Image id by reference, for the health check's "no mix" test. */
export function byRef(pointers: ImagePointer[]): Map<string, string> {
  return new Map(pointers.map((p) => [p.ref, p.id]));
}
