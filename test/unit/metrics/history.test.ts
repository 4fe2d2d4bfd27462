import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { FIELDS, History, defaultTiers, downsample } from '../../../src/metrics/history.js';
import { PERSIST_FILE, encodeHistory, loadHistory, saveHistory } from '../../../src/metrics/persist.js';
import { tempDir } from '../../helpers/paths.js';

const H = 3600_000;
/** An instance sample's values with cpuCores = cpu and the rest NaN. */
const cpu = (v: number | null) => FIELDS.instance.map((f) => (f === 'cpuCores' && v !== null ? v : NaN));
const q = (name: string, fromMs: number, toMs: number, maxPoints?: number) => ({ kind: 'instance' as const, name, metric: 'cpuCores', fromMs, toMs, maxPoints });

describe('metrics: history', () => {
  const T0 = 1_800_000_000_000; // a round time: a multiple of every step

  it('keeps every sample at the finest step, and nulls where a sample is missing', () => {
    const h = new History();
    for (let i = 0; i < 6; i++) if (i !== 3) h.append('instance', 'web-1', T0 + i * 10_000, cpu(i));
    assert.deepEqual(h.query(q('web-1', T0, T0 + 60_000), T0 + 60_000), {
      t: [0, 1, 2, 3, 4, 5].map((i) => T0 + i * 10_000), v: [0, 1, 2, null, 4, 5], stepMs: 10_000,
    });
  });

  it('averages into minutes and ten minutes as each step ends; a range beyond the finest tier reads the coarser one', () => {
    const h = new History();
    // Two hours of samples, 10 s apart: cpu = the minute's number (so each minute averages to it).
    for (let t = T0; t < T0 + 2 * H; t += 10_000) h.append('instance', 'web-1', t, cpu(Math.floor((t - T0) / 60_000)));
    const now = T0 + 2 * H;
    const minutes = h.query(q('web-1', now - 3 * H, now), now);
    assert.equal(minutes.stepMs, 60_000);
    assert.equal(minutes.t[0], T0);
    assert.deepEqual(minutes.v.slice(0, 3), [0, 1, 2]);
    assert.equal(minutes.v.length, 119, 'every minute but the one still open');
    const tens = h.query(q('web-1', now - 2 * 24 * H, now), now);
    assert.equal(tens.stepMs, 600_000);
    assert.deepEqual(tens.v.slice(0, 2), [4.5, 14.5], 'the average of minutes 0-9, then 10-19');
    assert.equal(h.query(q('web-1', now - 10 * 24 * H, now), now).stepMs, 600_000, 'older than kept: the coarsest');
  });

  it('downsamples to maxPoints by averaging runs, skipping nulls', () => {
    assert.deepEqual(downsample({ t: [0, 1, 2, 3, 4], v: [1, 3, null, 5, 7], stepMs: 1 }, 2), { t: [0, 3], v: [2, 6], stepMs: 3 });
    assert.deepEqual(downsample({ t: [0, 1], v: [1, 3], stepMs: 1 }, 5), { t: [0, 1], v: [1, 3], stepMs: 1 });
    const h = new History();
    for (let i = 0; i < 360; i++) h.append('instance', 'web-1', T0 + i * 10_000, cpu(i % 2));
    const s = h.query(q('web-1', T0, T0 + H, 60), T0 + H);
    assert.equal(s.t.length, 60);
    assert.equal(s.stepMs, 60_000);
    assert.ok(s.v.every((v) => v === 0.5));
  });

  it('keeps a gone instance\'s history (its last minute closed) until it ages out', () => {
    const h = new History();
    for (let i = 0; i < 9; i++) h.append('instance', 'old-1', T0 + i * 10_000, cpu(1));
    h.finish('instance', 'old-1');
    assert.deepEqual(h.known('instance'), ['old-1']);
    const later = T0 + 5 * H; // past the 10 s tier: the minutes hold it
    assert.deepEqual(h.query(q('old-1', later - 6 * H, later), later).v, [1, 1]);
    h.prune(T0 + 80_000 + 7 * 24 * H - 1);
    assert.deepEqual(h.known('instance'), ['old-1'], 'a week after its last sample, not yet');
    h.prune(T0 + 80_000 + 7 * 24 * H + 1);
    assert.deepEqual(h.known('instance'), []);
    assert.equal(h.bytes(), 0);
  });

  it('never holds more than its cap: the series seen longest ago go first, gone ones before live ones', () => {
    const one = new History().seriesBytes('instance');
    assert.ok(one > 100_000 && one < 200_000, `one instance costs ${one} bytes`);
    const h = new History({ maxBytes: 3 * one });
    h.append('instance', 'a', T0, cpu(1));
    h.append('instance', 'b', T0 + 10_000, cpu(1));
    h.append('instance', 'c', T0 + 20_000, cpu(1));
    h.finish('instance', 'c');
    h.append('instance', 'd', T0 + 30_000, cpu(1));
    assert.deepEqual(h.known('instance'), ['a', 'b', 'd'], 'the gone one went first, though seen last');
    h.append('instance', 'e', T0 + 40_000, cpu(1));
    assert.deepEqual(h.known('instance'), ['b', 'd', 'e'], 'then the one seen longest ago');
    assert.ok(h.bytes() <= 3 * one);
    assert.equal(new History({ maxBytes: one - 1 }).seriesBytes('instance'), one);
    const tiny = new History({ maxBytes: one - 1 });
    tiny.append('instance', 'x', T0, cpu(1));
    assert.deepEqual([tiny.known('instance'), tiny.dropped], [[], 1], 'a series that cannot fit is not kept');
  });

  it('50 instances, 10 services and the host fit in 10 MB with the default tiers', () => {
    const h = new History({ tiers: defaultTiers(10_000) });
    const total = 50 * h.seriesBytes('instance') + 10 * h.seriesBytes('service') + h.seriesBytes('host');
    assert.ok(total < 10 * 2 ** 20, `${total} bytes`);
  });
});

