/**
 * The checks of `update --dry-run` for a Docker install (see src/runbook/plan.ts), in the order the update
 * works: the engine and compose answer; which compose folders hold which LeTTo services (the order
 * they come up in); the state folder; for every LeTTo image, where the target revision would be pulled
 * from and that the registry has it (a manifest HEAD: nothing is pulled); which tags would move; the
 * `up -d` per folder; and that LeTTo is healthy now (else neither the new revision nor a rollback
 * could pass the health check). Only read-only docker and compose commands run (`version`, `config`,
 * `ps`, `inspect`, `image ls`).
 */
import { databasePlanStep } from '../../database/plan.js';
import type { Context } from '../../context.js';
import { LettoError, asLettoError, type DownloadError } from '../../errors.js';
import { fail, ok, warn, writableFolder, type CheckOutcome, type InstallDecision, type PlanCheck, type PlanStep } from '../plan-checks.js';
import { activeCalls, type LettoService } from './compose.js';
import { assertEngine, composeVersion, dockerOf, imageId } from './engine.js';
import { requireLettoServices } from './fetch.js';
import { composeOptions, describeCall } from './groups.js';
import { PREVIOUS_TAG } from './install.js';
import { parseRef, pullRef, revisionTag } from './refs.js';
import { hasTag } from './registry.js';
import { serviceRevisions } from './revisions.js';
import { healthTargets, schoolsOf, serviceLabel } from './schools.js';

/** Seconds one probe of health_url may take in the plan. */
const PROBE_TIMEOUT = 10;

/** The Docker checks; the LeTTo services are read once (by `compose folders`) and used by the later checks. */
export function dockerPlanSteps(ctx: Context): PlanStep[] {
  const docker = ctx.config.docker!;
  let services: LettoService[] | null = null;
  const known = (): LettoService[] => {
    // a LettoError: the reason is the check "compose folders", not a bug (which a plain Error would be reported as)
    if (!services) throw new LettoError('not checked: the LeTTo services could not be read (see the check "compose folders")');
    return services;
  };
  const refs = (): string[] => [...new Set(known().map((s) => s.ref))];
  const steps: PlanStep[] = [
    {
      name: 'docker engine',
      needsInstall: false,
      run: async () => ok(`Docker ${await assertEngine(ctx)} answers; compose: ${await composeVersion(ctx)}`),
    },
    {
      name: 'compose folders',
      needsInstall: false,
      async run() {
        services = await requireLettoServices(ctx);
        const groups = [...new Map(known().map((s) => [s.group.key, s])).values()];
        const lines = groups.map((first, i) => {
          const here = known().filter((s) => s.group.key === first.group.key);
          const project = first.group.project ?? here.find((s) => s.container)?.container?.project;
          const school = first.group.school ? `school ${first.group.school}, ` : '';
          return `${i + 1}. ${describeCall(first.group)} (${school}project ${project ?? 'from the folder'}${first.stopped ? ', stopped: stays stopped' : ''}): ${here.map((s) => s.service).join(', ')}`;
        });
        return ok(lines.join('; '));
      },
    },
    { name: 'state folder', needsInstall: true, run: async () => ok(await writableFolder(ctx.state.dir, null)) },
    {
      // one check per LeTTo image, named after it (`image lettoserver`)
      name: 'images',
      needsInstall: true,
      async run(install) {
        const checks: PlanCheck[] = [];
        for (const ref of refs()) {
          const name = `image ${parseRef(ref).name.slice(docker.image_prefix.length) || parseRef(ref).name}`;
          try {
            checks.push({ name, ...(await imageCheck(ctx, ref, known(), install!)) });
          } catch (error) {
            const failure = asLettoError(error);
            checks.push({ name, result: 'fail', detail: failure.message, ...(failure.hint ? { hint: failure.hint } : {}) });
          }
        }
        return checks;
      },
    },
    databasePlanStep(ctx),
    {
      name: 'tags',
      needsInstall: true,
      async run(install) {
        const keep = install!.from === null ? PREVIOUS_TAG : revisionTag(docker, install!.from);
        const running: string[] = [];
        for (const ref of refs()) {
          const id = known().find((s) => s.ref === ref && s.container)?.container?.imageId ?? (await imageId(ctx, ref));
          if (id) running.push(id.slice(7, 19));
        }
        const kept = running.length ? `; the images running now (${running.join(', ')}) keep the tag ${keep} for the way back` : '';
        return ok(`would point ${refs().join(', ')} at their ${revisionTag(docker, install!.target)} images${kept}; the compose files are not changed`);
      },
    },
    {
      name: 'bring up',
      needsInstall: true,
      async run() {
        const { label } = await dockerOf(ctx).composeProgram();
        const calls = activeCalls(known()).map((call, i) => `${i + 1}. \`${[label, ...composeOptions(call), 'up', '-d', '--no-build'].join(' ')}\` in ${call.dir}`);
        const urls = healthTargets(docker, known().filter((s) => !s.stopped)).map((t) => t.url);
        return ok(`${calls.join(', ')}; then up to ${docker.health_timeout} s for every LeTTo container to run healthy on the new images${urls.length ? ` and ${urls.join(', ')} to answer HTTP 200` : ''}`);
      },
    },
    { name: 'health check', needsInstall: true, run: () => healthNow(ctx, known().filter((s) => !s.stopped)) },
  ];
  return steps;
}

