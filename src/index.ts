/** Library entry point: the runbook operations and their types, for embedding and tests. */
export { loadConfig, configSchema, type Config } from './config/config.js';
export { ExitCode, LettoError, ConfigError, UsageError, BusyError, DownloadError, VerifyError, ScriptError } from './errors.js';
export { openSession, type Session } from './config/session.js';
export { runUpdate, type RunReport, type UpdateOptions } from './runbook/update.js';
export { runRollback, type RollbackOptions } from './runbook/rollback.js';
export { runCheck, runStatus, runList, type CheckReport, type StatusReport, type ListReport } from './report/inspect.js';
export { parseRevision, type Revision, type Channel } from './revision.js';
export { verifyWar, readWarRevision } from './war/verify.js';
export { parseArchiveListing } from './war/archive.js';
export { downloadRevision } from './war/download.js';
