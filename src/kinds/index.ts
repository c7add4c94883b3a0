import type { Config } from '../config/config.js';
import type { Context } from '../context.js';
import type { JournalEntry } from '../store/journal.js';
import { dockerAdapter } from './docker/index.js';
import type { Adapter, Kind } from './types.js';
import { tomeeAdapter } from './tomee/index.js';

export type { Adapter, Kind } from './types.js';

/** Every kind of install and its adapter (see src/kinds/types.ts). */
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
