/**
 * The database's part of a Docker install's runbook (docs/database.md). LeTTo's MySQL runs in its own
 * container (`database.container`, `letto-mysql`), one database per school plus `lettolti`; the
 * dump and the restore run inside it (src/database/connection.ts, containerConnection). Nothing may
 * write while they run, so every other LeTTo container is stopped first ({@link stopWriters}): the
 * Docker runbook otherwise never stops a container, compose's `up -d` recreates them.
 *
 * On the way back (automatic rollback, recovery) the order is: stop the writers (the new revision's
 * containers), point the image references back, bring the database container up on its previous image
 * if it is one of LeTTo's (compose may have recreated it with the new one), wait until it answers,
 * restore each database whose schema changed; then the caller brings every compose folder up.
 */
import type { Context } from '../../context.js';
import { changedDumps, restoreDumps, waitDatabase, databaseConnection, type DatabaseOutcome } from '../../database/steps.js';
import type { DumpRecord } from '../../database/dump.js';
import type { ComposeCall, Journal } from '../../store/journal.js';
import { composeUp, readLettoServices, type LettoService } from './compose.js';
import { stopContainers } from './engine.js';
import { callKey, isUp } from './groups.js';

/** Seconds the database container may take to answer after compose brought it up. */
const DATABASE_START = 120;

/** Whether `s` is the database container (`database.container`): never stopped for a dump. */
export function isDatabase(ctx: Context, s: LettoService): boolean {
  return s.container?.name === ctx.config.database?.container;
}

/**
 * Stops every LeTTo container that is up except the database container (`docker stop`), so that
 * nothing writes to the databases while they are dumped or restored. A container of a school the admin
 * stopped stays as it is. Compose's `up -d` later starts them again (and recreates those whose image changed).
 * @returns the names stopped.
 * @throws LettoError when docker cannot list or stop them.
 */
export async function stopWriters(ctx: Context): Promise<string[]> {
  const names = (await readLettoServices(ctx)).filter((s) => s.container && isUp(s.container) && !isDatabase(ctx, s)).map((s) => s.container!.name);
  if (names.length === 0) return [];
  ctx.emit({ type: 'step', step: 'stop', message: `Stopping ${names.join(', ')} so that nothing writes to LeTTo's databases` });
  await stopContainers(ctx, names);
  return names;
}

/**
 * After the image references point back: brings the database container up on its previous image when
 * it is one of LeTTo's services (only that service, `--no-deps`), and waits until the server answers.
 * @param calls the compose calls of the run (the journal's `composeGroups`).
 * @throws LettoError when compose fails or the server does not answer within {@link DATABASE_START} s.
 */
export async function databaseUp(ctx: Context, calls: ComposeCall[]): Promise<void> {
  const connection = databaseConnection(ctx);
  if (!connection) return;
  const service = (await readLettoServices(ctx)).find((s) => isDatabase(ctx, s));
  const call = service && calls.find((c) => callKey(c) === service.group.key);
  if (service && call) await composeUp(ctx, call, [service.service]);
  await waitDatabase(connection, DATABASE_START);
}

/**
 * The way back for the databases (see the module comment; the image references already point back),
 * for an automatic rollback and for recovery after a kill: bring the database up, then restore each
 * database whose schema differs from its dump, and those in `force` (a restore a kill cut short: its
 * schema may look right while rows are missing); `record` writes the journal step `restore` first.
 * @param calls the run's compose calls (to bring up the database's service).
 * @returns what was done, for the log, the notice and `history`.
 * @throws LettoError when the server cannot be reached or a restore fails (the journal keeps `restore`).
 */
export async function restoreAfterPointBack(ctx: Context, dumps: DumpRecord[], calls: ComposeCall[], record: (restoring: string[]) => Promise<void>, force: string[] = []): Promise<DatabaseOutcome | null> {
  await databaseUp(ctx, calls);
  return restoreDumps(ctx, dumps, await changedDumps(ctx, dumps, force), record);
}

/** `rollback --restore-database`: loads the target revision's dumps (LeTTo's writers stopped, the current databases dumped). */
export async function loadChosenDumps(ctx: Context, restore: DumpRecord[], journal: Journal): Promise<void> {
  if (restore.length > 0) await restoreDumps(ctx, restore, restore, async (restoring) => journal.record('restore', { restoring }));
}
