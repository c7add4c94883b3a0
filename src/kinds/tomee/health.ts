import type { Context } from '../../context.js';
import type { LogTail } from '../../system/log-tail.js';
import type { HealthResult } from '../types.js';

/** Seconds between two health probes, and the most one probe may take. */
const POLL_INTERVAL = 2;
const PROBE_TIMEOUT = 10;


/**
 * Step "health": polls `tomee.health_url` every 2 s until it answers HTTP 200 or
 * `tomee.health_timeout` seconds have passed. Never throws.
 */
export async function waitHealthy(ctx: Context): Promise<HealthResult> {
  const { health_url: url, health_timeout: timeout } = ctx.config.tomee;
  ctx.emit({ type: 'step', step: 'health', message: `Waiting up to ${timeout} s for ${url} to answer HTTP 200` });
  const started = ctx.services.clock.now().getTime();
  let last = 'no answer yet';
  for (;;) {
    const probe = await ctx.services.http.probe(url, PROBE_TIMEOUT);
    const seconds = Math.round((ctx.services.clock.now().getTime() - started) / 1000);
    if (probe.ok && probe.status === 200) return { healthy: true, last: 'HTTP 200', seconds };
    last = probe.ok ? `HTTP ${probe.status}` : probe.error;
    if (seconds >= timeout) return { healthy: false, last, seconds };
    await ctx.services.clock.sleep(POLL_INTERVAL);
  }
}
