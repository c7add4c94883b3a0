import { PluginState } from '../errors.js';
import { checkHealth } from '../health-check.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `health`: monitoring plugin; one line, exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Times in seconds. */
export function healthCommand(run: CommandRun, opts: { warning: number; critical?: number; timeout: number }): Promise<number> {
  return withSession(run, 'read', undefined, async ({ ctx }, out) => {
    const report = await checkHealth(ctx, { warning: opts.warning, critical: opts.critical ?? null, timeout: opts.timeout });
    out.json({ ...report, exitCode: PluginState[report.state] });
    out.plugin(`LETTO ${report.state} - ${report.summary}${report.perfdata ? ` | ${report.perfdata}` : ''}`);
    return PluginState[report.state];
  }, { local: true });
}
