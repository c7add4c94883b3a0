/**
 * `npm run demo` works: the demo (demo/run-demo.ts) drives the built CLI (dist/, built by `npm test`
 * before vitest runs) against a local HTTPS download server and the TomEE stand-in, and every step
 * ends with the expected exit code and the expected revision answering.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function runDemo(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LETTO_UPDATE_')) env[k] = v;
    const child = spawn(process.execPath, ['--import', 'tsx', join('demo', 'run-demo.ts'), '--skip-docker'], {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 110_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('npm run demo', () => {
  it(
    'shows check → update → failed update rolled back → rollback with the real CLI',
    async () => {
      expect(existsSync(join(REPO, 'dist', 'cli.js')), 'dist/ is missing: run `npm run build` (npm test does)').toBe(true);
      const { code, output } = await runDemo();
      if (code !== 0) console.error(output);
      expect(code).toBe(0);
      // check: 6880 installed, stable 6886 available (exit 100)
      expect(output).toContain('installed: 6880');
      expect(output).toContain('available (stable): 6886');
      expect(output).toMatch(/✓ exit 100 · LeTTo answers: revision 6880/);
      // update to 6886
      expect(output).toContain('Revision 6886 runs and answers its health check');
      // the broken daily 6890 is rolled back automatically (exit 3), 6886 answers again
      expect(output).toContain('Downloading revision 6890');
      expect(output).toMatch(/revision 6886 was put back/i);
      expect(output).toContain('at.letto.DoesNotExist');
      expect(output).toMatch(/✓ exit 3 · LeTTo answers: revision 6886/);
      // rollback by hand to 6880, then the archive listing
      expect(output).toContain('Revision 6880 runs and answers its health check');
      expect(output).toMatch(/✓ exit 0 · LeTTo answers: revision 6880/);
      expect(output).toMatch(/6870 {2}https:\/\/127\.0\.0\.1:\d+\/download\/letto\/archiv\/letto-6870\.war/);
      expect(output).toContain('TomEE demo passed');
      // the Docker half is the Docker e2e suite's business (test/e2e/docker.test.ts); here it is skipped
      expect(output).toContain('Docker install: skipped (--skip-docker).');
      expect(output).not.toContain('✗');
    },
    120_000,
  );
});
