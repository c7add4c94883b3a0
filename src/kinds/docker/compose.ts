import { realpath, stat } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { Context } from '../../context.js';
import { LettoError } from '../../errors.js';
import { SECRET_NAME } from '../../system/log-tail.js';
import { lastLine } from '../../system/docker.js';
import { dockerOf } from './engine.js';
import { isLettoRef } from './refs.js';

/**
 * Seconds a compose `config`/`ps` may take (about 1 s on an idle server; docker-compose v1 took over
 * 60 s on a test machine with load 20); `up -d` gets {@link UP_TIMEOUT}.
 */
const QUERY_TIMEOUT = 300;
const UP_TIMEOUT = 600;

/** One service of a compose folder whose image is LeTTo's, with its container (if one exists). */
export interface LettoService {
  /** The compose folder. */
  dir: string;
  service: string;
  /** The image reference the compose files name (after compose resolved `.env` and variables). */
  ref: string;
  container: ContainerInfo | null;
}

/** A container as `docker inspect` shows it. */
export interface ContainerInfo {
  id: string;
  name: string;
  service: string;
  project: string;
  /** The image id (`sha256:…`) the container runs. */
  imageId: string;
  /** `running`, `exited`, `restarting`, … */
  state: string;
  /** The image's HEALTHCHECK result (`starting`, `healthy`, `unhealthy`), null when the image has none. */
  health: string | null;
}

/**
 * The LeTTo services of every `docker.compose_dirs` folder, in that order. Compose itself reads each
 * folder's `.env` (`COMPOSE_FILE`, `COMPOSE_PROJECT_NAME`, image variables): `config` prints the
 * resolved file, `ps -a -q` the project's containers.
 * @throws LettoError when a folder is missing or compose rejects it; nothing was changed.
 */
export async function readLettoServices(ctx: Context): Promise<LettoService[]> {
  const docker = ctx.config.docker!;
  const all: LettoService[] = [];
  for (const dir of docker.compose_dirs) {
    if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) {
      throw new LettoError(`The compose folder ${dir} (docker.compose_dirs) does not exist. Nothing was changed.`, {
        hint: 'Fix docker.compose_dirs in the config: the folders that hold LeTTo\'s docker-compose.yml, in the order they are brought up.',
      });
    }
    const images = await serviceImages(ctx, dir);
    const containers = await containersOf(ctx, dir);
    for (const [service, ref] of images) {
      if (!isLettoRef(ref, docker)) continue;
      all.push({ dir, service, ref, container: containers.find((c) => c.service === service) ?? null });
    }
  }
  return all;
}

/**
 * What compose said about a folder, kept for the run: the compose files do not change during a run,
 * and `docker-compose` v1 (Python) costs about a second per call, `docker` about 30 ms.
 */
interface Known {
  images: Map<string, Map<string, string>>;
  projects: Map<string, string>;
  /** Values of the services' secret-looking variables (`MYSQL_ROOT_PASSWORD`, …), never to be shown. */
  secrets: Set<string>;
}
const known = new WeakMap<Context, Known>();
function knownOf(ctx: Context): Known {
  let k = known.get(ctx);
  if (!k) known.set(ctx, (k = { images: new Map(), projects: new Map(), secrets: new Set() }));
  return k;
}

