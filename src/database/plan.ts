/**
 * What `update --dry-run` and `status` say about LeTTo's databases. Without a `[database]` section they
 * say once that the section exists (so that admins learn that letto-update can dump the database
 * before every update); with one, the dry run makes every check of the dump that writes nothing (the
 * server answers, the databases exist, the folder is writable and has room) and `status` names the
 * newest dumps kept.
 */
import type { Context } from '../context.js';
import { localTime } from '../time.js';
import { ok, warn, type PlanStep } from '../kinds/plan-checks.js';
import { listDumps } from './retention.js';
import { describeNames } from './names.js';

/** The sentence for installs without `[database]`. */
export const NO_DATABASE_SECTION = 'not dumped before updates: the config has no [database] section (see docs/database.md); without it a rollback cannot give back a database the new revision migrated';

const MIB = 1024 * 1024;

/** The dry run's `database dump` check (after the revisions are known: the dump is named after the installed one). */
export function databasePlanStep(ctx: Context): PlanStep {
  return {
    name: 'database dump',
    needsInstall: true,
    async run(install) {
      if (!ctx.config.database) return warn(NO_DATABASE_SECTION);
      // loaded here, not with the module: `status` (describeDatabase) needs no connection, fingerprint or restore
      const { prepareDumps } = await import('./steps.js');
      const prepared = await prepareDumps(ctx, install!.from, true);
      const names = prepared!.databases.join(', ') || 'none';
      return ok(
        `${names} (${(prepared!.bytes / MIB).toFixed(1)} MiB) would be dumped into ${prepared!.folder} with ${ctx.config.docker ? `every LeTTo container but ${ctx.config.database.container} stopped` : 'LeTTo stopped'}, before the swap; ${(prepared!.freeBytes / MIB).toFixed(0)} MiB free there; ${prepared!.connection.where} answers`,
      );
    },
  };
}

/** `status`'s line about the databases: the newest dumps kept, or {@link NO_DATABASE_SECTION}. */
export async function describeDatabase(ctx: Context): Promise<string> {
  if (!ctx.config.database) return NO_DATABASE_SECTION;
  const dumps = await listDumps(ctx.config.paths.backups);
  const newest = dumps[0];
  if (!newest) return `${describeNames(ctx)} dumped before every update into ${ctx.config.paths.backups}; no dump kept yet`;
  const same = dumps.filter((d) => d.revision === newest.revision);
  return `${describeNames(ctx)} dumped before every update; newest: revision ${newest.revision ?? 'unknown'} (${same.map((d) => d.database).join(', ')}, ${localTime(newest.time)}) in ${ctx.config.paths.backups}`;
}
