/**
 * A real MariaDB server for the tests (Debian's `mariadb-server`), started without systemd: its own
 * data folder made by `mariadb-install-db` in a temporary folder, its own socket and TCP port on
 * loopback, `--user=root` when the test runs as root. Root connects over the socket (unix_socket
 * authentication, as on Debian). Also a LeTTo-like database: several tables with a few MiB of rows.
 */
import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

/** Where Debian puts the server. */
export const MARIADBD = '/usr/sbin/mariadbd';

/** Whether the server and its tools are installed. */
export function mariadbAvailable(): boolean {
  return existsSync(MARIADBD) && existsSync('/usr/bin/mariadb-install-db') && existsSync('/usr/bin/mariadb-dump');
}

/** A running test server. */
export interface MariaDb {
  dir: string;
  socket: string;
  port: number;
  /** Runs SQL as root over the socket; returns stdout (tab-separated rows). */
  sql(sql: string, database?: string): Promise<string>;
  /** `CHECKSUM TABLE` of every table of `database`, plus the table list with columns: equal output, equal content. */
  checksums(database: string): Promise<string>;
  /** Stops the server (SIGTERM, then waits). */
  stop(): Promise<void>;
  /** Starts it again after {@link MariaDb.stop}. */
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  cleanup(): Promise<void>;
}

/** Starts a server in a fresh temporary folder. @throws when it does not answer within 60 s. */
export async function startMariaDb(): Promise<MariaDb> {
  const dir = await mkdtemp(join(tmpdir(), 'letto-mariadb-'));
  const datadir = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  await execa('mariadb-install-db', ['--no-defaults', `--datadir=${datadir}`, ...(asRoot ? ['--user=root'] : []), '--auth-root-authentication-method=socket', '--skip-test-db'], { stdio: 'ignore' });
  let child: ChildProcess | null = null;
  const client = (database?: string) => ['--no-defaults', `--socket=${socket}`, '--user=root', '--batch', '--skip-column-names', ...(database ? [database] : [])];
  const sql = async (text: string, database?: string) => (await execa('mariadb', client(database), { input: text })).stdout;
  const start = async () => {
    child = spawn(
      MARIADBD,
      ['--no-defaults', `--datadir=${datadir}`, `--socket=${socket}`, `--port=${port}`, '--bind-address=127.0.0.1', `--pid-file=${join(dir, 'mysqld.pid')}`, `--log-error=${join(dir, 'error.log')}`, '--innodb-buffer-pool-size=64M', '--innodb-log-file-size=16M', ...(asRoot ? ['--user=root'] : [])],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 600; i++) {
      if (child.exitCode !== null) throw new Error(`mariadbd exited with ${child.exitCode}; see ${join(dir, 'error.log')}`);
      if (await sql('SELECT 1;').then(() => true, () => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('mariadbd did not answer within 60 s');
  };
  const stop = async () => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    dir,
    socket,
    port,
    sql,
    checksums: (database) => tableChecksums(sql, database),
    stop,
    start,
    async cleanup() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `CHECKSUM TABLE … EXTENDED` of every table of `database`, after its columns (name, type, nullability,
 * default): equal output, equal content. `sql` runs SQL as root and returns its tab-separated rows.
 */
export async function tableChecksums(sql: (text: string) => Promise<string>, database: string): Promise<string> {
  const tables = (await sql(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='${database}' ORDER BY TABLE_NAME;`)).split('\n').filter(Boolean);
  const columns = await sql(`SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='${database}' ORDER BY TABLE_NAME, ORDINAL_POSITION;`);
  const sums = tables.length ? await sql(`CHECKSUM TABLE ${tables.map((t) => `\`${database}\`.\`${t}\``).join(', ')} EXTENDED;`) : '';
  return `${columns}\n${sums}`;
}

/**
 * A LeTTo-like database `name`: schools, users, classes, tests, results (several tables, foreign keys,
 * indexes), with about `mib` MiB of rows, and a user `letto` with a password that may use it.
 */
export async function createLettoDatabase(db: Pick<MariaDb, 'sql'>, name: string, mib = 3): Promise<void> {
  const rows = Math.max(100, Math.round((mib * 1024 * 1024) / 400));
  await db.sql(`
    CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
    USE \`${name}\`;
    CREATE TABLE schule (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, kurz VARCHAR(20) NOT NULL UNIQUE);
    CREATE TABLE klasse (id INT PRIMARY KEY AUTO_INCREMENT, schule INT NOT NULL, name VARCHAR(50) NOT NULL, jahr SMALLINT NOT NULL DEFAULT 2026, FOREIGN KEY (schule) REFERENCES schule(id), INDEX (name));
    CREATE TABLE benutzer (id INT PRIMARY KEY AUTO_INCREMENT, klasse INT NULL, login VARCHAR(60) NOT NULL UNIQUE, vorname VARCHAR(80), nachname VARCHAR(80), email VARCHAR(120), angelegt DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, FOREIGN KEY (klasse) REFERENCES klasse(id));
    CREATE TABLE test (id INT PRIMARY KEY AUTO_INCREMENT, titel VARCHAR(200) NOT NULL, angabe TEXT NOT NULL);
    CREATE TABLE ergebnis (id BIGINT PRIMARY KEY AUTO_INCREMENT, benutzer INT NOT NULL, test INT NOT NULL, punkte DECIMAL(6,2) NOT NULL, antwort TEXT, zeit DATETIME NOT NULL, INDEX (benutzer, test));
    CREATE TABLE health (id BIGINT PRIMARY KEY AUTO_INCREMENT, zeit DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, revision INT NOT NULL);
    INSERT INTO schule (name, kurz) VALUES ('HTL Test', 'htl'), ('BG Beispiel', 'bg');
    INSERT INTO klasse (schule, name) SELECT 1 + (seq % 2), CONCAT(seq, 'AHIT') FROM seq_1_to_40;
    INSERT INTO benutzer (klasse, login, vorname, nachname, email) SELECT 1 + (seq % 40), CONCAT('schueler', seq), CONCAT('Vorname', seq), CONCAT('Nachname', seq), CONCAT('s', seq, '@schule.at') FROM seq_1_to_${Math.ceil(rows / 10)};
    INSERT INTO test (titel, angabe) SELECT CONCAT('Test ', seq), REPEAT(CONCAT('Angabe ', seq, ' '), 20) FROM seq_1_to_200;
    INSERT INTO ergebnis (benutzer, test, punkte, antwort, zeit) SELECT 1 + (seq % ${Math.ceil(rows / 10)}), 1 + (seq % 200), (seq % 1000) / 10, CONCAT(MD5(seq), SHA2(seq, 256), MD5(seq * 7), ' Ä ö ü ß ''quoted'' \\\\ backslash'), '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_${rows};
    CREATE USER IF NOT EXISTS 'letto'@'localhost' IDENTIFIED BY 'lettopass';
    GRANT ALL PRIVILEGES ON \`${name}\`.* TO 'letto'@'localhost';
    ANALYZE TABLE schule, klasse, benutzer, test, ergebnis, health;
  `);
}

/** The schema migration of the next revision's stand-in: a NOT NULL column without default, a new table, a renamed table. */
export const MIGRATION_SQL = `
  ALTER TABLE benutzer ADD COLUMN rolle VARCHAR(20) NOT NULL;
  CREATE TABLE kompetenz (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL);
  RENAME TABLE test TO pruefung;
`;
