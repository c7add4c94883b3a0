import { runRollback } from '../runbook/rollback.js';
import { confirmer, finish, withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `rollback [--to N]`: back to the previous revision or to N. */
export function rollbackCommand(run: CommandRun, opts: { to?: number; yes?: boolean }): Promise<number> {
  return withSession(run, 'write', undefined, async ({ ctx }, out) => {
    const confirm = confirmer(out, opts.yes);
    const report = await runRollback(ctx, { ...(opts.to !== undefined ? { to: opts.to } : {}), ...(confirm ? { confirm } : {}) });
    return finish(out, report);
  });
}
