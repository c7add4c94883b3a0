import { describe, expect, it } from 'vitest';
import { channelFiles, parseRevision } from '../../src/revision.js';

describe('parseRevision', () => {
  it.each([
    ['6886', 6886],
    ['6886\n', 6886],
    ['6886\r\n', 6886],
    ['6886\r', 6886],
    ['\uFEFF6886\r\n', 6886],
    ['  6886  \r\n', 6886],
    ['\t6886\t\n', 6886],
    ['6886\r\n6887\r\n', 6886],
    ['6886\nsome trailing text\n', 6886],
    ['999999999', 999999999],
    ['1', 1],
  ])('%j → %i', (text, revision) => {
    expect(parseRevision(text)).toEqual({ ok: true, revision });
  });

  it.each([
    ['', /empty/],
    ['\r\n', /empty/],
    ['   \n  \n', /empty/],
    ['\uFEFF', /empty/],
    ['<!DOCTYPE html>\n<html><body>401 Unauthorized</body></html>', /HTML page/],
    ['  <html>\r\n<head><title>404 Not Found</title></head>', /HTML page/],
    ['\uFEFF<html></html>', /HTML page/],
    ['-6886', /"-6886" is not a revision number/],
    ['0', /"0" is not a revision number/],
    ['000', /not a revision number/],
    ['1234567890', /not a revision number/],
    ['99999999999999999999999', /not a revision number/],
    ['6886.5', /not a revision number/],
    ['1e4', /not a revision number/],
    ['0x1ae6', /not a revision number/],
    ['6886abc', /not a revision number/],
    ['rev 6886', /not a revision number/],
    ['\n6886\n', /first line "" is not a revision number/],
    ['６８８６', /not a revision number/], // full-width digits
  ])('%j is refused (%s)', (text, reason) => {
    const parsed = parseRevision(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });

  it('quotes at most 40 characters of a long first line', () => {
    const parsed = parseRevision('x'.repeat(500));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason.length).toBeLessThan(100);
  });
});

describe('channelFiles', () => {
  it('names the WAR and the revision file of each channel', () => {
    expect(channelFiles('stable')).toEqual({ war: 'letto-stable.war', revision: 'stable-revision.txt' });
    expect(channelFiles('daily')).toEqual({ war: 'letto-daily.war', revision: 'daily-revision.txt' });
  });
});
