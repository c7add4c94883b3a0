/**
 * `update` of a TomEE install with a `[database]` section, through the built CLI, against a real
 * MariaDB server (started by the test) and the layout's stand-in scripts: the start script of a
 * migrating revision changes the schema as LeTTo would when it starts (a NOT NULL column without
 * default, a new table, a renamed table); the health page of revision 6880 (the old one) writes a row
 * into `health` on every request, as a running LeTTo writes. Exit 3 restores the dump when the schema
 * changed and leaves the data alone when it did not; a passing revision keeps its schema; a dump that
 * cannot be made refuses the update with LeTTo running as before.
 */
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readWarRevision } from '../../src/war/verify.js';
import { makeServerLayout, runCli, spawnCli, type ServerLayout, writeConfig } from '../support/cli.js';
import { prng, testSeed } from '../support/seeded.js';
import { populateDownloadRoot, startDownloadServer, type DownloadServer } from '../support/download-server.js';
import { createLettoDatabase, mariadbAvailable, MIGRATION_SQL, startMariaDb, type MariaDb } from '../support/mariadb.js';

const required = process.env.LETTO_E2E_REQUIRED === '1';
const available = mariadbAvailable();
if (required && !available) throw new Error('LETTO_E2E_REQUIRED=1 but mariadb-server is not installed (apt install mariadb-server)');

const USER = 'letto';
const PASSWORD = 'geheim';
let root: string;
let server: DownloadServer;
let db: MariaDb;
let healthUrl: string;
let closeHealth: () => Promise<void>;
let current: ServerLayout | null = null;
/** Revisions whose stand-in answers its health check. */
const healthy = new Set([6880, 6886]);

/** Every table but `health` (which the old revision writes to on each health request): CHECKSUM TABLE and columns. */
async function content(): Promise<string> {
  return (await db.checksums('letto')).split('\n').filter((line) => !/\bhealth\b/.test(line)).join('\n');
}

