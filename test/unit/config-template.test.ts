/**
 * The Debian package's /etc/letto-update/config.toml (packaging/config-template.ts) stays true to the
 * config schema: every key is there, commented out, and uncommented the file gives exactly the defaults.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { configTemplate } from '../../packaging/config-template.js';
import { configSchema } from '../../src/config/config.js';

const docs = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

describe('config.toml of the Debian package', () => {
  const text = configTemplate(docs);

  it('sets nothing as it is: every key is commented out', () => {
    const active = text.split('\n').filter((line) => line.trim() && !line.startsWith('#') && !/^\[\w+\]$/.test(line));
    expect(active).toEqual([]);
    expect(configSchema.parse(parse(text))).toEqual(configSchema.parse({}));
  });

  it('uncommented, gives every key of the schema with its default', () => {
    const uncommented = text.replace(/^# (\w+ = )/gm, '$1');
    const parsed = parse(uncommented) as Record<string, Record<string, unknown>>;
    const defaults = configSchema.parse({}) as Record<string, Record<string, unknown>>;
    expect(parsed).toEqual(defaults);
    for (const [section, keys] of Object.entries(defaults)) expect(Object.keys(parsed[section]!)).toEqual(Object.keys(keys));
  });

  it('carries the comments of docs/configuration.md', () => {
    expect(text).toMatch(/^# channel = "stable" +# or "daily"$/m);
  });
});
