import type { DockerFetched } from './fetch.js';
import type { Revision } from '../../revision.js';
import type { Adapter, Fetched } from '../types.js';

/**
 * A Docker install (LeTTo's installs since 2023): LeTTo's images (`docker.image_prefix`), brought up by
 * compose in `docker.compose_dirs`. The modules behind it are in src/kinds/docker/; docs/architecture.md
 * ("Docker installs") says why the compose files' own tags are moved instead of an override file.
 * They are imported when a method runs: a TomEE install, and `--version` or `--help`, never load them.
 */
export const dockerAdapter: Adapter = {
  kind: 'docker',
  restartNote: 'every LeTTo container will be recreated',
  beforeFetchNote: 'Checking the Docker engine and the compose folders',
  serverName: 'the LeTTo containers',
  restarted: { ok: 'the LeTTo containers were restarted (compose restart) and answer again', failed: 'the LeTTo containers were restarted (compose restart) but do not all run healthy' },
  restartFailedHint: () => 'Look at `docker ps -a` and `docker logs` of the LeTTo containers (the notice carries the last lines of the failed ones); `letto-update watchdog pause` stops the watchdog while you work.',
  async load() {
    await Promise.all([
      import('./compose.js'),
      import('./engine.js'),
      import('./fetch.js'),
      import('./health.js'),
      import('./install.js'),
      import('./recover.js'),
      import('./refs.js'),
      import('./registry.js'),
      import('./revisions.js'),
    ]);
  },
  async installed(ctx) {
    const { readLettoServices } = await import('./compose.js');
    const { serviceRevisions } = await import('./revisions.js');
    const services = await readLettoServices(ctx);
    const found = await serviceRevisions(ctx, services);
    if (found.revision !== null || found.mixed) return { revision: found.revision, source: found.revision === null ? null : 'images', services: found.services, mixed: found.mixed };
    // no revision tag on the running images (e.g. pulled as :stable by hand): what the last run installed
    const { installed } = await ctx.state.read();
    return { revision: installed, source: installed === null ? null : 'state', services: found.services, mixed: false };
  },
  async beforeFetch(ctx, from, to, journal) {
    const { assertEngine } = await import('./engine.js');
    const { requireLettoServices } = await import('./fetch.js');
    await assertEngine(ctx);
    await requireLettoServices(ctx);
    await journal?.record('download', { from, to });
  },
  fetch: async (ctx, revision, why) => (await import('./fetch.js')).fetchImages(ctx, revision, why),
  install: async (ctx, from, fetched, journal, options) => (await import('./install.js')).installImages(ctx, from, fetched as DockerFetched, journal, options),
  async conclude(ctx, _fetched: Fetched, protect) {
    const { readLettoServices } = await import('./compose.js');
    const { pruneImages } = await import('./revisions.js');
    const { pruneDumps } = await import('../../database/retention.js');
    // a revision's database dumps go with its images
    await pruneDumps(ctx.config.paths.backups, await pruneImages(ctx, await readLettoServices(ctx), protect));
  },
  recover: async (ctx, journal) => (await import('./recover.js')).recoverImages(ctx, journal),
  async runtime(ctx) {
    const { readLettoServices } = await import('./compose.js');
    const services = (await readLettoServices(ctx)).filter((s) => !s.stopped);
    const running = services.filter((s) => s.container?.state === 'running');
    const healthy = running.filter((s) => s.container?.health === 'healthy').length;
    const all = services.length > 0 && running.length === services.length;
    return { running: all, pid: null, description: `LeTTo containers: ${running.length} of ${services.length} running${healthy ? `, ${healthy} healthy` : ''}` };
  },
  async restart(ctx) {
    const { activeCalls, composeRestart, readLettoServices } = await import('./compose.js');
    for (const call of activeCalls(await readLettoServices(ctx))) await composeRestart(ctx, call);
  },
  // `health` and the watchdog's probe ask one URL: the first without {school} (status and the update's health check ask every school's)
  // (health_url read here, not through schools.ts's healthUrls: `health` and `check` load no Docker module but this adapter)
  health: (ctx) => ({ url: [ctx.config.docker!.health_url].flat().find((u) => u !== '' && !u.includes('{school}')) ?? '', timeout: ctx.config.docker!.health_timeout }),
  async healthTargets(ctx, installed) {
    const { schoolUrls } = await import('./schools.js');
    const running = (installed.services ?? []).filter((s) => s.state === 'running' && s.school !== undefined);
    return schoolUrls(ctx.config.docker!, [...new Set(running.map((s) => s.school!))].sort());
  },
  waitHealthy: async (ctx) => (await import('./health.js')).waitServicesHealthy(ctx, null),
  async listLocal(ctx) {
    const { readLettoServices } = await import('./compose.js');
    const { localRevisions } = await import('./revisions.js');
    const services = await readLettoServices(ctx);
    return (await localRevisions(ctx, services)).map((r) => ({ revision: r.revision, description: `${new Set(r.ids.values()).size} images` }));
  },
  async listRemote(ctx) {
    const { requireLettoServices } = await import('./fetch.js');
    const { parseRef, pullRef, revisionOfTag } = await import('./refs.js');
    const { listTags } = await import('./registry.js');
    const docker = ctx.config.docker!;
    const refs = [...new Set((await requireLettoServices(ctx)).map((s) => s.ref))];
    let common: Revision[] | null = null;
    for (const ref of refs) {
      const revisions: Revision[] = (await listTags(ctx, parseRef(ref).name)).map((t) => revisionOfTag(docker, t)).filter((r): r is Revision => r !== null);
      common = common === null ? revisions : common.filter((r) => revisions.includes(r));
    }
    return [...new Set(common ?? [])].sort((a, b) => b - a).map((revision) => ({ revision, url: refs.map((ref) => pullRef(docker, ref, revision)).join(' ') }));
  },
  planSteps: async (ctx) => (await import('./plan.js')).dockerPlanSteps(ctx),
};
