import { readFileSync } from 'node:fs';

/** Set by the esbuild bundle (`npm run package`), which has no package.json beside it. */
declare const LETTO_UPDATE_VERSION: string | undefined;

/** The version of letto-update: package.json's `version` (baked into the bundle at build time). */
export const version: string =
  typeof LETTO_UPDATE_VERSION === 'string'
    ? LETTO_UPDATE_VERSION
    : (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
