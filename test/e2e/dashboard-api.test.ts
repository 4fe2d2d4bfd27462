// The dashboard's API against a real daemon (its --http listener), with users
// and a token made by `carte user add` / `carte token create`, and a running
// busybox service: sign-in, reads, an operator's restart seen on the event
// stream, refusals (viewer, no CSRF header), login limits, a bearer token, a
// removed user's session ending, and the audit of it all; then what an outside
// attack found: log path traversal and FIFOs, prototype names, streams outliving
// their user or token, rebinding Hosts, and names typed at sign-in.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { AuditEntry } from '../../src/audit/types.js';
import type { EventRow, ServiceRow, SessionInfo } from '../../src/web/types.js';
import { buildBusybox, makeE2eEnv, webManifest, type E2eEnv } from '../helpers/e2e.js';
import { eventually } from '../helpers/linux.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Reads server-sent events until `until` holds for one, or `ms` pass. */
function readEvents(port: number, headers: Record<string, string>, until: (e: EventRow & { sseId: string }) => boolean, ms: number): { opened: Promise<void>; done: Promise<Array<EventRow & { sseId: string }>> } {
  let opened!: () => void;
  const openedP = new Promise<void>((r) => (opened = r));
  const done = new Promise<Array<EventRow & { sseId: string }>>((resolve, reject) => {
    const seen: Array<EventRow & { sseId: string }> = [];
    const req = http.get({ host: '127.0.0.1', port, path: '/api/events/stream', headers }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`event stream answered ${res.statusCode}`));
      assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
      opened();
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const id = /^id: (.*)$/m.exec(msg)?.[1];
          const data = /^data: (.*)$/m.exec(msg)?.[1];
          if (id === undefined || data === undefined) continue;
          const e = { ...(JSON.parse(data) as EventRow), sseId: id };
          seen.push(e);
          if (until(e)) {
            req.destroy();
            resolve(seen);
          }
        }
      });
    });
    req.on('error', () => {});
    setTimeout(() => {
      req.destroy();
      resolve(seen);
    }, ms);
  });
  return { opened: openedP, done };
}

