/**
 * A LeTTo Docker server with its databases, for the database cases of the Docker suite (issue 21): all
 * real. The database runs in a MariaDB container built from Debian's packages (fixtures/debian-rootfs.sh
 * bookworm … mariadb-server mariadb-client, `docker import`, plus a small entrypoint layer), in a named
 * volume as LeTTo's `lettomysql`, with root's password taken from the container's MYSQL_ROOT_PASSWORD (for
 * root@localhost and root@'%', mysql_native_password only: root over the socket without it is refused).
 * LeTTo's services are stand-ins built on that image (its MariaDB client, plus Debian's static busybox for
 * `httpd`), each using its own database with the user and password the compose folder's `.env` hands it:
 * revision {@link STAND_IN.old} writes a row into `health` on every health request and needs the table
 * `test`; {@link STAND_IN.passing} and {@link STAND_IN.failing} migrate their database as they start
 * (test/support/mariadb.ts MIGRATION_SQL; the failing one's LTI service only writes a row); the failing
 * one then never answers.
 *
 * The layout is LeTTo's (DOMAIN.md): `compose/mysql` (service letto-mysql, container `<id>-letto-mysql`,
 * volume `<id>-lettomysql`, the external network `<id>-nw` as LeTTo's `nw-letto`) and `compose/letto`
 * (`docker-compose-a.yml`, `docker-compose-b.yml`, `docker-service-lti.yml`, one `.env`), databases
 * `letto_a`, `letto_b` and `lettolti`; a loopback proxy routes `/letto<school>/` as LeTTo's nginx does.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';
import { startSchoolProxy } from './docker-schools.js';
import type { TestRegistry } from './docker.js';
import { createLettoDatabase, MIGRATION_SQL, tableChecksums } from './mariadb.js';
import { freePort } from './net.js';

/** The Debian packages of the MariaDB image (one cached root file system with exactly these). */
export const MARIADB_PACKAGES = ['mariadb-server', 'mariadb-client'] as const;
/**
 * The MariaDB image's repository. Not under a LeTTo image prefix: the update never touches it (as it never
 * touches LeTTo's own letto-mysql), and the tests keep it between runs (tagged by its content key).
 */
export const MARIADB_REPOSITORY = 'letto-update-test-mariadb';

/**
 * The stand-in revisions: the one installed at the start, one that migrates and passes, one that never
 * answers (its schools migrate their databases; its LTI service only writes {@link WRITTEN_BY_FAILING}).
 */
export const STAND_IN = { old: 100, passing: 101, failing: 105 } as const;
/** The row the failing revision's LTI service writes into `lettolti.schule` as it starts (no schema change). */
export const WRITTEN_BY_FAILING = { name: 'written by revision 105', kurz: 'w105' } as const;

/** The schools of the server, and every LeTTo database (each school's, and the LTI service's). */
export const DB_SCHOOLS = ['a', 'b'] as const;
export const DATABASES = ['letto_a', 'letto_b', 'lettolti'] as const;
export type LettoDatabase = (typeof DATABASES)[number];

/** The LeTTo images of the server (after the prefix): the schools' server and the LTI service. */
const IMAGES = ['lettoserver', 'letto-service-lti'] as const;

/**
 * The MariaDB container's entrypoint, LeTTo's letto-mysql in small: on an empty data folder (a fresh
 * volume) `mariadb-install-db`, and on that first start an init file that gives root (localhost and '%')
 * the password of MYSQL_ROOT_PASSWORD, mysql_native_password only (no other root account); then mariadbd as PID 1.
 */
