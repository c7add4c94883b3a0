import type { TransferSummary } from '../war/delta/summary.js';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Channel, Revision } from '../revision.js';
import { ensureDir, giveTo, writeFileAtomically } from '../system/files.js';
import type { Account } from '../system/users.js';

/** Outcome of a run, as recorded: the CLI's exit code follows from it. */
export type RunResult =
  | 'updated'
  | 'current'
  | 'failed'
  | 'rolled-back'
  | 'rollback-failed'
  | 'busy'
  | 'recovered'
  /** `update --cron` left a revision alone that failed its health check before. */
  | 'skipped'
  /** The watchdog restarted TomEE and LeTTo answers again / does not answer. */
  | 'restarted'
  | 'restart-failed';

/**
 * One line of `runs.jsonl` in the state folder. Times are ISO 8601 (UTC), duration in seconds,
 * revisions as numbers (null: unknown).
 */
export interface RunRecord {
  time: string;
  /** `recover`: what a later run did about a killed one (see src/kinds/tomee/recover.ts); `watchdog`: a restart (src/watchdog/watchdog.ts). */
  command: 'update' | 'rollback' | 'recover' | 'watchdog';
  from: Revision | null;
  to: Revision | null;
  result: RunResult;
  durationSeconds: number;
  message: string;
  /** SHA-256 (hex) of the WAR that was installed or attempted. */
  sha256?: string;
  /** What downloading that WAR fetched (see TransferSummary in src/war/delta/summary.ts). */
  download?: TransferSummary;
  /** `update`: the channel followed and the revision it offered when the run read it (for `metrics`, without asking the server again). */
  channel?: Channel;
  available?: Revision | null;
  /** The nightly run (`update --cron`). */
  cron?: boolean;
  /** Seconds LeTTo was down for this run: from stopping it until it answered its health check again (or the rollback ended). */
  downtimeSeconds?: number;
  /** What an automatic rollback or a recovery did with LeTTo's databases (`[database]`): `restored` from the dump, or `left alone`. */
  database?: 'restored' | 'left alone';
}

/** `state.json`: what the tool knows beyond the WAR itself. */
export interface ToolState {
  /** Revision installed by the last successful run (fallback when the WAR carries no revision.txt). */
  installed: Revision | null;
  /** Last revision that answered its health check: its backup is never deleted. */
  lastKnownGood: Revision | null;
  /**
   * The last revision that was installed and failed its health check (then rolled back), with when
   * (ISO 8601) and why. `update --cron` does not try it again; a newer revision or `--force` does.
   */
  failedRevision?: FailedRevision | null;
}

/** A revision that failed its health check: see {@link ToolState.failedRevision}. */
export interface FailedRevision {
  revision: Revision;
  time: string;
  reason: string;
}

/** The state folder (`paths.state`): runs log and tool state. */
export class StateStore {
  constructor(
    readonly dir: string,
    private readonly owner: Account,
  ) {}

  private get runsFile(): string {
    return join(this.dir, 'runs.jsonl');
  }
  private get stateFile(): string {
    return join(this.dir, 'state.json');
  }

  /** Creates the folder (owned by the service user) if missing. */
  async ensure(): Promise<void> {
    await ensureDir(this.dir, this.owner);
  }

  /** Appends one run to `runs.jsonl`. */
  async recordRun(record: RunRecord): Promise<void> {
    await this.ensure();
    await appendFile(this.runsFile, JSON.stringify(record) + '\n', { mode: 0o644 });
    await giveTo(this.runsFile, this.owner);
  }

  /** All recorded runs, oldest first; lines that do not parse are skipped. */
  async runs(): Promise<RunRecord[]> {
    let text: string;
    try {
      text = await readFile(this.runsFile, 'utf8');
    } catch {
      return [];
    }
    const runs: RunRecord[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        runs.push(JSON.parse(line) as RunRecord);
      } catch {
        // a line cut off by a crash: skip it
      }
    }
    return runs;
  }

  async read(): Promise<ToolState> {
    try {
      const parsed = JSON.parse(await readFile(this.stateFile, 'utf8')) as Partial<ToolState>;
      return { installed: parsed.installed ?? null, lastKnownGood: parsed.lastKnownGood ?? null, failedRevision: parsed.failedRevision ?? null };
    } catch {
      return { installed: null, lastKnownGood: null };
    }
  }

  /** Writes `state.json`; keys not given keep their stored value. */
  async write(state: Partial<ToolState>): Promise<void> {
    const merged = { ...(await this.read()), ...state };
    await this.ensure();
    await writeFileAtomically(this.stateFile, JSON.stringify(merged, null, 2) + '\n', this.owner);
  }
}
