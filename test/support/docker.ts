/**
 * A LeTTo Docker install for end-to-end tests, all real: the shared Docker engine, Debian's
 * `docker-registry` on loopback with TLS (a self-signed CA the engine trusts through
 * `/etc/docker/certs.d/<host:port>/ca.crt`) and htpasswd (bcrypt) auth, Debian's `docker-compose`, and
 * small LeTTo-like images built FROM scratch with Debian's static busybox: `httpd` serves
 * `/letto/test.jsf` ("LeTTo revision N, <service>") and `/ping` (`pong`), and the image's HEALTHCHECK
 * fetches `/ping`. A broken revision of a service has neither page, so it turns `unhealthy`.
 *
 * Everything is named `lu-docker-<id>…` (images, compose projects, containers) and removed by `close`.
 */
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, readdirSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './net.js';

const BUSYBOX = '/bin/busybox';
const CERTS_D = '/etc/docker/certs.d';

/**
 * A name for what one suite run creates in the shared engine (images, compose projects, containers):
 * LETTO_TEST_DOCKER_PREFIX (default `lu-docker`), `-<tag>` when given, then this process and the time.
 */
export function suiteId(tag = ''): string {
  return `${process.env.LETTO_TEST_DOCKER_PREFIX ?? 'lu-docker'}-${tag ? `${tag}-` : ''}${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
}

/** Why the Docker suite cannot run here, or null when it can. */
export function dockerUnavailable(): string | null {
  try {
    accessSync(BUSYBOX, fsConstants.X_OK);
  } catch {
    return `${BUSYBOX} not found (install Debian package busybox-static)`;
  }
  for (const [tool, pkg] of [['docker', 'docker.io'], ['docker-compose', 'docker-compose'], ['docker-registry', 'docker-registry'], ['htpasswd', 'apache2-utils'], ['openssl', 'openssl']] as const) {
    if (!process.env.PATH?.split(':').some((dir) => existsSync(join(dir, tool)))) return `${tool} not found (install Debian package ${pkg})`;
  }
  const info = execaSyncOk('docker', ['info', '--format', '{{.ServerVersion}}']);
  if (!info) return 'the Docker engine does not answer `docker info` (start dockerd; .ci/run does)';
  if (process.getuid?.() !== 0) return 'the suite writes /etc/docker/certs.d and must run as root';
  return null;
}

/** Runs a command synchronously (at collection time) and says whether it exited 0. */
function execaSyncOk(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore', timeout: 20_000 }).status === 0;
}

async function sh(command: string, args: string[], opts: { input?: string; cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  const result = await execa(command, args, { reject: false, input: opts.input ?? '', ...(opts.cwd ? { cwd: opts.cwd } : {}), env: { DOCKER_BUILDKIT: '0', ...(opts.env ?? {}) } });
  if (result.exitCode !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.exitCode}): ${result.stderr || result.stdout}`);
  return String(result.stdout).trim();
}

/** A registry on loopback: `host` is `127.0.0.1:<port>`; `dockerConfig` a DOCKER_CONFIG folder logged in to it. */
export interface TestRegistry {
  host: string;
  user: string;
  password: string;
  dockerConfig: string;
  /** A DOCKER_CONFIG folder with a wrong password for the registry. */
  wrongDockerConfig: string;
  close(): Promise<void>;
}

/**
 * Starts Debian's `docker-registry` on 127.0.0.1 with TLS (its CA in `/etc/docker/certs.d/<host>/ca.crt`)
 * and htpasswd auth, and logs in to it (`docker login --password-stdin`) in a fresh DOCKER_CONFIG.
 */
