import { realpath, stat } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { Context } from '../../context.js';
import { LettoError } from '../../errors.js';
import { SECRET_NAME } from '../../system/log-tail.js';
import { lastLine } from '../../system/docker.js';
import type { ComposeCall } from '../../store/journal.js';
import { dockerOf } from './engine.js';
import { assertFilesExist, composeOptions, describeCall, groupOf, isUp, lettoContainers, type ComposeGroup, type ContainerInfo } from './groups.js';
import { isLettoRef } from './refs.js';

export type { ContainerInfo } from './groups.js';

/**
 * Seconds a compose `config`/`ps` may take (about 1 s on an idle server; docker-compose v1 took over
 * 60 s on a test machine with load 20); `up -d` and `restart` get {@link UP_TIMEOUT}.
 */
const QUERY_TIMEOUT = 300;
const UP_TIMEOUT = 600;

/** One LeTTo service (a service whose image is LeTTo's) of a compose call, with its container (if one exists). */
export interface LettoService {
  /** The compose project folder. */
  dir: string;
  service: string;
  /** The image reference the compose files name (after compose resolved `.env` and variables). */
  ref: string;
  container: ContainerInfo | null;
  /** How it is brought up (the compose call recorded on its containers, or its folder's default). */
  group: ComposeGroup;
  /** Its group has containers and none is up: stopped by the admin (`compose stop`); left stopped. */
  stopped: boolean;
}

/** What the engine and the compose files say about the install. */
export interface LettoInstall {
  /** In the order their compose calls come up: `docker.compose_dirs`, then the files' names. */
  services: LettoService[];
  /** LeTTo containers without compose labels (started by `docker run`): never recreated from a guess. */
  loose: ContainerInfo[];
}

/**
 * The LeTTo services of the install. Found from the engine: every container whose image is LeTTo's,
 * running or not, grouped by the compose call recorded on it (see src/kinds/docker/groups.ts); compose
 * reads each group's files (`config`) for its services. Each `docker.compose_dirs` folder's own default
 * (`docker-compose.yml` or the `.env`'s `COMPOSE_FILE`) adds the LeTTo services that have no container
 * yet. Order: the folders of `compose_dirs`, then folders not listed there, each by file name.
 * @throws LettoError when a folder is missing, compose rejects a file, or a container's compose files
 *   are gone; nothing was changed.
 */
export async function readLettoInstall(ctx: Context): Promise<LettoInstall> {
  const docker = ctx.config.docker!;
  const dirs: string[] = [];
  for (const dir of docker.compose_dirs) {
    if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) {
      throw new LettoError(`The compose folder ${dir} (docker.compose_dirs) does not exist. Nothing was changed.`, {
        hint: 'Fix docker.compose_dirs in the config: the folders that hold LeTTo\'s compose files, in the order they are brought up.',
      });
    }
    dirs.push(await realpath(dir).catch(() => dir));
  }
  const found = await lettoContainers(ctx);
  const byKey = new Map<string, { group: ComposeGroup; containers: ContainerInfo[] }>();
  for (const c of found) {
    if (!c.call) continue;
    const group = groupOf(c.call);
    const entry = byKey.get(group.key) ?? { group, containers: [] };
    entry.containers.push(c);
    byKey.set(group.key, entry);
  }
  const order = (dir: string) => (dirs.includes(dir) ? dirs.indexOf(dir) : dirs.length);
  const entries = [...byKey.values()].sort((a, b) => order(a.group.dir) - order(b.group.dir) || a.group.dir.localeCompare(b.group.dir) || a.group.key.localeCompare(b.group.key));
  const services: LettoService[] = [];
  for (const { group, containers } of entries) {
    await assertFilesExist(group, containers);
    const stopped = !containers.some(isUp);
    for (const [service, ref] of await serviceImages(ctx, group)) {
      if (!isLettoRef(ref, docker)) continue;
      services.push({ dir: group.dir, service, ref, container: containers.find((c) => c.service === service) ?? null, group, stopped });
    }
  }
  // each folder's default: the LeTTo services no group brought up yet
  for (const [i, dir] of docker.compose_dirs.entries()) {
    const group = groupOf({ dir: dirs[i]!, project: null, files: [], envFiles: [] });
    const images = await serviceImages(ctx, group, dir);
    const fresh = [...images].filter(([service, ref]) => isLettoRef(ref, docker) && !services.some((s) => s.dir === group.dir && s.service === service));
    for (const [service, ref] of fresh) services.push({ dir: group.dir, service, ref, container: null, group, stopped: false });
  }
  return { services, loose: found.filter((c) => !c.call) };
}

/** The LeTTo services of the install ({@link readLettoInstall}). */
export async function readLettoServices(ctx: Context): Promise<LettoService[]> {
  return (await readLettoInstall(ctx)).services;
}

/** The compose calls that are up (not stopped by the admin), in order: what an update brings up. */
export function activeCalls(services: LettoService[]): ComposeCall[] {
  const groups = new Map(services.filter((s) => !s.stopped).map((s) => [s.group.key, s.group]));
  return [...groups.values()].map(({ dir, project, files, envFiles }) => ({ dir, project, files, envFiles }));
}

