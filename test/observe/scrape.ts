// Reading a node's /metrics as Prometheus would: samples by name and labels.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Samples of Prometheus' text format (HELP/TYPE lines skipped). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: m[4] === 'Nan' ? Number.NaN : Number(m[4]) });
  }
  return out;
}

export async function scrape(httpPort: number, path = '/metrics'): Promise<Sample[]> {
  const r = await fetch(`http://127.0.0.1:${httpPort}${path}`);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
  return parseMetrics(await r.text());
}

/** The value of the one sample of `name` matching `labels` (undefined when none). */
export function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** Sum of `name` over the given nodes' samples (0 for a node without it). */
export function sumOf(nodes: ReadonlyArray<readonly Sample[]>, name: string, labels: Record<string, string> = {}): number {
  return nodes.reduce((a, s) => a + (valueOf(s, name, labels) ?? 0), 0);
}
