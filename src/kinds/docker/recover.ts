import { createBackupLock, releaseBackupLock } from '../../store/backup-lock.js';
import type { Context } from '../../context.js';
import { ExitCode, LettoError, asLettoError } from '../../errors.js';
import { removeJournal, type JournalEntry } from '../../store/journal.js';
import { injectFault } from '../../system/fault.js';
import { readLettoServices } from './compose.js';
import { waitServicesHealthy } from './health.js';
import { pruneImages } from './revisions.js';
import { byRef, pointAt, upAll } from './install.js';
import type { Recovery } from '../types.js';
import { describeJournal } from '../../store/journal.js';
import { releaseStaleMarker } from '../../store/backup-lock.js';

/** Steps before which no image reference had been moved and no container recreated. */
const BEFORE_SWAP: ReadonlySet<JournalEntry['step']> = new Set(['download', 'backup', 'backup-lock']);

/**
 * Finishes or undoes what a killed update or rollback of a Docker install left, from its journal
 * (call under the run lock), like {@link import('../tomee/recover.js').recoverJournal} does for TomEE:
 *
 * - killed after every service answered its health check (`installed`): only the bookkeeping is done;
 * - killed before any image reference moved (`download`, `backup`, `backup-lock`): nothing had changed
 *   (pulled images and the keep tags stay; the marker is removed);
 * - otherwise every LeTTo image reference is pointed back at the image id the journal remembered,
 *   each compose folder brought up in order, and the health check run — under the backup lock.
 *
 * The journal is removed once this succeeded and kept when it failed, so the next run tries again.
 * @throws LettoError with exit 4 when the previous revision could not be brought back.
 */
export async function recoverImages(ctx: Context, journal: JournalEntry): Promise<Recovery> {
  ctx.emit({ type: 'step', step: 'recover', message: `${describeJournal(journal)} Recovering first.` });
  await releaseStaleMarker(ctx, journal);
  let recovery: Recovery;
  if (journal.step === 'installed') {
    const before = await ctx.state.read();
    await ctx.state.write({ installed: journal.to, ...(journal.healthy ? { lastKnownGood: journal.to } : {}) });
    // the killed run's conclusion: retention, as after an update that ended by itself
    await pruneImages(ctx, await readLettoServices(ctx), [journal.from, before.lastKnownGood, journal.to]);
    recovery = { kind: 'completed', journal, running: journal.to, message: `It had already installed revision ${journal.to ?? 'unknown'} on every service; only its bookkeeping was left, and is done.` };
  } else if (BEFORE_SWAP.has(journal.step) || !journal.previousImages?.length) {
    recovery = { kind: 'untouched', journal, running: journal.from, message: 'It had not moved any image or container yet; nothing needed undoing.' };
  } else {
    recovery = await undo(ctx, journal);
  }
  await removeJournal(ctx.state.dir);
  ctx.emit({ type: 'notice', message: `Recovered from an interrupted ${journal.command}: ${recovery.message}` });
  return recovery;
}

/** Points every reference back at the remembered ids, brings the folders up, checks health. */
async function undo(ctx: Context, journal: JournalEntry): Promise<Recovery> {
  const lockPath = ctx.config.paths.backup_lock;
  const marker = await createBackupLock(lockPath).catch(() => null); // a running backup's lock holds a watchdog off too
  const previous = journal.previousImages!;
  const label = `revision ${journal.from ?? 'unknown'}`;
  ctx.emit({ type: 'critical', active: true });
  try {
    await pointAt(ctx, previous);
    injectFault('recover:pointed');
    await upAll(ctx);
    await ctx.state.write({ installed: journal.from });
    const health = await waitServicesHealthy(ctx, byRef(previous));
    if (!health.healthy) throw new LettoError(`${label} did not become healthy (${health.last}).`, { log: health.log ?? null });
    return { kind: 'undone', journal, running: journal.from, message: `It was undone: every LeTTo service runs ${label} again and answers its health check.` };
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
