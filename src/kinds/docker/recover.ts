import { createBackupLock, releaseBackupLock, releaseStaleMarker } from '../../store/backup-lock.js';
import type { Context } from '../../context.js';
import { ExitCode, LettoError, asLettoError } from '../../errors.js';
import { rm } from 'node:fs/promises';
import { describeJournal, removeJournal, rewriteJournal, type ComposeCall, type ImagePointer, type JournalEntry } from '../../store/journal.js';
import { pruneDumps } from '../../database/retention.js';
import type { DatabaseOutcome } from '../../database/steps.js';
import { restoreAfterPointBack, stopWriters } from './database.js';
import { callKey } from './groups.js';
import type { Revision } from '../../revision.js';
import { injectFault } from '../../system/fault.js';
import { activeCalls, readLettoServices, type LettoService } from './compose.js';
import { imageId } from './engine.js';
import { servicesHealthyNow, waitServicesHealthy } from './health.js';
import { pruneImages, serviceRevisions } from './revisions.js';
import { healthTargets } from './schools.js';
import { byRef, pointAt, upAll } from './install.js';
import type { Recovery } from '../types.js';

/** Steps before which no image reference had been moved and no container recreated. */
const BEFORE_SWAP: ReadonlySet<JournalEntry['step']> = new Set(['download', 'backup', 'backup-lock']);

/**
 * Finishes or undoes what a killed update or rollback of a Docker install left, from its journal
 * (call under the run lock), like {@link import('../tomee/recover.js').recoverJournal} does for TomEE:
 *
 * - killed after every service answered its health check (`installed`): only the bookkeeping is done;
 * - killed before any image reference moved (`download`, `backup`, `backup-lock`): nothing had changed
 *   (pulled images and the keep tags stay; the marker is removed);
 * - otherwise, first a look at what runs ({@link adoptHealthy}): every LeTTo container healthy on the
 *   image its compose reference names, all of one known revision, health_url answering — the killed
 *   run's new revision, or a repair by hand after exit 4 — is adopted as it is;
 * - else every LeTTo image reference is pointed back at the image id the journal remembered,
 *   each compose group the killed run found up brought up again in order, and the health check run —
 *   under the backup lock.
 *
 * The journal is removed once this succeeded and kept when it failed, so the next run tries again.
 * @throws LettoError with exit 4 when the previous revision could not be brought back.
 */
export async function recoverImages(ctx: Context, journal: JournalEntry): Promise<Recovery> {
  ctx.emit({ type: 'step', step: 'recover', message: `${describeJournal(journal)} Recovering first.` });
  for (const temp of journal.temps) await rm(temp, { force: true }); // a dump cut short
  await releaseStaleMarker(ctx, journal);
  let recovery: Recovery;
  if (journal.step === 'installed') {
    const before = await ctx.state.read();
    await ctx.state.write({ installed: journal.to, ...(journal.healthy ? { lastKnownGood: journal.to } : {}) });
    // the killed run's conclusion: retention, as after an update that ended by itself
    await pruneDumps(ctx.config.paths.backups, await pruneImages(ctx, await readLettoServices(ctx), [journal.from, before.lastKnownGood, journal.to]));
    recovery = { kind: 'completed', journal, running: journal.to, message: `It had already installed revision ${journal.to ?? 'unknown'} on every service; only its bookkeeping was left, and is done.` };
  } else if (BEFORE_SWAP.has(journal.step) || !journal.previousImages?.length) {
    recovery = { kind: 'untouched', journal, running: journal.from, message: 'It had not moved any image or container yet; nothing needed undoing.' };
  } else {
    // a restore cut short: LeTTo must not be adopted on a half-loaded database
    recovery = (journal.step === 'restore' ? null : await adoptHealthy(ctx, journal)) ?? (await undo(ctx, journal));
  }
  await removeJournal(ctx.state.dir);
  ctx.emit({ type: 'notice', message: `Recovered from an interrupted ${journal.command}: ${recovery.message}` });
  return recovery;
}

/** Steps after which compose may have just recreated containers on the target: recovery waits for their health check, as the killed run would have. */
const STARTING: ReadonlySet<JournalEntry['step']> = new Set(['start', 'health']);

/**
 * LeTTo runs healthy and whole: adopt it (record its revision as installed and known-good) and change
 * nothing, as TomEE's recovery does. Null (undo instead) unless every LeTTo service has a container on
 * the very image its compose reference points at (else a plain `up -d` would change what runs), they
 * all run one known revision (their revision tags; else the journal's target or previous image ids),
 * and they are healthy with health_url answering HTTP 200 — now, or after a kill at `start` or `health`
 * within `docker.health_timeout` (the wait the killed run was in).
 */