export async function startRegistry(root: string): Promise<TestRegistry> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const dir = join(root, 'registry');
  await mkdir(join(dir, 'data'), { recursive: true });
  await sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
  const user = 'lu-docker';
  const password = 'Registry-Pässword-7';
  await writeFile(join(dir, 'htpasswd'), await sh('htpasswd', ['-inB', user], { input: password }) + '\n');
  await writeFile(
    join(dir, 'config.yml'),
    `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: ${host}
  tls:
    certificate: ${join(dir, 'cert.pem')}
    key: ${join(dir, 'key.pem')}
auth:
  htpasswd:
    realm: lu-docker
    path: ${join(dir, 'htpasswd')}
`,
  );
  await mkdir(join(CERTS_D, host), { recursive: true });
  await copyFile(join(dir, 'cert.pem'), join(CERTS_D, host, 'ca.crt'));
  const child = execa('docker-registry', ['serve', join(dir, 'config.yml')], { reject: false, stdio: 'ignore', cleanup: true });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const probe = await execa('openssl', ['s_client', '-connect', host, '-brief'], { reject: false, input: '', timeout: 5000 });
    if (probe.exitCode === 0) break;
    if (Date.now() > deadline) throw new Error(`docker-registry did not listen on ${host}: ${probe.stderr}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  const dockerConfig = join(root, 'docker-config');
  const wrongDockerConfig = join(root, 'docker-config-wrong');
  await mkdir(dockerConfig, { recursive: true });
  await sh('docker', ['login', host, '-u', user, '--password-stdin'], { input: password, env: { DOCKER_CONFIG: dockerConfig } });
  await mkdir(wrongDockerConfig, { recursive: true });
  await writeFile(join(wrongDockerConfig, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:wrong-password`).toString('base64') } } }));
  return {
    host,
    user,
    password,
    dockerConfig,
    wrongDockerConfig,
    async close() {
      child.kill('SIGTERM');
      await child;
      await rm(join(CERTS_D, host), { recursive: true, force: true });
    },
  };
}

/** The LeTTo-like services of the test install: folder, service, image name (after the prefix). */
export const SERVICES = [
  { dir: 'setup', service: 'letto-setup', image: 'letto-setup' },
  { dir: 'letto', service: 'lettoserver', image: 'lettoserver' },
  { dir: 'letto', service: 'letto-service-login', image: 'letto-service-login' },
] as const;
export type ServiceImage = (typeof SERVICES)[number]['image'];

/**
 * Builds `<prefix><image>:rev<revision>` for every service (a broken one for the images in `broken`)
 * and pushes them to the registry; `skip` leaves images out (a revision with a missing image).
 * Local copies are removed afterwards, so an update has to pull them.
 */
export async function publishRevision(root: string, prefix: string, registry: TestRegistry, revision: number, opts: { broken?: ServiceImage[]; skip?: ServiceImage[] } = {}): Promise<void> {
  for (const { image } of SERVICES) {
    if (opts.skip?.includes(image)) continue;
    const ctxDir = await mkdtemp(join(root, `build-${image}-`));
    await copyFile(BUSYBOX, join(ctxDir, 'busybox'));
    await chmod(join(ctxDir, 'busybox'), 0o755);
    await mkdir(join(ctxDir, 'www', 'letto'), { recursive: true });
    await writeFile(join(ctxDir, 'www', 'revision.txt'), `${revision}\n`);
    if (!opts.broken?.includes(image)) {
      await writeFile(join(ctxDir, 'www', 'ping'), 'pong\n');
      await writeFile(join(ctxDir, 'www', 'letto', 'test.jsf'), `LeTTo revision ${revision}, ${image}\n`);
    }
    // a start-up log as LeTTo's services write one, naming the database password (which a failure notice must not show)
    await writeFile(
      join(ctxDir, 'start.sh'),
      `echo "LeTTo ${image} revision ${revision} starting, database letto:\${LETTO_DB_PASSWORD:-none}@db"
[ -f /www/ping ] || echo "ERROR: ${image} revision ${revision} failed to start" >&2
# a school whose own database this revision cannot migrate (LETTO_FAIL_REVISION in its compose file): neither page
if [ "\$LETTO_FAIL_REVISION" = "${revision}" ]; then
  echo "ERROR: school \$LETTO_SCHOOL: the database migration to revision ${revision} failed" >&2
  /bin/busybox rm -f /www/ping /www/letto/test.jsf
fi
exec /bin/busybox httpd -f -p 8080 -h /www
`,
    );
    await writeFile(
      join(ctxDir, 'Dockerfile'),
      `FROM scratch
COPY busybox /bin/busybox
COPY www /www
COPY start.sh /start.sh
HEALTHCHECK --interval=1s --timeout=3s --start-period=1s --retries=2 CMD ["/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/ping"]
CMD ["/bin/busybox", "sh", "/start.sh"]
`,
    );
    const remote = `${registry.host}/${prefix}${image}:rev${revision}`;
    // --no-cache: the legacy builder's cache hands out intermediate images as parents, and another run
    // removing its images (this suite's cleanup, the demo, a second checkout) can delete such a parent mid-build
    await sh('docker', ['build', '-q', '--no-cache', '-t', remote, ctxDir]);
    await sh('docker', ['push', '-q', remote], { env: { DOCKER_CONFIG: registry.dockerConfig } });
    await sh('docker', ['rmi', remote]);
    await rm(ctxDir, { recursive: true, force: true });
  }
}

