// A small reader of the Prometheus text exposition format (0.0.4), enough for
// tests to find series by name and labels and check the file is well formed:
// every sample line parses, every metric has HELP and TYPE before its samples.
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromText {
  types: Record<string, string>;
  samples: PromSample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;

export function parsePrometheus(text: string): PromText {
  const types: Record<string, string> = {};
  const helped = new Set<string>();
  const samples: PromSample[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') types[meta[2]!] = meta[3]!;
      else helped.add(meta[2]!);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not a sample: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      LABEL.lastIndex = 0;
      let consumed = 0;
      for (let l = LABEL.exec(m[2]); l; l = LABEL.exec(m[2])) {
        labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        consumed = LABEL.lastIndex;
      }
      if (consumed !== m[2].length) throw new Error(`line ${i + 1} has bad labels: ${line}`);
    }
    const family = m[1]!.replace(/_(bucket|sum|count)$/, '');
    if (!types[m[1]!] && !types[family]) throw new Error(`line ${i + 1}: ${m[1]} has no TYPE before it`);
    if (!helped.has(m[1]!) && !helped.has(family)) throw new Error(`line ${i + 1}: ${m[1]} has no HELP before it`);
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`line ${i + 1}: bad value ${m[3]}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { types, samples };
}

/** The one sample of `name` whose labels include `labels`; undefined if none. */
export function findSample(t: PromText, name: string, labels: Record<string, string> = {}): PromSample | undefined {
  return t.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}
