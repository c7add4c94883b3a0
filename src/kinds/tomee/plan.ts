/**
 * The checks of `update --dry-run` for a TomEE install (see src/runbook/plan.ts): who may act, the scripts,
 * the folders the update writes, symbolic links, the WAR on the download server (a HEAD: there, and its
 * real size), free space for it, and health_url answering now. Nothing is written; only the status script runs.
 */
import { dirname } from 'node:path';
import { warPath, type Context } from '../../context.js';
import { assertNoSymlinks, stagingNames } from './install.js';
import { executableBy, ok, fail, skip, writableFolder, type PlanStep } from '../plan-checks.js';
import { channelFiles } from '../../revision.js';
import { assertMayAct } from '../../config/session.js';
import { backupPathFor, backupTempPath } from '../../war/backups.js';
import { archiveWarUrl } from '../../war/download.js';
import { checkFreeSpace } from './space.js';
import { explodedPath, swapTempPath } from './swap.js';
import { tomeeStatus, type TomeeStatus } from './scripts.js';
import { databasePlanStep } from '../../database/plan.js';

const MIB = 1024 * 1024;

/** The TomEE checks in runbook order; `health_url` uses what `status script` found. */
export function tomeePlanSteps(ctx: Context): PlanStep[] {
  const { paths, tomee } = ctx.config;
  const user = ctx.serviceUser;
  let status: TomeeStatus | null = null;
  const steps: PlanStep[] = [
    {
      name: 'service user',
      needsInstall: false,
      async run() {
        assertMayAct(user);
        return ok(`${user.name} (uid ${user.uid}) runs TomEE; this run is uid ${process.getuid?.() ?? '?'}`);
      },
    },
    {
      name: 'status script',
      needsInstall: true,
      async run() {
        await executableBy(tomee.status, user);
        status = await tomeeStatus(ctx);
        return ok(`${tomee.status}: TomEE ${status.running ? `runs (PID ${status.pid})` : 'is not running (the update swaps the WAR and leaves it stopped)'}`);
      },
    },
  ];
  for (const [name, script] of [['stop script', tomee.stop], ['start script', tomee.start]] as const) {
    steps.push({ name, needsInstall: true, run: async () => ok(await executableBy(script, user)) });
  }
  for (const [name, folder] of [['webapps', tomee.webapps], ['staging', paths.staging], ['backups', paths.backups], ['state folder', ctx.state.dir]] as const) {
    steps.push({ name, needsInstall: true, run: async () => ok(await writableFolder(folder, name === 'webapps' ? user : null)) });
  }
  steps.push(
    {
      name: 'symlinks',
      needsInstall: true,
      async run(install) {
        const backup = backupPathFor(ctx, install!.from);
        const names = [...stagingNames(ctx, install!.target), warPath(ctx.config), swapTempPath(ctx), explodedPath(ctx), backup, backupTempPath(backup)];
        await assertNoSymlinks(names);
        return ok(`none of the ${names.length} names the update writes is a symbolic link`);
      },
    },
    databasePlanStep(ctx),
    ...warSteps(ctx),
    {
      name: 'health_url',
      needsInstall: true,
      async run() {
        const probe = await ctx.services.http.probe(tomee.health_url, 10);
        const answer = probe.ok ? `HTTP ${probe.status} in ${probe.ms} ms` : `no answer (${probe.error})`;
        const running = (status as TomeeStatus | null)?.running;
        if (running === false) {
          if (probe.ok && probe.status === 200) {
            return fail(`${tomee.health_url} answers HTTP 200 although the status script says TomEE is stopped: the update would stop`, `Check tomee.status (${tomee.status}): it must print the PID of the running TomEE.`);
          }
          return ok(`not needed: TomEE is not running (${answer})`);
        }
        if (!probe.ok || probe.status !== 200) {
          return fail(`${tomee.health_url}: ${answer}; LeTTo does not answer now, so neither a new revision nor a rollback to this one could pass the health check`, `Get LeTTo answering first (letto-update status, ${dirname(tomee.webapps)}/logs/catalina.out), or fix tomee.health_url.`);
        }
        return ok(`${tomee.health_url}: ${answer}`);
      },
    },
  );
  return steps;
}

/** The WAR the update would download on the server (URL, and length in bytes from a HEAD), then free space for it. */
function warSteps(ctx: Context): PlanStep[] {
  /** The WAR's URL and length (bytes, null: not said), once found. */
  let war: { url: string; size: number | null } | null = null;
  return [
    {
      name: 'WAR on server',
      needsInstall: true,
      async run(install) {
        const url = install!.source.kind === 'channel' ? new URL(channelFiles(install!.source.channel).war, ctx.config.server.url).href : await archiveWarUrl(ctx, install!.target);
        war = { url, size: await ctx.services.http.size(url) };
        return ok(war.size === null ? `${url} is there (HEAD; the server sent no Content-Length)` : `${mib(war.size)} (HEAD ${url})`);
      },
    },
    {
      name: 'free space',
      needsInstall: true,
      async run(install) {
        if (!war) return skip('cannot be judged: the WAR was not found on the server (see above)');
        const needs = await checkFreeSpace(ctx, install!.target, war.size ?? undefined);
        const where = needs.map((n) => `${n.folders.join(', ')}: ${mib(n.freeBytes)} free, ${mib(n.neededBytes)} needed`).join('; ');
        return ok(`the WAR is ${war.size === null ? 'of unknown size (the server sent no Content-Length; estimated from the installed WAR)' : mib(war.size)}; ${where}`);
      },
    },
  ];
}

/** `251.3 MiB`, or `12.4 GiB` from 10 GiB on. */
function mib(bytes: number): string {
  return bytes >= 10 * 1024 * MIB ? `${(bytes / 1024 / MIB).toFixed(1)} GiB` : `${(bytes / MIB).toFixed(1)} MiB`;
}
