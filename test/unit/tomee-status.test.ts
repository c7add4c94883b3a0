import { describe, expect, it } from 'vitest';
import { parseStatusPid } from '../../src/kinds/tomee/scripts.js';

describe('parseStatusPid (what the status script printed)', () => {
  it.each([
    ['1234\n', 1234],
    ['  1234  \r\n', 1234],
    ['PID: 1234', 1234],
    ['pid=1234', 1234],
    ['LeTTo läuft mit PID 1234', 1234],
    ['tomee                      RUNNING    pid 14224, uptime 0:20:40', 14224],
    ['Tomee status:\n5678\n', 5678],
  ])('%j → %i', (stdout, pid) => {
    expect(parseStatusPid(stdout)).toBe(pid);
  });

  it.each([
    [''],
    ['LeTTo läuft nicht'],
    ['stopped since 12:30'],
    ['uptime 0:20:40'],
    ['rapid 1234'], // "pid" only as a whole word
    ['0'],
  ])('%j → not running', (stdout) => {
    expect(parseStatusPid(stdout)).toBeNull();
  });
});
