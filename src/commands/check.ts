import { describeConfigSource } from '../config/config.js';
import { ExitCode } from '../errors.js';
import { runCheck } from '../report/inspect.js';
import type { Channel } from '../revision.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `check`: installed and available revision; exit 0 current, 100 update available. */
export function checkCommand(run: CommandRun, opts: { channel?: Channel }): Promise<number> {
  return withSession(run, 'read', opts.channel, async ({ ctx, configSource }, out) => {
    const report = await runCheck(ctx);
    out.json(report);
    out.line(`config: ${describeConfigSource(configSource)}`);
    out.line(`installed: ${report.installed ?? 'unknown'}`);
    out.line(`available (${report.channel}): ${report.available}`);
    out.line(report.updateAvailable ? 'An update is available: run `letto-update update`.' : 'LeTTo is up to date.');
    return report.updateAvailable ? ExitCode.updateAvailable : ExitCode.ok;
  });
}
