/**
 * A fingerprint of a database's schema: the SHA-256 of its tables (name and type), columns (table,
 * position, name, type, nullability, default) and indexes (table, name, position, column, unique),
 * read from `information_schema`, sorted. Rows do not count: two databases with the same tables,
 * columns and indexes have the same fingerprint whatever they hold. A new revision that migrates the
 * schema when it starts changes it; one that only writes rows does not.
 */
import { createHash } from 'node:crypto';
import { query, quoteString, type Connection } from './connection.js';

/**
 * The fingerprint of `database` (hex SHA-256; a database without tables has the hash of nothing).
 * @throws LettoError when the server cannot be asked.
 */
export async function schemaFingerprint(connection: Connection, database: string): Promise<string> {
  const name = quoteString(database);
  const sql = [
    `SELECT 'T', TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${name};`,
    `SELECT 'C', TABLE_NAME, LPAD(ORDINAL_POSITION, 5, '0'), COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, IFNULL(COLUMN_DEFAULT, '<none>') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ${name};`,
    `SELECT 'I', TABLE_NAME, INDEX_NAME, LPAD(SEQ_IN_INDEX, 5, '0'), COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ${name};`,
  ].join('\n');
  const lines = (await query(connection, sql)).map((row) => row.join('\t')).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/** The size of `database` in bytes (data and indexes, from `information_schema.TABLES`); 0 when it has no tables. */
export async function databaseBytes(connection: Connection, database: string): Promise<number> {
  const rows = await query(connection, `SELECT IFNULL(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${quoteString(database)};`);
  return Number(rows[0]?.[0] ?? 0);
}

/** Whether `database` exists on the server. */
export async function databaseExists(connection: Connection, database: string): Promise<boolean> {
  const rows = await query(connection, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${quoteString(database)};`);
  return rows[0]?.[0] === '1';
}

/** `database`'s default character set and collation (for re-creating it as it was). */
export async function databaseCharset(connection: Connection, database: string): Promise<{ charset: string; collation: string } | null> {
  const rows = await query(connection, `SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${quoteString(database)};`);
  const row = rows[0];
  return row && row[0] && row[1] ? { charset: row[0], collation: row[1] } : null;
}

/**
 * The databases the config names: plain names as they are, names ending in `*` (e.g. `letto_*`)
 * expanded to every database on the server that starts with the rest, sorted.
 */
export async function expandDatabases(connection: Connection, names: string[]): Promise<string[]> {
  const found = new Set<string>();
  const patterns = names.filter((n) => n.endsWith('*'));
  for (const name of names) if (!name.endsWith('*')) found.add(name);
  if (patterns.length > 0) {
    const all = (await query(connection, 'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA;')).map((r) => r[0] ?? '');
    for (const pattern of patterns) for (const db of all) if (db.startsWith(pattern.slice(0, -1))) found.add(db);
  }
  return [...found].sort();
}
