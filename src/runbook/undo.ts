import type { LettoEvent } from '../context.js';

/** One registered way back: a label in plain words and the action. */
interface UndoAction {
  label: string;
  run(): Promise<void>;
}

/** What unwinding did: every action that failed, with its error. */
export interface UnwindResult {
  ok: boolean;
  failures: Array<{ label: string; error: unknown }>;
}

/**
 * The undo list: each step that changes the machine registers how to undo it. On failure the list runs
 * in reverse; every action is tried even when one fails, and the failures are returned, not thrown,
 * so the first (original) error stays the one reported.
 */
export class UndoList {
  private readonly actions: UndoAction[] = [];

  push(label: string, run: () => Promise<void>): void {
    this.actions.push({ label, run });
  }

  /** Runs all actions in reverse order and empties the list. */
  async unwind(emit: (event: LettoEvent) => void): Promise<UnwindResult> {
    const failures: UnwindResult['failures'] = [];
    while (this.actions.length > 0) {
      const action = this.actions.pop()!;
      emit({ type: 'step', step: 'rollback', message: `Undo: ${action.label}` });
      try {
        await action.run();
      } catch (error) {
        failures.push({ label: action.label, error });
        emit({ type: 'warn', message: `Undo failed: ${action.label}: ${error instanceof Error ? error.message : String(error)}` });
      }
    }
    return { ok: failures.length === 0, failures };
  }

  /** Forgets all actions (the change is kept). */
  clear(): void {
    this.actions.length = 0;
  }
}