describe.skipIf(!available)('update with a [database] section (real MariaDB, stand-in scripts)', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'letto-dbupd-'));
    await populateDownloadRoot(root, { stable: 6886, daily: 6890, archive: [6870] });
    server = await startDownloadServer({ root, tls: true, user: USER, password: PASSWORD });
    db = await startMariaDb();
    const health = createServer((req, res) => {
      void (async () => {
        const layout = current;
        const running = layout ? await stat(layout.runningFlag).then(() => true, () => false) : false;
        const revision = layout && running ? await readWarRevision(layout.war).catch(() => null) : null;
        const ok = revision !== null && healthy.has(revision) && req.url === '/letto/test.jsf';
        // the old revision writes a row on every request: it works against the schema it knows
        if (ok && revision === 6880) await db.sql('INSERT INTO health (revision) VALUES (6880);', 'letto').catch(() => undefined);
        res.writeHead(ok ? 200 : 404).end(ok ? 'ok\n' : 'no\n');
      })();
    });
    await new Promise<void>((resolve) => health.listen(0, '127.0.0.1', resolve));
    healthUrl = `http://127.0.0.1:${(health.address() as AddressInfo).port}/letto/test.jsf`;
    closeHealth = () => new Promise<void>((resolve) => health.close(() => resolve()));
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    await closeHealth?.();
    await db?.cleanup();
    if (root) await rm(root, { recursive: true, force: true });
  });

  afterEach(async () => {
    await current?.cleanup();
    current = null;
  });

  /**
   * A fresh `letto` database and layout (`accessLog`: with {@link ACCESS_LOG_SQL}'s table); `migrating` lists the revisions whose start script migrates
   * the schema, `writing` those whose start writes a row (data, not schema).
   */
  async function setup(opts: { migrating?: number[]; writing?: number[]; database?: string; paths?: Record<string, string | number>; accessLog?: boolean } = {}): Promise<{ layout: ServerLayout; config: string }> {
    await db.sql('DROP DATABASE IF EXISTS letto;');
    await createLettoDatabase(db, 'letto', 3);
    if (opts.accessLog) await db.sql(ACCESS_LOG_SQL, 'letto');
    const layout = await makeServerLayout({ revision: 6880 });
    current = layout;
    const migration = join(layout.root, 'migrate.sql');
    await writeFile(migration, MIGRATION_SQL);
    const client = `mariadb --no-defaults --socket='${db.socket}' --user=root letto`;
    const revision = `rev=$(unzip -p '${layout.war}' WEB-INF/classes/revision.txt | head -1 | tr -d ' \\r')`;
    const cases = [
      ...(opts.migrating ?? []).map((r) => `[ "$rev" = ${r} ] && ${client} < '${migration}'`),
      ...(opts.writing ?? []).map((r) => `[ "$rev" = ${r} ] && echo "INSERT INTO schule (name, kurz) VALUES ('written by ${r}', 'w${r}');" | ${client}`),
    ];
    await writeFile(layout.scripts.start, `#!/bin/sh\necho start >> '${layout.callsFile}'\n${revision}\n${cases.join('\n')}\ntouch '${layout.runningFlag}'\nexit 0\n`);
    await chmod(layout.scripts.start, 0o755);
    const config = await writeConfig(
      layout,
      { url: server.url, caPem: server.caPem, user: USER },
      { password: PASSWORD, tomee: { health_url: healthUrl, health_timeout: 2 }, ...(opts.paths ? { paths: opts.paths } : {}), extra: opts.database ?? `[database]\nsocket = "${db.socket}"\ndatabases = ["letto"]\n` },
    );
    return { layout, config };
  }

  it('a migrating revision that fails its health check: exit 3, the dump restored, the old revision answers and writes again', async () => {
    const { layout, config } = await setup({ migrating: [6890] });
    const before = await content();
    const r = await runCli(['--config', config, 'update', '--yes', '--channel', 'daily']);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/Database letto restored from the dump taken before the update \(its schema had changed\)/);
    expect(await content()).toBe(before);
    expect(await readWarRevision(layout.war)).toBe(6880);
    // the old revision's stand-in answered 200 after the rollback, and wrote its row into the restored schema
    expect(Number(await db.sql('SELECT COUNT(*) FROM health;', 'letto'))).toBeGreaterThan(0);
    const dump = join(layout.backups, 'letto-6880.letto.sql.gz');
    expect((await stat(dump)).mode & 0o777).toBe(0o600);
    const record = JSON.parse(await readFile(`${dump}.json`, 'utf8')) as { sha256: string; database: string };
    expect(record).toMatchObject({ database: 'letto', revision: 6880 });
    const runs = (await readFile(join(layout.state, 'runs.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { result: string; message: string });
    expect(runs.at(-1)).toMatchObject({ result: 'rolled-back', database: 'restored' });
    expect(runs.at(-1)!.message).toMatch(/restored from the dump/);
    const history = await runCli(['--config', config, 'history']);
    expect(history.stdout).toMatch(/rolled-back .* database restored/);
    expect(await readdir(layout.state)).not.toContain('journal.json');
  }, 120_000);

  it('a revision that fails without migrating: exit 3, the data is left alone (no restore)', async () => {
    const { config } = await setup({ writing: [6890] });
    const r = await runCli(['--config', config, 'update', '--yes', '--channel', 'daily']);
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/Database letto left as it is \(its schema had not changed\)/);
    // the row the failing revision wrote is still there: nothing was restored
    expect(await db.sql("SELECT COUNT(*) FROM schule WHERE kurz = 'w6890';", 'letto')).toBe('1');
    const runs = (await readFile(join(current!.state, 'runs.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { database?: string });
    expect(runs.at(-1)).toMatchObject({ database: 'left alone' });
  }, 120_000);

  it('a migrating revision that passes keeps its schema and data', async () => {
    const { layout, config } = await setup({ migrating: [6886] });
    const plan = await runCli(['--config', config, 'update', '--dry-run']);
    expect(plan.exitCode, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/^ {2}ok +database dump +letto \(\d+\.\d MiB\) would be dumped into .* with LeTTo stopped, before the swap; \d+ MiB free there; the database server on .* answers$/m);
    expect(await readdir(layout.backups)).toEqual([]);
    const r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await readWarRevision(layout.war)).toBe(6886);
    expect(await db.sql("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='letto' AND TABLE_NAME='benutzer' AND COLUMN_NAME='rolle';")).toBe('1');
    expect(await db.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='letto' AND TABLE_NAME='pruefung';")).toBe('1');
    expect(await readdir(layout.backups)).toEqual(['letto-6880.letto.sql.gz', 'letto-6880.letto.sql.gz.json', 'letto-6880.war']);
    const status = await runCli(['--config', config, 'status']);
    expect(status.stdout).toMatch(/^database: letto dumped before every update; newest: revision 6880 \(letto, .*\) in /m);
  }, 120_000);

  it('rollback by hand after a migrating update: refused until --restore-database or --keep-database is chosen; the dry run shows which applies', async () => {
    const { layout, config } = await setup({ migrating: [6886] });
    const before = await content();
    expect((await runCli(['--config', config, 'update', '--yes'])).exitCode).toBe(0);
    await db.sql("INSERT INTO schule (name, kurz, rolle) VALUES ('written after the update', 'after', 'x');", 'letto').catch(async () => db.sql("INSERT INTO schule (name, kurz) VALUES ('written after the update', 'after');", 'letto'));

    const plan = await runCli(['--config', config, 'rollback', '--dry-run']);
    expect(plan.exitCode).toBe(1);
    expect(plan.stdout).toMatch(/Dry run: would roll LeTTo back from revision 6886 to 6880; .* It would refuse: The schema of database letto differs from the dump taken when revision 6880 was left/);
    const refused = await runCli(['--config', config, 'rollback', '--yes']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/differs from the dump .* Nothing was changed\./);
    expect(refused.stderr).toMatch(/--restore-database.*--keep-database/s);
    expect(await readWarRevision(layout.war)).toBe(6886);
    const keep = await runCli(['--config', config, 'rollback', '--dry-run', '--keep-database']);
    expect(keep.exitCode).toBe(0);
    expect(keep.stdout).toMatch(/Database letto is kept: revision 6880 runs against today's schema/);

    const r = await runCli(['--config', config, 'rollback', '--yes', '--restore-database']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Database letto is restored from the dump taken when revision 6880 was left/);
    expect(await readWarRevision(layout.war)).toBe(6880);
    expect(await content()).toBe(before);
    // the database of revision 6886 was dumped first: the way back to it
    expect(await readdir(layout.backups)).toEqual(expect.arrayContaining(['letto-6886.letto.sql.gz', 'letto-6886.letto.sql.gz.json']));
    const runs = (await readFile(join(layout.state, 'runs.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { command: string; database?: string });
    expect(runs.at(-1)).toMatchObject({ command: 'rollback', database: 'restored' });
  }, 120_000);

  it('killed right after the restore dropped and created the database (fault point restore:created), then recover: the database is the dump again', async () => {
    const { layout, config } = await setup({ migrating: [6890] });
    const before = await content();
    const killed = await runCli(['--config', config, 'update', '--yes', '--channel', 'daily'], { env: { LETTO_UPDATE_FAULT: 'restore:created' } });
    expect(killed.signal).toBe('SIGKILL');
    expect(await db.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='letto';")).toBe('0');
    const r = await runCli(['--config', config, 'recover']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/Database letto restored from the dump taken before the update/);
    expect(await content()).toBe(before);
    expect(await readWarRevision(layout.war)).toBe(6880);
    const runs = (await readFile(join(layout.state, 'runs.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { command: string; database?: string });
    expect(runs.at(-1)).toMatchObject({ command: 'recover', database: 'restored' });
  }, 120_000);

  it('kill -9 at seeded random moments during the dump and during the restore, then the admin\'s immediate re-run: the database as before or as the dump, never between', async () => {
    const random = prng(testSeed('database kill test'));
    const kills = Number(process.env.LETTO_DATABASE_KILLS ?? 4);
    let cut = 0;
    let inTool = 0;
    for (let i = 0; i < kills; i++) {
      const phase = i % 2 === 0 ? 'dump' : 'restore';
      const { layout, config } = await setup({ migrating: [6890], accessLog: true });
      const before = await content();
      const tables = await db.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'letto';");
      const child = spawnCli(['--config', config, 'update', '--yes', '--channel', 'daily']);
      const tool = phase === 'dump' ? 'mariadb-dump' : 'mariadb';
      // every other pair of kills is aimed into the tool's run (a 3 MiB dump or its load takes 100-200 ms):
      // the delay counts from the moment the tool runs (an aimed restore kill: from the moment the load
      // created the dump's last table, the access log, whose rows are still to come); the others count from the journal's step
      const aimed = i % 4 < 2;
      const lastTable = aimed && phase === 'restore';
      const reached = await waitForStep(layout.state, phase, child);
      const started = aimed && reached && (await waitForTool(child, tool)) && (!lastTable || (await waitForTable(db, 'zugriff', child)));
      const delay = Math.round(random() * (aimed ? (lastTable ? 20 : 40) : phase === 'dump' ? 500 : 900));
      await new Promise((resolve) => setTimeout(resolve, delay));
      const during = await toolRunning(child.pid!, tool);
      child.kill('SIGKILL');
      const killed = await child;
      if (reached && killed.signal === 'SIGKILL') cut++;
      if (during && killed.signal === 'SIGKILL') inTool++;
      console.log(`kill ${i + 1}: ${phase} + ${delay} ms${aimed ? ` after ${lastTable ? 'the load created its last table' : `${tool} started`}` : ''}: ${killed.signal ?? `exit ${killed.exitCode}`}${during ? ` while ${tool} ran` : ''}`);
      if (aimed) expect(started && during && killed.signal === 'SIGKILL', `kill ${i + 1} was to land while ${tool} ran`).toBe(true);
      if (lastTable) {
        // once the killed run's client has run what it had read: every table is there (the schema fingerprint is
        // the dump's), rows are missing. Only the journal's `restore` step makes the re-run load the dump again.
        await waitForNoClient(db);
        expect(await db.sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'letto';")).toBe(tables);
        expect(Number(await db.sql('SELECT COUNT(*) FROM zugriff;', 'letto')), `kill ${i + 1} was to leave rows of the access log unloaded`).toBeLessThan(ACCESS_LOG_ROWS);
      }
      // the admin's immediate re-run: recover, or the update again (which recovers first, then fails again)
      const rerun = i % 4 < 2 ? ['recover'] : ['update', '--yes', '--channel', 'daily'];
      const r = await runCli(['--config', config, ...rerun]);
      expect([0, 3], r.stdout + r.stderr).toContain(r.exitCode);
      if (lastTable) expect(r.stdout + r.stderr).toMatch(/Database letto restored from the dump taken before the update/);
      expect(await content(), `kill ${i + 1} (${phase} + ${delay} ms)`).toBe(before);
      expect(await readWarRevision(layout.war)).toBe(6880);
      expect(await readdir(layout.state)).not.toContain('journal.json');
      expect((await readdir(layout.backups)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      await current?.cleanup();
      current = null;
    }
    console.log(`database kill test: ${cut} of ${kills} runs killed by SIGKILL after their journal reached the step, ${inTool} while the dump tool or the client ran`);
    expect(cut).toBeGreaterThan(0);
  }, 600_000);

  it('refusals before anything changed: access denied, server down, dump folder not writable, disk full during the dump', async () => {
    // access denied: an option file with a wrong password
    let { layout, config } = await setup({ database: '' });
    const options = join(layout.root, 'etc/my.cnf');
    await writeFile(options, '[client]\nuser=letto\npassword=wrong-secret\n', { mode: 0o600 });
    const rewrite = async (extra: string) => writeFile(config, (await readFile(config, 'utf8')) + extra);
    await rewrite(`[database]\nsocket = "${db.socket}"\noption_file = "${options}"\n`);
    let r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/access denied/);
    expect(r.stderr + r.stdout).not.toContain('wrong-secret');
    await expectUntouched(layout);

    // server down
    ({ layout, config } = await setup({ database: `[database]\nsocket = "${join(db.dir, 'gone.sock')}"\n` }));
    r = await runCli(['--config', config, 'update', '--yes']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/does not answer/);
    await expectUntouched(layout);

    // dump folder not writable: a read-only file system
    ({ layout, config } = await setup());
    await execa('mount', ['-t', 'tmpfs', '-o', 'ro,size=300m', 'tmpfs', layout.backups]);
    try {
      r = await runCli(['--config', config, 'update', '--yes']);
    } finally {
      await execa('umount', [layout.backups]);
    }
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/dump folder .* is not writable/);
    await expectUntouched(layout);

    // disk full during the dump: the stop script fills the backups file system after the free-space check passed
    const small = await mkdtemp(join(tmpdir(), 'letto-small-'));
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', small]);
    try {
      ({ layout, config } = await setup({ paths: { backups: join(small, 'backup'), free_space_margin: 0 } }));
      await mkdir(join(small, 'backup'), { recursive: true });
      await writeFile(layout.scripts.stop, `#!/bin/sh\necho stop >> '${layout.callsFile}'\nrm -f '${layout.runningFlag}'\ndd if=/dev/zero of='${small}/filler' bs=1M 2>/dev/null\nexit 0\n`);
      r = await runCli(['--config', config, 'update', '--yes']);
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/disk is full: the dump of database letto did not fit/);
      expect(r.stderr).toMatch(/The update was refused before anything changed.*TomEE runs revision 6880 again/);
      expect((await readdir(join(small, 'backup'))).filter((n) => n.includes('.sql'))).toEqual([]);
      expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
      expect(await stat(layout.runningFlag).then(() => true, () => false)).toBe(true);
    } finally {
      await execa('umount', [small]);
      await rm(small, { recursive: true, force: true });
    }
  }, 180_000);
});

/** Rows of the access log {@link ACCESS_LOG_SQL} makes. */
const ACCESS_LOG_ROWS = 40_000;

/**
 * A table `zugriff` (access log, about 4 MiB of rows): its name sorts last, so the dump creates it last,
 * and while its rows load every table of the dump exists — the schema fingerprint is the dump's while
 * rows are still missing.
 */
const ACCESS_LOG_SQL = `
  CREATE TABLE zugriff (id BIGINT PRIMARY KEY AUTO_INCREMENT, benutzer INT NOT NULL, zeit DATETIME NOT NULL, pfad VARCHAR(200) NOT NULL);
  INSERT INTO zugriff (benutzer, zeit, pfad) SELECT 1 + (seq % 300), '2026-01-01' + INTERVAL seq SECOND, CONCAT('/letto/test.jsf?id=', seq, '&s=', SHA2(seq, 256)) FROM seq_1_to_${ACCESS_LOG_ROWS};
`;

/** Waits until the table `name` of `letto` exists in the server's data folder (true), or the run ends first (false). */
async function waitForTable(db: MariaDb, name: string, child: ReturnType<typeof spawnCli>): Promise<boolean> {
  let ended = false;
  void child.then(() => (ended = true), () => (ended = true));
  const frm = join(db.dir, 'data', 'letto', `${name}.frm`);
  while (!ended) {
    if (await stat(frm).then(() => true, () => false)) return true;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return false;
}

/** Waits (up to 10 s) until no connection uses `letto`: a killed run's client has run what it had read. */
async function waitForNoClient(db: MariaDb): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if ((await db.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = 'letto';")) === '0') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the killed run\'s client still uses database letto after 10 s');
}

/** Waits until the journal of the run records `step` (true), or the run ends first (false). */
async function waitForStep(state: string, step: string, child: ReturnType<typeof spawnCli>): Promise<boolean> {
  let ended = false;
  void child.then(() => (ended = true), () => (ended = true));
  while (!ended) {
    const journal = await readFile(join(state, 'journal.json'), 'utf8').catch(() => '');
    if (journal.includes(`"step": "${step}"`)) return true;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return false;
}

/**
 * Whether a child of `pid` named `name` (its /proc comm: `mariadb-dump`, `mariadb`) is running on the
 * database `letto` (its last argument): the dump or the load, not one of the short queries before them.
 */
async function toolRunning(pid: number, name: string): Promise<boolean> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean);
  for (const child of children) {
    const match = /^\d+ \((.*)\) (\S) /.exec(await readFile(`/proc/${child}/stat`, 'utf8').catch(() => ''));
    if (!match || match[1] !== name || match[2] === 'Z') continue;
    const argv = (await readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    if (argv.at(-1) === 'letto') return true;
  }
  return false;
}

/** Waits until the run has started `name` (true), or the run ends first (false). */
async function waitForTool(child: ReturnType<typeof spawnCli>, name: string): Promise<boolean> {
  let ended = false;
  void child.then(() => (ended = true), () => (ended = true));
  while (!ended) {
    if (await toolRunning(child.pid!, name)) return true;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return false;
}

/** Nothing was changed: the WAR, TomEE never stopped, no dump file, no journal. */
async function expectUntouched(layout: ServerLayout): Promise<void> {
  expect((await layout.warBytes()).equals(layout.initialWar)).toBe(true);
  expect((await layout.calls()).filter((c) => c !== 'status')).toEqual([]);
  expect((await readdir(layout.backups).catch(() => [])).filter((n) => n.includes('.sql'))).toEqual([]);
  expect(await readdir(layout.state)).not.toContain('journal.json');
}