/** The compose folders of the test install: `setup` (letto-setup) and `letto` (lettoserver, letto-service-login; COMPOSE_FILE in .env). */
export interface ComposeInstall {
  dirs: string[];
  /** Project names, from each folder's .env. */
  projects: string[];
  healthUrl: string;
  /** The image references the compose files name: `<prefix><image>:stable`. */
  refs: Record<ServiceImage, string>;
  /** The database password in the letto folder's `.env`, handed to lettoserver, which logs it at start-up. */
  dbPassword: string;
}

/**
 * Writes the two compose folders like LeTTo's (`docker-compose.yml` plus a `docker-service-*.yml`, one
 * `.env` naming COMPOSE_FILE and COMPOSE_PROJECT_NAME), with lettoserver published on a free loopback port.
 */
export async function writeComposeInstall(root: string, id: string, prefix: string): Promise<ComposeInstall> {
  const port = await freePort();
  const setup = join(root, 'compose', 'setup');
  const letto = join(root, 'compose', 'letto');
  await mkdir(setup, { recursive: true });
  await mkdir(letto, { recursive: true });
  const refs = Object.fromEntries(SERVICES.map((s) => [s.image, `${prefix}${s.image}:stable`])) as Record<ServiceImage, string>;
  await writeFile(join(setup, '.env'), `COMPOSE_PROJECT_NAME=${id}-setup\n`);
  await writeFile(join(setup, 'docker-compose.yml'), `version: "3.7"\nservices:\n  letto-setup:\n    image: ${refs['letto-setup']}\n    restart: always\n`);
  const dbPassword = 'Db-Geheim-5x';
  await writeFile(join(letto, '.env'), `COMPOSE_PROJECT_NAME=${id}-letto\nCOMPOSE_FILE=docker-compose.yml:docker-service-login.yml\nLETTO_PORT=${port}\nLETTO_DB_PASSWORD=${dbPassword}\n`);
  await writeFile(
    join(letto, 'docker-compose.yml'),
    `version: "3.7"\nservices:\n  lettoserver:\n    image: ${refs.lettoserver}\n    restart: always\n    environment:\n      LETTO_DB_PASSWORD: \${LETTO_DB_PASSWORD}\n    ports:\n      - "127.0.0.1:\${LETTO_PORT}:8080"\n`,
  );
  await writeFile(join(letto, 'docker-service-login.yml'), `version: "3.7"\nservices:\n  letto-service-login:\n    image: ${refs['letto-service-login']}\n    restart: always\n`);
  return { dirs: [setup, letto], projects: [`${id}-setup`, `${id}-letto`], healthUrl: `http://127.0.0.1:${port}/letto/test.jsf`, refs, dbPassword };
}

