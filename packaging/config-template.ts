/**
 * /etc/letto-update/config.toml of the Debian package: every section and key of the config schema
 * (src/config/config.ts), each commented out with its default, and the comment that docs/configuration.md gives
 * it in its example file. Generated at build time, so that it stays true to the schema
 * (test/unit/config-template.test.ts checks that it parses back, uncommented, to the defaults).
 *
 * Usage: node --import tsx packaging/config-template.ts > config.toml
 */
import { readFileSync } from 'node:fs';
import { stringify } from 'smol-toml';
import { configSchema } from '../src/config/config.js';

/** `key = value   # comment` lines of the example in docs/configuration.md: section → key → comment. */
function documentedComments(docs: string): Map<string, string> {
  const comments = new Map<string, string>();
  const block = /```toml\n([\s\S]*?)```/.exec(docs)?.[1] ?? '';
  let section = '';
  for (const line of block.split('\n')) {
    const header = /^\[(\w+)\]/.exec(line);
    if (header) section = header[1]!;
    const entry = /^(\w+)\s*=.*?\s#\s(.*)$/.exec(line);
    if (entry) comments.set(`${section}.${entry[1]}`, entry[2]!.trim());
  }
  return comments;
}

/**
 * The config file text: a header, then per section `[section]` and one `# key = default` line per key,
 * followed by its documented comment when there is one (removing the leading `# ` gives valid TOML).
 * @param docs text of docs/configuration.md (for the comments).
 */
export function configTemplate(docs: string): string {
  const defaults = configSchema.parse({}) as Record<string, Record<string, unknown>>;
  const comments = documentedComments(docs);
  const lines = [
    '# /etc/letto-update/config.toml — letto-update (LeTTo updates, health check, watchdog)',
    '#',
    '# Every key is shown with its default, commented out: uncomment and change only what differs on this',
    '# server. Each key is explained in /usr/share/doc/letto-update/configuration.md and `man letto-update`.',
    '# The download password does not belong here: put it into /etc/letto-update/password (chmod 600).',
    '# Check the file with: letto-update check',
  ];
  for (const [section, keys] of Object.entries(defaults)) {
    lines.push('', `[${section}]`);
    for (const [key, value] of Object.entries(keys)) {
      const entry = `# ${stringify({ [key]: value }).trim()}`;
      const comment = comments.get(`${section}.${key}`);
      lines.push(comment ? `${entry.padEnd(46)} # ${comment}` : entry);
    }
  }
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.stdout.write(configTemplate(readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')));
}