const ENTRYPOINT = `#!/bin/sh
set -eu
datadir=/var/lib/mysql
install -d -o mysql -g mysql /run/mysqld
rm -f /run/mysqld/init.sql
init=
if [ ! -d "$datadir/mysql" ]; then
  : "\${MYSQL_ROOT_PASSWORD:?the MariaDB container needs MYSQL_ROOT_PASSWORD}"
  chown mysql:mysql "$datadir"
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal >/dev/null
  pw=$(printf '%s' "$MYSQL_ROOT_PASSWORD" | sed -e 's/\\\\/\\\\\\\\/g' -e "s/'/''/g")
  umask 077
  cat >/run/mysqld/init.sql <<EOF
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('$pw');
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('$pw');
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '%');
FLUSH PRIVILEGES;
EOF
  chown mysql /run/mysqld/init.sql
  init=--init-file=/run/mysqld/init.sql
fi
exec mariadbd --user=mysql --datadir="$datadir" --socket=/run/mysqld/mysqld.sock --bind-address=0.0.0.0 --port=3306 \\
  --innodb-buffer-pool-size=64M --innodb-log-file-size=16M --skip-name-resolve $init
`;

const MARIADB_DOCKERFILE = (base: string) => `FROM ${base}
COPY letto-test-mysqld /usr/local/bin/letto-test-mysqld
# Debian's package initialised a data folder; the volume starts empty and the entrypoint initialises it
RUN rm -rf /var/lib/mysql && install -d -o mysql -g mysql /var/lib/mysql
EXPOSE 3306
CMD ["/usr/local/bin/letto-test-mysqld"]
`;

