/**
 * `update --dry-run`: a checked plan, as `apt-get -s` or `terraform plan` give one. The same decision
 * as `update` ({@link decideUpdate}), then every check that can be made without changing anything, in
 * runbook order, each with its result. Nothing is written, no lock is taken. The checks common to both
 * kinds of install are here; those of the kind come from its adapter (`planSteps`: src/kinds/tomee/plan.ts
 * asks TomEE's status script, health_url and a HEAD of the WAR; src/kinds/docker/plan.ts asks the Docker
 * engine, compose and the registry, and pulls nothing).
 */
import { dirname, join } from 'node:path';
import { inspectBackupLock } from '../store/backup-lock.js';
import type { Context } from '../context.js';
import { asLettoError } from '../errors.js';
import { adapterFor } from '../kinds/index.js';
import { runLockHolder } from '../store/lock.js';
import { fail, ok, skip, writableFolder, type CheckOutcome, type InstallDecision, type PlanCheck } from '../kinds/plan-checks.js';
import type { Revision } from '../revision.js';
import { localTime } from '../time.js';
import { decideUpdate, type UpdateOptions } from './update.js';
import { describeJournal, unfinishedJournal } from '../store/journal.js';
import type { UpdateDecision } from '../kinds/plan-checks.js';

export type { CheckResult, PlanCheck } from '../kinds/plan-checks.js';

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

/**
 * Plans `update` with every check that changes nothing. Never throws for what it checks: a check that
 * cannot be made is a failed check with the error's message and hint.
 */
export async function planUpdate(ctx: Context, options: Pick<UpdateOptions, 'revision' | 'force' | 'cron'>): Promise<UpdatePlan> {
  const checks: PlanCheck[] = [];
  const check = async (name: string, run: () => Promise<CheckOutcome | PlanCheck[]>): Promise<void> => {
    try {
      const found = await run();
      if (Array.isArray(found)) checks.push(...found);
      else checks.push({ name, ...found });
    } catch (error) {
      const failure = asLettoError(error);
      checks.push({ name, result: 'fail', detail: failure.message, hint: failure.hint });
    }
  };
  const { paths } = ctx.config;
  const adapter = adapterFor(ctx);

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
    from = journal ? (journal.step === 'installed' ? journal.to : journal.from) : (await adapter.installed(ctx)).revision;
    if (!journal) return ok('none');
    return { result: 'warn', detail: `${describeJournal(journal)} The update finishes or undoes it first; revision ${from ?? 'unknown'} is what it plans from.` };
  });
  const steps = await adapter.planSteps(ctx);
  for (const step of steps.filter((s) => !s.needsInstall)) await check(step.name, () => step.run(null));
  let decision: UpdateDecision | null = null;
  await check('revisions', async () => {
    decision = await decideUpdate(ctx, options, from);
    return ok(decision.kind === 'install' ? `installed ${from ?? 'unknown'}, ${ctx.config.server.channel} ${decision.target}: install ${decision.target}` : decision.message);
  });
  const chosen = decision as UpdateDecision | null;
  const install: InstallDecision | null = chosen?.kind === 'install' ? chosen : null;
  for (const step of steps.filter((s) => s.needsInstall)) {
    await check(step.name, async () => (install ? step.run(install) : skip(chosen ? 'not needed: nothing to install' : 'cannot be judged: the revisions are unknown')));
  }

  const goAhead = !checks.some((c) => c.result === 'fail');
  const summary = !chosen
    ? 'Dry run: cannot tell what the update would do (the revisions could not be read).'
    : chosen.kind === 'install'
      ? `Dry run: would ${interrupted ? `first recover the interrupted run (${interrupted as string}), then ` : ''}${chosen.plan}`
      : `Dry run: nothing to do: ${chosen.message}`;
  return { from, to: chosen?.target ?? null, action: chosen?.kind ?? 'unknown', summary, checks, goAhead };
}