async function adoptHealthy(ctx: Context, journal: JournalEntry): Promise<Recovery | null> {
  // a school the admin stopped keeps its old container until it is started again: not counted
  const services = (await readLettoServices(ctx).catch(() => [])).filter((s) => !s.stopped);
  if (services.length === 0) return null;
  // every compose call the killed run found up must be up again (its stop step may have stopped a school)
  if (journal.composeGroups?.some((call) => !services.some((s) => s.group.key === callKey(call)))) return null;
  // one `docker image inspect` per reference: the schools' services share lettohub/lettoserver:stable
  const ids = new Map<string, string>();
  for (const s of services) {
    const id = ids.get(s.ref) ?? (await imageId(ctx, s.ref));
    if (!id || s.container?.imageId !== id) return null;
    ids.set(s.ref, id);
  }
  const running: ImagePointer[] = [...ids].map(([ref, id]) => ({ ref, id }));
  const revision = await revisionOf(ctx, journal, services, running);
  if (revision === null) return null;
  const expected = byRef(running);
  const calls = journal.composeGroups ?? null;
  const health = STARTING.has(journal.step) ? await waitServicesHealthy(ctx, expected, calls) : await servicesHealthyNow(ctx, expected, calls);
  if (!health.healthy) return null;
  const before = await ctx.state.read();
  await ctx.state.write({ installed: revision, lastKnownGood: revision });
  // the killed run's conclusion, when it is its revision that runs: retention, as after an update that ended by itself
  if (revision === journal.to) await pruneDumps(ctx.config.paths.backups, await pruneImages(ctx, await readLettoServices(ctx), [journal.from, before.lastKnownGood, journal.to]));
  const which = revision === journal.to ? 'the revision it was installing' : revision === journal.from ? 'the revision it started from' : 'put there by someone else';
  const url = healthTargets(ctx.config.docker!, services).map((t) => t.url).join(', ');
  return {
    kind: 'adopted',
    journal,
    running: revision,
    message: `Every LeTTo container (${services.length}) runs revision ${revision} (${which}), healthy${url ? `, and ${url} answers HTTP 200` : ''}; it was adopted as it is (no container recreated) and recorded as installed.`,
  };
}

/** The one revision every service runs: by their revision tags, else by the journal's image ids; null when mixed or unknown. */
async function revisionOf(ctx: Context, journal: JournalEntry, services: LettoService[], running: ImagePointer[]): Promise<Revision | null> {
  const tagged = await serviceRevisions(ctx, services);
  if (tagged.revision !== null) return tagged.revision;
  const all = (pointers: ImagePointer[] | undefined) => running.every((r) => pointers?.some((p) => p.ref === r.ref && p.id === r.id));
  if (journal.to !== null && all(journal.targetImages)) return journal.to;
  if (journal.from !== null && all(journal.previousImages)) return journal.from;
  return null;
}

/** Points every reference back at the remembered ids, brings the folders up, checks health. */
async function undo(ctx: Context, journal: JournalEntry): Promise<Recovery> {
  const lockPath = ctx.config.paths.backup_lock;
  const marker = await createBackupLock(lockPath).catch(() => null); // a running backup's lock holds a watchdog off too
  const previous = journal.previousImages!;
  const label = `revision ${journal.from ?? 'unknown'}`;
  ctx.emit({ type: 'critical', active: true });
  try {
    // the compose calls that were up when the killed run started (a group a kill left without containers included)
    const calls = journal.composeGroups ?? activeCalls(await readLettoServices(ctx));
    if (journal.dumps?.length) await stopWriters(ctx); // nothing may write while a database is restored
    await pointAt(ctx, previous);
    injectFault('recover:pointed');
    const database = await recoverDatabases(ctx, journal, calls);
    await upAll(ctx, calls);
    await ctx.state.write({ installed: journal.from });
    const health = await waitServicesHealthy(ctx, byRef(previous), calls);
    if (!health.healthy) throw new LettoError(`${label} did not become healthy (${health.last}).`, { log: health.log ?? null });
    const note = database ? ` ${database.sentence}` : '';
    return { kind: 'undone', journal, running: journal.from, message: `It was undone: every LeTTo service runs ${label} again and answers its health check.${note}`, ...(database ? { database: database.summary } : {}) };
  } catch (caught) {
    const error = asLettoError(caught);
    throw new LettoError(`Recovering from the interrupted ${journal.command} failed: ${error.message} LeTTo may be down.`, {
      exitCode: ExitCode.rollbackFailed,
      hint: `Look at \`docker ps -a\` and the LeTTo containers' logs; fix the cause and run \`letto-update recover\` again (the journal ${ctx.state.dir}/journal.json is kept until it succeeds).`,
      cause: caught,
      log: error.log,
    });
  } finally {
    if (marker) await releaseBackupLock(lockPath, marker).catch(() => undefined);
    ctx.emit({ type: 'critical', active: false });
  }
}

/**
 * The killed run's dumps (journal `dumps`), with the writers stopped and the references pointing back:
 * {@link restoreAfterPointBack}, restoring again what a restore cut short named (step `restore`).
 * @returns what was done (null when the killed run had made no dump).
 */
async function recoverDatabases(ctx: Context, journal: JournalEntry, calls: ComposeCall[]): Promise<DatabaseOutcome | null> {
  if (!journal.dumps?.length) return null;
  const force = journal.step === 'restore' ? (journal.restoring ?? []) : [];
  return restoreAfterPointBack(ctx, journal.dumps, calls, (restoring) => rewriteJournal(ctx, { ...journal, step: 'restore', restoring }), force);
}
