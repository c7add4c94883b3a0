/** The Docker suite's `describe`, apart from test/support/docker.ts so that the demo can use that without vitest. */
import { describe, it } from 'vitest';
import { dockerUnavailable } from './docker.js';

/**
 * `describe` that needs Docker: skipped loudly when it is missing, failing instead under LETTO_E2E_REQUIRED=1.
 * @param alsoMissing what else the suite needs and is missing (e.g. compose v2), or null.
 */
export function describeWithDocker(name: string, body: () => void, alsoMissing: string | null = null): void {
  const missing = dockerUnavailable() ?? alsoMissing;
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

