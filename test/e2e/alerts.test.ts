// Alerts end to end: a real daemon, a real container holding memory near its
// limit, the collector's readings, and a webhook receiver on 127.0.0.1. The
// hog keeps a 59 MiB file in its /dev/shm (tmpfs: charged to its memory
// cgroup and never reclaimable without swap, so its working set stays above
// 90 % of its 64 MiB limit, without an OOM kill); removing the file ends it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { WebhookBody } from '../../src/alerts/webhook.js';
import { buildBusybox, makeE2eEnv, type E2eEnv } from '../helpers/e2e.js';
import { eventually, requireRoot } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

const HOG = `apiVersion: carte/v1
kind: Service
metadata: { name: hog }
spec:
  image: e2e/busybox:1
  command: [sh, -c, "busybox dd if=/dev/zero of=/dev/shm/hog bs=1M count=59 2>/dev/null && exec busybox sleep 1000000"]
  resources: { memory: 64Mi }
  stopGracePeriod: 0s
`;

describe('e2e: alerts', function () {
  this.timeout(180_000);
  let e: E2eEnv;
  let work: string;
  let receiver: Receiver;
  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    work = tempDir('carte-alerts-');
    receiver = await startReceiver();
    await buildBusybox(e);
  });
  after(async () => {
    await e?.teardown();
    await receiver?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const bodies = () => receiver.received.map((r) => JSON.parse(r.body) as WebhookBody);
  const hogAlerts = () => bodies().filter((b) => b.alert.rule === 'memory-high' && b.alert.object === 'instance/hog-1');

  it('a memory hog fires memory-high at a webhook within 60 s, once; carte status shows it; it resolves when the hog lets go', async () => {
    const config = path.join(work, 'daemon.yaml');
    // `for` shortened from 1m so the test is quick; the threshold is the default 90 %.
    fs.writeFileSync(config, `alerts:
  interval: 1s
  webhooks:
    - url: ${receiver.url}
      headers: { Authorization: "Bearer e2e" }
      timeout: 2s
  rules:
    memory-high: { for: 5s, clear: 2s }
`);
    e.daemon(['--config', config, '--resync', '1s']);
    await eventually(async () => (await e.carte(['status'])).stdout.startsWith('daemon: running\n'), 20_000, 'the daemon to listen');
    fs.writeFileSync(path.join(work, 'hog.yaml'), HOG);
    const applied = await e.carte(['apply', '-f', path.join(work, 'hog.yaml')]);
    assert.equal(applied.code, 0, applied.stderr);

    const firing = await eventually(async () => hogAlerts().find((b) => b.status === 'firing'), 60_000, 'memory-high to reach the webhook');
    assert.equal(firing.alert.severity, 'warning');
    assert.match(firing.alert.message, /^working set (5[89]|6[0-4])\.\dMi of its 64\.0Mi memory limit \(9\d%\), above 90%$/);
    assert.equal(firing.alert.id, `memory-high:instance/hog-1:${firing.alert.firedAt}`);
    assert.equal(firing.alert.resolvedAt, null);
    assert.equal(receiver.received[0]!.headers.authorization, 'Bearer e2e');

    const status = (await e.carte(['status'])).stdout;
    assert.match(status, /\n\nALERTS\nSINCE +SEVERITY +RULE +OBJECT +MESSAGE\n\S+ ago +warning +memory-high +instance\/hog-1 +working set /);
    const list = (await e.carte(['alerts'])).stdout;
    assert.match(list, /\n\S+Z +firing +warning +memory-high +instance\/hog-1 +working set /);
    assert.match((await e.carte(['events'])).stdout, /\n\S+ +Warning +instance\/hog-1 +AlertFired +memory-high: working set /);

    // The hog lets go of its memory: the condition clears, the same alert resolves.
    const freed = await e.carte(['exec', 'hog-1', '--', 'busybox', 'rm', '/dev/shm/hog']);
    assert.equal(freed.code, 0, freed.stderr);
    const resolved = await eventually(async () => hogAlerts().find((b) => b.status === 'resolved'), 60_000, 'the resolution to reach the webhook');
    assert.deepEqual({ ...resolved.alert, resolvedAt: null }, firing.alert);
    assert.ok(Date.parse(resolved.alert.resolvedAt!) > Date.parse(firing.alert.firedAt));
    assert.deepEqual(hogAlerts().map((b) => b.status), ['firing', 'resolved'], 'fired once, resolved once');
    assert.match((await e.carte(['status'])).stdout, /\n\nALERTS\n<none>\n$/);
    assert.match((await e.carte(['alerts'])).stdout, /\n\S+Z +resolved \S+ ago +warning +memory-high +instance\/hog-1 /);
    assert.match((await e.carte(['events'])).stdout, /\n\S+ +Normal +instance\/hog-1 +AlertResolved +memory-high: resolved after \S+ \(working set /);
  });

  it('refuses a bad alerts section with its location before starting', async () => {
    const bad = path.join(work, 'bad.yaml');
    fs.writeFileSync(bad, 'alerts:\n  webhooks:\n    - url: file:///etc/passwd\n');
    const r = await e.carte(['daemon', '--config', bad]);
    assert.deepEqual(r, {
      code: 2, stdout: '',
      stderr: `${bad}:3:12: alerts.webhooks[0].url: "file:///etc/passwd" is not an http:// or https:// URL\nerror: 1 problem in the daemon config ${bad}; the daemon did not start\n`,
    });
  });
});
