import type { Context } from '../../context.js';
import { boundTail, environmentSecrets, redactSecrets, type LogTail } from '../../system/log-tail.js';
import { composeSecrets, type LettoService } from './compose.js';
import { dockerOf } from './engine.js';

/** Lines per container, containers at most, and characters in all (a mail, not a log archive). */
const LINES = 40;
const MAX_CONTAINERS = 4;
const MAX_CHARS = 16 * 1024;
/** Seconds `docker logs` may take. */
const TIMEOUT = 60;

/**
 * The last {@link LINES} lines of `docker logs` of each service in `failing` (those that failed their
 * health check; at most {@link MAX_CONTAINERS}), stdout and stderr merged in time order, for the
 * failure notification. Cut to {@link MAX_CHARS} characters; every value of the services'
 * secret-looking variables, the download and SMTP passwords, and `password=…`-like values are
 * replaced by `********`. Must be read before the undo recreates the containers (their logs go
 * with them).
 * @returns null when there is no container to read. Never throws (a log that cannot be read says so).
 */
export async function failedServiceLogs(ctx: Context, failing: LettoService[], why: string): Promise<LogTail | null> {
  const chosen = failing.filter((s) => s.container).slice(0, MAX_CONTAINERS);
  if (chosen.length === 0) return null;
  const secrets = [...composeSecrets(ctx), ...environmentSecrets()];
  const parts: string[] = [];
  const perContainer = Math.floor(MAX_CHARS / chosen.length);
  for (const s of chosen) {
    const c = s.container!;
    const result = await dockerOf(ctx).docker(['logs', '--tail', String(LINES), '--timestamps', c.id], TIMEOUT);
    const text = result.failure || result.exitCode !== 0 ? `(docker logs ${c.name} failed: ${result.failure ?? result.stderr.split('\n').at(-1)})` : mergeByTime(result.stdout, result.stderr);
    parts.push(`== ${s.service} (container ${c.name}, ${c.state}${c.health ? `, ${c.health}` : ''}) ==\n${boundTail(redactSecrets(text, secrets), LINES, 500, perContainer) || '(no output)'}`);
  }
  const names = chosen.map((s) => s.service).join(', ');
  return { source: `\`docker logs --tail ${LINES}\` of ${names} (${why})`, text: parts.join('\n\n') };
}

/** stdout and stderr of `docker logs --timestamps`, merged by their RFC 3339 timestamps, without them. */
function mergeByTime(stdout: string, stderr: string): string {
  const lines = `${stdout}\n${stderr}`.split('\n').filter((l) => l.trim() !== '');
  const stamped = lines.map((line, i) => ({ i, time: /^\d{4}-\d\d-\d\dT\S+Z/.exec(line)?.[0] ?? '', text: line.replace(/^\d{4}-\d\d-\d\dT\S+Z ?/, '') }));
  stamped.sort((a, b) => (a.time === b.time ? a.i - b.i : a.time < b.time ? -1 : 1));
  return stamped.map((l) => l.text).join('\n');
}
