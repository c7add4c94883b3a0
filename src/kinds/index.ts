import type { Config } from '../config.js';
import type { Context } from '../context.js';
import type { JournalEntry } from '../journal.js';
import { dockerAdapter } from './docker.js';
import type { Adapter, Kind } from './kind.js';
import { tomeeAdapter } from './tomee.js';

export type { Adapter, Kind } from './kind.js';

/** Every kind of install and its adapter (see src/kinds/kind.ts). */
export const adapters = {
  tomee: tomeeAdapter,
  docker: dockerAdapter,
} satisfies Record<Kind, Adapter>;

/** The kind of install a config describes: `docker` with a `[docker]` section, else `tomee`. */
export function kindOf(config: Config): Kind {
  return config.docker ? 'docker' : 'tomee';
}

/** The adapter of the install `ctx` describes. */
export function adapterFor(ctx: Context): Adapter {
  return adapters[kindOf(ctx.config)];
}

/** The adapter that wrote `journal` (journals written before there were kinds are TomEE's). */
export function adapterOfJournal(journal: JournalEntry): Adapter {
  return adapters[journal.kind ?? 'tomee'];
}
