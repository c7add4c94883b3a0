import { ExitCode } from '../errors.js';
import { runList } from '../inspect.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `list [--remote]`: local backups, and the server archive. */
export function listCommand(run: CommandRun, opts: { remote?: boolean }): Promise<number> {
  return withSession(run, 'read', undefined, async ({ ctx }, out) => {
    const report = await runList(ctx, Boolean(opts.remote));
    out.json(report);
    out.line(`installed: ${report.installed ?? 'unknown'}`);
    out.line(`local backups (${ctx.config.paths.backups}):`);
    if (report.backups.length === 0) out.line('  none');
    for (const b of report.backups) out.line(`  ${b.revision}  ${(b.bytes / 1024 / 1024).toFixed(1)} MiB  ${b.time}`);
    if (report.remote) {
      out.line('server archive:');
      if (report.remote.length === 0) out.line('  none');
      for (const r of report.remote) out.line(`  ${r.revision}  ${r.url}`);
    }
    return ExitCode.ok;
  });
}
