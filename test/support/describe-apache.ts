import { describe, it } from 'vitest';
import { apacheMissing } from './apache.js';

/** `describe` for suites that need Apache: skipped loudly without it, a failure when LETTO_E2E_REQUIRED=1 (as CI sets). */
export function describeWithApache(name: string, body: () => void): void {
  const missing = apacheMissing();
  if (missing && process.env.LETTO_E2E_REQUIRED === '1') {
    describe(name, () => {
      it('needs a real Apache httpd (LETTO_E2E_REQUIRED=1)', () => {
        throw new Error(`LETTO_E2E_REQUIRED=1 but Apache is not available: ${missing}. Install apache2.`);
      });
    });
    return;
  }
  if (missing) console.warn(`\n*** APACHE SUITE SKIPPED (${name}): ${missing}. Install apache2 to run it. ***\n`);
  describe.skipIf(missing !== null)(name, body);
}
