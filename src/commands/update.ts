import { describeConfigSource } from '../config/config.js';
import { ExitCode } from '../errors.js';
import type { Output } from '../report/output.js';
import type { UpdatePlan } from '../runbook/plan.js';
import type { Channel } from '../revision.js';
import { runUpdate } from '../runbook/update.js';
import { confirmer, finish, finishCron, withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** Flags of `update` (see `letto-update update --help`). */
export interface UpdateFlags {
  channel?: Channel;
  revision?: number;
  force?: boolean;
  dryRun?: boolean;
  yes?: boolean;
  cron?: boolean;
  /** seconds */
  randomDelay?: number;
}

/** `update`: the whole job; exit codes per README. `--dry-run`: the checked plan (exit 0 would go ahead, 1 a check failed). */
export function updateCommand(run: CommandRun, opts: UpdateFlags): Promise<number> {
  return withSession(run, opts.dryRun ? 'read' : 'write', opts.channel, async ({ ctx, configSource }, out) => {
    const decisionOptions = { ...(opts.revision !== undefined ? { revision: opts.revision } : {}), force: Boolean(opts.force), cron: Boolean(opts.cron) };
    if (opts.dryRun) {
      const { planUpdate } = await import('../runbook/plan.js');
      out.line(`config: ${describeConfigSource(configSource)}`);
      return showPlan(out, await planUpdate(ctx, decisionOptions));
    }
    const confirm = opts.cron ? undefined : confirmer(out, opts.yes);
    const report = await runUpdate(ctx, {
      ...decisionOptions,
      ...(confirm ? { confirm } : {}),
      ...(opts.randomDelay ? { randomDelaySeconds: opts.randomDelay } : {}),
    });
    return opts.cron ? finishCron(out, report) : finish(out, report);
  }, { cron: Boolean(opts.cron) });
}

/** Prints the plan as a table of checks (see docs/usage.md, "update --dry-run") and returns its exit code. */
function showPlan(out: Output, plan: UpdatePlan): number {
  const exitCode = plan.goAhead ? ExitCode.ok : ExitCode.failed;
  out.json({ command: 'update', result: 'dry-run', message: plan.summary, ...plan, exitCode });
  out.line(plan.summary);
  const width = Math.max(...plan.checks.map((c) => c.name.length));
  for (const c of plan.checks) out.line(`  ${(c.result === 'fail' ? 'FAIL' : c.result).padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`);
  const failed = plan.checks.filter((c) => c.result === 'fail');
  if (failed.length === 0) {
    out.line(plan.action === 'install' ? `The update would go ahead: ${plan.checks.length} checks, none failed. Nothing was changed.` : 'Nothing was changed.');
    return exitCode;
  }
  if (!out.mode.json) {
    out.error(
      `The update would not go ahead: ${failed.length === 1 ? '1 check failed' : `${failed.length} checks failed`} (${failed.map((c) => c.name).join(', ')}). Nothing was changed.`,
      [...new Set(failed.map((c) => `${c.name}: ${c.hint ?? 'see above'}`))].join(' '),
    );
  }
  return exitCode;
}
