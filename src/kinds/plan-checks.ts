/**
 * The pieces of `update --dry-run` (src/runbook/plan.ts) that both kinds of install use: the shape of a check
 * and of a kind's planned step, and the read-only probes (folder writable, script executable).
 */
import { access, constants, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Context } from '../context.js';
import { LettoError } from '../errors.js';
import { mayAccess } from '../system/access.js';
import type { Revision, WarSource } from '../revision.js';

/** `ok`; `warn` (the update goes ahead, but look); `fail` (the update would stop here); `skip` (not needed, or cannot be judged). */
export type CheckResult = 'ok' | 'warn' | 'fail' | 'skip';

/** One check of the plan: its name (`backup lock`), result, what was found, and for a failure what to do. */
export interface PlanCheck {
  name: string;
  result: CheckResult;
  detail: string;
  hint?: string;
}

/** What one check found (a {@link PlanCheck} without its name). */
export type CheckOutcome = Omit<PlanCheck, 'name'>;

/** The decision to install a revision, as `update` would make it ({@link UpdateDecision}). */
export type InstallDecision = Extract<UpdateDecision, { kind: 'install' }>;

/**
 * A check of the plan that depends on the kind of install (src/kinds/types.ts, `planSteps`). `run`
 * changes nothing and gives the check's outcome, or several named checks (one per image, say); it may
 * throw a LettoError, which becomes a failed check named `name` with the error's message and hint.
 * `needsInstall`: made only when the update would install a revision, after the check `revisions`, and
 * `run` gets that decision (else it is skipped); otherwise made before `revisions`, and `run` gets null.
 */
export interface PlanStep {
  name: string;
  needsInstall: boolean;
  run(install: InstallDecision | null): Promise<CheckOutcome | PlanCheck[]>;
}

export const ok = (detail: string): CheckOutcome => ({ result: 'ok', detail });
export const warn = (detail: string): CheckOutcome => ({ result: 'warn', detail });
export const fail = (detail: string, hint: string): CheckOutcome => ({ result: 'fail', detail, hint });
export const skip = (detail: string): CheckOutcome => ({ result: 'skip', detail });

/** An error a check throws: its message becomes the detail of a failed check, its hint the hint. */
export function planError(message: string, hint: string): LettoError {
  return new LettoError(message, { hint });
}

/**
 * `script` is a file the service user may execute.
 * @returns a description for the plan. @throws LettoError naming what is wrong.
 */
export async function executableBy(script: string, user: Context['serviceUser']): Promise<string> {
  const info = await stat(script).catch(() => null);
  if (!info) throw planError(`${script} does not exist`, 'Check tomee.start, tomee.stop and tomee.status in the config.');
  if (!info.isFile()) throw planError(`${script} is not a file`, 'Point the key at the script itself.');
  if (!(await mayAccess(script, user, 'x'))) throw planError(`${script} is not executable for ${user.name} (mode ${(info.mode & 0o777).toString(8)})`, `Run: chmod +x ${script} (and let ${user.name} read it).`);
  return `${script} exists and is executable for ${user.name}`;
}

/**
 * `folder` (or, when it does not exist yet, the nearest folder above it, where the update creates it)
 * is writable by this process, and by `owner` too when given (TomEE must be able to undeploy in webapps).
 * @returns a description for the plan. @throws LettoError naming what is wrong.
 */
export async function writableFolder(folder: string, owner: Context['serviceUser'] | null): Promise<string> {
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

/**
 * What `update` decides once it knows both revisions: install `target` from `source`, or leave
 * `from` as it is (`current`: nothing newer; `skipped`: the nightly run leaves a revision that failed before).
 * `plan` is the sentence for people ("update LeTTo from revision 6880 to 6886 (stable channel); TomEE will be restarted.").
 */
export type UpdateDecision =
  | { kind: 'install'; from: Revision | null; target: Revision; available: Revision; source: WarSource; plan: string; failedBefore: string | null }
  | { kind: 'current' | 'skipped'; from: Revision | null; target: Revision; available: Revision; message: string };
