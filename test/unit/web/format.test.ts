import assert from 'node:assert/strict';
import { formatByteRate, formatBytes, formatClock, formatCpu, formatPerSec, formatReady } from '../../../web/lib/format.js';

describe('web: how the page writes figures', () => {
  it('CPU in millicores below one core (tenths below 10m), in cores above, a dash without a reading', () => {
    assert.deepEqual([0, 0.00004, 0.0004, 0.0012, 0.00999, 0.01, 0.25, 0.9996, 1, 1.5, null, undefined, NaN].map(formatCpu),
      ['0m', '0.0m', '0.4m', '1.2m', '10m', '10m', '250m', '1.00', '1.00', '1.50', '—', '—', '—']);
  });

  it('bytes in binary units like manifests', () => {
    assert.deepEqual([0, 1023, 1024, 1536, 10 * 1024, 64 * 1024 * 1024, 3.5 * 1024 ** 3, null].map(formatBytes),
      ['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '10 KiB', '64 MiB', '3.5 GiB', '—']);
    assert.equal(formatByteRate(2048), '2.0 KiB/s');
    assert.equal(formatByteRate(null), '—');
  });

  it('rates per second, readiness and UTC clock times', () => {
    assert.deepEqual([0, 3.14159, 120.4, null].map(formatPerSec), ['0/s', '3.1/s', '120/s', '—']);
    assert.equal(formatReady(2, 3), '2/3');
    assert.equal(formatClock('2026-12-06T23:04:05.123Z'), '23:04:05');
    assert.equal(formatClock(Date.UTC(2026, 11, 6, 1, 2, 3)), '01:02:03');
    assert.equal(formatClock('not a time'), 'not a time');
  });
});
