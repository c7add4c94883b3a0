import { createInterface } from 'node:readline/promises';
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ExitCode, asLettoError, type LettoError } from './errors.js';
import { Output } from './output.js';
import type { Channel } from './revision.js';
import { openSession, type Access, type Session } from './session.js';
import type { RunReport } from './update.js';

interface GlobalOptions {
  config?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function parseRevisionArg(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) <= 0) throw new InvalidArgumentError('must be a revision number like 6886.');
  return Number(value);
}

/** `--channel`: merged into the config as a flag (flags win), so the commands follow `server.channel`. */
const channelOption = () => new Option('--channel <channel>', 'channel to follow (default: server.channel of the config)').choices(['stable', 'daily']);

/** Exit code of an update/rollback report (see README, "Exit codes"). */
export function exitCodeOf(report: RunReport): number {
  switch (report.result) {
    case 'updated':
    case 'current':
    case 'dry-run':
    case 'recovered':
      return ExitCode.ok;
    case 'rolled-back':
      return ExitCode.rolledBack;
    case 'rollback-failed':
      return ExitCode.rollbackFailed;
    default:
      return ExitCode.failed;
  }
}

/** Builds the commander program. `run` receives each command's work and turns it into output and an exit code. */
function buildProgram(run: (work: (program: Command) => Promise<number>) => void): Command {
  const program = new Command('letto-update')
    .description('Keeps a LeTTo server (letto.war on TomEE) current: check, download, verify, swap, health check, rollback.')
    .version(version)
    .option('--config <file>', 'config file (default: $LETTO_UPDATE_CONFIG, else /etc/letto-update/config.toml)')
    .option('--json', 'print one JSON object on stdout and nothing else there')
    .option('--quiet', 'print only errors')
    .option('--verbose', 'print more detail, including stack traces of errors')
    .showHelpAfterError()
    .exitOverride();
  program.addHelpText(
    'after',
    `
Exit codes: 0 done/current, 1 failed (server untouched), 2 usage or config error, 3 new revision failed
and the old one runs again, 4 rollback failed too (needs a person), 75 busy (another run or a backup),
100 (check) update available.`,
  );

  program
    .command('check')
    .description('print the installed and the available revision (exit 0 current, 100 update available)')
    .addOption(channelOption())
    .action((opts: { channel?: Channel }) =>
      run(async () => {
        const { runCheck } = await import('./inspect.js');
        return withSession(program, 'read', opts.channel, async ({ ctx }, out) => {
          const report = await runCheck(ctx);
          out.json(report);
          out.line(`installed: ${report.installed ?? 'unknown'}`);
          out.line(`available (${report.channel}): ${report.available}`);
          out.line(report.updateAvailable ? 'An update is available: run `letto-update update`.' : 'LeTTo is up to date.');
          return report.updateAvailable ? ExitCode.updateAvailable : ExitCode.ok;
        });
      }),
    );

  program
    .command('download')
    .description('download and verify a revision into the staging folder (an interrupted download is continued); the server is not touched')
    .addOption(channelOption())
    .option('--revision <n>', 'a specific revision (from the archive if it is not the current one)', parseRevisionArg)
    .action((opts: { channel?: Channel; revision?: number }) =>
      run(async () => {
        const { runDownload } = await import('./update.js');
        return withSession(program, 'write', opts.channel, async ({ ctx }, out) => {
          const result = await runDownload(ctx, opts.revision !== undefined ? { revision: opts.revision } : {});
          out.json(result);
          out.line(`Revision ${result.revision} is downloaded and verified: ${result.path}`);
          return ExitCode.ok;
        });
      }),
    );

  program
    .command('update')
    .description('the whole job: check, download, verify, backup, restart with the new WAR, health check, rollback on failure')
    .addOption(channelOption())
    .option('--revision <n>', 'install this revision instead of the channel’s current one', parseRevisionArg)
    .option('--force', 'install even if this revision is already installed or newer')
    .option('--dry-run', 'show what would be done; change nothing')
    .option('--yes', 'do not ask for confirmation (never asked without a terminal anyway)')
    .action((opts: { channel?: Channel; revision?: number; force?: boolean; dryRun?: boolean; yes?: boolean }) =>
      run(async () => {
        const { runUpdate } = await import('./update.js');
        return withSession(program, opts.dryRun ? 'read' : 'write', opts.channel, async ({ ctx }, out) => {
          const confirm = confirmer(out, opts.yes);
          const report = await runUpdate(ctx, {
            ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
            force: Boolean(opts.force),
            dryRun: Boolean(opts.dryRun),
            ...(confirm ? { confirm } : {}),
          });
          return finish(out, report);
        });
      }),
    );

  program
    .command('rollback')
    .description('go back to the revision installed before the current one, or to --to N (local backup, else the server archive)')
    .option('--to <n>', 'revision to roll back to', parseRevisionArg)
    .option('--yes', 'do not ask for confirmation')
    .action((opts: { to?: number; yes?: boolean }) =>
      run(async () => {
        const { runRollback } = await import('./rollback.js');
        return withSession(program, 'write', undefined, async ({ ctx }, out) => {
          const confirm = confirmer(out, opts.yes);
          const report = await runRollback(ctx, { ...(opts.to !== undefined ? { to: opts.to } : {}), ...(confirm ? { confirm } : {}) });
          return finish(out, report);
        });
      }),
    );

  program
    .command('recover')
    .description('finish or undo what an interrupted (killed) update or rollback left; update, rollback and download do this first by themselves')
    .action(() =>
      run(async () => {
        const { runRecover } = await import('./run.js');
        return withSession(program, 'write', undefined, async ({ ctx }, out) => finish(out, await runRecover(ctx)));
      }),
    );

  program
    .command('list')
    .description('list local backups, and with --remote the revisions in the server archive (newest first)')
    .option('--remote', 'also list the server’s archiv/')
    .action((opts: { remote?: boolean }) =>
      run(async () => {
        const { runList } = await import('./inspect.js');
        return withSession(program, 'read', undefined, async ({ ctx }, out) => {
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
      }),
    );

  program
    .command('status')
    .description('installed revision, whether TomEE runs, one health check, the last run (exit 0 healthy, 1 not)')
    .action(() =>
      run(async () => {
        const { runStatus } = await import('./inspect.js');
        return withSession(program, 'read', undefined, async ({ ctx }, out) => {
          const report = await runStatus(ctx);
          out.json(report);
          out.line(`installed revision: ${report.installed ?? 'unknown'}`);
          out.line(`TomEE: ${report.running ? `running (PID ${report.pid})` : 'not running'}`);
          out.line(`health: ${report.health}`);
          const last = report.lastRun;
          out.line(`last run: ${last ? `${last.time} ${last.command} ${last.from ?? '?'} → ${last.to ?? '?'}: ${last.result}` : 'none recorded'}`);
          if (report.unfinished) out.line(`interrupted run: ${report.unfinished} The next update, rollback or \`letto-update recover\` finishes or undoes it.`);
          return report.running && report.healthy ? ExitCode.ok : ExitCode.failed;
        });
      }),
    );
  return program;
}

function confirmer(out: Output, yes: boolean | undefined): ((question: string) => Promise<boolean>) | undefined {
  if (yes || out.mode.json || !process.stdin.isTTY || !process.stdout.isTTY) return undefined;
  return async (question) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    try {
      return /^(y|yes|j|ja)$/i.test((await rl.question(`${question} [y/N] `)).trim());
    } finally {
      rl.close();
    }
  };
}

function finish(out: Output, report: RunReport): number {
  const code = exitCodeOf(report);
  out.json({ ...report, exitCode: code });
  if (code === ExitCode.ok || report.result === 'cancelled') out.line(report.message);
  else if (!out.mode.json) out.error(report.message, report.hint ?? ''); // the JSON report carries message and hint
  return code;
}

let currentOutput: Output | null = null;

/**
 * Ctrl-C, SIGTERM and SIGHUP: before TomEE is stopped the run ends at once (exit 130; a partial
 * download and the run lock are cleaned up by the next run). While TomEE is stopped or restarting,
 * the signal is held back so the run can finish or undo what it started: leaving LeTTo down is worse.
 */
function guardSignals(out: Output): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (out.critical) {
        out.notice(`${signal} received while TomEE is being restarted; finishing this update or its rollback first.`);
        return;
      }
      out.notice(`${signal} received; stopped before the server was touched.`);
      process.exit(130);
    });
  }
}

