import { localTime } from '../time.js';
import type { Ora } from 'ora';
import type { LettoEvent } from '../context.js';
import type { DownloadProgress } from '../system/http.js';

/** How the CLI prints: human lines, nothing but errors (`--quiet`), or one JSON object (`--json`). */
export interface OutputMode {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  /**
   * `update --cron` and `watchdog`: steps and warnings are collected, not printed; the CLI prints them
   * as a short, time-stamped log only when something happened ({@link Output.flushLog}).
   */
  cron?: boolean;
}

/**
 * The only place that writes to the terminal. Steps go to stdout (human mode), warnings and errors to
 * stderr, download progress to stderr through an ora spinner only when stderr is a terminal.
 */
export class Output {
  private spinner: Ora | null = null;
  /** ora is loaded only when a terminal shows progress (it costs ~13 MiB of memory; cron runs never need it). */
  private spinnerLoading = false;
  constructor(
    readonly mode: OutputMode,
    private readonly stdout: NodeJS.WriteStream = process.stdout,
    private readonly stderr: NodeJS.WriteStream = process.stderr,
  ) {}

  /** `cron` mode: the collected log lines, and whether one of them is a warning (other than a standing one). */
  private readonly log: string[] = [];
  warned = false;

  /** `cron` mode: prints the collected log, then `final` (time-stamped), to stdout (not with --quiet/--json). */
  flushLog(final?: string): void {
    if (final !== undefined) this.log.push(`${stamp()} ${final}`);
    for (const line of this.log.splice(0)) this.line(line);
  }

  /** A monitoring-plugin line (with its newline): always on stdout (also with --quiet), except with --json. */
  plugin(line: string): void {
    if (!this.mode.json) this.stdout.write(line);
  }

  /** What the admin should do, on stderr (not with --json, whose object carries it). */
  hint(text: string): void {
    if (!this.mode.json) this.stderr.write(`what to do: ${text}\n`);
  }

  /** Said after "SIGTERM received; " when a signal ends the command (see cli.ts guardSignals). */
  stopNote = 'stopped before the server was touched.';

  /** Said after "SIGTERM received while TomEE is being restarted; " when a signal is held back. */
  criticalNote = 'finishing this update or its rollback first.';

  /** True while the core is in a step that must not be interrupted (TomEE stopped or restarting). */
  critical = false;

  /** Aborted when a signal arrived during a critical step: the command ends once that step is done. */
  readonly stopRequest = new AbortController();

  /** The event sink handed to the core. */
  readonly onEvent = (event: LettoEvent): void => {
    if (event.type === 'critical') {
      this.critical = event.active;
      return;
    }
    if (event.type === 'notice') return this.notice(event.message);
    if (this.mode.json) return;
    if (this.mode.cron && (event.type === 'step' || event.type === 'warn')) {
      this.log.push(`${stamp()} ${event.type === 'warn' ? 'warning: ' : ''}${event.message}`);
      if (event.type === 'warn' && !event.standing) this.warned = true;
      return;
    }
    switch (event.type) {
      case 'step':
        if (!this.mode.quiet) this.line(`» ${event.message}`);
        return;
      case 'warn':
        if (!this.mode.quiet) this.stderr.write(`warning: ${event.message}\n`);
        return;
      case 'progress':
        return this.progress(event.progress);
      case 'progress-done':
        this.spinner?.stop();
        this.spinner = null;
        this.spinnerLoading = false;
        return;
    }
  };

  private progress(p: DownloadProgress): void {
    // ora needs a terminal with a width (it loops forever on 0 columns)
    if (this.mode.quiet || !this.stderr.isTTY || !(this.stderr.columns > 0)) return;
    const total = p.total ? ` of ${mib(p.total)}` : '';
    const eta = p.etaSeconds !== null ? `, ${Math.ceil(p.etaSeconds)} s left` : '';
    const text = `${mib(p.received)}${total} (${mib(p.bytesPerSecond)}/s${eta})`;
    if (this.spinner) {
      this.spinner.text = text;
      return;
    }
    if (this.spinnerLoading) return;
    this.spinnerLoading = true;
    void import('ora').then(({ default: ora }) => {
      if (this.spinnerLoading) this.spinner = ora({ stream: this.stderr, text }).start();
    });
  }

  /** A result line for humans (suppressed by --quiet and --json). */
  line(text: string): void {
    if (!this.mode.json && !this.mode.quiet) this.stdout.write(`${text}\n`);
  }

  /** The one JSON object of `--json`. */
  json(value: unknown): void {
    if (this.mode.json) this.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** A message that must reach the admin even with --quiet or --json (stderr). */
  notice(text: string): void {
    this.spinner?.stop();
    this.stderr.write(`\nletto-update: ${text}\n`);
  }

  /** An error: message and hint on stderr (and in the JSON object with --json). */
  error(message: string, hint: string, detail?: unknown): void {
    this.spinner?.stop();
    if (this.mode.json) {
      this.json({ error: { message, hint } });
      return;
    }
    this.stderr.write(`error: ${message}\n`);
    if (hint) this.stderr.write(`what to do: ${hint}\n`);
    if (this.mode.verbose && detail instanceof Error && detail.stack) this.stderr.write(`${detail.stack}\n`);
  }
}

/** `2026-11-21 03:15:02 CET`: the time of a log line (local time with the zone, whole seconds; see src/time.ts). */
export function stamp(date = new Date()): string {
  return localTime(date);
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
