/**
 * esbuild options of the bundles (packaging/bundle.mjs builds them; test/unit/bundle-imports.test.ts
 * builds the `--bin` one in memory to check what each command loads).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const repo = fileURLToPath(new URL('..', import.meta.url));
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** Shared by both bundles; the version is baked in from package.json (the bundles have no package.json beside them). */
export const common = {
  absWorkingDir: repo,
  bundle: true,
  platform: 'node',
  define: { LETTO_UPDATE_VERSION: JSON.stringify(version) },
  logLevel: 'warning',
  legalComments: 'none',
};

/** `dist/bundle/`: ES modules split at each dynamic import, entry `dist/bundle/cli.js`. */
export const binOptions = {
  ...common,
  entryPoints: { cli: 'src/cli.ts' },
  outdir: 'dist/bundle',
  format: 'esm',
  splitting: true,
  target: 'node20.18',
  chunkNames: '[name]-[hash]',
  // CommonJS dependencies (nodemailer, yauzl…) call require() for Node's built-in modules
  banner: { js: "import { createRequire as __lettoRequire } from 'node:module'; const require = __lettoRequire(import.meta.url);" },
};
