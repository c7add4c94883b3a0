import type { Options } from 'execa';

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
 * processes (execa, no shell). The CLI is what the admin uses by hand, so registry logins
 * (`docker login`, credential helpers, `DOCKER_CONFIG`), `/etc/docker/certs.d`, contexts and API
 * version negotiation behave exactly as for the admin. Never throws for a non-zero exit.
 */
export interface DockerRunner {
  /** `docker ...args`. @param timeoutSeconds killed after this many seconds. */
  docker(args: string[], timeoutSeconds: number, opts?: { onStderr?: (line: string) => void }): Promise<DockerResult>;
  /** Compose in `dir` (its `.env`, `COMPOSE_FILE`, `COMPOSE_PROJECT_NAME` are read by compose itself). */
  compose(dir: string, args: string[], timeoutSeconds: number): Promise<DockerResult>;
  /** The compose program in use (found on first use). */
  composeProgram(): Promise<ComposeProgram>;
}

/** Variables that hold passwords: never handed to docker or compose. */
const SECRET_VARIABLES = ['LETTO_UPDATE_PASSWORD', 'LETTO_UPDATE_SMTP_PASSWORD'];

function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !SECRET_VARIABLES.includes(key)) env[key] = value;
  return env;
}

/**
 * Creates the execa-backed {@link DockerRunner}.
 * @param docker the docker CLI (`docker.command` of the config); @param compose `docker.compose` of the
 * config: "" finds one (`docker compose` if the plugin answers, else `docker-compose`), or a command
 * line like `docker-compose` or `docker compose`.
 */
export function createDockerRunner(docker: string, compose: string): DockerRunner {
  let program: Promise<ComposeProgram> | null = null;
  const run = async (command: string, args: string[], timeoutSeconds: number, cwd: string, onStderr?: (line: string) => void): Promise<DockerResult> => {
    const { execa } = await import('execa');
    const options: Options = { reject: false, timeout: timeoutSeconds * 1000, stdin: 'ignore', extendEnv: false, env: childEnv(), cwd, all: false };
    const child = execa(command, args, options);
    if (onStderr) {
      let buffered = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const lines = buffered.split(/\r?\n|\r/);
        buffered = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) onStderr(line.trim());
      });
    }
    const result = await child;
    const failure =
      result.exitCode === undefined || result.timedOut || result.signal
        ? result.timedOut
          ? `\`${command} ${args.join(' ')}\` did not finish within ${timeoutSeconds} s`
          : (result.shortMessage ?? `${command} could not be run`)
        : undefined;
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout ?? '').trim(), stderr: String(result.stderr ?? '').trim(), ...(failure ? { failure } : {}) };
  };
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
    async compose(dir, args, timeoutSeconds) {
      const p = await this.composeProgram();
      return run(p.command, [...p.args, ...args], timeoutSeconds, dir);
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
