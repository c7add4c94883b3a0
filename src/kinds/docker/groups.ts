/**
 * LeTTo's containers as the Docker engine knows them, grouped by how compose brought them up. A server
 * with several schools has one compose file per school in one folder (`docker-compose-<school>.yml`,
 * `docker-service-lti.yml`, each brought up with its own `-f`, all in one compose project), so the
 * folder's default file says nothing about them; compose v1 and v2 record on every container the
 * project, its folder and the files (and v2 the env file) it was brought up with, and a group is
 * brought up again exactly that way. Never `--remove-orphans`: the schools' files share one project,
 * and that flag would remove the other schools' containers.
 */
import { stat } from 'node:fs/promises';
import { basename, isAbsolute, resolve } from 'node:path';
import type { Context } from '../../context.js';
import { LettoError } from '../../errors.js';
import type { ComposeCall } from '../../store/journal.js';
import { lastLine } from '../../system/docker.js';
import { dockerOf } from './engine.js';
import { isLettoRef } from './refs.js';

/** Seconds `docker ps` and `docker inspect` may take. */
const QUERY_TIMEOUT = 300;
const LABEL = 'com.docker.compose.';

/** A container as `docker inspect` shows it. */
export interface ContainerInfo {
  id: string;
  name: string;
  service: string;
  project: string;
  /** The image id (`sha256:…`) the container runs. */
  imageId: string;
  /** The image reference it was created from (`Config.Image`, e.g. `lettohub/lettoserver:stable`). */
  image: string;
  /** `running`, `exited`, `restarting`, `created`, … */
  state: string;
  /** The image's HEALTHCHECK result (`starting`, `healthy`, `unhealthy`), null when the image has none. */
  health: string | null;
  /** How compose brought it up; null for a container without compose labels (`docker run`). */
  call: ComposeCall | null;
}

/** A compose call with what letto-update derives from it. */
export interface ComposeGroup extends ComposeCall {
  /** Identifies the call (folder, project, files, env files). */
  key: string;
  /** The school, from a compose file named `docker-compose-<school>.yml`; null for the others. */
  school: string | null;
}

/** The key of a compose call. */
export function callKey(call: ComposeCall): string {
  return JSON.stringify([call.dir, call.project, call.files, call.envFiles]);
}

/** The school a compose call brings up: `docker-compose-<school>.yml` (LeTTo's docs, "Installation einer neuen Schule"). */
export function schoolOf(call: ComposeCall): string | null {
  for (const file of call.files) {
    const m = /^docker-compose-([a-z0-9][a-z0-9-]*)\.ya?ml$/.exec(basename(file));
    if (m) return m[1]!;
  }
  return null;
}

/** A {@link ComposeCall} with its key and school. */
export function groupOf(call: ComposeCall): ComposeGroup {
  const plain = { dir: call.dir, project: call.project, files: call.files, envFiles: call.envFiles };
  return { ...plain, key: callKey(plain), school: schoolOf(plain) };
}

/**
 * Compose's own options that bring a group up the way it was: `-p`, each `-f`, `--project-directory`,
 * each `--env-file`. None for a folder's default (compose reads the folder's `.env` and default file).
 */
export function composeOptions(call: ComposeCall): string[] {
  if (call.files.length === 0 && call.project === null) return [];
  return [
    ...(call.project !== null ? ['-p', call.project] : []),
    ...call.files.flatMap((f) => ['-f', f]),
    '--project-directory',
    call.dir,
    ...call.envFiles.flatMap((e) => ['--env-file', e]),
  ];
}

/** The call in words, for messages and the dry run: `docker-compose-a.yml in /opt/…/letto`, or the folder. */
export function describeCall(call: ComposeCall): string {
  return call.files.length ? `${call.files.map((f) => basename(f)).join(' + ')} in ${call.dir}` : call.dir;
}

/**
 * Every container whose image (`Config.Image`) is LeTTo's (`docker.image_prefix`), running or not,
 * one-off `compose run` containers left out; `call` read from its compose labels.
 * @throws LettoError when docker cannot list or inspect them.
 */
export async function lettoContainers(ctx: Context): Promise<ContainerInfo[]> {
  const docker = dockerOf(ctx);
  const ps = await docker.docker(['ps', '-a', '-q', '--no-trunc'], QUERY_TIMEOUT);
  if (ps.failure || ps.exitCode !== 0) throw new LettoError(`docker cannot list the containers: ${lastLine(ps)}.`, { hint: 'Check that Docker runs (`docker info`).' });
  const ids = ps.stdout.split(/\s+/).filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = await docker.docker(['container', 'inspect', ...ids], QUERY_TIMEOUT);
  // a container removed between the two calls: inspect says "No such container" and still prints the others
  if (inspected.failure || (inspected.exitCode !== 0 && !/No such (container|object)/i.test(inspected.stderr))) {
    throw new LettoError(`docker cannot inspect the containers: ${lastLine(inspected)}.`, { hint: 'Check that Docker runs (`docker info`).' });
  }
  const list = JSON.parse(inspected.stdout || '[]') as Array<{
    Id: string;
    Name: string;
    Image: string;
    State: { Status: string; Health?: { Status: string } };
    Config: { Image: string; Labels?: Record<string, string> | null };
  }>;
  const lettoConfig = ctx.config.docker!;
  return list
    .filter((c) => isLettoRef(c.Config.Image, lettoConfig) && c.Config.Labels?.[`${LABEL}oneoff`] !== 'True')
    .map((c) => {
      const labels = c.Config.Labels ?? {};
      return {
        id: c.Id,
        name: c.Name.replace(/^\//, ''),
        service: labels[`${LABEL}service`] ?? '',
        project: labels[`${LABEL}project`] ?? '',
        imageId: c.Image,
        image: c.Config.Image,
        state: c.State.Status,
        health: c.State.Health?.Status ?? null,
        call: callOfLabels(labels),
      };
    });
}

/** The compose call recorded in a container's labels; null without `project` and `working_dir`. */
function callOfLabels(labels: Record<string, string>): ComposeCall | null {
  const project = labels[`${LABEL}project`];
  const dir = labels[`${LABEL}project.working_dir`];
  if (!project || !dir) return null;
  // v1 records the files as given (relative to where compose ran: the folder, as LeTTo's docs run it), v2 absolute
  const paths = (label: string) => (labels[`${LABEL}${label}`] ?? '').split(',').filter(Boolean).map((p) => (isAbsolute(p) ? p : resolve(dir, p)));
  return { dir, project, files: paths('project.config_files'), envFiles: paths('project.environment_file') };
}

/** Whether a container counts as up: an admin's `compose stop` leaves `exited`; `created` is a recreate under way. */
export function isUp(c: ContainerInfo): boolean {
  return c.state === 'running' || c.state === 'restarting' || c.state === 'paused';
}

/**
 * Refuses a group whose compose files (or env files) are gone: it could not be brought up again the
 * way it was, and a guess could recreate a school wrongly.
 * @throws LettoError naming the container and the missing file; nothing was changed.
 */
export async function assertFilesExist(group: ComposeGroup, containers: ContainerInfo[]): Promise<void> {
  for (const file of [...group.files, ...group.envFiles]) {
    if (await stat(file).then(() => true, () => false)) continue;
    const names = containers.map((c) => c.name).join(', ');
    throw new LettoError(`The LeTTo container ${names} was brought up with ${file}, which is gone: letto-update cannot bring it up again the way it was. Nothing was changed.`, {
      hint: `Put ${file} back, or remove the container if that school or service is gone for good (\`docker rm -f ${containers[0]?.name ?? 'NAME'}\`), then run again.`,
    });
  }
}
