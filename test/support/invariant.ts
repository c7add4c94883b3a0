/**
 * The webapps invariant of docs/reliability.md, as a test helper: at every instant `webapps/` holds
 * exactly one complete `letto.war` (a regular file, not a link) of a known revision, and nothing else
 * TomEE would deploy — no other `*.war`, no other folder. Allowed beside it: Tomcat's own exploded
 * folder of letto.war (`letto/`), and files TomEE never deploys (hidden names such as letto-update's
 * `.letto.war.letto-update.tmp` while a swap is in progress; `settled` forbids those too).
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { verifyWar } from '../../src/war/verify.js';

/**
 * Asserts the invariant and returns the installed revision.
 * @param known the revisions the WAR may carry. `settled`: also forbid temporary files (after a run
 * concluded); `ownerUid`: the WAR must belong to this user (the service user).
 */
export async function expectWebappsInvariant(webapps: string, known: number[], opts: { settled?: boolean; warName?: string; ownerUid?: number } = {}): Promise<number> {
  const warName = opts.warName ?? 'letto.war';
  const exploded = warName.replace(/\.war$/, '');
  const names = (await readdir(webapps)).sort();
  for (const name of names) {
    const info = await lstat(join(webapps, name));
    if (name === warName) {
      expect(info.isFile(), `${name} must be a regular file`).toBe(true);
      if (opts.ownerUid !== undefined) expect(info.uid, `${name} must belong to the service user`).toBe(opts.ownerUid);
    } else if (name === exploded) {
      expect(info.isDirectory(), `${name} must be Tomcat's exploded folder`).toBe(true);
    } else {
      // anything else must be something TomEE does not deploy: a hidden plain file, not a WAR, not a folder
      expect(info.isDirectory(), `stray folder ${name} in webapps`).toBe(false);
      expect(name.endsWith('.war'), `stray WAR ${name} in webapps`).toBe(false);
      expect(name.startsWith('.'), `stray file ${name} in webapps`).toBe(true);
      if (opts.settled) expect.fail(`temporary file ${name} left in webapps after the run concluded`);
    }
  }
  expect(names, 'webapps must hold the WAR').toContain(warName);
  const info = await verifyWar(join(webapps, warName)); // complete: zip structure, CRC-32 of every entry, web.xml
  expect(info.revision, 'the WAR must carry a revision').not.toBeNull();
  expect(known).toContain(info.revision);
  return info.revision!;
}
