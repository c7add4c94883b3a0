import { describe, expect, it } from 'vitest';
import type { LettoEvent } from '../../src/context.js';
import { UndoList } from '../../src/runbook/undo.js';

describe('UndoList', () => {
  it('runs the actions in reverse order and empties itself', async () => {
    const undo = new UndoList();
    const ran: string[] = [];
    for (const name of ['a', 'b', 'c']) undo.push(`undo ${name}`, async () => void ran.push(name));
    const events: LettoEvent[] = [];
    const result = await undo.unwind((e) => events.push(e));
    expect(ran).toEqual(['c', 'b', 'a']);
    expect(result).toEqual({ ok: true, failures: [] });
    // emptied: a second unwind runs nothing
    expect(await undo.unwind(() => undefined)).toEqual({ ok: true, failures: [] });
    expect(ran).toEqual(['c', 'b', 'a']);
    expect(events).toEqual([
      { type: 'step', step: 'rollback', message: 'Undo: undo c' },
      { type: 'step', step: 'rollback', message: 'Undo: undo b' },
      { type: 'step', step: 'rollback', message: 'Undo: undo a' },
    ]);
    // a second unwind does nothing
    expect(await undo.unwind(() => undefined)).toEqual({ ok: true, failures: [] });
    expect(ran).toHaveLength(3);
  });

  it('keeps going after a failing action and returns every failure (not thrown)', async () => {
    const undo = new UndoList();
    const ran: string[] = [];
    const boomB = new Error('b broke');
    undo.push('a', async () => void ran.push('a'));
    undo.push('b', async () => {
      ran.push('b');
      throw boomB;
    });
    undo.push('c', async () => {
      ran.push('c');
      throw 'c as a string';
    });
    undo.push('d', async () => void ran.push('d'));
    const events: LettoEvent[] = [];
    const result = await undo.unwind((e) => events.push(e));
    expect(ran).toEqual(['d', 'c', 'b', 'a']);
    expect(result.ok).toBe(false);
    expect(result.failures).toEqual([
      { label: 'c', error: 'c as a string' },
      { label: 'b', error: boomB },
    ]);
    expect(events.filter((e) => e.type === 'warn')).toEqual([
      { type: 'warn', message: 'Undo failed: c: c as a string' },
      { type: 'warn', message: 'Undo failed: b: b broke' },
    ]);
  });

  it('a synchronous throw inside an action is caught too', async () => {
    const undo = new UndoList();
    undo.push('sync', () => {
      throw new Error('sync boom');
    });
    const result = await undo.unwind(() => undefined);
    expect(result.failures.map((f) => f.label)).toEqual(['sync']);
  });

  it('clear() forgets the actions: nothing runs', async () => {
    const undo = new UndoList();
    let ran = false;
    undo.push('x', async () => {
      ran = true;
    });
    undo.clear();
    expect(await undo.unwind(() => undefined)).toEqual({ ok: true, failures: [] });
    expect(ran).toBe(false);
  });
});
