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
 * `dead` fails at once. Never throws for what it checks.
 * @returns when not healthy, with `log`: `docker logs` of the services to blame (unhealthy, exited, on
 *   the wrong image or not ready when the time ran out; every service when only health_url failed),
 *   read at once, before an undo recreates their containers and their logs go with them.
 */
export async function waitServicesHealthy(ctx: Context, expected: Map<string, string> | null): Promise<HealthResult> {
  const { health_url: url, health_timeout: timeout } = ctx.config.docker!;
  ctx.emit({ type: 'step', step: 'health', message: `Waiting up to ${timeout} s for every LeTTo container to run healthy${url ? ` and ${url} to answer HTTP 200` : ''}` });
  const started = ctx.services.clock.now().getTime();
  let last = 'no answer yet';
  let failing: LettoService[] = [];
  for (;;) {
    const seconds = Math.round((ctx.services.clock.now().getTime() - started) / 1000);
    let services: LettoService[] | null = null;
    try {
      services = await readLettoServices(ctx);
    } catch (error) {
      last = (error as Error).message;
    }
    if (services) {
      const verdict = judge(services, expected);
      last = verdict.last;
      failing = verdict.blame;
      if (verdict.final) return unhealthy(ctx, last, seconds, failing);
      if (verdict.ok && url) {
        const probe = await ctx.services.http.probe(url, PROBE_TIMEOUT);
        if (probe.ok && probe.status === 200) return { healthy: true, last: 'every container healthy, HTTP 200', seconds };
        last = `containers healthy, ${url}: ${probe.ok ? `HTTP ${probe.status}` : probe.error}`;
        failing = services;
      } else if (verdict.ok) {
        return { healthy: true, last: 'every container healthy', seconds };
      }
    }
    if (seconds >= timeout) return unhealthy(ctx, last, seconds, failing);
    await ctx.services.clock.sleep(POLL_INTERVAL);
  }
}

async function unhealthy(ctx: Context, last: string, seconds: number, failing: LettoService[]): Promise<HealthResult> {
  const log = await failedServiceLogs(ctx, failing, last);
  return { healthy: false, last, seconds, ...(log ? { log } : {}) };
}

/** One look at the containers: ok, still waiting, or failed for good (`final`); `blame`: the services not (yet) fine. */
function judge(services: LettoService[], expected: Map<string, string> | null): { ok: boolean; final: boolean; last: string; blame: LettoService[] } {
  const waiting: LettoService[] = [];
  for (const s of services) {
    const c = s.container;
    const failed = (last: string) => ({ ok: false, final: true, last, blame: [s] });
    if (!c) return failed(`service ${s.service} in ${s.dir} has no container`);
    const want = expected?.get(s.ref);
    if (want && c.imageId !== want) return failed(`container ${c.name} runs image ${c.imageId.slice(7, 19)}, not ${want.slice(7, 19)} (a mix of revisions)`);
    if (c.health === 'unhealthy') return failed(`container ${c.name} is unhealthy`);
    if (c.state === 'exited' || c.state === 'dead') return failed(`container ${c.name} has ${c.state}`);
    if (c.state !== 'running' || (c.health !== null && c.health !== 'healthy')) waiting.push(s);
  }
  const described = waiting.map((s) => `${s.container!.name} ${s.container!.state !== 'running' ? s.container!.state : s.container!.health}`);
  return waiting.length ? { ok: false, final: false, last: `waiting for ${described.join(', ')}`, blame: waiting } : { ok: true, final: false, last: 'every container healthy', blame: [] };
}