async function withSession(
  program: Command,
  access: Access,
  channel: Channel | undefined,
  body: (session: Session, out: Output) => Promise<number>,
): Promise<number> {
  const globals = program.opts<GlobalOptions>();
  const out = new Output({ json: Boolean(globals.json), quiet: Boolean(globals.quiet), verbose: Boolean(globals.verbose) });
  currentOutput = out;
  guardSignals(out);
  const session = await openSession({
    ...(globals.config ? { configPath: globals.config } : {}),
    flags: channel ? { channel } : {},
    access,
    emit: out.onEvent,
  });
  try {
    return await body(session, out);
  } finally {
    await session.close();
  }
}

/**
 * Runs the CLI with `argv` (process.argv shape) and returns the exit code. The one place that turns
 * errors into exit codes; the only process.exit is an interrupt before the server is touched
 * (see guardSignals).
 */
export async function main(argv: string[]): Promise<number> {
  let pending: Promise<number> | null = null;
  const program = buildProgram((work) => {
    pending = work(program);
  });
  try {
    await program.parseAsync(argv);
    if (!pending) {
      program.outputHelp();
      return ExitCode.usage;
    }
    return await pending;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help' ? ExitCode.ok : ExitCode.usage;
    }
    const failure: LettoError = asLettoError(error);
    const out = currentOutput ?? new Output({ json: argv.includes('--json'), quiet: false, verbose: argv.includes('--verbose') });
    out.error(failure.message, failure.hint, error);
    return failure.exitCode;
  }
}
