import { ExitCode } from '../errors.js';
import type { Channel } from '../revision.js';
import { runDownload } from '../runbook/update.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `download`: fetch and verify a revision into staging; the server is not touched. */
export function downloadCommand(run: CommandRun, opts: { channel?: Channel; revision?: number }): Promise<number> {
  return withSession(run, 'write', opts.channel, async ({ ctx }, out) => {
    const result = await runDownload(ctx, opts.revision !== undefined ? { revision: opts.revision } : {});
    out.json(result);
    out.line(`Revision ${result.revision} is downloaded and verified: ${result.path}${result.download ? ` (${result.download.text})` : ''}`);
    return ExitCode.ok;
  });
}
