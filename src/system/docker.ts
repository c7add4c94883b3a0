import { spawn } from 'node:child_process';
import { withoutSecrets } from './secret-env.js';

/**
 * What one `docker …` or compose command returned. `failure` is set when it did not run to an exit code
 * of its own (not found, killed, timed out); `exitCode` means nothing then.
 */
export interface DockerResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  failure?: string;
}

/** Which compose program runs a folder: `docker compose` (v2 plugin) or `docker-compose` (v1, Debian 11/12). */
export type ComposeProgram = { command: string; args: string[]; label: string };

/**
 * The thin module through which letto-update talks to Docker: the `docker` CLI and compose, as child
 * processes (no shell). The CLI is what the admin uses by hand, so registry logins
 * (`docker login`, credential helpers, `DOCKER_CONFIG`), `/etc/docker/certs.d`, contexts and API
 * version negotiation behave exactly as for the admin. Never throws for a non-zero exit.
 */
export interface DockerRunner {
  /** `docker ...args`. @param timeoutSeconds killed after this many seconds. */
  docker(args: string[], timeoutSeconds: number, opts?: { onStderr?: (line: string) => void }): Promise<DockerResult>;
  /**
   * Compose in `dir` (its `.env`, `COMPOSE_FILE`, `COMPOSE_PROJECT_NAME` are read by compose itself).
   * @param options compose's own options before the subcommand (`-p`, `-f`, `--project-directory`, `--env-file`).
   */
  compose(dir: string, args: string[], timeoutSeconds: number, options?: string[]): Promise<DockerResult>;
  /** The compose program in use (found on first use). */
  composeProgram(): Promise<ComposeProgram>;
}

/**
 * Runs a compose command that changes containers in a process group of its own, recorded in the script
 * journal before it starts, so that it is neither cut off by our own death (its output goes to files,
 * not to our pipes) nor raced by the next run (which waits for it). `args` are the compose arguments,
 * after the program's own (`compose` for the plugin).
 */
export type RecordedRun = (command: string, args: string[], cwd: string, timeoutSeconds: number) => Promise<DockerResult>;

/** Compose subcommands that create, recreate or restart containers: run through {@link RecordedRun}. */
const CHANGING = new Set(['up', 'restart']);

/**
 * Creates the {@link DockerRunner} (node:child_process `spawn`, no shell; output collected; on timeout
 * SIGTERM, then SIGKILL 10 s later).
 * @param docker the docker CLI (`docker.command` of the config); @param compose `docker.compose` of the
 * config: "" finds one (`docker compose` if the plugin answers, else `docker-compose`), or a command
 * line like `docker-compose` or `docker compose`.
 * @param recorded how `up` and `restart` run (see {@link RecordedRun}); without it, like every other command.
 */
export function createDockerRunner(docker: string, compose: string, recorded?: RecordedRun): DockerRunner {
  let program: Promise<ComposeProgram> | null = null;
  const run = (command: string, args: string[], timeoutSeconds: number, cwd: string, onStderr?: (line: string) => void): Promise<DockerResult> =>
    new Promise((resolve) => {
      const label = `\`${command} ${args.join(' ')}\``;
      const child = spawn(command, args, { cwd, env: withoutSecrets(), stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let buffered = '';
      let timedOut = false;
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => {
        err.push(chunk);
        if (!onStderr) return;
        buffered += chunk.toString('utf8');
        const lines = buffered.split(/\r?\n|\r/);
        buffered = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) onStderr(line.trim());
      });
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }, timeoutSeconds * 1000);
      const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8').trim();
      child.on('error', (error) => {
        clearTimeout(timer);
        resolve({ exitCode: -1, stdout: '', stderr: '', failure: `${label} could not be run (${error.message})` });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const failure = timedOut ? `${label} did not finish within ${timeoutSeconds} s` : signal ? `${label} was ended by ${signal}` : undefined;
        resolve({ exitCode: code ?? -1, stdout: text(out), stderr: text(err), ...(failure ? { failure } : {}) });
      });
    });
  const findCompose = async (): Promise<ComposeProgram> => {
    if (compose) {
      const [command, ...args] = compose.split(/\s+/).filter(Boolean);
      return { command: command!, args, label: compose };
    }
    const v2 = await run(docker, ['compose', 'version'], 30, '/');
    if (!v2.failure && v2.exitCode === 0) return { command: docker, args: ['compose'], label: `${docker} compose` };
    return { command: 'docker-compose', args: [], label: 'docker-compose' };
  };
  return {
    docker: (args, timeoutSeconds, opts = {}) => run(docker, args, timeoutSeconds, '/', opts.onStderr),
    async compose(dir, args, timeoutSeconds, options = []) {
      const p = await this.composeProgram();
      if (recorded && CHANGING.has(args[0] ?? '')) return recorded(p.command, [...p.args, ...options, ...args], dir, timeoutSeconds);
      return run(p.command, [...p.args, ...options, ...args], timeoutSeconds, dir);
    },
    composeProgram() {
      program ??= findCompose();
      return program;
    },
  };
}

/** The most useful line of a failed command's output, for messages: the last non-empty stderr line. */
export function lastLine(result: DockerResult): string {
  if (result.failure) return result.failure;
  const lines = `${result.stderr}\n${result.stdout}`.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  return lines.filter((l) => !/^(DEPRECATED|WARNING)/.test(l)).at(-1) ?? lines.at(-1) ?? `exit code ${result.exitCode}`;
}
