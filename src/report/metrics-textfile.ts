/**
 * `[metrics] textfile`: the metrics of `letto-update metrics` (without `--probe`) kept in a `.prom` file
 * for node_exporter's textfile collector. Rewritten after every recorded run (src/runbook/run.ts `record`)
 * and after watchdog restarts and changed watchdog outcomes (src/watchdog/watchdog.ts).
 */
import type { Context } from '../context.js';
import { writeFileAtomically } from '../system/files.js';
import { currentAccount } from '../system/users.js';
import { renderFamilies } from './exposition.js';
import { collectMetrics, metricFamilies } from './metrics.js';

/**
 * Rewrites `[metrics] textfile` when one is set: written beside it and renamed over it
 * (src/system/files.ts writeFileAtomically), so node_exporter never reads half a file; mode 0644,
 * owned by the user running letto-update. Nothing in it is secret (revisions, times, results, sizes).
 * Never throws: a file that cannot be written is a `warn` event, and the run's result stays what it was.
 */
export async function writeMetricsTextfile(ctx: Context): Promise<void> {
  const path = ctx.config.metrics.textfile;
  if (!path) return;
  try {
    const text = renderFamilies(metricFamilies(await collectMetrics(ctx)));
    await writeFileAtomically(path, text, currentAccount(), 0o644);
  } catch (error) {
    ctx.emit({ type: 'warn', message: `Could not write the metrics textfile ${path}: ${(error as Error).message}; the run itself is not affected.` });
  }
}
