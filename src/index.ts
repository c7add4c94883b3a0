/** Library entry point: the runbook operations and their types, for embedding and tests. */
export { loadConfig, configSchema, type Config } from './config.js';
export { ExitCode, LettoError, ConfigError, UsageError, BusyError, DownloadError, VerifyError, ScriptError } from './errors.js';
export { openSession, type Session } from './session.js';
export { runUpdate, type RunReport, type UpdateOptions } from './update.js';
export { runRollback, type RollbackOptions } from './rollback.js';
export { runCheck, runStatus, runList, type CheckReport, type StatusReport, type ListReport } from './inspect.js';
export { parseRevision, type Revision, type Channel } from './revision.js';
export { verifyWar, readWarRevision } from './war.js';
export { parseArchiveListing } from './archive.js';
export { downloadRevision } from './steps/download.js';
