import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context } from '../context.js';
import type { Revision } from '../revision.js';
import type { DumpRecord } from '../database/dump.js';
import { syncDir, writeFileAtomically } from '../system/files.js';
import { injectFault } from '../system/fault.js';
import { isSameProcessAlive, processIdentity } from '../system/proc.js';
import { localTime } from '../time.js';

/**
 * The steps a run records in its journal before doing them, in runbook order. `installed` is recorded
 * once the new revision answered its health check (or was swapped in while TomEE stayed stopped);
 * `undo` once a failed install starts putting the previous revision back. With a `[database]` section,
 * `dump` before LeTTo's databases are dumped (LeTTo stopped, before the swap) and `restore` before a
 * database whose schema changed is restored from its dump (src/database/steps.ts).
 */
export const JOURNAL_STEPS = ['download', 'backup', 'backup-lock', 'stop', 'dump', 'swap', 'start', 'health', 'installed', 'undo', 'restore'] as const;
export type JournalStep = (typeof JOURNAL_STEPS)[number];

/**
 * `<state>/journal.json`: what an update or rollback is about to do, with everything a later run
 * needs to finish or undo it after this process was killed (the idea of dpkg's status journal).
 * Paths are absolute; revisions are numbers (null: unknown).
 */
export interface JournalEntry {
  version: 1;
  /** The process that wrote it: an entry whose process is gone is unfinished. */
  pid: number;
  /** The writer's identity (boot id and start time, see src/system/proc.ts), so a reused PID is not mistaken for it. */
  process: string | null;
  command: 'update' | 'rollback';
  /** ISO 8601 (UTC): when the run started, and when this entry was written. */
  started: string;
  written: string;
  /** The step about to be done (or, for `installed`, reached). */
  step: JournalStep;
  /** The revision installed before the run, and the one being installed. */
  from: Revision | null;
  to: Revision | null;
  /** The verified WAR being installed (in staging or backups). */
  target: string | null;
  /** The copy of the previously installed WAR in `paths.backups`: the way back. Null until made (or when webapps held no WAR). */
  backup: string | null;
  /** Whether TomEE was running before the run (null: not asked yet). Recovery starts it again only if so. */
  wasRunning: boolean | null;
  /** Backup-lock path this run put its marker into (null: not yet). */
  backupLock: string | null;
  /** Temporary files this run may leave behind (removed by recovery). */
  temps: string[];
  /** Whether the installed revision answered its health check (set with `installed`). */
  healthy: boolean;
  /** The kind of install that wrote it (src/kinds/); missing in journals of older versions: `tomee`. */
  kind?: 'tomee' | 'docker';
  /**
   * Docker: the image id each LeTTo image reference named by the compose files (e.g.
   * `lettohub/lettoserver:stable`) pointed at before the run — the way back — and at the target.
   */
  previousImages?: ImagePointer[];
  targetImages?: ImagePointer[];
  /**
   * Docker: the compose calls (groups of LeTTo containers) that were up when the run started, each
   * brought up again the way it was (`-p`, each `-f`, the project folder, the env file). A group the
   * admin had stopped is not in it. Missing in journals of older versions: the groups found then.
   */
  composeGroups?: ComposeCall[];
  /** The dumps this run made of LeTTo's databases (with their schema fingerprints), once made. */
  dumps?: DumpRecord[];
  /** The databases being restored from their dumps (step `restore`): a recovery restores them again. */
  restoring?: string[];
}

/**
 * How one group of containers was brought up, as compose recorded it on them (labels
 * `com.docker.compose.project`, `…project.working_dir`, `…project.config_files`, v2
 * `…project.environment_file`). `files` empty: the folder's own default (`docker-compose.yml` or the
 * `.env`'s `COMPOSE_FILE`), for LeTTo services that have no container yet.
 */
export interface ComposeCall {
  /** The project folder: compose runs there (absolute). */
  dir: string;
  /** `-p`; null: compose's own choice (the `.env`'s COMPOSE_PROJECT_NAME, else the folder's name). */
  project: string | null;
  /** Each `-f` (absolute). */
  files: string[];
  /** Each `--env-file` (absolute; compose v2 records them, v1 reads the folder's `.env` itself). */
  envFiles: string[];
}

/** An image reference as the compose files name it, and the image id (`sha256:…`) it points at. */
export interface ImagePointer {
  ref: string;
  id: string;
}

/** Path of the journal in the state folder. */
export function journalPath(stateDir: string): string {
  return join(stateDir, 'journal.json');
}

/**
 * Reads the journal; null when there is none, or when it does not parse (the atomic write makes a
 * half-written journal impossible; a file that is not ours is ignored rather than acted upon).
 */