async function run(command: string, args: string[], opts: { input?: string; cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  const result = await execa(command, args, { reject: false, input: opts.input ?? '', ...(opts.cwd ? { cwd: opts.cwd } : {}), env: { DOCKER_BUILDKIT: '0', ...(opts.env ?? {}) } });
  if (result.exitCode !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.exitCode}): ${result.stderr || result.stdout}`);
  return String(result.stdout).trim();
}

const imageExists = async (ref: string) => (await execa('docker', ['image', 'inspect', '--format', '{{.Id}}', ref], { reject: false })).exitCode === 0;

/**
 * The MariaDB image (`letto-update-test-mariadb:<key>`), built once: the key is a hash of the Debian suite,
 * the packages and the layer on top, so a second run (or another suite) reuses it. Builds the root file
 * system with fixtures/debian-rootfs.sh (its cache and lock: a build by another run is waited for and reused).
 * @param work a folder for the build (the unpacked root file system is removed again)
 */
export async function mariadbImage(work: string): Promise<string> {
  const key = createHash('sha256').update(['bookworm', ...MARIADB_PACKAGES, MARIADB_DOCKERFILE('BASE'), ENTRYPOINT].join('\0')).digest('hex').slice(0, 12);
  const image = `${MARIADB_REPOSITORY}:${key}`;
  if (await imageExists(image)) return image;
  const rootfs = await mkdtemp(join(work, 'mariadb-rootfs-'));
  const tarball = (await run(join(REPO_ROOT, 'fixtures', 'debian-rootfs.sh'), ['bookworm', rootfs, ...MARIADB_PACKAGES])).split('\n').at(-1)!;
  await rm(rootfs, { recursive: true, force: true });
  const base = `${MARIADB_REPOSITORY}-rootfs:${tarball.replace(/^.*\/|\.tar$/g, '')}`;
  if (!(await imageExists(base))) await run('docker', ['import', tarball, base]);
  const ctx = await mkdtemp(join(work, 'mariadb-image-'));
  await writeFile(join(ctx, 'letto-test-mysqld'), ENTRYPOINT, { mode: 0o755 });
  await writeFile(join(ctx, 'Dockerfile'), MARIADB_DOCKERFILE(base));
  await run('docker', ['build', '-q', '-t', image, ctx]);
  await rm(ctx, { recursive: true, force: true });
  return image;
}

/** The health page (a CGI script busybox httpd runs with /bin/sh) of a stand-in revision: it uses `table` and writes a row into `health`. */
function healthPage(revision: number, table: string): string {
  return `# LeTTo revision ${revision}'s health page: it reads a table this revision knows and writes a row, as LeTTo works on every request
export MYSQL_PWD="$LETTO_DB_PASSWORD"
if out=$(mariadb --host="$LETTO_DB_HOST" --user="$LETTO_DB_USER" --batch --skip-column-names --connect-timeout=3 "$LETTO_DB_NAME" \\
    -e "SELECT COUNT(*) FROM ${table}; INSERT INTO health (revision) VALUES (${revision});" 2>&1); then
  printf 'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nLeTTo revision ${revision}, %s\\npong\\n' "$LETTO_SERVICE"
else
  printf 'HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nLeTTo revision ${revision}: %s\\n' "$out"
fi
`;
}

/**
 * The start script of a stand-in revision. A new revision waits for its database, then migrates it
 * (once); the failing revision's LTI service instead only writes a row (data, no schema change: its
 * database is to be left alone by the rollback); the failing revision then serves no health page.
 */
function startScript(revision: number, image: (typeof IMAGES)[number]): string {
  const failing = revision === STAND_IN.failing;
  const migrates = revision !== STAND_IN.old && !(failing && image === 'letto-service-lti');
  const writes = failing && !migrates;
  return `echo "LeTTo $LETTO_SERVICE revision ${revision} starting, database $LETTO_DB_NAME as $LETTO_DB_USER on $LETTO_DB_HOST"
export MYSQL_PWD="$LETTO_DB_PASSWORD"
db() { mariadb --host="$LETTO_DB_HOST" --user="$LETTO_DB_USER" --batch --skip-column-names --connect-timeout=3 "$LETTO_DB_NAME" "$@"; }
${migrates || writes ? `i=0
until db -e 'SELECT 1' >/dev/null 2>&1 || [ $i -ge 60 ]; do i=$((i + 1)); sleep 1; done
` : ''}${migrates ? `if [ "$(db -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'pruefung'")" = 0 ]; then
  echo "LeTTo revision ${revision}: migrating the schema of $LETTO_DB_NAME"
  db </migrate.sql || echo "ERROR: the migration of $LETTO_DB_NAME failed" >&2
fi
` : ''}${writes ? `db -e "INSERT IGNORE INTO schule (name, kurz) VALUES ('${WRITTEN_BY_FAILING.name}', '${WRITTEN_BY_FAILING.kurz}');" || echo "ERROR: could not write into $LETTO_DB_NAME" >&2
` : ''}${failing ? `echo "ERROR: LeTTo revision ${revision} does not start (database $LETTO_DB_NAME)" >&2
/usr/bin/busybox rm -f /www/letto/test.jsf
` : ''}# a LeTTo that stops on SIGTERM, as TomEE does (busybox httpd as PID 1 would ignore it: docker stop then waits its 10 s)
/usr/bin/busybox httpd -f -p 8080 -h /www -c /etc/httpd.conf &
trap 'kill $!; exit 0' TERM INT
wait
`;
}

/**
 * Builds the stand-ins of every {@link STAND_IN} revision on the MariaDB image, as `<registry>/<prefix><image>:rev<N>`,
 * pushes them and removes the local copies (an update pulls them; the MariaDB layers stay, as part of its image).
 * One COPY of a prepared tree per image (each step of the legacy builder costs a container); the first push
 * uploads the MariaDB layers, the others, pushed together, only their own.
 */
export async function publishStandIns(work: string, prefix: string, registry: TestRegistry, baseImage: string): Promise<void> {
  const remotes: string[] = [];
  for (const revision of Object.values(STAND_IN)) {
    for (const image of IMAGES) {
      const ctx = await mkdtemp(join(work, `build-${image}-`));
      const tree = join(ctx, 'tree');
      await mkdir(join(tree, 'www', 'letto'), { recursive: true });
      await mkdir(join(tree, 'usr', 'bin'), { recursive: true });
      await mkdir(join(tree, 'etc'), { recursive: true });
      await copyFile('/bin/busybox', join(tree, 'usr', 'bin', 'busybox'));
      await chmod(join(tree, 'usr', 'bin', 'busybox'), 0o755);
      await writeFile(join(tree, 'www', 'revision.txt'), `${revision}\n`);
      await writeFile(join(tree, 'www', 'letto', 'test.jsf'), healthPage(revision, revision === STAND_IN.old ? 'test' : 'pruefung'));
      await writeFile(join(tree, 'etc', 'httpd.conf'), '*.jsf:/bin/sh\n');
      await writeFile(join(tree, 'migrate.sql'), MIGRATION_SQL);
      await writeFile(join(tree, 'start.sh'), startScript(revision, image));
      await writeFile(
        join(ctx, 'Dockerfile'),
        `FROM ${baseImage}
COPY tree/ /
ENV LETTO_SERVICE=${image}
HEALTHCHECK --interval=1s --timeout=5s --start-period=1s --retries=2 CMD ["/usr/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/letto/test.jsf"]
CMD ["/bin/sh", "/start.sh"]
`,
      );
      const remote = `${registry.host}/${prefix}${image}:rev${revision}`;
      await run('docker', ['build', '-q', '--no-cache', '-t', remote, ctx]);
      await rm(ctx, { recursive: true, force: true });
      remotes.push(remote);
    }
  }
  const push = (remote: string) => run('docker', ['push', '-q', remote], { env: { DOCKER_CONFIG: registry.dockerConfig } });
  await push(remotes[0]!);
  await Promise.all(remotes.slice(1).map(push));
  await run('docker', ['rmi', ...remotes]);
}

/** The server: folders, names, URLs, and SQL as root inside the MariaDB container. */
export interface DatabaseServer {
  root: string;
  dirs: { mysql: string; letto: string };
  /** The MariaDB container (`database.container`). */
  container: string;
  network: string;
  volume: string;
  /** The compose project of LeTTo's services (compose/letto). */
  project: string;
  /** `http://127.0.0.1:<proxy>/letto{school}/test.jsf`. */
  healthUrl: string;
  schoolUrl(school: string): string;
  /** The compose files of compose/letto, each brought up with its own `-f`. */
  files: string[];
  rootPassword: string;
  /** SQL as root inside the container (the password read there from MYSQL_ROOT_PASSWORD); tab-separated rows. */
  sql(text: string, database?: string): Promise<string>;
  /** Columns of every table and `CHECKSUM TABLE … EXTENDED` of each (as MariaDb.checksums): equal output, equal content. */
  checksums(database: string): Promise<string>;
  /** Rows in the database's `health` table (null when the database or the table is missing). */
  healthRows(database: string): Promise<number | null>;
  /** Each database's user and password (in compose/letto's `.env`). */
  users: Record<LettoDatabase, { user: string; password: string }>;
  /** Stops the proxy. */
  closeProxy(): Promise<void>;
}

