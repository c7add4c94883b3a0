import { ExitCode } from '../errors.js';
import { renderFamilies } from '../report/exposition.js';
import { collectMetrics, metricFamilies } from '../report/metrics.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/**
 * `metrics [--probe]`: the Prometheus metrics of this server on stdout (text exposition format; with
 * `--json` the metric families as JSON). Reads only local files; `--probe` adds the health check. Exit 0,
 * also when LeTTo is down (that is a metric, not an error); 2 for a config error.
 */
export function metricsCommand(run: CommandRun, opts: { probe?: boolean }): Promise<number> {
  return withSession(run, 'read', undefined, async ({ ctx }, out) => {
    const families = metricFamilies(await collectMetrics(ctx, { probe: Boolean(opts.probe) }));
    out.json({ families });
    out.plugin(renderFamilies(families));
    return ExitCode.ok;
  }, { local: true });
}
