// The history on disk, so a daemon restart keeps the charts: one gzip'd file
// in CARTE_HOME (metrics-history.json.gz), written rarely (every hour and at
// stop) and durably (temporary file, fsync, rename: writeFileDurably). Rings
// are stored as they are in memory, byte-shuffled (empty slots are NaN and
// zeros, which compress to almost nothing). A file that
// cannot be read or does not fit (damaged, other tiers, other version) is
// reported and ignored: history starts empty, the daemon starts anyway.
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzipSync, gzip, gzipSync } from 'node:zlib';
import { writeFileDurably } from '../util/durable-json-file.js';
import { FIELDS, type History, type SeriesData } from './history.js';
import type { SeriesKind } from './types.js';

export const PERSIST_VERSION = 2;
export const PERSIST_FILE = 'metrics-history.json.gz';

interface FileSeries {
  kind: SeriesKind;
  name: string;
  lastAt: number;
  open: number[];
  gone: boolean;
}

interface FileShape {
  version: number;
  tiers: Array<{ stepMs: number; spanMs: number }>;
  series: FileSeries[];
}

/**
 * Byte-shuffled (byte k of every number, then byte k+1…, as Blosc does): the
 * high bytes of times and of slowly changing readings repeat, and gzip finds
 * them in long runs; base64 or plain floats hid them (a file of 50 idle instances: 615 KB → 181 KB).
 */
function shuffle(bytes: Uint8Array, width: number): Buffer {
  const n = bytes.length / width;
  const out = Buffer.allocUnsafe(bytes.length);
  for (let b = 0; b < width; b++) for (let i = 0; i < n; i++) out[b * n + i] = bytes[i * width + b]!;
  return out;
}

function unshuffle(bytes: Uint8Array, width: number): Uint8Array {
  const n = bytes.length / width;
  const out = new Uint8Array(bytes.length);
  for (let b = 0; b < width; b++) for (let i = 0; i < n; i++) out[i * width + b] = bytes[b * n + i]!;
  return out;
}

const gzipAsync = promisify(gzip);

const asBytes = (a: Float64Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The file's content before compression: a length-prefixed JSON header, then every ring's times and values, shuffled. */
function historyBytes(h: History): Buffer {
  const series = h.all();
  const shape: FileShape = {
    version: PERSIST_VERSION,
    tiers: h.tiers.map((t) => ({ stepMs: t.stepMs, spanMs: t.spanMs })),
    series: series.map((s) => ({ kind: s.kind, name: s.name, lastAt: s.lastAt, open: s.open, gone: s.gone })),
  };
  const header = Buffer.from(JSON.stringify(shape));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.byteLength);
  const parts: Buffer[] = [length, header];
  for (const s of series) for (const r of s.rings) parts.push(shuffle(asBytes(r.times), 8), shuffle(asBytes(r.values), 4));
  return Buffer.concat(parts);
}

/** The history as the file's bytes. */
export function encodeHistory(h: History): Buffer {
  return gzipSync(historyBytes(h), { level: 6 });
}

/** Series from the file's bytes, checked against the history's tiers; throws a sentence saying what is wrong. */
export function decodeHistory(bytes: Buffer, h: History): SeriesData[] {
  let raw: Buffer;
  let shape: FileShape;
  let at: number;
  try {
    raw = gunzipSync(bytes);
    const length = raw.readUInt32BE(0);
    shape = JSON.parse(raw.subarray(4, 4 + length).toString('utf8')) as FileShape;
    at = 4 + length;
  } catch (e) {
    throw new Error(`not a carte metrics history (${(e as Error).message})`);
  }
  if (shape?.version !== PERSIST_VERSION) throw new Error(`version ${String(shape?.version)}, not ${PERSIST_VERSION}`);
  if (JSON.stringify(shape.tiers) !== JSON.stringify(h.tiers.map((t) => ({ stepMs: t.stepMs, spanMs: t.spanMs })))) {
    throw new Error('written with other resolutions (sampling interval changed)');
  }
  if (!Array.isArray(shape.series)) throw new Error('no series list');
  const take = (n: number, what: string) => {
    if (at + n > raw.byteLength) throw new Error(`${what} is cut short`);
    const part = raw.subarray(at, at + n);
    at += n;
    return part;
  };
  const out = shape.series.map((s, i) => {
    const fields = FIELDS[s.kind]?.length;
    if (!fields || typeof s.name !== 'string' || !Array.isArray(s.open)) throw new Error(`series ${i} is malformed`);
    const rings = h.tiers.map((t) => {
      const cap = Math.ceil(t.spanMs / t.stepMs);
      const times = unshuffle(take(cap * 8, `series ${s.kind}/${s.name}`), 8);
      const values = unshuffle(take(cap * fields * 4, `series ${s.kind}/${s.name}`), 4);
      return { times: new Float64Array(times.buffer), values: new Float32Array(values.buffer) };
    });
    return { kind: s.kind, name: s.name, lastAt: Number(s.lastAt) || 0, open: s.open.map(Number), gone: Boolean(s.gone), rings };
  });
  if (at !== raw.byteLength) throw new Error(`${raw.byteLength - at} bytes more than its series hold`);
  return out;
}

export async function saveHistory(file: string, h: History): Promise<number> {
  // Compressed in libuv's thread pool: a week of 50 instances is several MB, and the daemon's
  // event loop also runs the gateway, which should not stall for it.
  const bytes = await gzipAsync(historyBytes(h), { level: 6 });
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
