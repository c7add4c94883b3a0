/** The privilege rule of `openSession`: root or the service user may act, anyone else gets a clear error first. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExitCode, LettoError } from '../../src/errors.js';
import { assertMayAct } from '../../src/config/session.js';

const letto = { name: 'letto', uid: 1001, gid: 1001, home: '/opt' };

describe('assertMayAct', () => {
  afterEach(() => vi.restoreAllMocks());

  it('root may act (as the service user)', () => {
    vi.spyOn(process as { getuid(): number }, 'getuid').mockReturnValue(0);
    expect(() => assertMayAct(letto)).not.toThrow();
  });

  it('the service user may act directly', () => {
    vi.spyOn(process as { getuid(): number }, 'getuid').mockReturnValue(1001);
    expect(() => assertMayAct(letto)).not.toThrow();
  });

  it('anyone else: exit 1, naming both users and what to do', () => {
    vi.spyOn(process as { getuid(): number }, 'getuid').mockReturnValue(1234);
    let caught: unknown;
    try {
      assertMayAct(letto);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(LettoError);
    const error = caught as LettoError;
    expect(error.exitCode).toBe(ExitCode.failed);
    expect(error.message).toContain('uid 1234');
    expect(error.message).toContain('letto (uid 1001)');
    expect(error.hint).toContain('sudo -u letto');
  });
});
