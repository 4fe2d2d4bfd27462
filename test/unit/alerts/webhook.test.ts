// Webhook delivery against real HTTP servers on 127.0.0.1: the body, retries
// with backoff, a server that never answers holding up nothing else, and the
// bounded queue.
import assert from 'node:assert/strict';
import type { Alert } from '../../../src/alerts/types.js';
import { backoffMs, WebhookSender } from '../../../src/alerts/webhook.js';
import { cliLogger } from '../../../src/log.js';
import { startReceiver, type Receiver } from '../../helpers/webhook-receiver.js';

const alert = (n: number, resolvedAt: string | null = null): Alert => ({
  id: `memory-high:instance/web-${n}:2026-11-01T10:00:00.000Z`, rule: 'memory-high', severity: 'warning', object: `instance/web-${n}`,
  message: 'working set 30.0Mi of its 32.0Mi memory limit (94%), above 90%', firedAt: '2026-11-01T10:00:00.000Z', resolvedAt,
});

async function until<T>(check: () => T | undefined | false, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Log lines as { level, msg, ... } objects. */
function captureLog() {
  const lines: Array<Record<string, unknown>> = [];
  const log = cliLogger('silent');
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, msg, ...obj });
  const fake = Object.assign(Object.create(log) as typeof log, { warn: at('warn'), error: at('error'), info: at('info') });
  return { log: fake, lines };
}

describe('alerts: webhook delivery', () => {
  const receivers: Receiver[] = [];
  const senders: WebhookSender[] = [];
  const receiver = async (...a: Parameters<typeof startReceiver>) => {
    const r = await startReceiver(...a);
    receivers.push(r);
    return r;
  };
  const sender = (...a: ConstructorParameters<typeof WebhookSender>) => {
    const s = new WebhookSender(...a);
    senders.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(senders.splice(0).map((s) => s.close()));
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });

  it('POSTs { status, alert, host } as JSON with the configured headers', async () => {
    const r = await receiver();
    const { log } = captureLog();
    const s = sender({ webhooks: [{ url: r.url, headers: { Authorization: 'Bearer t0k' }, timeoutMs: 2000 }], log, host: 'pi-1' });
    s.send('firing', alert(1));
    s.send('resolved', alert(1, '2026-11-01T10:05:00.000Z'));
    await until(() => r.received.length === 2, 'two deliveries');
    assert.deepEqual(r.received.map((x) => [x.method, x.path, x.headers['content-type'], x.headers.authorization]), [
      ['POST', '/hook', 'application/json', 'Bearer t0k'], ['POST', '/hook', 'application/json', 'Bearer t0k'],
    ]);
    assert.match(r.received[0]!.headers['user-agent']!, /^carte\/\d+\.\d+\.\d+/);
    assert.deepEqual(JSON.parse(r.received[0]!.body), { status: 'firing', alert: alert(1), host: 'pi-1' });
    assert.deepEqual(JSON.parse(r.received[1]!.body), { status: 'resolved', alert: alert(1, '2026-11-01T10:05:00.000Z'), host: 'pi-1' });
  });

  it('retries a 500 with exponential backoff, in order; a 400 is not retried', async () => {
    const r = await receiver([500, 503, 200, 400, 200]);
    const { log, lines } = captureLog();
    const s = sender({ webhooks: [{ url: r.url, headers: {}, timeoutMs: 2000 }], log, backoff: { baseMs: 20, maxMs: 1000 } });
    s.send('firing', alert(1));
    s.send('firing', alert(2));
    s.send('firing', alert(3));
    await until(() => r.received.length === 5, 'five requests');
    await until(() => s.stats()[0]!.idle, 'the worker to finish');
    // alert 1: 500, 503, 200; alert 2: 400 (given up at once); alert 3: 200.
    assert.deepEqual(r.received.map((x) => (JSON.parse(x.body) as { alert: Alert }).alert.object), ['instance/web-1', 'instance/web-1', 'instance/web-1', 'instance/web-2', 'instance/web-3']);
    assert.deepEqual(s.stats().map(({ delivered, dropped, waiting }) => ({ delivered, dropped, waiting })), [{ delivered: 2, dropped: 0, waiting: 0 }]);
    assert.deepEqual(lines.map((l) => [l.level, l.msg, l.attempt, l.err, l.retryInMs]), [
      ['warn', 'webhook delivery failed; retrying', 1, 'answered 500', 20],
      ['warn', 'webhook delivery failed; retrying', 2, 'answered 503', 40],
      ['error', 'webhook refused the notification; not retried', 1, 'answered 400', undefined],
    ]);
    assert.deepEqual([1, 2, 3, 10, 20].map((n) => backoffMs(n)), [1000, 2000, 4000, 300_000, 300_000]);
  });

  it('a webhook that never answers holds up nothing: send returns at once, others are delivered, it times out and retries', async () => {
    const hanging = await receiver(['hang']);
    const good = await receiver();
    const { log, lines } = captureLog();
    const s = sender({
      webhooks: [{ url: hanging.url, headers: {}, timeoutMs: 300 }, { url: good.url, headers: {}, timeoutMs: 2000 }],
      log, backoff: { baseMs: 10, maxMs: 10 }, maxAttempts: 2,
    });
    s.send('firing', alert(1));
    assert.equal(good.received.length + hanging.received.length, 0, 'send() does not wait for any request');
    s.send('firing', alert(2));
    await until(() => good.received.length === 2, 'the good webhook to get both');
    // The good webhook got everything while the first request to the hanging one was still open.
    assert.equal(hanging.received.length, 1);
    assert.equal(hanging.held.length, 1);
    await until(() => lines.some((l) => l.msg === 'webhook delivery failed; giving up on this notification'), 'the hanging webhook to give up on the first notification');
    assert.deepEqual(lines.slice(0, 2).map((l) => [l.level, l.attempt, l.err]), [['warn', 1, 'no answer within 300ms'], ['error', 2, 'no answer within 300ms']]);
    assert.ok(hanging.received.length >= 2, 'retried after the timeout');
  });

  it('a full queue drops its oldest notification with a warning', async () => {
    const r = await receiver(['hang']);
    const { log, lines } = captureLog();
    const s = sender({ webhooks: [{ url: r.url, headers: {}, timeoutMs: 10_000 }], log, queueLimit: 2 });
    s.send('firing', alert(1)); // in flight, held by the server
    await until(() => r.held.length === 1, 'the first request to be held');
    for (const n of [2, 3, 4, 5]) s.send('firing', alert(n));
    assert.deepEqual(s.stats().map(({ waiting, dropped }) => ({ waiting, dropped })), [{ waiting: 2, dropped: 2 }]);
    assert.deepEqual(lines.map((l) => [l.level, l.msg, l.alert, l.queued]), [
      ['warn', 'webhook queue full; dropped its oldest notification', alert(2).id, 2],
      ['warn', 'webhook queue full; dropped its oldest notification', alert(3).id, 2],
    ]);
    r.answers = [200];
    r.release();
    await until(() => r.received.length === 3 && s.stats()[0]!.idle, 'the rest to be delivered');
    assert.deepEqual(r.received.map((x) => (JSON.parse(x.body) as { alert: Alert }).alert.object), ['instance/web-1', 'instance/web-4', 'instance/web-5']);
  });
});
