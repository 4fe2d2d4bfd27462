// The history on disk, so a daemon restart keeps the charts: one gzip'd file
// in CARTE_HOME (metrics-history.json.gz), written rarely (every 10 min and at
// stop) and durably (temporary file, fsync, rename: writeFileDurably). Rings
// are stored as they are in memory (base64 of their typed arrays; empty
// slots are NaN and zeros, which compress to almost nothing). A file that
// cannot be read or does not fit (damaged, other tiers, other version) is
// reported and ignored: history starts empty, the daemon starts anyway.
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzipSync, gzip, gzipSync } from 'node:zlib';
import { writeFileDurably } from '../util/durable-json-file.js';
import { FIELDS, type History, type SeriesData } from './history.js';
import type { SeriesKind } from './types.js';

export const PERSIST_VERSION = 1;
export const PERSIST_FILE = 'metrics-history.json.gz';

interface FileSeries {
  kind: SeriesKind;
  name: string;
  lastAt: number;
  open: number[];
  gone: boolean;
  rings: Array<{ times: string; values: string }>;
}

interface FileShape {
  version: number;
  tiers: Array<{ stepMs: number; spanMs: number }>;
  series: FileSeries[];
}

const b64 = (a: Float64Array | Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

const gzipAsync = promisify(gzip);

/** The file's JSON before compression. */
function historyJson(h: History): string {
  const shape: FileShape = {
    version: PERSIST_VERSION,
    tiers: h.tiers.map((t) => ({ stepMs: t.stepMs, spanMs: t.spanMs })),
    series: h.all().map((s) => ({ kind: s.kind, name: s.name, lastAt: s.lastAt, open: s.open, gone: s.gone, rings: s.rings.map((r) => ({ times: b64(r.times), values: b64(r.values) })) })),
  };
  return JSON.stringify(shape);
}

/** The history as the file's bytes. */
export function encodeHistory(h: History): Buffer {
  return gzipSync(historyJson(h), { level: 6 });
}

/** Series from the file's bytes, checked against the history's tiers; throws a sentence saying what is wrong. */
export function decodeHistory(bytes: Buffer, h: History): SeriesData[] {
  let shape: FileShape;
  try {
    shape = JSON.parse(gunzipSync(bytes).toString('utf8')) as FileShape;
  } catch (e) {
    throw new Error(`not a gzip'd JSON history (${(e as Error).message})`);
  }
  if (shape?.version !== PERSIST_VERSION) throw new Error(`version ${String(shape?.version)}, not ${PERSIST_VERSION}`);
  if (JSON.stringify(shape.tiers) !== JSON.stringify(h.tiers.map((t) => ({ stepMs: t.stepMs, spanMs: t.spanMs })))) {
    throw new Error('written with other resolutions (sampling interval changed)');
  }
  if (!Array.isArray(shape.series)) throw new Error('no series list');
  return shape.series.map((s, i) => {
    const fields = FIELDS[s.kind]?.length;
    if (!fields || typeof s.name !== 'string' || !Array.isArray(s.rings) || s.rings.length !== h.tiers.length) throw new Error(`series ${i} is malformed`);
    const rings = s.rings.map((r, k) => {
      const cap = Math.ceil(h.tiers[k]!.spanMs / h.tiers[k]!.stepMs);
      const tb = Buffer.from(r.times, 'base64');
      const vb = Buffer.from(r.values, 'base64');
      if (tb.byteLength !== cap * 8 || vb.byteLength !== cap * fields * 4) throw new Error(`series ${s.kind}/${s.name} has rings of the wrong size`);
      // Copied into fresh (aligned) arrays.
      return { times: new Float64Array(new Uint8Array(tb).buffer), values: new Float32Array(new Uint8Array(vb).buffer) };
    });
    return { kind: s.kind, name: s.name, lastAt: Number(s.lastAt) || 0, open: s.open.map(Number), gone: Boolean(s.gone), rings };
  });
}

export async function saveHistory(file: string, h: History): Promise<number> {
  // Compressed in libuv's thread pool: a week of 50 instances is several MB, and the daemon's
  // event loop also runs the gateway, which should not stall for it.
  const bytes = await gzipAsync(historyJson(h), { level: 6 });
  await writeFileDurably(file, bytes);
  return bytes.byteLength;
}

/** Loads the file into `h`: the series restored, or why the file was ignored (absent: 0, no problem). */
export async function loadHistory(file: string, h: History): Promise<{ restored: number; problem: string | null }> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { restored: 0, problem: null };
    return { restored: 0, problem: (e as Error).message };
  }
  try {
    const series = decodeHistory(bytes, h);
    for (const s of series) h.restore(s);
    return { restored: series.length, problem: null };
  } catch (e) {
    return { restored: 0, problem: (e as Error).message };
  }
}