/**
 * The image `ref` (as the compose files name it) for the target revision: where the update would pull
 * it from, whether the registry has it, whether it is here already.
 * @throws DownloadError when the registry cannot be asked and no copy is here.
 */
async function imageCheck(ctx: Context, ref: string, services: LettoService[], install: InstallDecision): Promise<CheckOutcome> {
  const docker = ctx.config.docker!;
  const source = pullRef(docker, ref, install.target);
  const users = services.filter((s) => s.ref === ref).map((s) => s.service).join(', ');
  const local = await imageId(ctx, source);
  const here = local ? `; here already (image ${local.slice(7, 19)})` : '';
  const registry = docker.registry || 'Docker Hub';
  let published: boolean;
  try {
    published = await hasTag(ctx, parseRef(source).name, revisionTag(docker, install.target));
  } catch (error) {
    if (!local) throw error;
    return warn(`${source} for ${users}: the registry could not be asked (${(error as DownloadError).message.replace(/\.$/, '')}); the update would use the copy pulled before (image ${local.slice(7, 19)})`);
  }
  if (published) return ok(`would pull ${source} for ${users} (${ref})${here}`);
  if (local) return warn(`${source} is not in ${registry}, but here already (image ${local.slice(7, 19)}): the update would use it for ${users}`);
  return fail(`${source} (for ${users}) is not in ${registry}: the update would refuse revision ${install.target} and change nothing`, `Check that revision ${install.target} is published for every image (\`letto-update list --remote\`); docker.registry and docker.revision_tag name where and how.`);
}

/** LeTTo is healthy now: every container running (healthy where its image has a HEALTHCHECK), health_url HTTP 200. */
async function healthNow(ctx: Context, services: LettoService[]): Promise<CheckOutcome> {
  const hint = 'Get LeTTo running first (`letto-update status`, `docker ps -a`, `docker logs NAME`), or fix docker.health_url.';
  const sick = services.filter((s) => s.container?.state !== 'running' || (s.container.health !== null && s.container.health !== 'healthy'));
  const unable = 'LeTTo is not healthy now, so neither a new revision nor a rollback to this one could pass the health check';
  if (sick.length) return fail(`${sick.map((s) => `${serviceLabel(s)}: ${s.container ? `${s.container.state}${s.container.health ? `, ${s.container.health}` : ''}` : 'no container'}`).join('; ')}; ${unable}`, hint);
  const revisions = await serviceRevisions(ctx, services);
  const on = revisions.mixed ? `; revisions differ (${revisions.services.map((s) => `${s.name} ${s.revision ?? 'unknown'}`).join(', ')}): the update brings every one to the same revision` : '';
  const schools = schoolsOf(services);
  const containers = `${services.length} LeTTo containers run${services.some((s) => s.container?.health) ? ' healthy' : ''}${schools.length ? ` (${schools.length} schools: ${schools.join(', ')})` : ''}${on}`;
  const answers: string[] = [];
  for (const target of healthTargets(ctx.config.docker!, services)) {
    const probe = await ctx.services.http.probe(target.url, PROBE_TIMEOUT);
    const school = target.school ? `school ${target.school}: ` : '';
    if (!probe.ok || probe.status !== 200) return fail(`${containers}, but ${school}${target.url}: ${probe.ok ? `HTTP ${probe.status}` : `no answer (${probe.error})`}; ${unable}`, hint);
    answers.push(`${target.url}: HTTP ${probe.status} in ${probe.ms} ms`);
  }
  return (revisions.mixed ? warn : ok)([containers, ...answers].join('; '));
}
