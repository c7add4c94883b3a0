/**
 * End to end, a Docker install with a `[database]` section (issue 21): the built CLI against the real
 * engine, Debian's docker-compose, a registry on loopback, and LeTTo's databases in a MariaDB container
 * built from Debian's packages (test/support/docker-database.ts): schools a and b (`letto_a`, `letto_b`)
 * and the LTI service (`lettolti`), each stand-in using its own database with the credentials of the
 * compose folder's `.env`. Revisions: 100 (installed; writes a row into `health` on every health request
 * and needs the table `test`), 101 (migrates and passes), 105 (migrates and never answers). The cases run
 * in order on one server; the databases are reset by SQL where a case needs the start again. Kills:
 * `LETTO_DOCKER_DATABASE_KILLS` at random moments (default 1), seeded (`LETTO_TEST_SEED`), then one
 * aimed at the dump and one at the restore.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killAfter, outputUntil, runCli, spawnCli, type CliResult } from '../support/cli.js';
import { readJsonLines, startRegistry, suiteId, type TestRegistry } from '../support/docker.js';
import {
  bringUpLetto,
  composeLetto,
  DATABASES,
  DB_SCHOOLS,
  lettoContainers,
  mariadbImage,
  publishStandIns,
  removeDatabaseServer,
  resetDatabases,
  STAND_IN,
  startDatabaseServer,
  WRITTEN_BY_FAILING,
  type DatabaseServer,
  type LettoDatabase,
} from '../support/docker-database.js';
import { describeWithDocker } from '../support/describe-docker.js';
import { startDownloadServer, writeServerSection, type DownloadServer } from '../support/download-server.js';
import { prng, testSeed } from '../support/seeded.js';

/** Kills of the random-moment kill case (`LETTO_DOCKER_DATABASE_KILLS`, default 1; each about a minute). */
const KILLS = Number(process.env.LETTO_DOCKER_DATABASE_KILLS ?? 1);
const TIMEOUT = 300_000;