/** service → image reference, from `compose config` (resolved YAML, the same from v1 and v2); once per run. */
async function serviceImages(ctx: Context, dir: string): Promise<Map<string, string>> {
  const cached = knownOf(ctx).images.get(dir);
  if (cached) return cached;
  const result = await dockerOf(ctx).compose(dir, ['config'], QUERY_TIMEOUT);
  if (result.failure || result.exitCode !== 0) {
    throw new LettoError(`Compose cannot read the folder ${dir}: ${lastLine(result)}. Nothing was changed.`, {
      hint: `Run \`${(await dockerOf(ctx).composeProgram()).label} config\` in ${dir} and fix what it reports.`,
    });
  }
  const parsed = parseYaml(result.stdout) as { services?: Record<string, { image?: unknown; environment?: unknown }> } | null;
  const images = new Map<string, string>();
  for (const [service, spec] of Object.entries(parsed?.services ?? {})) {
    if (typeof spec?.image === 'string') images.set(service, spec.image);
    for (const [name, value] of variables(spec?.environment)) if (SECRET_NAME.test(name) && value) knownOf(ctx).secrets.add(value);
  }
  knownOf(ctx).images.set(dir, images);
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
 * The containers of the compose project in `dir` (running or not, not one-off `run` containers). Asked
 * of docker by the labels compose (v1 and v2) puts on its containers — the project once known, else the
 * project's working directory — and of compose itself (`ps -a -q`, which reads `.env` as compose does)
 * when those find nothing. docker answers in ~30 ms, docker-compose v1 (Python) in ~1 s.
 */
export async function containersOf(ctx: Context, dir: string): Promise<ContainerInfo[]> {
  const project = knownOf(ctx).projects.get(dir);
  const label = project ? `com.docker.compose.project=${project}` : `com.docker.compose.project.working_dir=${await realpath(dir).catch(() => dir)}`;
  let ps = await dockerOf(ctx).docker(['ps', '-a', '-q', '--no-trunc', '--filter', `label=${label}`, '--filter', 'label=com.docker.compose.oneoff=False'], QUERY_TIMEOUT);
  if (!project && !ps.failure && ps.exitCode === 0 && ps.stdout === '') ps = await dockerOf(ctx).compose(dir, ['ps', '-a', '-q'], QUERY_TIMEOUT);
  if (ps.failure || ps.exitCode !== 0) throw new LettoError(`Cannot list the containers of ${dir}: ${lastLine(ps)}.`, { hint: 'Check that Docker runs (`docker info`).' });
  const ids = ps.stdout.split(/\s+/).filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = await dockerOf(ctx).docker(['container', 'inspect', ...ids], QUERY_TIMEOUT);
  if (inspected.failure || inspected.exitCode !== 0) throw new LettoError(`docker cannot inspect the containers of ${dir}: ${lastLine(inspected)}.`, { hint: 'Check that Docker runs (`docker info`).' });
  const list = JSON.parse(inspected.stdout) as Array<{
    Id: string;
    Name: string;
    Image: string;
    State: { Status: string; Health?: { Status: string } };
    Config: { Labels?: Record<string, string> };
  }>;
  const found = list[0]?.Config.Labels?.['com.docker.compose.project'];
  if (found) knownOf(ctx).projects.set(dir, found);
  return list.map((c) => ({
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    service: c.Config.Labels?.['com.docker.compose.service'] ?? '',
    project: c.Config.Labels?.['com.docker.compose.project'] ?? '',
    imageId: c.Image,
    state: c.State.Status,
    health: c.State.Health?.Status ?? null,
  }));
}

/**
 * `up -d` in `dir`: compose recreates each container whose image (by id) changed. No pull, no build:
 * the images are local already.
 * @throws LettoError naming the folder and compose's last line.
 */
export async function composeUp(ctx: Context, dir: string): Promise<void> {
  ctx.emit({ type: 'step', step: 'start', message: `Bringing up ${dir}` });
  const result = await dockerOf(ctx).compose(dir, ['up', '-d', '--no-build'], UP_TIMEOUT);
  if (result.failure || result.exitCode !== 0) {
    throw new LettoError(`Compose could not bring up ${dir}: ${lastLine(result)}.`, { hint: `Run \`docker ps -a\` and look at the logs of the containers in ${dir} (\`docker logs NAME\`).` });
  }
}

/** `restart` in `dir` (the watchdog's restart of a Docker install). @throws LettoError. */
export async function composeRestart(ctx: Context, dir: string): Promise<void> {
  const result = await dockerOf(ctx).compose(dir, ['restart'], UP_TIMEOUT);
  if (result.failure || result.exitCode !== 0) throw new LettoError(`Compose could not restart ${dir}: ${lastLine(result)}.`, { hint: `Look at \`docker ps -a\` and the containers' logs.` });
}