/**
 * Writes the layout and brings the database up on a fresh volume (the stand-ins are brought up by
 * {@link bringUpLetto}). `id` names everything: container, volume, network, compose projects (so that
 * {@link removeDatabaseServer} finds them by `id` alone).
 */
export async function startDatabaseServer(root: string, id: string, prefix: string, mariadb: string): Promise<DatabaseServer> {
  const dirs = { mysql: join(root, 'compose', 'mysql'), letto: join(root, 'compose', 'letto') };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const container = `${id}-letto-mysql`;
  const network = `${id}-nw`;
  const volume = `${id}-lettomysql`;
  const rootPassword = 'Root-Geheim-4711';
  const networks = `networks:\n  nw-letto:\n    external: true\n    name: ${network}\n`;
  await execa('docker', ['network', 'create', network]);
  await writeFile(join(dirs.mysql, '.env'), `COMPOSE_PROJECT_NAME=${id}-mysql\nMYSQL_ROOT_PASSWORD=${rootPassword}\n`);
  await writeFile(
    join(dirs.mysql, 'docker-compose.yml'),
    `version: "3.7"\nservices:\n  letto-mysql:\n    image: ${mariadb}\n    container_name: ${container}\n    restart: always\n    environment:\n      MYSQL_ROOT_PASSWORD: \${MYSQL_ROOT_PASSWORD}\n    volumes:\n      - lettomysql:/var/lib/mysql\n    networks:\n      - nw-letto\nvolumes:\n  lettomysql:\n    name: ${volume}\n${networks}`,
  );
  // one .env for every LeTTo service: each database's user and password (created below), handed to the
  // stand-ins as environment, never on a command line
  const users = Object.fromEntries(DATABASES.map((db) => [db, { user: db, password: `Pw-${db.replace('_', '-')}-93x` }])) as DatabaseServer['users'];
  const variable = (db: string) => db.toUpperCase();
  await writeFile(join(dirs.letto, '.env'), `COMPOSE_PROJECT_NAME=${id}-letto\n${DATABASES.map((db) => `${variable(db)}_DB_USER=${users[db].user}\n${variable(db)}_DB_PASSWORD=${users[db].password}\n`).join('')}`);
  const ports = new Map<string, number>();
  const service = (name: string, image: string, db: string, extra: string) =>
    `version: "3.7"\nservices:\n  ${name}:\n    image: ${prefix}${image}:stable\n    restart: always\n    environment:\n      LETTO_DB_HOST: ${container}\n      LETTO_DB_NAME: ${db}\n      LETTO_DB_USER: \${${variable(db)}_DB_USER}\n      LETTO_DB_PASSWORD: \${${variable(db)}_DB_PASSWORD}\n${extra}    networks:\n      - nw-letto\n${networks}`;
  const files: string[] = [];
  for (const school of DB_SCHOOLS) {
    const port = await freePort();
    ports.set(school, port);
    files.push(join(dirs.letto, `docker-compose-${school}.yml`));
    await writeFile(files.at(-1)!, service(`lettoserver-${school}`, 'lettoserver', `letto_${school}`, `      LETTO_SCHOOL: ${school}\n    ports:\n      - "127.0.0.1:${port}:8080"\n`));
  }
  files.push(join(dirs.letto, 'docker-service-lti.yml'));
  await writeFile(files.at(-1)!, service('letto-service-lti', 'letto-service-lti', 'lettolti', ''));
  const proxy = await startSchoolProxy(ports);
  const base = `http://127.0.0.1:${proxy.port}`;

  const client = 'MYSQL_PWD="$MYSQL_ROOT_PASSWORD" exec mariadb --user=root --batch --skip-column-names "$@"';
  const sql = (text: string, database?: string) => run('docker', ['exec', '-i', container, 'sh', '-c', client, 'sh', ...(database ? [database] : [])], { input: text });
  const server: DatabaseServer = {
    root,
    dirs,
    container,
    network,
    volume,
    project: `${id}-letto`,
    healthUrl: `${base}/letto{school}/test.jsf`,
    schoolUrl: (school) => `${base}/letto${school}/test.jsf`,
    files,
    rootPassword,
    sql,
    checksums: (database) => tableChecksums(sql, database),
    async healthRows(database) {
      const count = await sql(`SELECT COUNT(*) FROM \`${database}\`.health;`).catch(() => null);
      return count === null ? null : Number(count);
    },
    users,
    closeProxy: () => new Promise((resolve) => proxy.server.close(() => resolve())),
  };
  await execa('docker-compose', ['up', '-d'], { cwd: dirs.mysql });
  for (let i = 0; ; i++) {
    if (await sql('SELECT 1;').then(() => true, () => false)) break;
    if (i >= 120) throw new Error(`MariaDB in ${container} did not answer within 60 s: ${(await execa('docker', ['logs', '--tail', '20', container], { reject: false })).stderr}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return server;
}

/**
 * Drops and creates LeTTo's databases (LeTTo-like tables, `mib` MiB of rows each school, less for the
 * LTI service) and their users, with LeTTo's services stopped; brings nothing up.
 */
export async function resetDatabases(server: DatabaseServer, mib = 3): Promise<void> {
  for (const db of DATABASES) {
    await server.sql(`DROP DATABASE IF EXISTS \`${db}\`;`);
    await createLettoDatabase({ sql: server.sql }, db, db === 'lettolti' ? 1 : mib);
    const { user, password } = server.users[db];
    await server.sql(`CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY '${password}'; GRANT ALL PRIVILEGES ON \`${db}\`.* TO '${user}'@'%';`);
  }
}