describeWithDocker('Docker install with [database]: LeTTo\'s databases in the MariaDB container dumped before the update, restored by the rollback', () => {
  const id = suiteId('db');
  const prefix = `${id}/`;
  let root: string;
  let registry: TestRegistry | null = null;
  let server: DatabaseServer | null = null;
  let download: DownloadServer | null = null;
  let serverSection: string;
  let config: string;
  let state: string;
  let backups: string;
  /** The databases before case (b)'s update (the dump taken when revision 100 was left), for case (e). */
  let beforePassing: Record<LettoDatabase, string> | null = null;
  /** How long the update to the failing revision took in case (a): the window of the random kills. */
  let failingRunMs = 40_000;

  /** Writes the config (`database`: more keys of the `[database]` section; `backupsFolder`: paths.backups) and returns its path. */
  async function writeConfig(database = '', name = 'config.toml', backupsFolder = backups): Promise<string> {
    const path = join(root, 'etc', name);
    await writeFile(
      path,
      `${serverSection}
[paths]
state = "${state}"
backups = "${backupsFolder}"
backup_lock = "${join(root, 'sicherung', 'sqlsicherungaktiv')}"
keep = 3

[docker]
compose_dirs = ["${server!.dirs.mysql}", "${server!.dirs.letto}"]
image_prefix = "${prefix}"
registry = "${registry!.host}"
health_url = "${server!.healthUrl}"
health_timeout = 30
compose = "docker-compose"

[database]
container = "${server!.container}"
timeout = 120
${database}`,
    );
    return path;
  }

  const cli = (args: string[], configPath = config): Promise<CliResult> =>
    runCli(['--config', configPath, ...args], { env: { DOCKER_CONFIG: registry!.dockerConfig }, timeoutMs: 280_000 });

  /**
   * Every table of every LeTTo database (columns and CHECKSUM TABLE) but `health`, which the running
   * revision writes to on every request; of `schule` its rows but {@link WRITTEN_BY_FAILING}'s, which the
   * failing revision's LTI service writes without changing the schema (a rollback leaves that database alone).
   */
  async function contents(): Promise<Record<LettoDatabase, string>> {
    const result: Partial<Record<LettoDatabase, string>> = {};
    for (const db of DATABASES) {
      const tables = (await server!.checksums(db)).split('\n').filter((line) => !/\bhealth\b/.test(line) && !line.startsWith(`${db}.schule\t`));
      const schule = await server!.sql(`SELECT MD5(GROUP_CONCAT(CONCAT_WS('|', id, name, kurz) ORDER BY id SEPARATOR '\\n')) FROM schule WHERE kurz <> '${WRITTEN_BY_FAILING.kurz}';`, db).catch((e: Error) => e.message);
      result[db] = `${tables.join('\n')}\nschule rows ${schule}`;
    }
    return result as Record<LettoDatabase, string>;
  }

  /** Whether the failing revision's LTI service wrote its row into lettolti (and it is still there). */
  const writtenByFailing = async (): Promise<boolean> => (await server!.sql(`SELECT COUNT(*) FROM schule WHERE kurz = '${WRITTEN_BY_FAILING.kurz}';`, 'lettolti')) === '1';

  /** The revision each running LeTTo container runs (its /www/revision.txt). */
  async function revisions(): Promise<Record<string, number>> {
    const result: Record<string, number> = {};
    for (const [service, c] of Object.entries(await lettoContainers(server!))) {
      if (c.state === 'running') result[service] = Number((await execa('docker', ['exec', c.name, 'cat', '/www/revision.txt'])).stdout);
    }
    return result;
  }

  /**
   * Every LeTTo service runs `revision`, healthy (waiting up to 60 s), each school answers with it, and
   * every database gets new rows in `health` from its service's health requests.
   */
  async function expectLettoOn(revision: number): Promise<void> {
    for (let i = 0; i < 60 && Object.values(await lettoContainers(server!)).some((c) => c.health !== 'healthy'); i++) await new Promise((r) => setTimeout(r, 1000));
    expect(await revisions()).toEqual({ 'lettoserver-a': revision, 'lettoserver-b': revision, 'letto-service-lti': revision });
    expect(Object.values(await lettoContainers(server!)).map((c) => `${c.name} ${c.state} ${c.health}`)).toEqual(Object.values(await lettoContainers(server!)).map((c) => `${c.name} running healthy`));
    const rows = Object.fromEntries(await Promise.all(DATABASES.map(async (db) => [db, await server!.healthRows(db)] as const)));
    for (const school of DB_SCHOOLS) {
      const page = await fetch(server!.schoolUrl(school));
      expect(`${page.status} ${await page.text()}`, `school ${school}`).toMatch(new RegExp(`^200 LeTTo revision ${revision}, lettoserver\\npong`));
    }
    // the LTI service's HEALTHCHECK writes once a second (a loaded machine may take longer)
    for (const db of DATABASES) {
      for (let i = 0; i < 20 && (await server!.healthRows(db))! <= rows[db]!; i++) await new Promise((r) => setTimeout(r, 500));
      expect(await server!.healthRows(db), `rows written into ${db}.health`).toBeGreaterThan(rows[db]!);
    }
  }

  /** The names in paths.backups. */
  const backupFiles = async (): Promise<string[]> => (await readdir(backups).catch(() => [])).sort();

  /**
   * Back to the start, when a case before did not leave it there (revision 100 on every service, no
   * database migrated): LeTTo's services stopped, the databases created again by SQL, revision 100 brought up.
   */
  async function startFromOld(): Promise<void> {
    const migrated = await server!.sql(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'pruefung' AND TABLE_SCHEMA IN (${DATABASES.map((db) => `'${db}'`).join(', ')});`);
    const running = Object.values(await revisions());
    if (migrated === '0' && running.length === 3 && running.every((r) => r === STAND_IN.old)) return;
    console.log('starting from revision 100 again: the databases created again by SQL');
    await composeLetto(server!, ['stop', '--timeout', '1']);
    await resetDatabases(server!);
    await bringUpLetto(server!, prefix, registry!, STAND_IN.old);
    await expectLettoOn(STAND_IN.old);
  }

  beforeAll(async () => {
    const started = Date.now();
    root = await mkdtemp(join(tmpdir(), 'lu-docker-db-'));
    const times: string[] = [];
    const timed = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
      const t = Date.now();
      const result = await step();
      times.push(`${what} ${((Date.now() - t) / 1000).toFixed(1)} s`);
      return result;
    };
    registry = await startRegistry(root);
    const mariadb = await timed('MariaDB image', () => mariadbImage(root));
    await timed('stand-ins built and pushed', () => publishStandIns(root, prefix, registry!, mariadb));
    server = await timed('database up', () => startDatabaseServer(join(root, 'server'), id, prefix, mariadb));
    await timed('databases created', () => resetDatabases(server!));
    await timed('revision 100 up', () => bringUpLetto(server!, prefix, registry!, STAND_IN.old));
    await mkdir(join(root, 'download'), { recursive: true });
    await writeFile(join(root, 'download', 'stable-revision.txt'), `${STAND_IN.old}\r\n`);
    await writeFile(join(root, 'download', 'daily-revision.txt'), `${STAND_IN.failing}\r\n`);
    download = await startDownloadServer({ root: join(root, 'download'), tls: true, user: 'letto', password: 'dl-Pässword-3' });
    serverSection = await writeServerSection(join(root, 'etc'), download, 'dl-Pässword-3');
    state = join(root, 'state');
    backups = join(root, 'backup');
    await mkdir(join(root, 'sicherung'), { recursive: true });
    config = await writeConfig();
    console.log(`docker database suite: set up in ${((Date.now() - started) / 1000).toFixed(1)} s (${times.join(', ')})`);
  }, 900_000); // the first build of the MariaDB root file system (debootstrap) takes minutes; later runs reuse the image

  afterAll(async () => {
    await download?.close();
    await removeDatabaseServer(id, server, prefix, registry?.host ?? null);
    await registry?.close();
    if (root) await rm(root, { recursive: true, force: true });
  }, 120_000);

  it('the server as LeTTo\'s: revision 100 writes into each database with the .env\'s credentials; root without the container\'s password is refused', async () => {
    await expectLettoOn(STAND_IN.old);
    const bare = await execa('docker', ['exec', server!.container, 'mariadb', '--user=root', '-e', 'SELECT 1'], { reject: false });
    expect(bare.exitCode).not.toBe(0);
    expect(bare.stderr).toMatch(/Access denied for user 'root'@'localhost' \(using password: NO\)/);
    // the stand-ins got their database password from the .env, as environment, not on a command line
    const lti = (await lettoContainers(server!))['letto-service-lti']!;
    const inspect = JSON.parse((await execa('docker', ['inspect', lti.name])).stdout) as Array<{ Config: { Env: string[]; Cmd: string[] } }>;
    expect(inspect[0]!.Config.Env).toContain(`LETTO_DB_PASSWORD=${server!.users.lettolti.password}`);
    expect(JSON.stringify(inspect[0]!.Config.Cmd)).not.toContain(server!.users.lettolti.password);
    // the dry run names every database it would dump (the default: each letto_* and lettolti) and changes nothing
    const plan = await cli(['update', '--dry-run', '--revision', String(STAND_IN.failing)]);
    expect(plan.exitCode, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(new RegExp(`^ {2}ok +database dump +letto_a, letto_b, lettolti \\(\\d+\\.\\d MiB\\) would be dumped into ${backups} with every LeTTo container but ${server!.container} stopped, before the swap`, 'm'));
    expect(await backupFiles()).toEqual([]);
  }, TIMEOUT);

  it('refusals: the password variable wrong (access denied), a user without rights, the dump folder not writable, the database container stopped: exit 1, LeTTo as before, no dump left', async () => {
    const before = await lettoContainers(server!);
    const contentBefore = await contents();
    const filesBefore = await backupFiles();
    const refusals = [
      { why: 'password_variable names no variable of the container', config: await writeConfig('password_variable = "LETTO_NO_SUCH_VARIABLE"\n', 'no-password.toml'), stderr: /access denied/i },
      // the default databases (every letto_* and lettolti): a user who sees none must not pass as "nothing to dump"
      { why: 'a user without rights', config: await writeConfig('user = "lu_norights"\n', 'no-rights.toml'), stderr: /No LeTTo database \(letto_\*, lettolti\) is found/ },
      // the dump folder cannot be made (a file where a folder of its path should be)
      { why: 'the dump folder not writable', config: await writeConfig('', 'not-writable.toml', join(root, 'etc', 'config.toml', 'backup')), stderr: /The dump folder .* is not writable/ },
      { why: 'a user without rights, the databases named', config: await writeConfig('user = "lu_norights"\ndatabases = ["letto_a", "letto_b", "lettolti"]\n', 'no-rights-named.toml'), stderr: /Database letto_a is not found on .* \(it does not exist, or the user letto-update connects as may not see it\)/ },
    ];
    await server!.sql(`CREATE USER IF NOT EXISTS 'lu_norights'@'localhost' IDENTIFIED BY '${server!.rootPassword}';`);
    for (const refusal of refusals) {
      const run = await cli(['update', '--revision', String(STAND_IN.failing), '--yes'], refusal.config);
      expect(run.exitCode, `${refusal.why}\n${run.stdout}${run.stderr}`).toBe(1);
      console.log(`refused (${refusal.why}): ${run.stderr.trim().split('\n')[0]}`);
      expect(run.stderr, refusal.why).toMatch(refusal.stderr);
      expect(run.stdout + run.stderr, refusal.why).not.toContain(server!.rootPassword);
      expect(await backupFiles(), refusal.why).toEqual(filesBefore);
      await expect(stat(join(state, 'journal.json')), refusal.why).rejects.toThrow();
      // LeTTo as before: the same containers on the same images, running; the databases untouched
      const now = await lettoContainers(server!);
      // refused before any container was touched: not even stopped and started again
      for (const [service, c] of Object.entries(before)) expect(now[service], `${refusal.why}: ${service}`).toMatchObject({ name: c.name, imageId: c.imageId, state: 'running', startedAt: c.startedAt });
      await expectLettoOn(STAND_IN.old);
    }
    expect(await contents()).toEqual(contentBefore);

    // the database server down: refused before anything changed (the stand-ins keep running, though they cannot answer without it)
    await execa('docker', ['stop', '--time', '5', server!.container]);
    try {
      const run = await cli(['update', '--revision', String(STAND_IN.failing), '--yes']);
      console.log(`refused (the database container stopped): ${run.stderr.trim().split('\n')[0]}`);
      expect(run.exitCode, run.stdout + run.stderr).toBe(1);
      expect(run.stderr).toMatch(new RegExp(`${server!.container}`));
      expect(await backupFiles()).toEqual(filesBefore);
      const now = await lettoContainers(server!);
      for (const [service, c] of Object.entries(before)) expect(now[service], service).toMatchObject({ name: c.name, imageId: c.imageId, state: 'running', startedAt: c.startedAt });
    } finally {
      await execa('docker', ['start', server!.container]);
    }
    for (let i = 0; i < 120 && !(await server!.sql('SELECT 1;').then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 500));
    await expectLettoOn(STAND_IN.old);
    expect(await contents()).toEqual(contentBefore);
  }, TIMEOUT);

  it('refusal after LeTTo was stopped: the dump of letto_b fails halfway (a view whose table is gone stops mariadb-dump): exit 1, no dump left, every container runs revision 100 again', async () => {
    const contentBefore = await contents();
    await server!.sql('CREATE TABLE weg (id INT); CREATE VIEW kaputt AS SELECT id FROM weg; DROP TABLE weg;', 'letto_b');
    try {
      const filesBefore = await backupFiles();
      const run = await cli(['update', '--revision', String(STAND_IN.failing), '--yes']);
      console.log(`refused (the dump of letto_b fails): ${run.stderr.trim().split('\n').at(-2)}`);
      expect(run.exitCode, run.stdout + run.stderr).toBe(1);
      expect(run.stdout).toContain('Dumping database letto_b');
      expect(run.stderr).toMatch(/letto_b/);
      expect(run.stderr).toMatch(/The update was refused: no dump, no update; every LeTTo container runs revision 100 again \(stopped for the dump and started again; no image tag had moved\)/);
      // the dump of letto_a, made before letto_b's failed, is removed too: nothing left behind
      expect(await backupFiles()).toEqual(filesBefore);
      await expect(stat(join(state, 'journal.json'))).rejects.toThrow();
      await expectLettoOn(STAND_IN.old);
    } finally {
      await server!.sql('DROP VIEW IF EXISTS kaputt;', 'letto_b');
    }
    expect(await contents()).toEqual(contentBefore);
  }, TIMEOUT);

  it('(a) revision 105 migrates the databases of the schools (its LTI service only writes a row) and fails its health check: exit 3, the databases of the schools restored to the checksum of every table, lettolti left alone with that row, revision 100 answers and writes again; history, runs.jsonl and status say so', async () => {
    const before = await contents();
    const started = Date.now();
    const run = await cli(['update', '--revision', String(STAND_IN.failing), '--yes']);
    failingRunMs = Date.now() - started;
    console.log(`update to the failing revision: exit ${run.exitCode} after ${(failingRunMs / 1000).toFixed(1)} s:\n${run.stdout}`);
    expect(run.exitCode, run.stdout + run.stderr).toBe(3);
    // the schools' databases were migrated: restored; the LTI service's only got a row: left alone, the row kept
    expect(run.stderr).toContain('Databases letto_a, letto_b restored from the dump taken before the update (their schemas had changed); database lettolti left as it is (its schema had not changed).');
    expect(await contents()).toEqual(before);
    expect(await writtenByFailing()).toBe(true);
    await expectLettoOn(STAND_IN.old);
    expect(await backupFiles()).toEqual(DATABASES.flatMap((db) => [`letto-${STAND_IN.old}.${db}.sql.gz`, `letto-${STAND_IN.old}.${db}.sql.gz.json`]).sort());
    const last = (await readJsonLines(join(state, 'runs.jsonl'))).at(-1);
    expect(last).toMatchObject({ command: 'update', to: STAND_IN.failing, result: 'rolled-back', database: 'restored' });
    const history = await cli(['history']);
    expect(history.stdout).toMatch(/rolled-back .* database restored/);
    await expect(stat(join(state, 'journal.json'))).rejects.toThrow();
    // the root password is nowhere letto-update writes: output, state folder, dump sidecars
    expect(run.stdout + run.stderr).not.toContain(server!.rootPassword);
    for (const dir of [state, backups]) {
      for (const name of await readdir(dir)) {
        if (!name.endsWith('.sql.gz')) expect(await readFile(join(dir, name), 'utf8').catch(() => ''), join(dir, name)).not.toContain(server!.rootPassword);
      }
    }
    const status = await cli(['status']);
    expect(status.stdout).toMatch(new RegExp(`^database: letto_\\*, lettolti dumped before every update; newest: revision ${STAND_IN.old} \\(letto_a, letto_b, lettolti, .*\\) in ${backups}$`, 'm'));
  }, TIMEOUT);

  it('(d) kill -9 at seeded random moments of the update to 105, and during the dump and the restore of letto_b, each followed by the admin\'s immediate re-run: each database as before or as the dump, never between, and LeTTo answers', async () => {
    const random = prng(testSeed('docker database kills'));
    const update = ['--config', config, 'update', '--revision', String(STAND_IN.failing), '--yes'];
    const opts = { env: { DOCKER_CONFIG: registry!.dockerConfig }, timeoutMs: 280_000 };
    // after the random kills, two aimed ones: as letto_b's dump begins (letto_a's is whole by then, LeTTo
    // stopped), and 0–1500 ms after letto_b's restore began (letto_a restored by then; a load of a few MiB
    // takes a few hundred ms, after its checks, the drop and create, each a docker exec)
    const aims = [
      { text: 'Dumping database letto_b', delayMs: 0 },
      { text: 'The schema of database letto_b changed: restoring it', delayMs: Math.round(random() * 1500) },
    ];
    for (let n = 0; n < KILLS + aims.length; n++) {
      const before = await contents();
      const group = random() < 0.5;
      let context: string;
      const aim = aims[n - KILLS];
      if (!aim) {
        const delayMs = Math.round(random() * failingRunMs);
        context = `kill ${n + 1} of ${KILLS}: ${(await killAfter(update, opts, { delayMs, group })).context}`;
      } else {
        const child = spawnCli(update, { ...opts, detached: true });
        const seen = (await outputUntil(child, aim.text)).includes(aim.text);
        await new Promise((r) => setTimeout(r, aim.delayMs));
        try {
          if (group) process.kill(-child.pid!, 'SIGKILL');
          else child.kill('SIGKILL');
        } catch {
          // it ended first: the context says so
        }
        const result = await child;
        // where it hit: letto_b's tables and rows right after the kill (a restore cut short has fewer)
        const cut = await server!.sql("SELECT COUNT(*), IFNULL(SUM(TABLE_ROWS), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'letto_b';").catch((e: Error) => e.message);
        context = `aimed kill of the ${group ? 'process group' : 'process'} ${aim.delayMs} ms after "${aim.text}" (${seen ? 'seen' : 'never seen'}; ${result.signal ?? `ended first, exit ${result.exitCode}`}; letto_b then: tables and rows ${cut.replace('\t', ' ')})`;
        expect(result.signal, context).toBe('SIGKILL');
      }
      const next = await cli(['recover']);
      console.log(`${context}; the re-run (recover): exit ${next.exitCode}: ${(next.stdout + next.stderr).trim().split('\n').slice(-3).join(' | ')}`);
      expect(next.exitCode, `${context}\n${next.stdout}${next.stderr}`).toBe(0);
      // before the update and the dump are the same but for `health` (the dump is taken with LeTTo stopped);
      // lettolti may keep the row of the failing revision (no schema change, left alone), see contents()
      const after = await contents();
      for (const db of DATABASES) expect(after[db], `${context}: ${db}`).toBe(before[db]);
      console.log(`${context}: lettolti ${(await writtenByFailing()) ? 'keeps' : 'has no'} the row of revision ${STAND_IN.failing}; backups: ${(await backupFiles()).join(' ')}`);
      expect((await backupFiles()).filter((f) => f.endsWith('.tmp')), context).toEqual([]);
      await expectLettoOn(STAND_IN.old);
      await expect(stat(join(state, 'journal.json')), context).rejects.toThrow();
    }
  }, Math.max(TIMEOUT, (KILLS + 2) * 150_000));

  it('(b) revision 101 migrates and passes: exit 0, the schema stays migrated, the dumps are in paths.backups, mode 600, with their sidecars', async () => {
    await startFromOld();
    beforePassing = await contents();
    const started = Date.now();
    const run = await cli(['update', '--revision', String(STAND_IN.passing), '--yes']);
    console.log(`update to the passing revision: exit ${run.exitCode} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    await expectLettoOn(STAND_IN.passing);
    for (const db of DATABASES) {
      expect(await server!.sql(`SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='${db}' AND TABLE_NAME='benutzer' AND COLUMN_NAME='rolle';`), db).toBe('1');
      expect(await server!.sql(`SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA='${db}' AND TABLE_NAME IN ('kompetenz', 'pruefung', 'test');`), db).toBe('kompetenz,pruefung');
      const dump = join(backups, `letto-${STAND_IN.old}.${db}.sql.gz`);
      for (const file of [dump, `${dump}.json`]) {
        const info = await stat(file);
        expect(info.mode & 0o777, file).toBe(0o600);
        expect(info.uid, file).toBe(0);
        expect(info.mtimeMs, file).toBeGreaterThanOrEqual(started - 1000);
      }
      const sidecar = JSON.parse(await readFile(`${dump}.json`, 'utf8')) as { database: string; revision: number; sha256: string };
      expect(sidecar).toMatchObject({ database: db, revision: STAND_IN.old });
      expect(sidecar.sha256).toBe(createHash('sha256').update(await readFile(dump)).digest('hex'));
    }
    expect((await readJsonLines(join(state, 'runs.jsonl'))).at(-1)).toMatchObject({ command: 'update', to: STAND_IN.passing, result: 'updated' });
  }, TIMEOUT);

  it('(e) rollback by hand after (b): refused (and the dry run says why) until --restore-database or --keep-database is chosen; --restore-database gives back the dump of revision 100', async () => {
    expect(beforePassing, 'case (b) ran').not.toBeNull();
    const plan = await cli(['rollback', '--dry-run']);
    expect(plan.exitCode, plan.stdout + plan.stderr).toBe(1);
    expect(plan.stdout).toMatch(new RegExp(`would roll LeTTo back from revision ${STAND_IN.passing} to ${STAND_IN.old}; .*It would refuse: The schema of database letto_a.* differs from the dump taken when revision ${STAND_IN.old} was left`));
    const refused = await cli(['rollback', '--yes']);
    expect(refused.exitCode, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/--restore-database.*--keep-database/s);
    expect(await revisions()).toEqual({ 'lettoserver-a': STAND_IN.passing, 'lettoserver-b': STAND_IN.passing, 'letto-service-lti': STAND_IN.passing });
    const keep = await cli(['rollback', '--dry-run', '--keep-database']);
    expect(keep.exitCode, keep.stdout + keep.stderr).toBe(0);
    const run = await cli(['rollback', '--yes', '--restore-database']);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    await expectLettoOn(STAND_IN.old);
    expect(await contents()).toEqual(beforePassing);
    // the databases of revision 101 were dumped first: the way back to it
    expect(await backupFiles()).toEqual(expect.arrayContaining(DATABASES.flatMap((db) => [`letto-${STAND_IN.passing}.${db}.sql.gz`, `letto-${STAND_IN.passing}.${db}.sql.gz.json`])));
    expect((await readJsonLines(join(state, 'runs.jsonl'))).at(-1)).toMatchObject({ command: 'rollback', database: 'restored' });
  }, TIMEOUT);
});
