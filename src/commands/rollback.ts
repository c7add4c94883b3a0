import { ExitCode } from '../errors.js';
import { planRollback, runRollback, type RollbackOptions } from '../runbook/rollback.js';
import type { DatabaseChoice } from '../database/rollback.js';
import { confirmer, finish, withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** The flags of `rollback`. */
export interface RollbackFlags {
  to?: number;
  yes?: boolean;
  dryRun?: boolean;
  restoreDatabase?: boolean;
  keepDatabase?: boolean;
}

/** `rollback [--to N]`: back to the previous revision or to N; `--dry-run`: what it would do, including with the database. */
export function rollbackCommand(run: CommandRun, opts: RollbackFlags): Promise<number> {
  return withSession(run, opts.dryRun ? 'read' : 'write', undefined, async ({ ctx }, out) => {
    if (opts.restoreDatabase && opts.keepDatabase) {
      out.error('--restore-database and --keep-database exclude each other.', 'Choose one.');
      return ExitCode.usage;
    }
    const database: DatabaseChoice = opts.restoreDatabase ? 'restore' : opts.keepDatabase ? 'keep' : undefined;
    const options: RollbackOptions = { ...(opts.to !== undefined ? { to: opts.to } : {}), ...(database ? { database } : {}) };
    if (opts.dryRun) {
      const plan = await planRollback(ctx, options);
      const exitCode = plan.refused ? ExitCode.failed : ExitCode.ok;
      out.json({ command: 'rollback', result: 'dry-run', ...plan, exitCode });
      out.line(plan.message);
      if (plan.refused && !out.mode.json) out.error('The rollback would not go ahead. Nothing was changed.', plan.hint);
      return exitCode;
    }
    const confirm = confirmer(out, opts.yes);
    return finish(out, await runRollback(ctx, { ...options, ...(confirm ? { confirm } : {}) }));
  });
}
