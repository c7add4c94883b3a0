import type { Context } from '../../context.js';
import { readLettoServices, type LettoService } from './compose.js';
import { failedServiceLogs } from './logs.js';
import type { HealthResult } from '../types.js';

/** Seconds between two looks, and the most one probe of health_url may take. */
const POLL_INTERVAL = 2;
const PROBE_TIMEOUT = 10;

/**
 * The health check of a Docker install: polls until every LeTTo service has a running container on
 * the image it should run (`expected`: image id by reference; no mix of revisions), each container
 * whose image has a HEALTHCHECK reports `healthy`, and `docker.health_url` (when set) answers HTTP 200
 * — or until `docker.health_timeout` seconds have passed. A container that is `unhealthy`, `exited` or
 * `dead` fails at once; then `stopped` says what happened and when (`container X reported unhealthy
 * after 9 s`), since no time-out was reached. Never throws for what it checks.
 * @returns when not healthy, with `log`: `docker logs` of the services to blame (unhealthy, exited, on
 *   the wrong image or not ready when the time ran out; every service when only health_url failed),
 *   read at once, before an undo recreates their containers and their logs go with them.
 */
export async function waitServicesHealthy(ctx: Context, expected: Map<string, string> | null): Promise<HealthResult> {
  const { health_url: url, health_timeout: timeout } = ctx.config.docker!;
  ctx.emit({ type: 'step', step: 'health', message: `Waiting up to ${timeout} s for every LeTTo container to run healthy${url ? ` and ${url} to answer HTTP 200` : ''}` });
  const started = ctx.services.clock.now().getTime();
  let failing: LettoService[] = [];
  for (;;) {
    const seconds = Math.round((ctx.services.clock.now().getTime() - started) / 1000);
    const seen = await look(ctx, expected);
    if (seen.blame) failing = seen.blame;
    if (seen.state === 'ok') return { healthy: true, last: seen.last, seconds };
    if (seen.state === 'failed') return unhealthy(ctx, seen.last, seconds, failing, seen.stopped?.(seconds));
    if (seconds >= timeout) return unhealthy(ctx, seen.last, seconds, failing);
    await ctx.services.clock.sleep(POLL_INTERVAL);
  }
}

/**
 * One look, without waiting: every LeTTo service runs a container on the image `expected` names, every
 * container with a HEALTHCHECK is `healthy` (none still starting), and health_url (when set) answers
 * HTTP 200. For recovery, which adopts a server only if it is healthy now. Never throws.
 */
export async function servicesHealthyNow(ctx: Context, expected: Map<string, string> | null): Promise<{ healthy: boolean; last: string }> {
  const seen = await look(ctx, expected);
  return { healthy: seen.state === 'ok', last: seen.last };
}

/**
 * The sentence after "Revision N …" when the health check failed: what happened when it stopped at
 * once (`did not become healthy: container X reported unhealthy after 9 s`), or the time-out that
 * did pass (`did not become healthy within 60 s (last: waiting for X starting)`).
 */
export function describeUnhealthy(health: HealthResult, timeout: number): string {
  return health.stopped ? `did not become healthy: ${health.stopped}` : `did not become healthy within ${timeout} s (last: ${health.last})`;
}

async function unhealthy(ctx: Context, last: string, seconds: number, failing: LettoService[], stopped?: string): Promise<HealthResult> {
  const log = await failedServiceLogs(ctx, failing, last);
  return { healthy: false, last, seconds, ...(stopped ? { stopped } : {}), ...(log ? { log } : {}) };
}

/** What one look saw; `blame` is null when the services could not be read. */
interface Look {
  state: 'ok' | 'waiting' | 'failed';
  last: string;
  blame: LettoService[] | null;
  /** For `failed`: what happened, as a phrase with the seconds it took. */
  stopped?: (seconds: number) => string;
}

/** One look at the containers and, when they are fine, one probe of health_url. */
async function look(ctx: Context, expected: Map<string, string> | null): Promise<Look> {
  const url = ctx.config.docker!.health_url;
  let services: LettoService[];
  try {
    services = await readLettoServices(ctx);
  } catch (error) {
    return { state: 'waiting', last: (error as Error).message, blame: null };
  }
  const verdict = judge(services, expected);
  if (verdict.state !== 'ok' || !url) return verdict;
  const probe = await ctx.services.http.probe(url, PROBE_TIMEOUT);
  if (probe.ok && probe.status === 200) return { state: 'ok', last: 'every container healthy, HTTP 200', blame: [] };
  return { state: 'waiting', last: `containers healthy, ${url}: ${probe.ok ? `HTTP ${probe.status}` : probe.error}`, blame: services };
}

/** One look at the containers: ok, still waiting, or failed for good; `blame`: the services not (yet) fine. */
function judge(services: LettoService[], expected: Map<string, string> | null): Look {
  const waiting: LettoService[] = [];
  for (const s of services) {
    const c = s.container;
    const failed = (last: string, stopped: (seconds: number) => string): Look => ({ state: 'failed', last, blame: [s], stopped });
    if (!c) return failed(`service ${s.service} in ${s.dir} has no container`, (t) => `service ${s.service} in ${s.dir} had no container after ${t} s`);
    const want = expected?.get(s.ref);
    if (want && c.imageId !== want) {
      const mix = `container ${c.name} runs image ${c.imageId.slice(7, 19)}, not ${want.slice(7, 19)} (a mix of revisions)`;
      return failed(mix, (t) => `${mix}, seen after ${t} s`);
    }
    if (c.health === 'unhealthy') return failed(`container ${c.name} is unhealthy`, (t) => `container ${c.name} reported unhealthy after ${t} s`);
    if (c.state === 'exited' || c.state === 'dead') return failed(`container ${c.name} has ${c.state}`, (t) => `container ${c.name} ${c.state === 'exited' ? 'exited' : 'was dead'} after ${t} s`);
    if (c.state !== 'running' || (c.health !== null && c.health !== 'healthy')) waiting.push(s);
  }
  const described = waiting.map((s) => `${s.container!.name} ${s.container!.state !== 'running' ? s.container!.state : s.container!.health}`);
  return waiting.length ? { state: 'waiting', last: `waiting for ${described.join(', ')}`, blame: waiting } : { state: 'ok', last: 'every container healthy', blame: [] };
}
