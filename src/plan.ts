/**
 * `update --dry-run`: a checked plan, as `apt-get -s` or `terraform plan` give one. The same decision
 * as `update` ({@link decideUpdate}), then every check that can be made without changing anything, in
 * runbook order, each with its result. Nothing is written, no lock is taken, TomEE is only asked
 * (status script, one GET of health_url), and the download server only with GET of the revision file
 * and a HEAD of the WAR (for its real size).
 */
import { access, constants, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { inspectBackupLock } from './backup-lock.js';
import { warPath, type Context } from './context.js';
import { LettoError, asLettoError } from './errors.js';
import { assertNoSymlinks, stagingNames } from './install.js';
import { runLockHolder } from './lock.js';
import { describeJournal, unfinishedJournal } from './recover.js';
import { channelFiles, type Revision } from './revision.js';
import { assertMayAct } from './session.js';
import { backupPathFor, backupTempPath } from './steps/backup.js';
import { readInstalled } from './steps/check.js';
import { archiveWarUrl } from './steps/download.js';
import { checkFreeSpace } from './steps/space.js';
import { explodedPath, swapTempPath } from './steps/swap.js';
import { tomeeStatus, type TomeeStatus } from './steps/tomee.js';
import { mayAccess } from './system/access.js';
import { localTime } from './time.js';
import { decideUpdate, type UpdateDecision, type UpdateOptions } from './update.js';

/** `ok`; `warn` (the update goes ahead, but look); `fail` (the update would stop here); `skip` (not needed, or cannot be judged). */
export type CheckResult = 'ok' | 'warn' | 'fail' | 'skip';

/** One check of the plan: its name (`backup lock`), result, what was found, and for a failure what to do. */
export interface PlanCheck {
  name: string;
  result: CheckResult;
  detail: string;
  hint?: string;
}

/** The checked plan. `goAhead`: no check failed (exit 0); else exit 1 naming the failed checks. */
export interface UpdatePlan {
  from: Revision | null;
  to: Revision | null;
  /** `install`: the update would install `to`; `current`/`skipped`: nothing to do; `unknown`: the revisions could not be read. */
  action: 'install' | 'current' | 'skipped' | 'unknown';
  /** One sentence: "Dry run: would update LeTTo from revision 6880 to 6886 (stable channel); TomEE will be restarted." */
  summary: string;
  checks: PlanCheck[];
  goAhead: boolean;
}

const MIB = 1024 * 1024;
const ok = (detail: string): Omit<PlanCheck, 'name'> => ({ result: 'ok', detail });
const fail = (detail: string, hint: string): Omit<PlanCheck, 'name'> => ({ result: 'fail', detail, hint });
const skip = (detail: string): Omit<PlanCheck, 'name'> => ({ result: 'skip', detail });

/**
 * Plans `update` with every check that changes nothing. Never throws for what it checks: a check that
 * cannot be made is a failed check with the error's message and hint.
 */
export async function planUpdate(ctx: Context, options: Pick<UpdateOptions, 'revision' | 'force' | 'cron'>): Promise<UpdatePlan> {
  const checks: PlanCheck[] = [];
  const check = async (name: string, run: () => Promise<Omit<PlanCheck, 'name'>>): Promise<void> => {
    try {
      checks.push({ name, ...(await run()) });
    } catch (error) {
      const failure = asLettoError(error);
      checks.push({ name, result: 'fail', detail: failure.message, hint: failure.hint });
    }
  };
  const { paths, tomee } = ctx.config;
  const user = ctx.serviceUser;

  await check('run lock', async () => {
    const holder = await runLockHolder(ctx.state.dir);
    if (!holder) return ok(`free (${join(ctx.state.dir, 'lock')})`);
    return fail(`held by process ${holder.pid} (${holder.command}, since ${localTime(holder.started)}): the update would exit 75`, 'Wait until that run has finished.');
  });
  await check('backup lock', async () => {
    const lock = await inspectBackupLock(paths.backup_lock);
    if (lock.kind === 'backup') return fail(`${paths.backup_lock} exists: a backup is running, the update would exit 75`, 'Run again after the backup has finished.');
    await writableFolder(dirname(paths.backup_lock), null);
    return ok(lock.kind === 'absent' ? `no backup running (${paths.backup_lock} absent; its folder is writable)` : `a marker left by a killed run of ours (the update removes it)`);
  });
  let from: Revision | null = null;
  let interrupted: string | null = null;
  await check('interrupted run', async () => {
    const journal = await unfinishedJournal(ctx, false);
    interrupted = journal ? describeJournal(journal) : null;
    from = journal ? (journal.step === 'installed' ? journal.to : journal.from) : (await readInstalled(ctx)).revision;
    if (!journal) return ok('none');
    return { result: 'warn', detail: `${describeJournal(journal)} The update finishes or undoes it first; revision ${from ?? 'unknown'} is what it plans from.` };
  });
  await check('service user', async () => {
    assertMayAct(user);
    return ok(`${user.name} (uid ${user.uid}) runs TomEE; this run is uid ${process.getuid?.() ?? '?'}`);
  });
  let decision: UpdateDecision | null = null;
  await check('revisions', async () => {
    decision = await decideUpdate(ctx, options, from);
    return ok(decision.kind === 'install' ? `installed ${from ?? 'unknown'}, ${ctx.config.server.channel} ${decision.target}: install ${decision.target}` : decision.message);
  });
  const chosen = decision as UpdateDecision | null;
  const install = chosen?.kind === 'install' ? chosen : null;
  const needed = async (name: string, run: () => Promise<Omit<PlanCheck, 'name'>>): Promise<void> =>
    install ? check(name, run) : check(name, async () => skip(chosen ? 'not needed: nothing to install' : 'cannot be judged: the revisions are unknown'));

  let status: TomeeStatus | null = null;
  await needed('status script', async () => {
    await executableBy(tomee.status, user);
    status = await tomeeStatus(ctx);
    return ok(`${tomee.status}: TomEE ${status.running ? `runs (PID ${status.pid})` : 'is not running (the update swaps the WAR and leaves it stopped)'}`);
  });
  for (const [name, script] of [['stop script', tomee.stop], ['start script', tomee.start]] as const) {
    await needed(name, async () => ok(`${await executableBy(script, user)}`));
  }
  for (const [name, folder] of [['webapps', tomee.webapps], ['staging', paths.staging], ['backups', paths.backups], ['state folder', ctx.state.dir]] as const) {
    await needed(name, async () => ok(await writableFolder(folder, name === 'webapps' ? user : null)));
  }
  await needed('symlinks', async () => {
    const backup = backupPathFor(ctx, install!.from);
    const names = [...stagingNames(ctx, install!.target), warPath(ctx.config), swapTempPath(ctx), explodedPath(ctx), backup, backupTempPath(backup)];
    await assertNoSymlinks(names);
    return ok(`none of the ${names.length} names the update writes is a symbolic link`);
  });
  await needed('free space', async () => {
    const url = install!.source.kind === 'channel' ? new URL(channelFiles(install!.source.channel).war, ctx.config.server.url).href : await archiveWarUrl(ctx, install!.target);
    const size = await ctx.services.http.size(url);
    const needs = await checkFreeSpace(ctx, install!.target, size ?? undefined);
    const where = needs.map((n) => `${n.folders.join(', ')}: ${mib(n.freeBytes)} free, ${mib(n.neededBytes)} needed`).join('; ');
    return ok(`the WAR is ${size === null ? 'of unknown size (the server sent no Content-Length; estimated from the installed WAR)' : `${mib(size)} (HEAD ${url})`}; ${where}`);
  });
  await needed('health_url', async () => {
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
  });

  const goAhead = !checks.some((c) => c.result === 'fail');
  const summary = !chosen
    ? 'Dry run: cannot tell what the update would do (the revisions could not be read).'
    : chosen.kind === 'install'
      ? `Dry run: would ${interrupted ? `first recover the interrupted run (${interrupted as string}), then ` : ''}${chosen.plan}`
      : `Dry run: nothing to do: ${chosen.message}`;
  return { from, to: chosen?.target ?? null, action: chosen?.kind ?? 'unknown', summary, checks, goAhead };
}

/**
 * `script` is a file the service user may execute.
 * @returns a description for the plan. @throws LettoError naming what is wrong.
 */
async function executableBy(script: string, user: Context['serviceUser']): Promise<string> {
  const info = await stat(script).catch(() => null);
  if (!info) throw planError(`${script} does not exist`, 'Check tomee.start, tomee.stop and tomee.status in the config.');
  if (!info.isFile()) throw planError(`${script} is not a file`, 'Point the key at the script itself.');
  if (!(await mayAccess(script, user, 'x'))) throw planError(`${script} is not executable for ${user.name} (mode ${(info.mode & 0o777).toString(8)})`, `Run: chmod +x ${script} (and let ${user.name} read it).`);
  return `${script} exists and is executable for ${user.name}`;
}

/**
 * `folder` (or, when it does not exist yet, the nearest folder above it, where the update creates it)
 * is writable by this process, and by `owner` too when given (TomEE must be able to undeploy in webapps).
 */
async function writableFolder(folder: string, owner: Context['serviceUser'] | null): Promise<string> {
  let existing = folder;
  for (;;) {
    const info = await stat(existing).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' || error.code === 'ENOTDIR' ? null : Promise.reject(error)));
    if (info?.isDirectory()) break;
    if (info) throw planError(`${existing} is not a folder, so ${folder} cannot be ${existing === folder ? 'used' : 'created'}`, 'Fix the path in the config (tomee.webapps, paths.*).');
    if (dirname(existing) === existing) break;
    existing = dirname(existing);
  }
  const uid = process.getuid?.() ?? '?';
  const writable = await access(existing, constants.W_OK | constants.X_OK).then(() => true, (e: NodeJS.ErrnoException) => (e.code === 'EROFS' ? 'read-only' : false));
  if (writable !== true) throw planError(`${existing} is ${writable === 'read-only' ? 'on a read-only file system' : `not writable for this run (uid ${uid})`}`, 'Run the update as root, or fix the folder’s owner and mode.');
  if (owner && !(await mayAccess(existing, owner, 'w'))) throw planError(`${existing} is not writable for ${owner.name}, who runs TomEE`, `Run: chown ${owner.name} ${existing}`);
  return existing === folder ? `${folder} is writable${owner ? ` (also for ${owner.name})` : ''}` : `${folder} does not exist yet; ${existing} is writable, so the update can create it`;
}

function planError(message: string, hint: string): LettoError {
  return new LettoError(message, { hint });
}

/** `251.3 MiB`, or `12.4 GiB` from 10 GiB on. */
function mib(bytes: number): string {
  return bytes >= 10 * 1024 * MIB ? `${(bytes / 1024 / MIB).toFixed(1)} GiB` : `${(bytes / MIB).toFixed(1)} MiB`;
}
