/**
 * The esbuild bundle of bin/letto-update.js (packaging/bundle.mjs, split ES modules) gives a CommonJS
 * package that is imported dynamically only a default export, so `const { request } = await
 * import('undici')` finds nothing there. undici is loaded through src/system/undici.ts instead.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../../src/', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('dynamic imports that the bundle can serve', () => {
  it('undici is imported dynamically only in src/system/undici.ts', () => {
    const offenders = sources(SRC).filter((file) => !file.endsWith('system/undici.ts') && /import\(\s*['"]undici['"]\s*\)(?!\s*\.\s*\w+\s*[;,)])/.test(readFileSync(file, 'utf8').replace(/typeof import\(['"]undici['"]\)/g, '')));
    expect(offenders.map((f) => f.slice(SRC.length))).toEqual([]);
  });
});
