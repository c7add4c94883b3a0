/**
 * `rollback` by hand, days after an update: what to do with LeTTo's databases. Never restored silently:
 * when the schema differs from the dump kept of the target revision (taken when that revision was
 * left), the rollback is refused until the admin chooses `--restore-database` (load that dump: what was
 * written since is lost; the current databases are dumped first, as before every update) or
 * `--keep-database` (the old revision against today's schema). Without a dump, or with the same schema,
 * the databases are left alone.
 */
import type { Context } from '../context.js';
import { LettoError } from '../errors.js';
import type { Revision } from '../revision.js';
import { localTime } from '../time.js';
import type { DumpRecord } from './dump.js';
import { dumpsOf } from './retention.js';
import { changedDumps } from './steps.js';

/** `--restore-database` / `--keep-database`, or neither. */
export type DatabaseChoice = 'restore' | 'keep' | undefined;

/** What the rollback does with the databases: `restore` the listed dumps (empty: none), and why, in one sentence. */
export interface RollbackDatabase {
  restore: DumpRecord[];
  note: string;
  /** A choice is needed and was not made: `rollback` refuses (the dry run shows it). */
  refused: boolean;
}

/**
 * Decides (changes nothing; asks the server for the schema fingerprints).
 * @throws LettoError when the server cannot be asked.
 */
export async function planRollbackDatabase(ctx: Context, to: Revision, choice: DatabaseChoice): Promise<RollbackDatabase> {
  if (!ctx.config.database) return { restore: [], note: '', refused: false };
  const dumps = await dumpsOf(ctx.config.paths.backups, to);
  if (dumps.length === 0) return { restore: [], note: `No dump of revision ${to} is kept; the database is left as it is.`, refused: false };
  const changed = await changedDumps(ctx, dumps);
  const names = changed.map((d) => d.database).join(', ');
  const taken = changed[0] ? localTime(changed[0].time) : '';
  if (changed.length === 0) return { restore: [], note: `The schema equals revision ${to}'s dump; the database is left as it is.`, refused: false };
  if (choice === 'restore') {
    return { restore: changed, note: `Database ${names} is restored from the dump taken when revision ${to} was left (${taken}); everything written since is lost (the current database is dumped first).`, refused: false };
  }
  if (choice === 'keep') return { restore: [], note: `Database ${names} is kept: revision ${to} runs against today's schema (--keep-database).`, refused: false };
  return {
    restore: [],
    refused: true,
    note: `The schema of database ${names} differs from the dump taken when revision ${to} was left (${taken}): revision ${to} may not work with today's schema.`,
  };
}

/** The refusal of a rollback that needs a choice, with both choices explained. */
export function databaseChoiceNeeded(decision: RollbackDatabase, to: Revision): LettoError {
  return new LettoError(`${decision.note} Nothing was changed.`, {
    hint: `Choose: \`letto-update rollback --to ${to} --restore-database\` loads that dump (everything written since it was taken is lost; the current database is dumped first), or \`--keep-database\` runs revision ${to} against today's schema.`,
  });
}
