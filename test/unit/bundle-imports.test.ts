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

interface Meta {
  outputs: Record<string, { entryPoint?: string; imports: Array<{ path: string; kind: string }>; inputs: Record<string, unknown> }>;
}

/** The source files a command of the bundle loads: cli.js, the command's chunk, and what they import statically. */
function loadedBy(meta: Meta, command: string | null): string[] {
  const outputs = Object.entries(meta.outputs);
  const start = outputs.filter(([, o]) => o.entryPoint === 'src/cli.ts' || (command !== null && o.entryPoint === `src/commands/${command}.ts`)).map(([path]) => path);
  expect(start).toHaveLength(command === null ? 1 : 2);
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path) || !meta.outputs[path]) return;
    seen.add(path);
    for (const i of meta.outputs[path]!.imports) if (i.kind === 'import-statement') visit(i.path);
  };
  start.forEach(visit);
  return [...seen].flatMap((path) => Object.keys(meta.outputs[path]!.inputs));
}

describe('a command loads only what it uses (issue 11: start-up of a monitoring plugin)', async () => {
  const { build } = await import('esbuild');
  // @ts-expect-error: a plain .mjs module without types
  const { binOptions } = (await import('../../packaging/bundle-options.mjs')) as { binOptions: Record<string, unknown> };
  const { metafile } = await build({ ...binOptions, write: false, metafile: true, logLevel: 'silent' });
  const meta = metafile as unknown as Meta;
  // paths since the layout of issue 19: a kind's adapter (src/kinds/*/index.ts) is loaded by every command, its other modules only when a step runs
  const heavy = /node_modules\/(undici|nodemailer|yaml|ora|yauzl)\/|^src\/(runbook\/|kinds\/docker\/(?!index\.ts$)|kinds\/tomee\/(install|recover|swap|space|plan)\.ts$|war\/(delta\/|download\.ts|follow\.ts))/;

  it.each([
    ['--version', null],
    ['health', 'health'],
    ['check', 'check'],
    // issue 22: `metrics` without --probe reads only local files
    ['metrics', 'metrics'],
  ])('%s loads neither the update runbook, Docker, the download client nor mail', (_label, command) => {
    const loaded = loadedBy(meta, command);
    expect(loaded.length).toBeGreaterThan(3);
    // health and check read the installed revision from the WAR (revision.txt inside letto.war): yauzl
    const needed = command === null ? /^$/ : /node_modules\/yauzl\//;
    expect(loaded.filter((input) => heavy.test(input) && !needed.test(input))).toEqual([]);
  });

  it('update loads the runbook (the check above can see a heavy module)', () => {
    expect(loadedBy(meta, 'update').filter((input) => heavy.test(input)).length).toBeGreaterThan(0);
  });
});