/** Runs compose v1 (Debian 12's docker-compose, as the admin) in compose/letto with each file's own `-f`. */
export async function composeLetto(server: DatabaseServer, args: string[]): Promise<void> {
  for (const file of server.files) await run('docker-compose', ['-f', file, ...args], { cwd: server.dirs.letto });
}

/** Pulls `revision`'s images, tags them as the compose files name them (`:stable`) and brings every LeTTo service up, as the admin does. */
export async function bringUpLetto(server: DatabaseServer, prefix: string, registry: TestRegistry, revision: number): Promise<void> {
  for (const image of IMAGES) {
    const remote = `${registry.host}/${prefix}${image}:rev${revision}`;
    await run('docker', ['pull', '-q', remote], { env: { DOCKER_CONFIG: registry.dockerConfig } });
    await run('docker', ['tag', remote, `${prefix}${image}:stable`]);
  }
  await composeLetto(server, ['up', '-d']);
}

/** LeTTo's containers (compose/letto's project; running or not): service → name, image id, state, health, start time. */
export async function lettoContainers(server: DatabaseServer): Promise<Record<string, { name: string; imageId: string; state: string; health: string | null; startedAt: string }>> {
  const ids = (await run('docker', ['ps', '-a', '-q', '--filter', `label=com.docker.compose.project=${server.project}`])).split(/\s+/).filter(Boolean);
  if (ids.length === 0) return {};
  const list = JSON.parse(await run('docker', ['container', 'inspect', ...ids])) as Array<{ Name: string; Image: string; State: { Status: string; StartedAt: string; Health?: { Status: string } }; Config: { Labels: Record<string, string> } }>;
  return Object.fromEntries(list.map((c) => [c.Config.Labels['com.docker.compose.service']!, { name: c.Name.slice(1), imageId: c.Image, state: c.State.Status, health: c.State.Health?.Status ?? null, startedAt: c.State.StartedAt }]));
}

