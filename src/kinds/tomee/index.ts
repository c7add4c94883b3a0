import type { Context, WarFile } from '../../context.js';
import { explainDiskFull } from '../../errors.js';
import type { Revision } from '../../revision.js';
import { readInstalled } from '../../war/check.js';
import { restartTomee, tomeeStatus } from './scripts.js';
import { localTime } from '../../time.js';
import type { Adapter, Fetched } from '../types.js';

/**
 * The TomEE/WAR install (LeTTo's installs until 2023): `letto.war` in TomEE's webapps, started and
 * stopped by LeTTo's scripts. This adapter wraps the modules of this folder (install.ts, recover.ts,
 * plan.ts, scripts.ts, swap.ts, space.ts, health.ts) and the WAR's way in (src/war/). What `health`,
 * `status` and `check` use is imported at once; the rest (install, recover, download, backups) only when a step needs it, so a
 * monitoring plugin does not load the update's modules (issue 11).
 */
export const tomeeAdapter: Adapter = {
  kind: 'tomee',
  restartNote: 'TomEE will be restarted',
  beforeFetchNote: 'Checking free disk space in staging, backups and webapps',
  serverName: 'TomEE',
  restarted: { ok: 'TomEE was restarted and answers again', failed: 'TomEE was restarted but does not answer' },
  restartFailedHint: (ctx) => `Look at ${ctx.config.tomee.start}, ${ctx.config.tomee.status} and catalina.out; \`letto-update watchdog pause\` stops the watchdog while you work.`,
  async load() {
    await Promise.all([import('./install.js'), import('./recover.js'), import('../../war/download.js'), import('../../war/backups.js'), import('./health.js'), import('../../war/verify.js'), import('../../database/retention.js')]);
  },
  installed: (ctx) => readInstalled(ctx),
  beforeFetch: async (ctx, from, to, journal) => (await import('./install.js')).beforeDownload(ctx, from, to, journal),
  async fetch(ctx, revision, why) {
    const { downloadRevision } = await import('../../war/download.js');
    const war =
      why.purpose === 'rollback'
        ? await findWar(ctx, revision)
        : await explainDiskFull(`while downloading into ${ctx.config.paths.staging}`, 'Nothing was changed.', () => downloadRevision(ctx, revision, why.source));
    return { ...war, where: war.path };
  },
  install: async (ctx, from, fetched, journal, options) => (await import('./install.js')).installWar(ctx, from, asWar(fetched), journal, options),
  async conclude(ctx, fetched, protect) {
    const { discardStaged } = await import('../../war/download.js');
    const { pruneBackups } = await import('../../war/backups.js');
    const { pruneDumps } = await import('../../database/retention.js');
    await discardStaged(ctx, asWar(fetched));
    // a revision's database dumps go with its WAR backup
    await pruneDumps(ctx.config.paths.backups, await pruneBackups(ctx, protect));
  },
  recover: async (ctx, journal) => (await import('./recover.js')).recoverJournal(ctx, journal),
  async runtime(ctx) {
    const status = await tomeeStatus(ctx);
    return { ...status, description: `TomEE: ${status.running ? `running (PID ${status.pid})` : 'not running'}` };
  },
  restart: (ctx) => restartTomee(ctx),
  health: (ctx) => ({ url: ctx.config.tomee.health_url, timeout: ctx.config.tomee.health_timeout }),
  healthTargets: async (ctx) => [{ url: ctx.config.tomee.health_url, school: null }],
  waitHealthy: async (ctx) => (await import('./health.js')).waitHealthy(ctx),
  async listLocal(ctx) {
    const { listBackups } = await import('../../war/backups.js');
    return (await listBackups(ctx)).map((b) => ({ revision: b.revision, description: `${(b.bytes / 1024 / 1024).toFixed(1)} MiB  ${localTime(b.time)}` }));
  },
  listRemote: async (ctx) => (await import('../../war/download.js')).readArchive(ctx),
  planSteps: async (ctx) => (await import('./plan.js')).tomeePlanSteps(ctx),
};

/** A {@link Fetched} of this adapter is always a WAR file. */
function asWar(fetched: Fetched): WarFile {
  return fetched as Fetched & WarFile;
}

/** The WAR of `revision` for a rollback: a verified local backup, else downloaded from the archive into staging. */
async function findWar(ctx: Context, revision: Revision): Promise<WarFile> {
  const { listBackups } = await import('../../war/backups.js');
  const { downloadRevision } = await import('../../war/download.js');
  const { verifyWar } = await import('../../war/verify.js');
  const backup = (await listBackups(ctx)).find((b) => b.revision === revision);
  if (backup) {
    try {
      ctx.emit({ type: 'step', step: 'verify', message: `Verifying the backup ${backup.path}` });
      await verifyWar(backup.path, revision);
      return { path: backup.path, revision };
    } catch (error) {
      ctx.emit({ type: 'warn', message: `The backup ${backup.path} is not usable (${(error as Error).message}); trying the server's archive.` });
    }
  }
  return downloadRevision(ctx, revision, { kind: 'archive' });
}