/**
 * What compose said about each compose call, kept for the run: the compose files do not change during
 * a run, and `docker-compose` v1 (Python) costs about a second per call, `docker` about 30 ms.
 */
interface Known {
  images: Map<string, Map<string, string>>;
  /** Values of the services' secret-looking variables (`MYSQL_ROOT_PASSWORD`, …), never to be shown. */
  secrets: Set<string>;
}
const known = new WeakMap<Context, Known>();
function knownOf(ctx: Context): Known {
  let k = known.get(ctx);
  if (!k) known.set(ctx, (k = { images: new Map(), secrets: new Set() }));
  return k;
}

/** Compose's answer when a folder has no default file (v1: "Supported filenames: …", v2: "no configuration file provided"). */
const NO_DEFAULT_FILE = /Supported filenames|no configuration file provided|Can't find a suitable configuration file/i;

/**
 * service → image reference of a compose call, from `compose config` (resolved YAML, the same from v1
 * and v2); once per run. `configured`: the folder as `docker.compose_dirs` names it, for a folder's
 * default, which may have no default file (then no services: its LeTTo services were brought up with
 * their own `-f`).
 */
async function serviceImages(ctx: Context, group: ComposeGroup, configured?: string): Promise<Map<string, string>> {
  const cached = knownOf(ctx).images.get(group.key);
  if (cached) return cached;
  const result = await dockerOf(ctx).compose(group.dir, ['config'], QUERY_TIMEOUT, composeOptions(group));
  const images = new Map<string, string>();
  if (result.failure || result.exitCode !== 0) {
    if (configured === undefined || !NO_DEFAULT_FILE.test(`${result.stderr}\n${result.stdout}`)) {
      const label = (await dockerOf(ctx).composeProgram()).label;
      throw new LettoError(`Compose cannot read ${describeCall(group)}: ${lastLine(result)}. Nothing was changed.`, {
        hint: `Run \`${[label, ...composeOptions(group)].join(' ')} config\` in ${configured ?? group.dir} and fix what it reports.`,
      });
    }
    knownOf(ctx).images.set(group.key, images);
    return images;
  }
  const parsed = parseYaml(result.stdout) as { services?: Record<string, { image?: unknown; environment?: unknown }> } | null;
  for (const [service, spec] of Object.entries(parsed?.services ?? {})) {
    if (typeof spec?.image === 'string') images.set(service, spec.image);
    for (const [name, value] of variables(spec?.environment)) if (SECRET_NAME.test(name) && value) knownOf(ctx).secrets.add(value);
  }
  knownOf(ctx).images.set(group.key, images);
  return images;
}

/** A service's `environment` as compose config prints it: a map (v2) or a list of `NAME=value` (v1). */
function variables(environment: unknown): Array<[string, string]> {
  if (Array.isArray(environment)) return environment.map((e) => String(e)).map((e) => [e.split('=')[0]!, e.includes('=') ? e.slice(e.indexOf('=') + 1) : '']);
  if (environment && typeof environment === 'object') return Object.entries(environment).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)]);
  return [];
}

/**
 * The values of the LeTTo compose services' secret-looking variables (`*PASSWORD*`, `*SECRET*`,
 * `*TOKEN*`, …), as compose resolved them from the compose files, `env_file`s and `.env`: what a log
 * tail must never show. Known once the folders were read ({@link readLettoServices}) in this run.
 */
export function composeSecrets(ctx: Context): string[] {
  return [...knownOf(ctx).secrets];
}

/**
 * `up -d` of one compose call: compose recreates each container whose image (by id) changed. No pull,
 * no build (the images are local already), never `--remove-orphans` (the schools share one project).
 * @param services only these services of the call (e.g. the database's, before a restore), `--no-deps`; default every one.
 * @throws LettoError naming the call and compose's last line.
 */
export async function composeUp(ctx: Context, call: ComposeCall, services: string[] = []): Promise<void> {
  ctx.emit({ type: 'step', step: 'start', message: `Bringing up ${services.length ? `${services.join(', ')} of ` : ''}${describeCall(call)}` });
  const only = services.length ? ['--no-deps', ...services] : [];
  const result = await dockerOf(ctx).compose(call.dir, ['up', '-d', '--no-build', ...only], UP_TIMEOUT, composeOptions(call));
  if (result.failure || result.exitCode !== 0) {
    throw new LettoError(`Compose could not bring up ${describeCall(call)}: ${lastLine(result)}.`, { hint: `Run \`docker ps -a\` and look at the logs of the containers in ${call.dir} (\`docker logs NAME\`).` });
  }
}

/** `restart` of one compose call (the watchdog's restart of a Docker install). @throws LettoError. */
export async function composeRestart(ctx: Context, call: ComposeCall): Promise<void> {
  const result = await dockerOf(ctx).compose(call.dir, ['restart'], UP_TIMEOUT, composeOptions(call));
  if (result.failure || result.exitCode !== 0) throw new LettoError(`Compose could not restart ${describeCall(call)}: ${lastLine(result)}.`, { hint: `Look at \`docker ps -a\` and the containers' logs.` });
}
