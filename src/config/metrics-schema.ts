import { z } from 'zod';

/**
 * `[metrics]`: the Prometheus textfile (src/report/metrics-textfile.ts). `textfile` is the `.prom` file
 * node_exporter's textfile collector reads (Debian: `/var/lib/prometheus/node-exporter/letto_update.prom`);
 * empty (the default): none is written. Kept in a file of its own so it moves with the config split.
 */
export const metricsSchema = z
  .object({
    textfile: z
      .string()
      .regex(/^$|^\/.*\.prom$/, 'must be empty (no textfile) or an absolute path ending in .prom, like "/var/lib/prometheus/node-exporter/letto_update.prom" (node_exporter reads only *.prom)')
      .default(''),
  })
  .strict();
