/**
 * Loads undici on first use (it adds ~15 MiB RSS and ~0.1 s to a process that does not need it).
 * Through `default` (= module.exports) when there is one: undici is CommonJS, and in the esbuild bundle
 * of bin/letto-update.js (split ES modules) a dynamically imported CommonJS module has only its
 * default export; Node's own loader offers both.
 */
export async function importUndici(): Promise<typeof import('undici')> {
  const loaded = await import('undici');
  return (loaded as unknown as { default?: typeof import('undici') }).default ?? loaded;
}
