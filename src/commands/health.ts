import { PluginState } from '../errors.js';
import { checkHealth, pluginLine } from '../report/health-check.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `health`: monitoring plugin; one line, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Times in seconds. */
export function healthCommand(run: CommandRun, opts: { warning: number; critical?: number; timeout: number }): Promise<number> {
  return withSession(run, 'read', undefined, async ({ ctx }, out) => {
    const report = await checkHealth(ctx, { warning: opts.warning, critical: opts.critical ?? null, timeout: opts.timeout });
    out.json({ ...report, exitCode: PluginState[report.state] });
    out.plugin(pluginLine(report.state, report.summary, report.perfdata));
    // details for the admin go to stderr: the plugin output stays one line
    if (report.hint) out.hint(report.hint);
    return PluginState[report.state];
  }, { local: true });
}