export async function readJournal(stateDir: string): Promise<JournalEntry | null> {
  let text: string;
  try {
    text = await readFile(journalPath(stateDir), 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = JSON.parse(text) as Partial<JournalEntry>;
    if (parsed.version !== 1 || typeof parsed.pid !== 'number' || !JOURNAL_STEPS.includes(parsed.step as JournalStep)) return null;
    return parsed as JournalEntry;
  } catch {
    return null;
  }
}

/**
 * The journal of one run. Nothing is written until the first {@link Journal.record}, so runs that
 * change nothing leave no journal. Every write is atomic and durable (temporary file, fsync, rename,
 * fsync of the state folder), so after a power loss the file holds either the previous step or the new one.
 */
export class Journal {
  private entry: JournalEntry | null = null;

  constructor(
    private readonly ctx: Context,
    private readonly command: JournalEntry['command'],
  ) {}

  /** The current entry (null before the first record). */
  get current(): JournalEntry | null {
    return this.entry;
  }

  /**
   * Records that `step` is about to be done, merging `fields` into the entry (`temps` are added).
   * Then the test hook `LETTO_UPDATE_FAULT` may kill this process ({@link injectFault}).
   * @throws the file system error when the journal cannot be written (the step is then not done).
   */
  async record(step: JournalStep, fields: Partial<Omit<JournalEntry, 'version' | 'pid' | 'process' | 'command' | 'started' | 'written' | 'step'>> = {}): Promise<void> {
    const now = this.ctx.services.clock.now().toISOString();
    const base: JournalEntry = this.entry ?? {
      version: 1,
      pid: process.pid,
      process: processIdentity(process.pid),
      command: this.command,
      started: now,
      written: now,
      step,
      from: null,
      to: null,
      target: null,
      backup: null,
      wasRunning: null,
      backupLock: null,
      temps: [],
      healthy: false,
      kind: this.ctx.config.docker ? 'docker' : 'tomee',
    };
    const temps = [...new Set([...base.temps, ...(fields.temps ?? [])])];
    const entry: JournalEntry = { ...base, ...fields, temps, step, written: now };
    await this.ctx.state.ensure();
    await writeFileAtomically(journalPath(this.ctx.state.dir), JSON.stringify(entry, null, 2) + '\n', this.ctx.serviceUser);
    this.entry = entry;
    injectFault(step);
  }

  /** Removes the journal: the run has concluded (installed, failed with nothing changed, or rolled back). */
  async finish(): Promise<void> {
    if (!this.entry) return;
    await removeJournal(this.ctx.state.dir);
    this.entry = null;
  }

  /** Keeps the journal on disk for the next run (used when putting the previous revision back failed). */
  abandon(): void {
    this.entry = null;
  }
}

/**
 * Rewrites an unfinished journal found on disk (recovery has no {@link Journal} of its own): e.g. the
 * step `restore` before recovery restores a database, so that a recovery killed in turn restores again.
 * @throws the file system error when it cannot be written (the step is then not done).
 */
export async function rewriteJournal(ctx: Context, entry: JournalEntry): Promise<void> {
  await writeFileAtomically(journalPath(ctx.state.dir), JSON.stringify({ ...entry, written: ctx.services.clock.now().toISOString() }, null, 2) + '\n', ctx.serviceUser);
  injectFault(entry.step);
}

/** Removes the journal and leftovers of its atomic writes, durably. */
export async function removeJournal(stateDir: string): Promise<void> {
  await rm(journalPath(stateDir), { force: true });
  for (const name of await readdir(stateDir).catch(() => [] as string[])) {
    // leftovers of atomic writes cut short by a kill (journal, state)
    if (/^(journal|state)\.json\.tmp-\d+$/.test(name)) await rm(join(stateDir, name), { force: true });
  }
  await syncDir(stateDir);
}

/**
 * The unfinished journal of a killed run, or null. Under the run lock every journal is unfinished
 * (a live run would hold the lock); without it (`status`), a journal whose process still lives is a
 * run in progress and not reported.
 */
export async function unfinishedJournal(ctx: Context, underRunLock: boolean): Promise<JournalEntry | null> {
  const journal = await readJournal(ctx.state.dir);
  if (!journal) return null;
  if (!underRunLock && journal.pid !== process.pid && isSameProcessAlive(journal.pid, journal.process)) return null;
  return journal;
}

/** One sentence describing an unfinished journal, for `status` and messages. */
export function describeJournal(journal: JournalEntry): string {
  return `${journal.command === 'update' ? 'An' : 'A'} ${journal.command} from revision ${journal.from ?? 'unknown'} to ${journal.to ?? 'unknown'} (process ${journal.pid}, started ${localTime(journal.started)}) was interrupted at step "${journal.step}".`;
}
