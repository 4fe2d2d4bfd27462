import assert from 'node:assert/strict';
import { fmtBytes, fmtMs, sortInstances, sparkline, statsTable, topText } from '../../../src/cli/metrics-format.js';
import type { InstanceSample, MetricsSnapshot } from '../../../src/metrics/types.js';

const Mi = 2 ** 20;
const inst = (instance: string, cpuCores: number | null, mem: number, restarts = 0): InstanceSample => ({
  at: 0, instance, service: instance.replace(/-\d+$/, ''), cpuCores, cpuThrottled: 0, cpuLimitCores: 0.5, memoryWorkingSetBytes: mem, memoryLimitBytes: 64 * Mi,
  netRxBytesPerSec: 1536, netTxBytesPerSec: 100, netRxPacketsPerSec: 1, netTxPacketsPerSec: 1, blkReadBytesPerSec: 0, blkWriteBytesPerSec: null, pids: 2, restarts, ready: true,
});

describe('carte top and stats: printing', () => {
  it('prints bytes in binary units and latencies in ms or s', () => {
    assert.deepEqual([fmtBytes(512), fmtBytes(1536), fmtBytes(64 * Mi), fmtBytes(3 * 2 ** 30), fmtBytes(null)], ['512B', '1.5Ki', '64.0Mi', '3.0Gi', '-']);
    assert.deepEqual([fmtMs(2.345), fmtMs(25.4), fmtMs(12_500), fmtMs(null)], ['2.3ms', '25ms', '12.5s', '-']);
  });

  it('sorts instances busiest first, names on ties', () => {
    const list = [inst('b-1', 0.1, 10 * Mi, 3), inst('a-1', 0.1, 20 * Mi), inst('c-1', null, 5 * Mi, 1)];
    assert.deepEqual(sortInstances(list, 'cpu').map((i) => i.instance), ['a-1', 'b-1', 'c-1']);
    assert.deepEqual(sortInstances(list, 'memory').map((i) => i.instance), ['a-1', 'b-1', 'c-1']);
    assert.deepEqual(sortInstances(list, 'restarts').map((i) => i.instance), ['b-1', 'c-1', 'a-1']);
    assert.deepEqual(sortInstances(list, 'name').map((i) => i.instance), ['a-1', 'b-1', 'c-1']);
  });

  it('prints the top screen exactly', () => {
    const snap: MetricsSnapshot = {
      at: 0,
      instances: [inst('web-1', 0.25, 32 * Mi)],
      services: [{ at: 0, service: 'web', connections: 2, requestsPerSec: 12.5, errorsPerSec: 0, latencyP50Ms: 2.5, latencyP95Ms: 40, latencyP99Ms: null }],
      host: { at: 0, cpuPercent: 12.34, cores: 2, memoryUsedBytes: 1.5 * 2 ** 30, memoryTotalBytes: 24 * 2 ** 30, diskFreeBytes: 80 * 2 ** 30, diskTotalBytes: 250 * 2 ** 30 },
    };
    assert.equal(topText(snap, 'cpu'), `HOST   CPU 12.3% of 2 cores   MEMORY 1.5Gi of 24.0Gi   DISK 80.0Gi free of 250.0Gi

INSTANCE   SERVICE   CPU     CPU/LIM   MEMORY   MEM/LIM   NET IN    NET OUT   BLK READ   BLK WRITE   PIDS   RESTARTS
web-1      web       0.250   50%       32.0Mi   50%       1.5Ki/s   100B/s    0B/s       -           2      0

SERVICE   CONNS   REQ/S   ERR/S   P50     P95    P99
web       2       12.5    0.0     2.5ms   40ms   -
`);
    assert.equal(topText({ at: 0, instances: [], services: [], host: null }, 'cpu'), 'HOST   no reading yet\n\nno instances sampled\n\nno services\n');
  });

  it('draws sparklines from zero to the most, gaps as spaces', () => {
    assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7, 8]), '▁▂▃▄▅▆▇██');
    assert.equal(sparkline([5, null, 5]), '█ █');
    assert.equal(sparkline([0, 0]), '▁▁');
    assert.equal(sparkline([null]), '');
    assert.equal(statsTable([{ metric: 'memoryWorkingSetBytes', series: { t: [0, 1, 2], v: [Mi, null, 3 * Mi], stepMs: 10_000 } }]),
      'METRIC                  NOW     MIN     AVG     MAX     HISTORY\nmemoryWorkingSetBytes   3.0Mi   1.0Mi   2.0Mi   3.0Mi   ▃ █\n');
  });
});