describe('metrics: history on disk', () => {
  const T0 = 1_800_000_000_000;
  let dir: string;
  beforeEach(() => (dir = tempDir('carte-metrics-')));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips every series through the file', async () => {
    const h = new History();
    for (let i = 0; i < 100; i++) {
      h.append('instance', 'web-1', T0 + i * 10_000, cpu(i));
      h.append('service', 'web', T0 + i * 10_000, FIELDS.service.map((_f, j) => i + j));
      h.append('host', '', T0 + i * 10_000, FIELDS.host.map(() => i));
    }
    h.finish('instance', 'web-1');
    const file = path.join(dir, PERSIST_FILE);
    const bytes = await saveHistory(file, h);
    assert.equal(fs.statSync(file).size, bytes);
    const back = new History();
    assert.deepEqual(await loadHistory(file, back), { restored: 3, problem: null });
    const now = T0 + 100 * 10_000;
    for (const kind of ['instance', 'service', 'host'] as const) {
      for (const metric of FIELDS[kind]) {
        const query = { kind, name: kind === 'host' ? '' : kind === 'instance' ? 'web-1' : 'web', metric, fromMs: T0, toMs: now };
        assert.deepEqual(back.query(query, now), h.query(query, now), `${kind} ${metric}`);
      }
    }
    assert.equal(back.bytes(), h.bytes());
    assert.deepEqual(back.all().map((s) => [s.kind, s.name, s.gone, s.lastAt]), h.all().map((s) => [s.kind, s.name, s.gone, s.lastAt]));
  });

  it('a damaged or foreign file is reported and ignored; none at all is no problem', async () => {
    const file = path.join(dir, PERSIST_FILE);
    assert.deepEqual(await loadHistory(file, new History()), { restored: 0, problem: null });
    const good = encodeHistory((() => {
      const h = new History();
      h.append('instance', 'web-1', T0, cpu(1));
      return h;
    })());
    fs.writeFileSync(file, good.subarray(0, good.length - 10));
    const torn = await loadHistory(file, new History());
    assert.equal(torn.restored, 0);
    assert.match(torn.problem!, /^not a carte metrics history \(/);
    fs.writeFileSync(file, good);
    assert.deepEqual(await loadHistory(file, new History({ tiers: defaultTiers(5000) })), { restored: 0, problem: 'written with other resolutions (sampling interval changed)' });
    // The header promises a series its rings do not hold (cut after the header).
    const header = Buffer.from(JSON.stringify({ version: 2, tiers: defaultTiers(), series: [{ kind: 'instance', name: 'x', lastAt: 0, open: [], gone: false }] }));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(header.byteLength);
    fs.writeFileSync(file, gzipSync(Buffer.concat([length, header, Buffer.alloc(100)])));
    // A file of the first format (JSON, base64 rings) is another version: ignored, said so.
    const v1 = path.join(dir, 'v1.gz');
    fs.writeFileSync(v1, gzipSync(JSON.stringify({ version: 1 })));
    assert.match((await loadHistory(v1, new History())).problem!, /^not a carte metrics history \(|^version 1, not 2$/);
    const h = new History();
    assert.deepEqual(await loadHistory(file, h), { restored: 0, problem: 'series instance/x is cut short' });
    assert.deepEqual(h.known('instance'), [], 'nothing half-loaded');
  });
});
