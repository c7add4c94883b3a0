/**
 * A LeTTo Docker server with several schools, laid out as LeTTo's admin docs describe ("Installation
 * einer neuen Schule"): `compose/setup` and `compose/mysql` (each a plain `docker-compose.yml`), and in
 * `compose/letto` one `docker-compose-<school>.yml` per school plus `docker-service-lti.yml`, one shared
 * `.env` (one compose project for all of them), no `docker-compose.yml`, no `COMPOSE_FILE`; each file
 * brought up with its own `-f`, as the docs do. A small proxy on loopback stands in for LeTTo's nginx:
 * `/letto<school>/…` goes to that school's container. Images: those test/support/docker.ts publishes
 * (the login image stands in for the LTI service's).
 */
import { execa } from 'execa';
import { createServer, request, type Server } from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './net.js';
import type { ComposeCli, TestRegistry } from './docker.js';

/** The schools of the test server. */
export const SCHOOLS = ['a', 'b', 'c'] as const;
export type School = (typeof SCHOOLS)[number];

/** The server: its folders, the compose projects, the school URLs (through the proxy). */
export interface SchoolsServer {
  root: string;
  dirs: { setup: string; mysql: string; letto: string };
  /** The projects whose containers are LeTTo's (setup, letto); mysql's runs a non-LeTTo image. */
  projects: string[];
  /** `http://127.0.0.1:<proxy>/letto{school}/test.jsf`. */
  healthUrl: string;
  schoolUrl(school: School): string;
  /** The compose file of each school, and of the LTI service. */
  file(name: School | 'lti'): string;
  close(): Promise<void>;
}

/**
 * Writes the server. `failOn`: the revision whose start fails for a school (its `LETTO_FAIL_REVISION`,
 * see publishRevision: its database migration fails, so neither /ping nor test.jsf answer).
 */
export async function writeSchoolsServer(root: string, id: string, prefix: string, failOn: Partial<Record<School, number>>): Promise<SchoolsServer> {
  const dirs = { setup: join(root, 'compose', 'setup'), mysql: join(root, 'compose', 'mysql'), letto: join(root, 'compose', 'letto') };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  await writeFile(join(dirs.setup, '.env'), `COMPOSE_PROJECT_NAME=${id}-setup\n`);
  await writeFile(join(dirs.setup, 'docker-compose.yml'), `version: "3.7"\nservices:\n  letto-setup:\n    image: ${prefix}letto-setup:stable\n    restart: always\n`);
  // the database: not a LeTTo image (LeTTo's own letto-mysql would be one; here a plain image nobody updates)
  await writeFile(join(dirs.mysql, '.env'), `COMPOSE_PROJECT_NAME=${id}-mysql\n`);
  await writeFile(join(dirs.mysql, 'docker-compose.yml'), `version: "3.7"\nservices:\n  letto-mysql:\n    image: ${id}-mysql:8\n    restart: always\n`);
  await writeFile(join(dirs.letto, '.env'), `COMPOSE_PROJECT_NAME=${id}-letto\nLETTO_DB_PASSWORD=Db-Schule-9q\n`);
  const ports = new Map<School, number>();
  for (const school of SCHOOLS) {
    const port = await freePort();
    ports.set(school, port);
    const fail = failOn[school] ? `\n      LETTO_FAIL_REVISION: "${failOn[school]}"` : '';
    await writeFile(
      join(dirs.letto, `docker-compose-${school}.yml`),
      `version: "3.7"\nservices:\n  lettoserver-${school}:\n    image: ${prefix}lettoserver:stable\n    restart: always\n    environment:\n      LETTO_SCHOOL: ${school}\n      LETTO_DB_PASSWORD: \${LETTO_DB_PASSWORD}${fail}\n    ports:\n      - "127.0.0.1:${port}:8080"\n`,
    );
  }
  await writeFile(join(dirs.letto, 'docker-service-lti.yml'), `version: "3.7"\nservices:\n  letto-service-lti:\n    image: ${prefix}letto-service-login:stable\n    restart: always\n`);
  const proxy = await startSchoolProxy(ports);
  const base = `http://127.0.0.1:${proxy.port}`;
  return {
    root,
    dirs,
    projects: [`${id}-setup`, `${id}-letto`],
    healthUrl: `${base}/letto{school}/test.jsf`,
    schoolUrl: (school) => `${base}/letto${school}/test.jsf`,
    file: (name) => join(dirs.letto, name === 'lti' ? 'docker-service-lti.yml' : `docker-compose-${name}.yml`),
    close: () => new Promise((resolve) => proxy.server.close(() => resolve())),
  };
}