describe('e2e: the dashboard API', function () {
  this.timeout(120_000);
  let e: E2eEnv;
  let port: number;

  const call = (method: string, path: string, opts: { cookie?: string; csrf?: string; token?: string; body?: unknown } = {}): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
      const headers: Record<string, string> = {};
      if (payload) headers['content-type'] = 'application/json';
      if (opts.cookie) headers.cookie = opts.cookie;
      if (opts.csrf) headers['x-csrf-token'] = opts.csrf;
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text && /json/.test(String(res.headers['content-type'])) ? JSON.parse(text) : text }));
      });
      req.on('error', reject);
      req.end(payload);
    });

  const login = async (name: string, password: string) => {
    const r = await call('POST', '/api/login', { body: { name, password } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return { cookie: String(r.headers['set-cookie']).split(';')[0]!, csrf: (r.body as SessionInfo).csrf! };
  };

  const addUser = async (name: string, role: string) => {
    const r = await e.carte(['user', 'add', name, '--role', role], { input: `pw-${name}-12345\n` });
    assert.equal(r.code, 0, r.stderr);
  };

  const audit = async (): Promise<AuditEntry[]> => {
    const r = await e.carte(['audit', '--limit', '1000', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { items: AuditEntry[] }).items;
  };

  before(async () => {
    e = makeE2eEnv();
    await buildBusybox(e);
    port = await freePort();
    e.daemon(['--http', `127.0.0.1:${port}`, '--resync', '1s', '--collect-interval', '1s']);
    for (let i = 0; ; i++) {
      const up = await call('GET', '/api/session').catch(() => null);
      if (up) break;
      if (i > 100) throw new Error('the dashboard did not answer');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    await e?.teardown();
  });

  it('before any user: says how to make the first, and refuses everything else', async () => {
    assert.deepEqual((await call('GET', '/api/session')).body, { usersExist: false, user: null, csrf: null });
    const r = await call('GET', '/api/services');
    assert.equal(r.status, 401);
    assert.deepEqual(r.body, { error: 'no user exists yet: create one with `carte user add NAME --role admin`' });
  });

  it('signs in and reads the services', async () => {
    for (const [n, role] of [['adm', 'admin'], ['ops', 'operator'], ['vic', 'viewer'], ['gone', 'viewer'], ['slow', 'viewer']]) await addUser(n!, role!);
    const applied = await e.carte(['apply', '--wait', '--timeout', '60s', '-f', '-'], { input: webManifest({ replicas: 1 }) });
    assert.equal(applied.code, 0, applied.stderr);
    const { cookie } = await login('vic', 'pw-vic-12345');
    const r = await call('GET', '/api/services', { cookie });
    assert.equal(r.status, 200);
    const rows = r.body as ServiceRow[];
    assert.deepEqual(rows.map((s) => [s.name, s.ready, s.desired, s.phase, s.image, s.autoscaled, s.suspended]), [['web', 1, 1, 'Converged', 'e2e/busybox:1', false, false]]);
    const detail = await call('GET', '/api/services/web', { cookie });
    assert.equal(detail.status, 200);
    const d = detail.body as { instances: Array<{ name: string; state: string; ready: boolean }>; markers: Array<{ kind: string }> };
    assert.deepEqual(d.instances.map((i) => [i.name, i.state, i.ready]), [['web-1', 'running', true]]);
    assert.deepEqual(d.markers.map((m) => m.kind), ['deploy']);
  });

  it("an operator's restart shows its RestartRequested event on the stream, which resumes after Last-Event-ID", async () => {
    const { cookie, csrf } = await login('ops', 'pw-ops-12345');
    const stream = readEvents(port, { cookie }, (ev) => ev.reason === 'RestartRequested', 20_000);
    await stream.opened;
    const r = await call('POST', '/api/services/web/restart', { cookie, csrf });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: true, message: 'service/web restarting (revision 2)' });
    const seen = await stream.done;
    const restart = seen.find((ev) => ev.reason === 'RestartRequested');
    assert.ok(restart, `no RestartRequested among ${JSON.stringify(seen)}`);
    assert.equal(restart.object, 'service/web');
    assert.equal(restart.message, 'revision 2: every instance is replaced, one by one');
    assert.equal(restart.sseId, String(restart.id));
    // A reconnecting EventSource sends the last id it saw: it gets what came after, from the store.
    const again = readEvents(port, { cookie, 'last-event-id': String(restart.id - 1) }, (ev) => ev.id === restart.id, 10_000);
    assert.deepEqual((await again.done).map((ev) => ev.id), [restart.id]);
  });

  it('a viewer is refused an action: 403, nothing changed, audited as refused', async () => {
    const { cookie, csrf } = await login('vic', 'pw-vic-12345');
    const r = await call('POST', '/api/services/web/scale', { cookie, csrf, body: { replicas: 3 } });
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, { error: 'vic has the viewer role: this needs operator' });
    assert.equal(e.state().services.web!.revision.spec.replicas, 1);
    const last = (await audit()).at(-1)!;
    assert.deepEqual({ ...last, at: '' }, { at: '', who: { kind: 'user', name: 'vic' }, via: 'dashboard', action: 'scale', target: 'service/web', result: 'refused', detail: 'viewer: needs the operator role' });
  });

  it('a POST without the CSRF header is refused (403), nothing changed', async () => {
    const { cookie } = await login('ops', 'pw-ops-12345');
    const before = e.state().services.web!.revision.revision;
    const r = await call('POST', '/api/services/web/stop', { cookie });
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, { error: 'the x-csrf-token header is missing or wrong: reload the page (scripts: use a bearer token)' });
    assert.equal(e.state().services.web!.suspended ?? false, false);
    assert.equal(e.state().services.web!.revision.revision, before);
  });

  it('wrong passwords: 401 each, then 429 with Retry-After', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await call('POST', '/api/login', { body: { name: 'slow', password: `nope-${i}` } })).status, 401);
    const r = await call('POST', '/api/login', { body: { name: 'slow', password: 'pw-slow-12345' } });
    assert.equal(r.status, 429);
    assert.match(String(r.headers['retry-after']), /^\d+$/);
    assert.ok(Number(r.headers['retry-after']) > 0 && Number(r.headers['retry-after']) <= 300);
    assert.match((r.body as { error: string }).error, /^too many wrong passwords for "slow": try again in \d+ s$/);
  });

  it('a bearer token acts without a CSRF header and is audited via api', async () => {
    const made = await e.carte(['token', 'create', '--name', 'ci', '--role', 'operator']);
    assert.equal(made.code, 0, made.stderr);
    const token = made.stdout.trim();
    const r = await call('POST', '/api/services/web/scale', { token, body: { replicas: 2 } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { ok: true, message: 'service/web scaled 1 → 2' });
    assert.equal(e.state().services.web!.revision.spec.replicas, 2);
    const last = (await audit()).at(-1)!;
    assert.deepEqual([last.who.kind, last.via, last.action, last.target, last.result], ['token', 'api', 'scale', 'service/web', 'ok']);
    assert.equal((await call('GET', '/api/services', { token: `${token}x` })).status, 401);
  });

  it("the charts' series and Prometheus' /metrics (viewer token) read the collector", async () => {
    const made = await e.carte(['token', 'create', '--name', 'prom', '--role', 'viewer']);
    assert.equal(made.code, 0, made.stderr);
    const token = made.stdout.trim();
    const series = await eventually(async () => {
      const r = await call('GET', '/api/metrics/series?kind=service&name=web&metric=memoryWorkingSetBytes', { token });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const s = r.body as { t: number[]; v: Array<number | null> };
      return s.v.some((v) => v !== null && v > 0) ? s : undefined;
    }, 30_000, 'memory readings of service web');
    assert.equal(series.t.length, series.v.length);
    const bad = await call('GET', '/api/metrics/series?kind=disk&metric=x', { token });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body, { error: 'kind must be one of instance, service, host, got "disk"' });
    assert.equal((await call('GET', '/metrics')).status, 401);
    const scrape = await call('GET', '/metrics', { token });
    assert.equal(scrape.status, 200);
    assert.match(String(scrape.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(String(scrape.body), /^carte_instance_memory_working_set_bytes\{service="web",instance="web-\d+"\} \d+/m);
  });

  it("a removed user's session ends", async () => {
    const { cookie } = await login('gone', 'pw-gone-12345');
    assert.equal((await call('GET', '/api/services', { cookie })).status, 200);
    const rm = await e.carte(['user', 'rm', 'gone']);
    assert.equal(rm.code, 0, rm.stderr);
    const r = await call('GET', '/api/services', { cookie });
    assert.equal(r.status, 401);
    assert.deepEqual(r.body, { error: 'your session ended (the user was removed, or its password or role changed): sign in again' });
  });

  it('admins read the audit; operators may not', async () => {
    const ops = await login('ops', 'pw-ops-12345');
    assert.equal((await call('GET', '/api/audit', { cookie: ops.cookie })).status, 403);
    const adm = await login('adm', 'pw-adm-12345');
    const r = await call('GET', '/api/audit', { cookie: adm.cookie });
    assert.equal(r.status, 200);
    const actions = (r.body as { entries: AuditEntry[] }).entries.filter((x) => x.via !== 'cli').map((x) => `${x.who.name} ${x.action} ${x.result}`);
    for (const want of ['ops restart ok', 'vic scale refused', 'ops stop refused', 'slow login failed', 'slow login refused', 'ci scale ok']) assert.ok(actions.includes(want), `${want} not in ${actions.join(', ')}`);
  });

  it('instance logs: a name leaving the previous-logs folder, a FIFO or a link is 404, and the daemon answers on', async () => {
    const { cookie } = await login('vic', 'pw-vic-12345');
    fs.mkdirSync(path.join(e.home, 'x'), { recursive: true });
    fs.writeFileSync(path.join(e.home, 'x', 'app.log'), '2026-01-01T00:00:00Z stdout F root-only secret\n', { mode: 0o600 });
    const prev = path.join(e.home, 'logs', 'previous');
    fs.mkdirSync(prev, { recursive: true });
    execFileSync('mkfifo', [path.join(prev, 'fifo-1.log')]);
    fs.symlinkSync(path.join(e.home, 'x', 'app.log'), path.join(prev, 'link-1.log'));
    for (const name of ['..%2F..%2Fx%2Fapp', '..%2F..%2F..%2Fx%2Fapp', '%2E%2E%2F%2E%2E%2Fx%2Fapp']) {
      for (const q of ['?previous=1', '']) {
        const r = await call('GET', `/api/instances/${name}/logs${q}`, { cookie });
        assert.equal(r.status, 404, `${name}${q}: ${JSON.stringify(r.body)}`);
        assert.ok(!JSON.stringify(r.body).includes('secret'));
      }
    }
    // Four at once once froze the daemon's threads on the FIFO.
    const fifo = await Promise.all([1, 2, 3, 4, 5].map(() => call('GET', '/api/instances/fifo-1/logs?previous=1', { cookie })));
    assert.deepEqual(fifo.map((r) => r.status), [404, 404, 404, 404, 404]);
    assert.deepEqual(fifo[0]!.body, { error: 'instance "fifo-1" has no previous life\'s output kept' });
    assert.equal((await call('GET', '/api/instances/link-1/logs?previous=1', { cookie })).status, 404);
    assert.equal((await call('GET', '/api/services', { cookie })).status, 200);
    fs.rmSync(path.join(prev, 'fifo-1.log'));
    fs.rmSync(path.join(prev, 'link-1.log'));
  });

  it('prototype names (__proto__, constructor, toString) are no service: 404 for every action, nothing changed, /metrics still answers', async () => {
    const made = await e.carte(['token', 'create', '--name', 'proto', '--role', 'operator']);
    assert.equal(made.code, 0, made.stderr);
    const token = made.stdout.trim();
    const before = JSON.stringify(e.state().services);
    for (const n of ['__proto__', 'constructor', 'toString']) {
      for (const [action, body] of [['stop', undefined], ['start', undefined], ['restart', undefined], ['scale', { replicas: 3 }], ['rollback', {}]] as const) {
        const r = await call('POST', `/api/services/${n}/${action}`, { token, body });
        assert.equal(r.status, 404, `${n} ${action}: ${JSON.stringify(r.body)}`);
        assert.deepEqual(r.body, { error: `service "${n}" not found` });
      }
      assert.equal((await call('GET', `/api/services/${n}`, { token })).status, 404);
    }
    assert.equal(JSON.stringify(e.state().services), before);
    const rows = (await call('GET', '/api/services', { token })).body as ServiceRow[];
    assert.deepEqual(rows.map((s) => [s.name, s.suspended]), [['web', false]]);
    assert.equal((await call('GET', '/metrics', { token })).status, 200);
  });

  /** Opens an event stream; `ended` resolves with the events seen when the server ends it (or after `ms`, ended false). */
  const openStream = (headers: Record<string, string>, ms: number) => {
    let opened!: () => void;
    const openedP = new Promise<void>((r) => (opened = r));
    const ended = new Promise<{ ended: boolean; events: EventRow[] }>((resolve, reject) => {
      const events: EventRow[] = [];
      const req = http.get({ host: '127.0.0.1', port, path: '/api/events/stream', headers }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`event stream answered ${res.statusCode}`));
        opened();
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          for (const m of d.matchAll(/^data: (.*)$/gm)) events.push(JSON.parse(m[1]!) as EventRow);
        });
        res.on('end', () => resolve({ ended: true, events }));
      });
      req.on('error', () => {});
      setTimeout(() => {
        req.destroy();
        resolve({ ended: false, events });
      }, ms);
    });
    return { opened: openedP, ended };
  };

  it('an open event stream ends when its user is removed or its token is, before any further event', async () => {
    await addUser('leaver', 'viewer');
    const { cookie } = await login('leaver', 'pw-leaver-12345');
    const made = await e.carte(['token', 'create', '--name', 'watcher', '--role', 'viewer']);
    assert.equal(made.code, 0, made.stderr);
    const ops = await e.carte(['token', 'create', '--name', 'actor', '--role', 'operator']);
    assert.equal(ops.code, 0, ops.stderr);
    const byUser = openStream({ cookie }, 30_000);
    const byToken = openStream({ authorization: `Bearer ${made.stdout.trim()}` }, 30_000);
    await Promise.all([byUser.opened, byToken.opened]);
    assert.equal((await e.carte(['user', 'rm', 'leaver'])).code, 0);
    assert.equal((await e.carte(['token', 'rm', 'watcher'])).code, 0);
    // An event after the removals: the streams end rather than send it.
    const r = await call('POST', '/api/services/web/restart', { token: ops.stdout.trim() });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    for (const s of [await byUser.ended, await byToken.ended]) {
      assert.equal(s.ended, true);
      assert.deepEqual(s.events.filter((ev) => ev.reason === 'RestartRequested'), []);
    }
  });

  it('answers only a loopback Host on its loopback listener (DNS rebinding): another name is 421', async () => {
    const withHost = (host: string, path: string) => new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    for (const host of ['evil.example', `evil.example:${port}`, `localhost.evil.example:${port}`]) {
      assert.equal(await withHost(host, '/api/session'), 421, host);
      assert.equal(await withHost(host, '/'), 421, host);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost:8080']) assert.equal(await withHost(host, '/api/session'), 200, host);
  });

  it('a sign-in name with a line break and ESC is 400, audited as (invalid name); `carte audit` prints no control character', async () => {
    const r = await call('POST', '/api/login', { body: { name: 'x\n2026-12-01T00:00:00Z   root/root   cli   delete\u001b[2J', password: 'whatever-123' } });
    assert.equal(r.status, 400);
    const unknown = await call('POST', '/api/login', { body: { name: 'hunter-two-pw', password: 'whatever-123' } });
    assert.equal(unknown.status, 401);
    const last = (await audit()).slice(-2).map((x) => `${x.who.name} ${x.target} ${x.result}`);
    assert.deepEqual(last, ['(invalid name) user/(invalid name) failed', '(unknown user) user/(unknown user) failed']);
    const table = await e.carte(['audit', '--limit', '5']);
    assert.equal(table.code, 0, table.stderr);
    assert.ok(!/[\u0000-\u0009\u000b-\u001f]/.test(table.stdout), table.stdout);
    assert.ok(!table.stdout.includes('hunter-two-pw'));
  });
});

