/**
 * Step "restore": puts a database back as its dump holds it. The dump is checked against its sidecar
 * first (size and SHA-256); then the database is dropped and created again with its character set
 * and collation, and the dump is loaded into it through the server's own client. Grants on the
 * database (`GRANT … ON letto.*`) live in the server's grant tables, not in the database, so LeTTo's
 * user keeps working. The restore is repeatable from the file: a run killed half-way through restores
 * again from the start (journal step `restore`), so the database never stays between the two.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { explainFailure, query, quoteName, quoteString, startTool, type Connection } from './connection.js';
import { verifyDump, type DumpRecord } from './dump.js';
import { databaseCharset } from './fingerprint.js';
import { injectFault } from '../system/fault.js';
import { LettoError } from '../errors.js';

/**
 * Restores `record.database` from `record.path` (see the module comment).
 * @param timeoutSeconds the client is killed after this long (`database.timeout`).
 * @throws LettoError when the dump is damaged, the server refuses or the time is up; the database may then be
 *   half-loaded, and the caller's journal step `restore` makes the next run load it again.
 */
export async function restoreDatabase(connection: Connection, record: DumpRecord, timeoutSeconds = 3600): Promise<void> {
  await verifyDump(record);
  const charset = await databaseCharset(connection, record.database);
  const name = quoteName(record.database);
  const create = charset ? `CREATE DATABASE ${name} CHARACTER SET ${quoteString(charset.charset)} COLLATE ${quoteString(charset.collation)};` : `CREATE DATABASE ${name};`;
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
