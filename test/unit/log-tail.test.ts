import { describe, expect, it } from 'vitest';
import { boundTail, environmentSecrets, redactSecrets, REDACTED } from '../../src/system/log-tail.js';

describe('redactSecrets', () => {
  it('replaces every known secret, the longest first', () => {
    expect(redactSecrets('user letto pw geheim-123, again geheim-123', ['geheim-123'])).toBe(`user letto pw ${REDACTED}, again ${REDACTED}`);
    expect(redactSecrets('abc-secret-long', ['abc', 'abc-secret-long'])).toBe(REDACTED);
  });

  it('leaves secrets shorter than 4 characters alone (they would hide ordinary words)', () => {
    expect(redactSecrets('a cat', ['cat'])).toBe('a cat');
  });

  it('replaces values assigned to secret-looking names, keeping the name', () => {
    expect(redactSecrets('jdbc:mysql://db/letto?user=letto&password=Db-Secret-9&ssl=1', [])).toBe(`jdbc:mysql://db/letto?user=letto&password=${REDACTED}&ssl=1`);
    expect(redactSecrets('MYSQL_ROOT_PASSWORD: hunter22', [])).toBe(`MYSQL_ROOT_PASSWORD: ${REDACTED}`);
    expect(redactSecrets('{"apiKey": "k-1234", "token":"t-9"}', [])).toBe(`{"apiKey": "${REDACTED}", "token":"${REDACTED}"}`);
    expect(redactSecrets('INFO: started in 42 ms', [])).toBe('INFO: started in 42 ms');
  });

  it('replaces the password of a URL', () => {
    expect(redactSecrets('mail via smtp://mailer:s3cret@mail.example:587 failed', [])).toBe(`mail via smtp://mailer:${REDACTED}@mail.example:587 failed`);
  });
});

describe('boundTail', () => {
  it('keeps the last lines, cuts long lines and the total size (newest lines kept)', () => {
    const text = Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n');
    expect(boundTail(text, 3)).toBe('line 97\nline 98\nline 99');
    expect(boundTail(`short\n${'x'.repeat(600)}`, 10, 500)).toBe(`short\n${'x'.repeat(500)} […]`);
    const bounded = boundTail(text, 100, 500, 40);
    expect(bounded.length).toBeLessThanOrEqual(40);
    expect(bounded.endsWith('line 99')).toBe(true);
  });
});

describe('environmentSecrets', () => {
  it('names the download and SMTP passwords from the environment', () => {
    expect(environmentSecrets({ LETTO_UPDATE_PASSWORD: 'dl', LETTO_UPDATE_SMTP_PASSWORD: 'smtp', HOME: '/root' })).toEqual(['dl', 'smtp']);
  });
});
