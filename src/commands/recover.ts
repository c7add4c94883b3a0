import { runRecover } from '../runbook/run.js';
import { finish, withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `recover`: finish or undo what an interrupted run left. */
export function recoverCommand(run: CommandRun): Promise<number> {
  return withSession(run, 'write', undefined, async ({ ctx }, out) => finish(out, await runRecover(ctx)));
}
