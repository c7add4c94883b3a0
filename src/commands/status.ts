import { localTime } from '../time.js';
import { describeConfigSource } from '../config/config.js';
import { ExitCode } from '../errors.js';
import { runStatus } from '../report/inspect.js';
import { describePause } from '../watchdog/state.js';
import { scriptLabel } from '../store/script-groups.js';
import { withSession } from './shared.js';
import type { CommandRun } from './types.js';

/** `status`: installed revision, TomEE (or each LeTTo container), one health check, the last run; exit 0 healthy, 1 not. */
export function statusCommand(run: CommandRun): Promise<number> {
  return withSession(run, 'read', undefined, async ({ ctx, configSource }, out) => {
    const report = await runStatus(ctx);
    out.json(report);
    out.line(`config: ${describeConfigSource(configSource)}`);
    out.line(`installed revision: ${report.installed ?? 'unknown'}`);
    out.line(report.runtime);
    for (const s of report.services ?? []) out.line(`  ${s.school ? `school ${s.school}: ` : ''}${s.name}  ${s.image}  revision ${s.revision ?? 'unknown'}  ${s.state}${s.health ? ` (${s.health})` : ''}`);
    if (report.mixed) out.line('WARNING: the LeTTo services run different revisions; `letto-update update --force` (or `rollback --to N`) brings them all to one.');
    out.line(`health: ${report.health}`);
    const last = report.lastRun;
    out.line(`last run: ${last ? `${localTime(last.time)} ${last.command} ${last.from ?? '?'} → ${last.to ?? '?'}: ${last.result}` : 'none recorded'}`);
    if (report.unfinished) out.line(`interrupted run: ${report.unfinished} The next update, rollback or \`letto-update recover\` finishes or undoes it.`);
    for (const script of report.orphanedScripts) {
      const deadline = localTime(new Date(Date.parse(script.started) + script.timeout * 1000));
      out.line(`script still running: the ${scriptLabel(script)} ${script.command} of an interrupted run (process group ${script.pgid}, since ${localTime(script.started)}); the next update, rollback or \`letto-update recover\` waits for it until ${deadline}, then ends it.`);
    }
    if (report.failedRevision) out.line(`failed revision: ${report.failedRevision.revision} (${localTime(report.failedRevision.time)}); the nightly run skips it until a newer one appears`);
    out.line(`database: ${report.database}`);
    if (report.watchdogPause) out.line(`watchdog: paused ${describePause(report.watchdogPause)}`);
    return report.running && report.healthy ? ExitCode.ok : ExitCode.failed;
  });
}
