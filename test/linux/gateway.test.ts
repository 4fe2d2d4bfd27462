// The gateway against real containers: published TCP/UDP ports, service
// names from inside containers, Host routing, draining during a rolling
// update under load, a port conflict, and waking a service from zero. The
// daemon runs in-process on the test host's bridge; traffic goes only to
// 127.0.0.1 and to addresses on that bridge.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { applyServices } from '../../src/api/apply.js';
import { serviceStatuses } from '../../src/api/status.js';
import { startDaemon, type RunningDaemon } from '../../src/daemon/daemon.js';
import { LABELS } from '../../src/model/instances.js';
import { cliLogger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import { buildImage, eventually, execOut, useTestHost } from '../helpers/linux.js';
import { services } from '../helpers/manifests.js';
import { fixture } from '../helpers/paths.js';

const BASE = 21000 + Math.floor(Math.random() * 20000);
const PORT = { web: BASE, udp: BASE + 1, routed: BASE + 2, taken: BASE + 3, sleepy: BASE + 4, wild: BASE + 5 };

function get(port: number, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000, headers: host ? { host } : {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

function udpAsk(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error('no UDP answer'));
    }, 5000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m.toString());
    });
    s.send(text, port, '127.0.0.1');
  });
}

const hello = (name: string, replicas: number, ports: string, extra = '') => `apiVersion: carte/v1
kind: Service
metadata: { name: ${name} }
spec:
  image: test/hello:1
  replicas: ${replicas}
  ports: ${ports}
  health: { http: { path: /health, port: 8080 }, interval: 1s }
  stopGracePeriod: 5s
${extra}`;

