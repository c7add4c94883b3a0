/**
 * Step "restore": puts a database back as its dump holds it. The dump is checked against its sidecar
 * first (size and SHA-256); then every other connection that uses the database is ended, the database
 * is dropped and created again with its character set and collation, and the dump is loaded into it
 * through the server's own client. Grants on the database (`GRANT … ON letto.*`) live in the server's
 * grant tables, not in the database, so LeTTo's user keeps working. The restore is repeatable from the
 * file: a run killed half-way through restores again from the start (journal step `restore`), so the
 * database never stays between the two.
 *
 * Why other connections are ended: a restore only runs with LeTTo stopped (an automatic rollback
 * before the previous revision starts, recovery before it starts, `rollback --restore-database` after
 * the stop; in a Docker install every LeTTo container but the database's is stopped first), so a
 * connection whose default database is the one restored can only be a leftover — above
 * all the client of a killed run that was loading this dump (killing letto-update does not kill the
 * `mariadb` it started, nor the one `docker exec` started in the container: at the end of its input it
 * still runs the statements it has read). Its connection keeps the database's name, so its later
 * `CREATE TABLE` and `INSERT`s would land in the database created afresh here. Each such connection is
 * ended with `KILL CONNECTION` (found in `information_schema.PROCESSLIST`, which shows the user its own
 * connections, and every one with the PROCESS privilege) and the restore waits until they are gone.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { explainFailure, query, quoteName, quoteString, startTool, type Connection } from './connection.js';
import { verifyDump, type DumpRecord } from './dump.js';
import { databaseCharset } from './fingerprint.js';
import { injectFault } from '../system/fault.js';
import { LettoError } from '../errors.js';

/** How long {@link endConnections} waits by default for ended connections to go (a killed statement is rolled back first). */
export const END_CONNECTIONS_SECONDS = 60;

/**
 * Restores `record.database` from `record.path` (see the module comment).
 * @param timeoutSeconds the client is killed after this long (`database.timeout`).
 * @throws LettoError when the dump is damaged, another connection on the database cannot be ended, the
 *   server refuses or the time is up; the database may then be half-loaded, and the caller's journal
 *   step `restore` makes the next run load it again.
 */
export async function restoreDatabase(connection: Connection, record: DumpRecord, timeoutSeconds = 3600): Promise<void> {
  await verifyDump(record);
  const charset = await databaseCharset(connection, record.database);
  const name = quoteName(record.database);
  const create = charset ? `CREATE DATABASE ${name} CHARACTER SET ${quoteString(charset.charset)} COLLATE ${quoteString(charset.collation)};` : `CREATE DATABASE ${name};`;
  await endConnections(connection, record.database);
  await query(connection, `DROP DATABASE IF EXISTS ${name};\n${create}`);
  injectFault('restore:created');
  const tool = startTool(connection.client(record.database), ['pipe', 'ignore', 'pipe'], timeoutSeconds);
  try {
    await pipeline(createReadStream(record.path), createGunzip(), tool.child.stdin!);
  } catch (error) {
    // the client ended early (it says why on stderr): its exit code tells below
    if ((error as NodeJS.ErrnoException).code !== 'EPIPE' && (error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
      tool.child.kill('SIGKILL');
      throw error;
    }
  }
  const code = await tool.exited;
  if (tool.timedOut()) throw new LettoError(`Loading the dump ${record.path} into database ${record.database} did not finish within ${timeoutSeconds} s (database.timeout).`, { hint: 'Raise database.timeout; the next run (or `letto-update recover`) loads the dump again.' });
  if (code !== 0) throw explainFailure(`Loading the dump ${record.path} into database ${record.database}`, connection, tool.stderr(), code);
}

/** One connection from `information_schema.PROCESSLIST`: id, then user@host, command and statement for messages. */
interface Session {
  id: number;
  description: string;
}

/**
 * The connections other than this query's own whose default database is `database`. Of a statement
 * only its first three words are kept (`INSERT INTO benutzer`): its values may be pupils' data.
 * Tabs and line breaks in it are blanked in SQL, since `--raw` output splits rows at them.
 */
async function otherConnections(connection: Connection, database: string): Promise<Session[]> {
  const info = "REPLACE(REPLACE(REPLACE(LEFT(INFO, 200), CHAR(9), ' '), CHAR(10), ' '), CHAR(13), ' ')";
  const rows = await query(connection, `SELECT ID, USER, HOST, COMMAND, IFNULL(${info}, '') FROM information_schema.PROCESSLIST WHERE DB = ${quoteString(database)} AND ID <> CONNECTION_ID() ORDER BY ID;`);
  return rows
    .filter(([id]) => /^\d+$/.test(id ?? ''))
    .map(([id, user, host, command, statement]) => {
      const words = (statement ?? '').split(/\s+/).filter(Boolean).slice(0, 3).join(' ').slice(0, 80);
      return { id: Number(id), description: `${id} (${user}@${host}, ${command}${words ? `: ${words}` : ''})` };
    });
}

/**
 * Ends every other connection whose default database is `database` (`KILL CONNECTION`) and waits until
 * none is left; see the module comment for why that is safe and needed.
 * @param waitSeconds how long ended connections may take to go.
 * @throws LettoError when a connection may not be ended (another user's, without the privilege) or is
 *   still there after `waitSeconds`; nothing of the database was changed then.
 */
export async function endConnections(connection: Connection, database: string, waitSeconds = END_CONNECTIONS_SECONDS): Promise<void> {
  const deadline = Date.now() + waitSeconds * 1000;
  const ended = new Set<number>();
  for (;;) {
    const sessions = await otherConnections(connection, database);
    if (sessions.length === 0) return;
    if (Date.now() >= deadline) {
      throw new LettoError(
        `Database ${database} is still used by connection ${sessions.map((s) => s.description).join(', ')} on ${connection.where}, ${waitSeconds} s after letto-update ended it (KILL CONNECTION); it was not restored.`,
        { hint: 'LeTTo must be stopped while its database is restored: find the program behind that connection (SHOW PROCESSLIST), stop it, then run `letto-update recover`.' },
      );
    }
    for (const session of sessions.filter((s) => !ended.has(s.id))) {
      await killConnection(connection, database, session);
      ended.add(session.id);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** `KILL CONNECTION` of one session; one that went meanwhile is fine. @throws LettoError when the server refuses. */
async function killConnection(connection: Connection, database: string, session: Session): Promise<void> {
  try {
    await query(connection, `KILL CONNECTION ${session.id};`);
  } catch (error) {
    if (/Unknown thread id/i.test((error as Error).message)) return;
    throw new LettoError(`Database ${database} is used by connection ${session.description} on ${connection.where}, which letto-update could not end (${(error as Error).message}); it was not restored.`, {
      hint: 'LeTTo must be stopped while its database is restored: stop the program behind that connection, or give [database]\'s user the right to end it (root over the local socket), then run `letto-update recover`.',
      cause: error,
    });
  }
}
