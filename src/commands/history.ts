import { ExitCode } from '../errors.js';
import { formatHistory, runHistory } from '../report/history.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `history [--last N]`: every recorded run as a table. */
export function historyCommand(run: CommandRun, opts: { last?: number }): Promise<number> {
  return withSession(run, 'read', undefined, async ({ ctx }, out) => {
    const runs = await runHistory(ctx, opts.last);
    out.json({ runs });
    if (runs.length === 0) out.line(`No runs recorded yet (${ctx.state.dir}/runs.jsonl).`);
    for (const line of formatHistory(runs)) out.line(line);
    return ExitCode.ok;
  }, { local: true });
}
