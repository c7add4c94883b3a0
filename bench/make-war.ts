/**
 * Generates a realistic large LeTTo-like WAR for the benchmark: `WEB-INF/web.xml`,
 * `WEB-INF/classes/revision.txt`, a few thousand small compressible entries (classes, XHTML pages)
 * and, for the bulk of the size, `WEB-INF/lib/*.jar` entries of 0.5–4 MiB whose content is
 * incompressible (a jar is itself a zip of compressed classes), deflated as Maven's war plugin does
 * (fast level: the data does not shrink anyway, and generation stays quick).
 *
 * CLI: `node --import tsx bench/make-war.ts --mib 256 --revision 6886 --out file.war`
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ZipFile } from 'yazl';
import { webXml } from '../fixtures/build-war.js';

/** Writes a WAR of about `mib` MiB to `path`. Returns the number of entries. */
export async function makeBenchWar(path: string, mib: number, revision: number): Promise<number> {
  await mkdir(dirname(path), { recursive: true });
  const zip = new ZipFile();
  // written under a temporary name: an interrupted generation never leaves a truncated WAR behind
  const temp = `${path}.tmp`;
  const done = pipeline(zip.outputStream, createWriteStream(temp));
  let entries = 0;
  zip.addBuffer(Buffer.from(webXml(true)), 'WEB-INF/web.xml');
  zip.addBuffer(Buffer.from(`${revision}\r\n`), 'WEB-INF/classes/revision.txt');
  entries += 2;
  // small, compressible entries: ~2 % of the size
  const smallCount = Math.max(200, Math.round(mib * 8));
  for (let i = 0; i < smallCount; i++) {
    const text = `package at.letto.bench.p${i % 50};\n` + `public class C${i} { /* ${'generated code '.repeat(20 + (i % 40))} */ }\n`.repeat(8);
    zip.addBuffer(Buffer.from(text), i % 5 === 0 ? `pages/p${i}.xhtml` : `WEB-INF/classes/at/letto/bench/p${i % 50}/C${i}.class`);
    entries++;
  }
  // the jars: the bulk of the bytes
  let left = mib * 1024 * 1024;
  let n = 0;
  while (left > 0) {
    const size = Math.min(left, (512 + ((n * 7919) % 3584)) * 1024);
    zip.addBuffer(randomBytes(size), `WEB-INF/lib/library-${n}.jar`, { compressionLevel: 1 });
    left -= size;
    n++;
    entries++;
    // do not queue the whole WAR in memory: let yazl drain now and then
    if (n % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  zip.end();
  await done;
  await rename(temp, path);
  return entries;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string, fallback: string): string => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
  };
  const out = arg('out', 'bench-war.war');
  const count = await makeBenchWar(out, Number(arg('mib', '256')), Number(arg('revision', '6886')));
  console.log(`${out}: ${count} entries`);
}
