/**
 * Prometheus' text exposition format (version 0.0.4, https://prometheus.io/docs/instrumenting/exposition_formats/):
 * per metric family `# HELP`, `# TYPE`, then one line per series, `name{label="value"} number`.
 *
 * Written here rather than with prom-client: that library keeps a registry for a long-running process
 * (and costs ~27 ms to import plus two dependencies), while `letto-update metrics` renders a handful of
 * gauges once from files and exits; the format itself needs only the escaping below. `promtool check
 * metrics` checks the output in test/integration/metrics.test.ts and metrics-contrib.test.ts.
 */

/** Label name → value; values are escaped when rendered. */
export type Labels = Record<string, string>;

/** One series of a family: its labels (none: `{}`) and value. */
export interface Sample {
  labels: Labels;
  value: number;
}

/** A metric family. `name` carries its unit (`_seconds`, `_bytes`) and, for counters, `_total`. */
export interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Sample[];
}

/** Escapes a label value: backslash, double quote and line feed (the format's three escapes). */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes `# HELP` text: backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as the format writes it: integers plainly, `NaN`, `+Inf`, `-Inf`, else the shortest decimal. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/**
 * Renders families as exposition text (ends with a line feed). Families without samples are left out
 * (a family with `# TYPE` but no series is valid, but says nothing). Label names must match
 * `[a-zA-Z_][a-zA-Z0-9_]*`. @throws Error for a name that is not a valid metric or label name (a bug).
 */
export function renderFamilies(families: Family[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (family.samples.length === 0) continue;
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(family.name)) throw new Error(`not a metric name: ${family.name}`);
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels).map(([name, value]) => {
        if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`not a label name: ${name}`);
        return `${name}="${escapeLabelValue(value)}"`;
      });
      lines.push(`${family.name}${labels.length ? `{${labels.join(',')}}` : ''} ${formatValue(sample.value)}`);
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
