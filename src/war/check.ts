import { warPath, type Context } from '../context.js';
import { DownloadError } from '../errors.js';
import { isFile } from '../system/files.js';
import { channelFiles, parseRevision, type Channel, type Revision } from '../revision.js';
import { readWarRevision } from './verify.js';

/** The installed revision and where it was read from. */
export interface Installed {
  revision: Revision | null;
  /** `war`: WEB-INF/classes/revision.txt in the installed WAR; `state`: the tool's own record; null: unknown. */
  source: 'war' | 'state' | null;
}

/**
 * Step "check", part 1: the installed revision, from `WEB-INF/classes/revision.txt` inside
 * `webapps/<war_name>`, falling back to `state.json` (written by the last successful run).
 */
export async function readInstalled(ctx: Context): Promise<Installed> {
  const path = warPath(ctx.config);
  if (!(await isFile(path))) return { revision: null, source: null };
  const revision = await readWarRevision(path);
  if (revision !== null) return { revision, source: 'war' };
  const { installed } = await ctx.state.read();
  return installed !== null ? { revision: installed, source: 'state' } : { revision: null, source: null };
}

/**
 * Step "check", part 2: the channel's available revision from `<server.url>/<channel>-revision.txt`
 * (first line, integer; see DOMAIN.md).
 * @throws DownloadError when the server cannot be reached, refuses, or sends something that is not a revision.
 */
export async function readAvailable(ctx: Context, channel: Channel): Promise<Revision> {
  const url = new URL(channelFiles(channel).revision, ctx.config.server.url).href;
  const text = await ctx.services.http.getText(url);
  const parsed = parseRevision(text);
  if (!parsed.ok) {
    throw new DownloadError(`The revision file ${url} is not usable: ${parsed.reason}.`, {
      hint: 'Nothing was changed. Check server.url (it must point at the LeTTo download folder) and try again later.',
    });
  }
  return parsed.revision;
}