/** LeTTo's nginx in small: `/letto<school>/<path>` → `http://127.0.0.1:<school's port>/letto/<path>`; 502 when it does not answer. */
export async function startSchoolProxy(ports: ReadonlyMap<string, number>): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const m = /^\/letto([a-z0-9-]+)(\/.*)$/.exec(req.url ?? '');
    const port = m ? ports.get(m[1]!) : undefined;
    if (!m || !port) return void res.writeHead(404).end('no such school\n');
    const upstream = request({ host: '127.0.0.1', port, path: `/letto${m[2]}`, method: req.method, timeout: 5000 }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.headersSent || res.writeHead(502).end('bad gateway\n'));
    upstream.on('timeout', () => upstream.destroy(new Error('timeout')));
    upstream.end();
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port };
}

/**
 * Brings the server up as the admin does (the docs' commands, each file on its own), on `revision`'s
 * images tagged `:stable`: setup, mysql, then each school's file and the LTI service's.
 */
export async function bringUpSchools(server: SchoolsServer, prefix: string, id: string, registry: TestRegistry, revision: number, compose: ComposeCli): Promise<void> {
  for (const image of ['letto-setup', 'lettoserver', 'letto-service-login']) {
    const remote = `${registry.host}/${prefix}${image}:rev${revision}`;
    await execa('docker', ['pull', '-q', remote], { env: { DOCKER_CONFIG: registry.dockerConfig } });
    await execa('docker', ['tag', remote, `${prefix}${image}:stable`]);
  }
  await execa('docker', ['tag', `${prefix}letto-setup:stable`, `${id}-mysql:8`]);
  const up = (dir: string, file: string[]) => execa(compose.command, [...compose.args, ...file, 'up', '-d'], { cwd: dir, env: compose.env });
  await up(server.dirs.setup, []);
  await up(server.dirs.mysql, []);
  for (const school of SCHOOLS) await up(server.dirs.letto, ['-f', `docker-compose-${school}.yml`]);
  await up(server.dirs.letto, ['-f', 'docker-service-lti.yml']);
}

/** Each LeTTo container of the server (setup and letto projects; running or not): service → image id, state, health. */
export async function schoolContainers(server: SchoolsServer): Promise<Record<string, { imageId: string; state: string; health: string | null; name: string }>> {
  const ids: string[] = [];
  for (const project of server.projects) ids.push(...(await execa('docker', ['ps', '-a', '-q', '--filter', `label=com.docker.compose.project=${project}`])).stdout.split(/\s+/).filter(Boolean));
  if (ids.length === 0) return {};
  const list = JSON.parse((await execa('docker', ['container', 'inspect', ...ids])).stdout) as Array<{ Name: string; Image: string; State: { Status: string; Health?: { Status: string } }; Config: { Labels: Record<string, string> } }>;
  return Object.fromEntries(list.map((c) => [c.Config.Labels['com.docker.compose.service']!, { imageId: c.Image, state: c.State.Status, health: c.State.Health?.Status ?? null, name: c.Name.slice(1) }]));
}

/** The image ids of `revision` (pulled as `<registry>/<prefix><image>:rev<N>`), by the service names of the server. */
export async function revisionImageIds(prefix: string, registry: TestRegistry, revision: number): Promise<Record<string, string>> {
  const id = async (image: string) => {
    const remote = `${registry.host}/${prefix}${image}:rev${revision}`;
    const local = await execa('docker', ['image', 'inspect', '--format', '{{.Id}}', remote], { reject: false });
    if (local.exitCode === 0) return local.stdout.trim();
    await execa('docker', ['pull', '-q', remote], { env: { DOCKER_CONFIG: registry.dockerConfig } });
    return (await execa('docker', ['image', 'inspect', '--format', '{{.Id}}', remote])).stdout.trim();
  };
  const server = await id('lettoserver');
  return { 'letto-setup': await id('letto-setup'), 'lettoserver-a': server, 'lettoserver-b': server, 'lettoserver-c': server, 'letto-service-lti': await id('letto-service-login') };
}