/**
 * Removes everything of the server `id` (also when its start failed halfway, `server` null): LeTTo's
 * containers, the MariaDB container, its volume, the network, the proxy, every image named `<prefix>…`
 * (never the cached MariaDB image).
 */
export async function removeDatabaseServer(id: string, server: DatabaseServer | null, prefix: string, registryHost: string | null): Promise<void> {
  await server?.closeProxy();
  const ids = (await execa('docker', ['ps', '-a', '-q', '--filter', `label=com.docker.compose.project=${id}-letto`], { reject: false })).stdout.split(/\s+/).filter(Boolean);
  if (ids.length) await execa('docker', ['rm', '-f', ...ids], { reject: false });
  await execa('docker', ['rm', '-f', `${id}-letto-mysql`], { reject: false });
  await execa('docker', ['volume', 'rm', '-f', `${id}-lettomysql`], { reject: false });
  await execa('docker', ['network', 'rm', `${id}-nw`], { reject: false });
  const images = (await execa('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'], { reject: false })).stdout.split('\n');
  const mine = images.filter((ref) => ref.startsWith(prefix) || (registryHost !== null && ref.startsWith(`${registryHost}/${prefix}`)));
  if (mine.length) await execa('docker', ['rmi', '--force', ...mine], { reject: false });
}
