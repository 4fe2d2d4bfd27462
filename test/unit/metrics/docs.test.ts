// The metrics docs are part of the feature: the `carte top` example is what
// topText prints, and the Prometheus table names every metric rendered.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { topText } from '../../../src/cli/metrics-format.js';
import { FIELDS } from '../../../src/metrics/history.js';
import { renderPrometheus } from '../../../src/metrics/prometheus.js';
import type { MetricsSnapshot } from '../../../src/metrics/types.js';
import { ROOT } from '../../helpers/paths.js';
import { parsePrometheus } from '../../helpers/prometheus.js';

const Mi = 2 ** 20;
const doc = (name: string) => fs.readFileSync(path.join(ROOT, 'docs', name), 'utf8');

describe('metrics docs', () => {
  it('the carte top example in docs/cli.md is what carte top --once prints', () => {
    const text = doc('cli.md');
    const block = /### `carte top[^\n]*\n[\s\S]*?```text\n([\s\S]*?)```/.exec(text)![1]!;
    const snap: MetricsSnapshot = {
      at: 0,
      instances: [{
        at: 0, instance: 'web-1', service: 'web', cpuCores: 0.25, cpuThrottled: 0, cpuLimitCores: 0.5, memoryWorkingSetBytes: 32 * Mi, memoryLimitBytes: 64 * Mi,
        netRxBytesPerSec: 1536, netTxBytesPerSec: 100, netRxPacketsPerSec: 1, netTxPacketsPerSec: 1, blkReadBytesPerSec: 0, blkWriteBytesPerSec: null, pids: 2, restarts: 0, ready: true,
      }],
      services: [{ at: 0, service: 'web', connections: 2, requestsPerSec: 12.5, errorsPerSec: 0, latencyP50Ms: 2.5, latencyP95Ms: 40, latencyP99Ms: null }],
      host: { at: 0, cpuPercent: 12.34, cores: 2, memoryUsedBytes: 1.5 * 2 ** 30, memoryTotalBytes: 24 * 2 ** 30, diskFreeBytes: 80 * 2 ** 30, diskTotalBytes: 250 * 2 ** 30 },
    };
    assert.equal(block, topText(snap, 'cpu'));
  });

  it('docs/observability.md lists every instance field and every Prometheus metric rendered', async () => {
    const text = doc('observability.md');
    for (const f of FIELDS.instance) assert.ok(text.includes(`\`${f}\``), `field ${f}`);
    for (const f of [...FIELDS.service, ...FIELDS.host]) assert.ok(text.includes(`\`${f}\``), `field ${f}`);
    const stats = { cpuUsageNs: 1e9, memoryUsageBytes: 1, memoryWorkingSetBytes: 1, memoryLimitBytes: 2, cpuLimitMillis: 500, pids: 1, cpuPeriods: 1, cpuThrottledPeriods: 0, cpuThrottledNs: 0, blkReadBytes: 0, blkWriteBytes: 0, net: { rxBytes: 1, txBytes: 1, rxPackets: 1, txPackets: 1 }, at: 0 };
    const traffic = { connections: 0, requests: 1, errors: 0, latencyBuckets: new Array(12).fill(0), latencySumMs: 0, latencyCount: 0 };
    const host = { at: 0, cpuPercent: 1, cores: 2, memoryUsedBytes: 1, memoryTotalBytes: 2, diskFreeBytes: 1, diskTotalBytes: 2 };
    const r = await renderPrometheus({
      raw: () => ({ instances: [{ instance: 'web-1', service: 'web', restarts: 0, ready: true, stats }], services: [{ service: 'web', traffic }] }),
      latest: () => ({ at: 1, instances: [], services: [], host }),
    }, { active: () => [{ id: 'x', rule: 'memory-high', severity: 'warning', object: 'instance/web-1', message: '', firedAt: '', resolvedAt: null }] });
    const parsed = parsePrometheus(r.body);
    const names = Object.keys(parsed.types).sort();
    assert.equal(names.length, 29);
    for (const n of names) assert.ok(text.includes(`\`${n}\``), `metric ${n} in docs/observability.md`);
    assert.equal(parsed.samples.find((s) => s.name === 'carte_alerts_firing')?.value, 1);
  });
});
