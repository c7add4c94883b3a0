import type { Output } from '../report/output.js';

/** The global flags (before the command name). */
export interface GlobalOptions {
  config?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/** What the CLI hands each command module: the global flags, and where to register the Output it prints with. */
export interface CommandRun {
  globals: GlobalOptions;
  /** Registers the command's Output, so that the CLI prints an error thrown later with it (--json, cron log). */
  adopt(out: Output): void;
}
