/**
 * Which of LeTTo's databases `[database]` covers (LeTTo's admin docs, see DOMAIN.md): a TomEE install
 * keeps one database `letto` on the host; a Docker install keeps one per school, `letto_<school>`, plus
 * `lettolti` for the LTI service, in the MySQL container. Without `database.databases` the kind's
 * default applies. Kept apart from the connection so that `status` names them without loading it.
 */
import type { Context } from '../context.js';

/**
 * `database.databases`, or the kind's default: TomEE `["letto"]`; Docker `["letto_*", "lettolti?"]`
 * (every school's database, and the LTI service's when it exists: a name ending in `?` is optional).
 * A name ending in `*` stands for every database that starts with the rest.
 */
export function databaseNames(ctx: Context): string[] {
  return ctx.config.database?.databases ?? (ctx.config.docker ? ['letto_*', 'lettolti?'] : ['letto']);
}

/** The names for messages (`letto_*, lettolti`): without the optional mark. */
export function describeNames(ctx: Context): string {
  return databaseNames(ctx)
    .map((n) => n.replace(/\?$/, ''))
    .join(', ');
}
