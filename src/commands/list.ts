import { ExitCode } from '../errors.js';
import { runList } from '../report/inspect.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `list [--remote]`: local backups (or a Docker install's local revisions), and the server archive (or the registry). */
export function listCommand(run: CommandRun, opts: { remote?: boolean }): Promise<number> {
  return withSession(run, 'read', undefined, async ({ ctx }, out) => {
    const report = await runList(ctx, Boolean(opts.remote));
    out.json(report);
    out.line(`installed: ${report.installed ?? 'unknown'}`);
    out.line(report.kind === 'docker' ? 'revisions whose LeTTo images are here:' : `local backups (${ctx.config.paths.backups}):`);
    if (report.local.length === 0) out.line('  none');
    for (const b of report.local) out.line(`  ${b.revision}  ${b.description}`);
    if (report.remote) {
      out.line(report.kind === 'docker' ? `registry (${ctx.config.docker?.registry || 'Docker Hub'}):` : 'server archive:');
      if (report.remote.length === 0) out.line('  none');
      for (const r of report.remote) out.line(`  ${r.revision}  ${r.url}`);
    }
    return ExitCode.ok;
  });
}