describe('gateway (root, real containers)', function () {
  this.timeout(90_000);
  let daemon: RunningDaemon | undefined;
  let store: Store;
  after(async () => daemon?.stop()); // before the host's teardown (hooks run in order)
  const host = useTestHost();
  const manifests: Record<string, string> = {};

  async function apply(name: string, text: string | null): Promise<void> {
    if (text === null) delete manifests[name];
    else manifests[name] = text;
    await applyServices(store, { services: services({ 'm.yaml': Object.values(manifests).join('---\n') }), source: 'cli', prune: true });
    daemon!.reconciler.trigger();
  }

  async function converged(service: string, ready: number): Promise<void> {
    await eventually(async () => {
      const s = serviceStatuses(await store.read(), Date.now()).find((x) => x.name === service);
      return s?.phase === 'Converged' && s.ready === ready;
    }, 60_000, `${service} converged with ${ready} ready`);
  }

  before(async () => {
    await buildImage(host(), 'test/hello:1', fs.readFileSync(fixture('hello', 'Cartefile'), 'utf8'), { 'server.js': fs.readFileSync(fixture('hello', 'server.js'), 'utf8') });
    store = Store.open(host().home);
    daemon = await startDaemon({ home: host().home, log: cliLogger(process.env.CARTE_TEST_DEBUG ? 'debug' : 'silent'), driver: host().driver, watch: [], git: [], publishAddress: '127.0.0.1', gateway: { retryBindMs: 300 } });
    await apply('web', hello('web', 3, `[{ port: 8080, publish: ${PORT.web} }, { port: 9000, protocol: udp, publish: ${PORT.udp} }]`));
    await converged('web', 3);
  });

  it('spreads published TCP connections and UDP flows over every ready replica, in turn', async () => {
    const tcp = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = await get(PORT.web);
      assert.equal(r.status, 200);
      tcp.set(r.body.trim(), (tcp.get(r.body.trim()) ?? 0) + 1);
    }
    assert.deepEqual([...tcp].sort(), [['web-1', 10], ['web-2', 10], ['web-3', 10]]);
    const udp = new Map<string, number>();
    for (let i = 0; i < 6; i++) {
      const [who, echoed] = (await udpAsk(PORT.udp, `ping${i}`)).split(' ');
      assert.equal(echoed, `ping${i}`);
      udp.set(who!, (udp.get(who!) ?? 0) + 1);
    }
    assert.deepEqual([...udp].sort(), [['web-1', 2], ['web-2', 2], ['web-3', 2]]);
  });

  it('lets containers reach a service by its name, at an address that stays while replicas change', async () => {
    await apply('client', 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: client }\nspec:\n  image: test/busybox:1\n  command: [sh, -c, "exec busybox sleep 100000"]\n');
    await converged('client', 1);
    const ask = () => execOut(host(), 'client-1', ['sh', '-c', 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | busybox nc web 8080']);
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = await ask();
      assert.equal(r.code, 0, r.out);
      seen.add(r.out.trim().split('\n').at(-1)!);
    }
    assert.deepEqual([...seen].sort(), ['web-1', 'web-2', 'web-3']);
    const hosts = (await execOut(host(), 'client-1', ['busybox', 'cat', '/etc/hosts'])).out;
    const address = /^(\S+)\tweb$/m.exec(hosts)?.[1];
    assert.ok(address, hosts);
    assert.notEqual(address, (await host().driver.list()).find((i) => i.name === 'web-1')?.ip, 'the service address, not an instance\'s');
  });

  it('serves a port published on 0.0.0.0 and the same port of the service address', async () => {
    // The service address is not the host's (it is in the gateway's namespace): 0.0.0.0:P never collides with it.
    await apply('wild', `apiVersion: carte/v1
kind: Service
metadata: { name: wild }
spec:
  image: test/hello:1
  env: { PORT: "${PORT.wild}" }
  ports: [{ port: ${PORT.wild}, publish: { port: ${PORT.wild}, address: 0.0.0.0 } }]
  health: { http: { path: /health, port: ${PORT.wild} }, interval: 1s }
  stopGracePeriod: 5s
`);
    await converged('wild', 1);
    assert.ok(daemon!.gateway.listening().includes(`tcp 0.0.0.0:${PORT.wild}`), daemon!.gateway.listening().join(', '));
    assert.equal(daemon!.gateway.listening().filter((l) => l.endsWith(`:${PORT.wild}`)).length, 2, daemon!.gateway.listening().join(', '));
    assert.deepEqual(await get(PORT.wild), { status: 200, body: 'wild-1\n' });
    const r = await execOut(host(), 'client-1', ['sh', '-c', `printf "GET / HTTP/1.0\\r\\n\\r\\n" | busybox nc wild ${PORT.wild}`]);
    assert.equal(r.out.trim().split('\n').at(-1), 'wild-1', r.out);
    await apply('wild', null);
  });

  it('takes a killed instance out of rotation at once: no request fails', async () => {
    const victim = (await host().driver.list()).find((i) => i.name === 'web-2')!;
    process.kill(victim.pid!, 'SIGKILL');
    const answers: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await get(PORT.web);
      assert.equal(r.status, 200, 'every request is answered by a live instance');
      answers.push(r.body.trim());
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(answers.includes('web-1') && answers.includes('web-3'));
    await converged('web', 3); // restarted by the reconciler
  });

  it('drains replaced instances during a rolling update under steady load: no request lost', async () => {
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const workers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          const r = await get(PORT.web);
          if (r.status === 200) ok++;
          else failures.push(`HTTP ${r.status}`);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    });
    await new Promise((res) => setTimeout(res, 300));
    await apply('web', hello('web', 3, `[{ port: 8080, publish: ${PORT.web} }, { port: 9000, protocol: udp, publish: ${PORT.udp} }]`, '  env: { VERSION: "2" }\n'));
    const template = (await store.read()).services.web!.revision.templateHash;
    await eventually(async () => {
      const mine = (await host().driver.list()).filter((i) => i.service === 'web');
      const data = await store.read();
      return mine.length === 3 && mine.every((i) => i.labels[LABELS.template] === template) && !data.rollouts?.web && serviceStatuses(data, Date.now()).find((s) => s.name === 'web')?.phase === 'Converged';
    }, 60_000, 'the rollout to finish');
    await new Promise((res) => setTimeout(res, 300));
    stop = true;
    await Promise.all(workers);
    assert.deepEqual(failures, []);
    assert.ok(ok > 50, `only ${ok} requests completed`);
  });

  it('routes HTTP by Host header; 404 for an unknown host, 503 when the service has nothing to serve', async () => {
    const routed = (name: string, replicas: number) => hello(name, replicas, `[{ port: 8080, publish: { port: ${PORT.routed}, host: ${name}.test } }]`);
    await apply('blue', routed('blue', 1));
    await apply('green', routed('green', 1));
    await apply('off', routed('off', 0));
    await converged('blue', 1);
    await converged('green', 1);
    assert.deepEqual(await get(PORT.routed, 'blue.test'), { status: 200, body: 'blue-1\n' });
    assert.deepEqual(await get(PORT.routed, `GREEN.test:${PORT.routed}`), { status: 200, body: 'green-1\n' });
    assert.deepEqual(await get(PORT.routed, 'red.test'), { status: 404, body: '{"error":"no service is published for host \\"red.test\\" on this port"}\n' });
    assert.deepEqual(await get(PORT.routed, 'off.test'), { status: 503, body: '{"error":"service \\"off\\" has no ready instance"}\n' });
  });

  it('reports a port it cannot bind for that service, keeps serving the others, and binds it once free', async () => {
    const blocker = net.createServer();
    await new Promise<void>((res) => blocker.listen(PORT.taken, '127.0.0.1', res));
    try {
      await apply('taken', hello('taken', 1, `[{ port: 8080, publish: ${PORT.taken} }]`));
      const status = await eventually(async () => serviceStatuses(await store.read(), Date.now()).find((s) => s.name === 'taken' && s.phase === 'Failing'), 30_000, 'taken to be Failing');
      assert.equal(status.reason, `port ${PORT.taken}/tcp on 127.0.0.1 is in use by another program; stop it, or publish another port`);
      assert.ok((await store.read()).events.some((e) => e.object === 'service/taken' && e.reason === 'PortUnavailable'));
      assert.equal((await get(PORT.web)).status, 200, 'the other services keep serving');
    } finally {
      await new Promise((res) => blocker.close(res));
    }
    await converged('taken', 1);
    assert.deepEqual(await get(PORT.taken), { status: 200, body: 'taken-1\n' });
    assert.deepEqual((await store.read()).portErrors, {});
  });

  it('wakes a service asleep at zero on its first request and answers it', async () => {
    await apply('sleepy', hello('sleepy', 0, `[{ port: 8080, publish: ${PORT.sleepy} }]`, '  resources: { cpu: 500m, memory: 128Mi }\n  autoscale: { min: 0, max: 2, cpu: 70%, idleToZero: 5m }\n').replace('  replicas: 0\n', ''));
    await eventually(async () => (await store.read()).services.sleepy !== undefined && daemon!.gateway.listening().includes(`tcp 127.0.0.1:${PORT.sleepy}`), 10_000, 'the sleepy port');
    assert.equal((await host().driver.list()).filter((i) => i.service === 'sleepy').length, 0);
    assert.deepEqual(await get(PORT.sleepy), { status: 200, body: 'sleepy-1\n' });
    const woken = (await store.read()).events.find((e) => e.object === 'service/sleepy' && e.reason === 'Woken');
    assert.equal(woken?.message, '0→1: a connection arrived while it slept at zero');
    assert.equal(daemon!.gateway.activity('sleepy').connections, 1);
  });
});
