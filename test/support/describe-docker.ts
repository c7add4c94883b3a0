/** The Docker suite's `describe`, apart from test/support/docker.ts so that the demo can use that without vitest. */
import { describe, it } from 'vitest';
import { dockerUnavailable } from './docker.js';

/** `describe` that needs Docker: skipped loudly when it is missing, failing instead under LETTO_E2E_REQUIRED=1. */
export function describeWithDocker(name: string, body: () => void): void {
  const missing = dockerUnavailable();
  if (missing) {
    if (process.env.LETTO_E2E_REQUIRED === '1') {
      describe(name, () => {
        it('needs a real Docker engine, registry and compose (LETTO_E2E_REQUIRED=1)', () => {
          throw new Error(`LETTO_E2E_REQUIRED=1 but the Docker suite cannot run: ${missing}.`);
        });
      });
      return;
    }
    console.warn(`\n*** DOCKER END-TO-END SUITE SKIPPED (${name}): ${missing}. ***\n`);
  }
  describe.skipIf(missing !== null)(name, body);
}

