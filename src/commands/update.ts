import type { Channel } from '../revision.js';
import { runUpdate } from '../update.js';
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

/** `update`: the whole job; exit codes per README. */
export function updateCommand(run: CommandRun, opts: UpdateFlags): Promise<number> {
  return withSession(run, opts.dryRun ? 'read' : 'write', opts.channel, async ({ ctx }, out) => {
    const confirm = opts.cron ? undefined : confirmer(out, opts.yes);
    const report = await runUpdate(ctx, {
      ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
      force: Boolean(opts.force),
      dryRun: Boolean(opts.dryRun),
      ...(confirm ? { confirm } : {}),
      cron: Boolean(opts.cron),
      ...(opts.randomDelay ? { randomDelaySeconds: opts.randomDelay } : {}),
    });
    return opts.cron ? finishCron(out, report) : finish(out, report);
  }, { cron: Boolean(opts.cron) });
}
