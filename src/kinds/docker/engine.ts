import type { Context } from '../../context.js';
import { LettoError } from '../../errors.js';
import { clearScript, recordScript } from '../../store/script-groups.js';
import { createDockerRunner, lastLine, type DockerResult, type DockerRunner } from '../../system/docker.js';
import { currentAccount } from '../../system/users.js';

/** Seconds one image query or tag may take; a pull gets {@link PULL_TIMEOUT}. */
const QUERY_TIMEOUT = 60;
const PULL_TIMEOUT = 1800;

const runners = new WeakMap<Context, DockerRunner>();

/**
 * The {@link DockerRunner} of this run (`docker.command`, `docker.compose` of the config). Compose's
 * `up` and `restart` run like TomEE's scripts (src/system/process.ts): as this process's user, in a
 * process group of their own, recorded in the script journal (src/store/script-groups.ts) before they start.
 * A run killed meanwhile leaves them running to their end, and the next run waits for them.
 */
export function dockerOf(ctx: Context): DockerRunner {
  let runner = runners.get(ctx);
  if (!runner) {
    runner = createDockerRunner(ctx.config.docker!.command, ctx.config.docker!.compose, (command, args, cwd, timeout) => recordedCompose(ctx, command, args, cwd, timeout));
    runners.set(ctx, runner);
  }
  return runner;
}

async function recordedCompose(ctx: Context, command: string, args: string[], cwd: string, timeout: number, name: 'compose' | 'docker' = 'compose'): Promise<DockerResult> {
  const line = [command, ...args].join(' ');
  try {
    const result = await ctx.services.processes.runScript(command, currentAccount(), timeout, { args, cwd, beforeStart: (group) => recordScript(ctx, name, { ...group, command: line }) });
    return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr, ...(result.failure ? { failure: result.failure } : {}) };
  } catch (error) {
    return { exitCode: -1, stdout: '', stderr: '', failure: `\`${line}\` was not started: the script journal could not be written (${(error as Error).message})` };
  } finally {
    await clearScript(ctx);
  }
}

/**
 * Fails when the Docker engine does not answer (`docker version`).
 * @returns the engine's version, e.g. `20.10.24+dfsg1`.
 * @throws LettoError (exit 1) naming what the docker CLI said; nothing was changed.
 */
export async function assertEngine(ctx: Context): Promise<string> {
  const result = await dockerOf(ctx).docker(['version', '--format', '{{.Server.Version}}'], QUERY_TIMEOUT);
  if (result.failure || result.exitCode !== 0) {
    throw new LettoError(`The Docker engine does not answer: ${lastLine(result)}. Nothing was changed.`, {
      hint: 'Start Docker (`systemctl start docker`), and run letto-update as root or as a member of the docker group.',
    });
  }
  return result.stdout.trim();
}

/**
 * The compose program in use and its version (`docker-compose 1.29.2`, `docker compose 2.26.1`).
 * @throws LettoError (exit 1) when it does not run; nothing was changed.
 */
export async function composeVersion(ctx: Context): Promise<string> {
  const runner = dockerOf(ctx);
  const { label } = await runner.composeProgram();
  const result = await runner.compose('/', ['version', '--short'], QUERY_TIMEOUT);
  if (result.failure || result.exitCode !== 0) {
    throw new LettoError(`Compose (\`${label}\`) does not run: ${lastLine(result)}. Nothing was changed.`, {
      hint: 'Install compose (Debian: `apt-get install docker-compose`), or set docker.compose in the config to the command that runs it.',
    });
  }
  return `${label} ${result.stdout.trim().replace(/^v/, '')}`;
}

/** The id (`sha256:…`) of a local image, or null when there is none by that reference. */
export async function imageId(ctx: Context, ref: string): Promise<string | null> {
  const result = await dockerOf(ctx).docker(['image', 'inspect', '--format', '{{.Id}}', ref], QUERY_TIMEOUT);
  return !result.failure && result.exitCode === 0 && result.stdout ? result.stdout.split('\n')[0]!.trim() : null;
}

/** Local images (id and their `repository:tag` names), for revision lookup and retention. */
export async function localImages(ctx: Context): Promise<Array<{ id: string; tags: string[] }>> {
  const list = await dockerOf(ctx).docker(['image', 'ls', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'], QUERY_TIMEOUT);
  if (list.failure || list.exitCode !== 0) throw new LettoError(`docker cannot list the local images: ${lastLine(list)}.`, { hint: 'Check that Docker runs (`docker info`).' });
  const byId = new Map<string, string[]>();
  for (const line of list.stdout.split('\n')) {
    const [id, tagged] = line.trim().split(' ');
    if (!id || !tagged || tagged.includes('<none>')) continue;
    byId.set(id, [...(byId.get(id) ?? []), tagged]);
  }
  return [...byId].map(([id, tags]) => ({ id, tags }));
}

/**
 * Pulls `ref` (`docker pull`, with the admin's registry logins: `docker login`, `DOCKER_CONFIG`).
 * @returns null when pulled, else what the registry or docker said (e.g. `manifest unknown`, `unauthorized`).
 */
export async function pull(ctx: Context, ref: string): Promise<string | null> {
  const result = await dockerOf(ctx).docker(['pull', '--quiet', ref], PULL_TIMEOUT);
  return result.failure || result.exitCode !== 0 ? lastLine(result) : null;
}

/** `docker tag source target` (a source may be an image id). @throws LettoError. */
export async function tag(ctx: Context, source: string, target: string): Promise<void> {
  const result = await dockerOf(ctx).docker(['tag', source, target], QUERY_TIMEOUT);
  if (result.failure || result.exitCode !== 0) throw new LettoError(`docker could not tag ${source} as ${target}: ${lastLine(result)}.`, { hint: 'Check that Docker runs (`docker info`) and has room on its disk.' });
}

/** `docker rmi ref` without --force (an image a container uses stays). @returns null, or why it failed. */
export async function untag(ctx: Context, ref: string): Promise<string | null> {
  const result = await dockerOf(ctx).docker(['rmi', ref], QUERY_TIMEOUT);
  return result.failure || result.exitCode !== 0 ? lastLine(result) : null;
}

/**
 * `docker stop NAME…` (each container gets its own stop grace, 10 s by default, then SIGKILL), run like
 * compose's `up`: recorded in the script journal, so that a run killed meanwhile leaves it to finish
 * and the next run waits for it before it starts the containers again.
 * @throws LettoError naming what docker said; the containers it did stop stay stopped.
 */
export async function stopContainers(ctx: Context, names: string[]): Promise<void> {
  if (names.length === 0) return;
  const result = await recordedCompose(ctx, ctx.config.docker!.command, ['stop', ...names], '/', 300, 'docker');
  if (result.failure || result.exitCode !== 0) {
    throw new LettoError(`docker could not stop ${names.join(', ')}: ${lastLine(result)}.`, { hint: 'Look at `docker ps -a`; a container that does not stop within its grace time is killed by docker.' });
  }
}
