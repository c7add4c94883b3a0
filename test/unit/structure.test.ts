/**
 * The layout holds (issue 19): no import circle, no kind importing another kind, the runbook and the
 * rest reaching a kind only through src/kinds/index.ts and types.ts, lower layers never importing upward
 * (dependency-cruiser, .dependency-cruiser.cjs); no source file over 400 lines and no function over 80
 * (ESLint, eslint.config.mjs). A planted knot proves the rules fire.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const bin = (name: string) => join(root, 'node_modules/.bin', name);

/** Runs a tool; its exit code and output (never throws for a non-zero exit). */
async function tool(name: string, args: string[], cwd = root): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(bin(name), args, { cwd, maxBuffer: 16 << 20 });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('structure', () => {
  const planted: string[] = [];
  afterAll(async () => {
    for (const dir of planted) await rm(dir, { recursive: true, force: true });
  });

  it('src/ has no import circle and keeps the layers (dependency-cruiser)', async () => {
    const { code, out } = await tool('depcruise', ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err']);
    expect(out).toContain('no dependency violations found');
    expect(code).toBe(0);
  }, 120_000);

  it('no file in src/ over 400 lines, no function over 80 (ESLint)', async () => {
    const { code, out } = await tool('eslint', ['--max-warnings', '0', 'src']);
    expect(out).toBe('');
    expect(code).toBe(0);
  }, 120_000);

  it('the rules fire on a planted knot: a circle across the kinds, the runbook reaching into a kind, a long function', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lu-structure-'));
    planted.push(dir);
    for (const folder of ['src/kinds/tomee', 'src/kinds/docker', 'src/runbook']) await mkdir(join(dir, folder), { recursive: true });
    await writeFile(join(dir, 'src/kinds/tomee/a.ts'), "import { b } from '../docker/b.js';\nexport const a = (): number => b() + 1;\n");
    await writeFile(join(dir, 'src/kinds/docker/b.ts'), "import { a } from '../tomee/a.js';\nexport const b = (): number => a();\n");
    await writeFile(join(dir, 'src/runbook/run.ts'), `import { a } from '../kinds/tomee/a.js';\nexport function long(): number {\n${'  a();\n'.repeat(85)}  return 0;\n}\n`);
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
    await cp(join(root, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
    const cruise = await tool('depcruise', ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], dir);
    expect(cruise.code).not.toBe(0);
    expect(cruise.out).toContain('no-circular');
    expect(cruise.out).toContain('no-kind-into-another');
    expect(cruise.out).toContain('kinds-only-through-the-interface');
    const lint = await tool('eslint', ['--config', join(root, 'eslint.config.mjs'), 'src'], dir);
    expect(lint.code).not.toBe(0);
    expect(lint.out).toContain('max-lines-per-function');
  }, 120_000);
});