/** How compose is run by hand (as the admin would): `command ...args <subcommand>`, with `env` added. */
export interface ComposeCli {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** Compose v1: Debian 11/12's `docker-compose` 1.29 (Python). */
export const COMPOSE_V1: ComposeCli = { command: 'docker-compose', args: [], env: {} };

/** Compose v2: `docker compose`, with the plugin in `dockerConfig`/cli-plugins ({@link addComposePlugin}). */
export function composeV2(dockerConfig: string): ComposeCli {
  return { command: 'docker', args: ['compose'], env: { DOCKER_CONFIG: dockerConfig } };
}

/** Where {@link composeV2Plugin} looks for the compose v2 binary. */
export const COMPOSE_V2_WHERE = `LETTO_TEST_COMPOSE_V2, else ${join(process.env.LETTO_ROOTFS_CACHE ?? '/var/cache/letto-update-test', 'compose-v2')}/*/docker-compose`;

/**
 * The compose v2 binary for the v2 suite: `LETTO_TEST_COMPOSE_V2`, else the newest one
 * fixtures/compose-v2.sh unpacked into its cache (Debian 12 has no package of v2). Null when none runs.
 */
export function composeV2Plugin(): string | null {
  const cache = join(process.env.LETTO_ROOTFS_CACHE ?? '/var/cache/letto-update-test', 'compose-v2');
  const candidates = process.env.LETTO_TEST_COMPOSE_V2
    ? [process.env.LETTO_TEST_COMPOSE_V2]
    : (existsSync(cache) ? readdirSync(cache).filter((v) => !v.startsWith('.')).sort().reverse() : []).map((v) => join(cache, v, 'docker-compose'));
  return candidates.find((path) => spawnSync(path, ['version', '--short'], { stdio: 'ignore', timeout: 20_000 }).status === 0) ?? null;
}

/** Makes the compose v2 binary `plugin` a docker CLI plugin of the DOCKER_CONFIG folder `dockerConfig` (a symbolic link). */
export async function addComposePlugin(dockerConfig: string, plugin: string): Promise<void> {
  await mkdir(join(dockerConfig, 'cli-plugins'), { recursive: true });
  await symlink(plugin, join(dockerConfig, 'cli-plugins', 'docker-compose'));
}

/** Pulls `revision` from the registry, tags it as the compose files name it (`:stable`) and brings both folders up: the starting install. */
export async function installRevision(install: ComposeInstall, prefix: string, registry: TestRegistry, revision: number, compose: ComposeCli = COMPOSE_V1): Promise<void> {
  for (const { image } of SERVICES) {
    const remote = `${registry.host}/${prefix}${image}:rev${revision}`;
    await sh('docker', ['pull', '-q', remote], { env: { DOCKER_CONFIG: registry.dockerConfig } });
    await sh('docker', ['tag', remote, install.refs[image]]);
  }
  for (const dir of install.dirs) await sh(compose.command, [...compose.args, 'up', '-d'], { cwd: dir, env: compose.env });
}

/** The ids of the install's containers (running or not), by the project label compose puts on them (docker is fast, docker-compose v1 is not). */
export async function containerIds(install: ComposeInstall, runningOnly = false): Promise<string[]> {
  const ids: string[] = [];
  for (const project of install.projects) {
    const out = await sh('docker', ['ps', '-q', ...(runningOnly ? [] : ['-a']), '--filter', `label=com.docker.compose.project=${project}`]);
    ids.push(...out.split(/\s+/).filter(Boolean));
  }
  return ids;
}

/** Each LeTTo container of the install: service, image id it runs, health. */
export async function containers(install: ComposeInstall): Promise<Array<{ service: string; imageId: string; health: string | null; state: string }>> {
  const ids = await containerIds(install);
  if (ids.length === 0) return [];
  const list = JSON.parse(await sh('docker', ['container', 'inspect', ...ids])) as Array<{ Image: string; State: { Status: string; Health?: { Status: string } }; Config: { Labels: Record<string, string> } }>;
  return list
    .map((c) => ({ service: c.Config.Labels['com.docker.compose.service']!, imageId: c.Image, health: c.State.Health?.Status ?? null, state: c.State.Status }))
    .sort((a, b) => a.service.localeCompare(b.service));
}

/** The revision each running LeTTo container runs, read from inside the container (`/www/revision.txt`). */
export async function runningRevisions(install: ComposeInstall): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  for (const id of await containerIds(install, true)) {
    const service = await sh('docker', ['inspect', '--format', '{{index .Config.Labels "com.docker.compose.service"}}', id]);
    result[service] = Number(await sh('docker', ['exec', id, '/bin/busybox', 'cat', '/www/revision.txt']));
  }
  return result;
}

/** Removes the compose projects (never volumes: there are none), every image named `<prefix>…` and the build leftovers. */
export async function removeInstall(install: ComposeInstall | null, prefix: string, registryHost: string | null, compose: ComposeCli = COMPOSE_V1): Promise<void> {
  for (const dir of install?.dirs ?? []) await execa(compose.command, [...compose.args, 'down', '--remove-orphans', '--timeout', '1'], { cwd: dir, reject: false, env: compose.env });
  const images = await execa('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'], { reject: false });
  const mine = String(images.stdout)
    .split('\n')
    .filter((ref) => ref.startsWith(prefix) || (registryHost !== null && ref.startsWith(`${registryHost}/${prefix}`)));
  if (mine.length) await execa('docker', ['rmi', '--force', ...mine], { reject: false });
}

/** Reads a JSON lines file (runs.jsonl). */
export async function readJsonLines(path: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}
