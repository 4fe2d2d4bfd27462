import assert from 'node:assert/strict';
import fs from 'node:fs';
import { applyServices } from '../../../src/api/apply.js';
import { CarteError } from '../../../src/errors.js';
import { serviceStatuses } from '../../../src/api/status.js';
import { cliLogger } from '../../../src/log.js';
import { HealthMonitor } from '../../../src/reconciler/health.js';
import { LABELS, Reconciler } from '../../../src/reconciler/reconciler.js';
import { Store } from '../../../src/store/store.js';
import { serviceDoc, services, yaml } from '../../helpers/manifests.js';
import { MemoryDriver } from '../../helpers/memory-driver.js';
import { tempDir } from '../../helpers/paths.js';

describe('reconciler (in-memory driver)', () => {
  let home: string;
  let store: Store;
  let driver: MemoryDriver;
  let now: number;
  const clock = () => now;
  const make = (probe: ConstructorParameters<typeof HealthMonitor>[0] = async () => null) =>
    new Reconciler({ store, driver, log: cliLogger('silent'), clock, health: new HealthMonitor(probe, clock) });
  const apply = (...docs: Record<string, unknown>[]) => applyServices(store, { services: services({ 'm.yaml': yaml(...docs) }), source: 'cli', prune: true });
  const names = () => [...driver.instances.keys()].sort();
  /** One pass, then every action it launched finished. */
  const step = async (r: Reconciler) => {
    const result = await r.pass();
    await r.idle();
    return result;
  };

  beforeEach(() => {
    home = tempDir();
    store = Store.open(home);
    driver = new MemoryDriver(clock);
    now = Date.parse('2026-11-01T10:00:00Z');
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('creates the replicas with labels carrying template, revision and restarts, and records events', async () => {
    await apply(serviceDoc('web', { replicas: 3 }));
    const r = make();
    await step(r);
    assert.deepEqual(names(), ['web-1', 'web-2', 'web-3']);
    const labels = driver.instances.get('web-1')!.labels;
    assert.equal(labels[LABELS.revision], '1');
    assert.equal(labels[LABELS.restarts], '0');
    assert.equal(labels[LABELS.template], (await store.read()).services.web!.revision.templateHash);
    await r.flush();
    const events = (await store.read()).events.filter((e) => e.reason === 'InstanceCreated').map((e) => e.message);
    assert.deepEqual(events.sort(), ['web-1 created (revision 1): scaling to 3', 'web-2 created (revision 1): scaling to 3', 'web-3 created (revision 1): scaling to 3']);
    assert.equal((await step(r)).settled, true);
  });

  it('builds each service under its own source\'s host copy prefixes', async () => {
    const doc = (name: string) => ({ ...serviceDoc(name), spec: { replicas: 1, build: { context: 'app' } } });
    await applyServices(store, { services: services({ 'a.yaml': yaml(doc('mine')) }), source: 'cli', prune: false });
    await applyServices(store, { services: services({ 'b.yaml': yaml(doc('theirs')) }), source: 'git:class#main:.', prune: false });
    const r = new Reconciler({
      store, driver, log: cliLogger('silent'), clock, health: new HealthMonitor(async () => null, clock),
      hostCopyPrefixes: (source) => (source === 'cli' ? ['/usr', '/opt/tools'] : []),
    });
    await step(r);
    const byService = Object.fromEntries([...driver.buildPolicies].map(([tag, p]) => [tag.split(':')[0], p]));
    assert.deepEqual(byService, { 'carte-build/mine': ['/usr', '/opt/tools'], 'carte-build/theirs': [] });
  });

  it('scales down, and leaves instances it does not manage (carte run) alone', async () => {
    await driver.create({ name: 'adhoc-1', service: 'adhoc-1', source: 'cli', labels: {}, image: 'x', spec: { command: null, args: null, env: {}, workingDir: null, user: null, resources: { cpuMillis: null, memoryBytes: null, pids: null }, volumes: [], ports: [] } });
    await apply(serviceDoc('web', { replicas: 3 }));
    const r = make();
    await step(r);
    await apply(serviceDoc('web', { replicas: 1 }));
    await step(r);
    assert.deepEqual(names(), ['adhoc-1', 'web-1']);
  });

  it('adopts what runs after a restart of the daemon: no action on a converged machine', async () => {
    await apply(serviceDoc('web', { replicas: 2, health: { tcp: { port: 80 } } }), serviceDoc('db'));
    const first = make();
    await step(first);
    await step(first);
    driver.calls.length = 0;
    const second = make(); // a new daemon: no memory of health or actions
    const r = await step(second);
    assert.deepEqual(r.actions, []);
    assert.deepEqual(driver.calls, []);
  });

  it('a restarted daemon takes over the readiness the store holds for the same instance lives, before any check answers', async () => {
    await apply(serviceDoc('web', { replicas: 2, health: { tcp: { port: 80 } } }));
    const first = make();
    await step(first);
    await step(first);
    await first.flush();
    const second = make(() => new Promise(() => {})); // its checks never answer
    let ready: string[] = [];
    second.onMembership((m) => (ready = m.instances.filter((i) => i.ready).map((i) => i.name)));
    await second.pass();
    assert.deepEqual(ready, ['web-1', 'web-2'], 'routed to at once');
    assert.deepEqual(serviceStatuses(await store.read(), now).map((st) => [st.name, st.ready, st.phase]), [['web', 2, 'Converged']]);
    // A new life of web-1 (restarted behind the daemon's back) is not taken over.
    driver.instances.get('web-1')!.startedAt = new Date(now + 5).toISOString();
    const third = make(() => new Promise(() => {}));
    third.onMembership((m) => (ready = m.instances.filter((i) => i.ready).map((i) => i.name)));
    await third.pass();
    assert.deepEqual(ready, ['web-2']);
  });

  it('restarts a crashed instance after the backoff, counting restarts in its labels', async () => {
    await apply(serviceDoc('web'));
    const r = make();
    await step(r);
    driver.crash('web-1', 1);
    const waiting = await step(r);
    assert.deepEqual(waiting.actions.map((a) => a.kind), ['wait']);
    const data = await store.read();
    assert.deepEqual(data.waiting?.web, { kind: 'crash-loop', instance: 'web-1', exit: 'exited with code 1', restarts: 0, until: now + 1000 });
    assert.deepEqual(serviceStatuses(data, now).map((st) => [st.phase, st.reason]), [['CrashLoopBackOff', 'web-1 exited with code 1; restart 1 in 1s (CrashLoopBackOff)']]);
    now += 1000;
    await step(r);
    assert.equal(driver.instances.get('web-1')!.state, 'running');
    assert.equal(driver.instances.get('web-1')!.labels[LABELS.restarts], '1');
    driver.crash('web-1', 1);
    now += 1000;
    assert.deepEqual((await step(r)).actions.map((a) => a.kind), ['wait'], 'the second restart waits 2 s');
    now += 1000;
    await step(r);
    assert.equal(driver.instances.get('web-1')!.labels[LABELS.restarts], '2');
  });

  it('a crash-looping service does not hold back another one', async () => {
    await apply(serviceDoc('bad'), serviceDoc('good', { replicas: 1 }));
    const r = make();
    await step(r);
    driver.crash('bad-1', 2);
    await apply(serviceDoc('bad'), serviceDoc('good', { replicas: 3 }));
    const result = await step(r);
    assert.deepEqual(result.actions.map((a) => `${a.kind} ${'name' in a ? a.name : a.service}`), ['wait bad', 'create good-2', 'create good-3']);
    assert.deepEqual(names(), ['bad-1', 'good-1', 'good-2', 'good-3']);
  });

  it('rolls a new image out without a moment of fewer ready instances than replicas', async () => {
    await apply(serviceDoc('web', { replicas: 2, health: { http: { path: '/', port: 80 } } }));
    const ready = new Set<string>();
    // The probe passes for an instance from its second check on: a start-up delay.
    const r = make(async (_check, target) => {
      if (ready.has(target.name)) return null;
      ready.add(target.name);
      return 'starting';
    });
    for (let i = 0; i < 6; i++) {
      await step(r);
      now += 10_000;
    }
    await apply(serviceDoc('web', { replicas: 2, image: 'test/web:2', health: { http: { path: '/', port: 80 } } }));
    const newTemplate = (await store.read()).services.web!.revision.templateHash;
    for (let pass = 0; pass < 30; pass++) {
      await step(r);
      const running = [...driver.instances.values()];
      const readyCount = running.filter((i) => r.health.get(i.name)?.ready).length;
      assert.ok(readyCount >= 2, `pass ${pass}: ${readyCount} ready`);
      assert.ok(running.length <= 3, `pass ${pass}: ${running.length} instances`);
      now += 10_000;
    }
    assert.deepEqual([...driver.instances.values()].map((i) => i.labels[LABELS.template]), [newTemplate, newTemplate]);
    await r.flush();
    assert.deepEqual((await store.read()).events.filter((e) => e.reason.startsWith('Rollout')).map((e) => e.reason), ['RolloutStarted', 'RolloutComplete']);
    assert.equal((await store.read()).rollouts?.web, undefined);
  });

  it('reports a failing create as a Warning event and backs off', async () => {
    await apply(serviceDoc('web'));
    const r = make();
    driver.failNextCreate();
    await step(r);
    await r.flush();
    const warning = (await store.read()).events.find((e) => e.type === 'Warning');
    assert.equal(warning?.reason, 'CreateFailed');
    assert.equal(warning?.message, 'web-1: failed to create instance: injected failure');
    assert.deepEqual((await step(r)).actions.map((a) => a.kind), ['wait']);
    now += 1000;
    await step(r);
    assert.deepEqual(names(), ['web-1']);
  });

  it('pulls registry images by pull policy before creating; a failing pull is a PullFailed event and a backoff, other services go on', async () => {
    const REF = '127.0.0.1:5000/team/app:1';
    driver.registry.set(REF, true);
    driver.registry.set('127.0.0.1:5000/team/down:1', new CarteError('registry', 'pull 127.0.0.1:5000/team/down:1: pinging container registry 127.0.0.1:5000: connection refused'));
    await apply(
      serviceDoc('app', { image: REF }),
      serviceDoc('latest', { image: '127.0.0.1:5000/team/app' }),
      serviceDoc('local', {}),
      serviceDoc('down', { image: '127.0.0.1:5000/team/down:1' }),
    );
    driver.registry.set('127.0.0.1:5000/team/app', true);
    const r = make();
    await step(r);
    // A local name is never pulled; :latest defaults to Always, a tag to IfNotPresent.
    assert.deepEqual([...driver.pulls].sort(), ['127.0.0.1:5000/team/app Always', `${REF} IfNotPresent`, '127.0.0.1:5000/team/down:1 IfNotPresent']);
    assert.deepEqual(names(), ['app-1', 'latest-1', 'local-1']);
    await r.flush();
    const warning = (await store.read()).events.find((e) => e.type === 'Warning');
    assert.equal(warning?.reason, 'PullFailed');
    assert.equal(warning?.message, 'down-1: pull 127.0.0.1:5000/team/down:1: pinging container registry 127.0.0.1:5000: connection refused');
    assert.deepEqual((await step(r)).actions.map((a) => `${a.kind} ${a.service}`), ['wait down']);
    // The registry comes back: after the backoff the service converges.
    driver.registry.set('127.0.0.1:5000/team/down:1', true);
    now += 1000;
    await step(r);
    assert.deepEqual(names(), ['app-1', 'down-1', 'latest-1', 'local-1']);
  });

  it('pullPolicy Never creates only from the local store', async () => {
    await apply(serviceDoc('app', { image: '127.0.0.1:5000/team/app:1', pullPolicy: 'Never' }));
    const r = make();
    await step(r);
    await r.flush();
    assert.equal((await store.read()).events.find((e) => e.type === 'Warning')?.message, 'app-1: image 127.0.0.1:5000/team/app:1 is not in the local store and its pullPolicy is Never');
    driver.localImages.add('127.0.0.1:5000/team/app:1');
    now += 1000;
    await step(r);
    assert.deepEqual(names(), ['app-1']);
  });

  it('replaces an instance whose liveness check keeps failing', async () => {
    await apply(serviceDoc('web', { health: { tcp: { port: 80 }, interval: '1s', failureThreshold: 2 } }));
    let healthy = true;
    const r = make(async () => (healthy ? null : 'connection refused'));
    await step(r);
    await step(r);
    healthy = false;
    for (let i = 0; i < 3; i++) {
      now += 1000;
      await step(r);
    }
    assert.equal(driver.instances.get('web-1')!.labels[LABELS.restarts], '1');
    await r.flush();
    assert.ok((await store.read()).events.some((e) => e.reason === 'InstanceRestarted' && e.message === 'web-1 restarted (1): its health check keeps failing'));
  });

  it('replaces an instance left created but never started by a daemon that died mid-create', async () => {
    await apply(serviceDoc('web'));
    const r = make();
    await step(r);
    driver.instances.get('web-1')!.state = 'created';
    driver.instances.get('web-1')!.pid = null;
    const fresh = make(); // the restarted daemon: web-1 is not its own in-flight create
    await step(fresh);
    assert.equal(driver.instances.get('web-1')!.state, 'running');
    assert.equal(driver.instances.get('web-1')!.labels[LABELS.restarts], '1');
  });

  it('checks a starting instance often while connections wait for it, without restarting it sooner', async () => {
    await apply(serviceDoc('web', { ports: [{ port: 80 }], health: { tcp: { port: 80 }, interval: '10s', failureThreshold: 3 } }));
    let up = false;
    let checks = 0;
    const r = make(async () => {
      checks++;
      return up ? null : 'connection refused';
    });
    let ready: string[] = [];
    r.onMembership((m) => (ready = m.instances.filter((i) => i.ready).map((i) => i.name)));
    await step(r);
    r.start();
    try {
      r.hurry('web');
      // Far more failed checks than failureThreshold, all within one health interval.
      for (let i = 0; i < 400 && checks < 8; i++) {
        now += 30;
        await new Promise((res) => setTimeout(res, 30));
      }
      assert.ok(checks >= 8, `hurried checks ran (${checks})`);
      await r.idle();
      assert.equal(driver.instances.get('web-1')!.labels[LABELS.restarts], '0', 'not restarted by hurried failures');
      up = true;
      for (let i = 0; i < 400 && !ready.includes('web-1'); i++) {
        now += 30;
        await new Promise((res) => setTimeout(res, 30));
      }
      assert.deepEqual(ready, ['web-1'], 'ready from a hurried check, long before its 10 s interval');
    } finally {
      await r.stop();
    }
  });

  it('does not take an instance its own create finished during a pass for one left half-made', async () => {
    await apply(serviceDoc('db', { health: { tcp: { port: 6379 }, interval: '1s' } }));
    let probeGate: Promise<void> | null = null;
    const r = make(async () => {
      await probeGate;
      return null;
    });
    await step(r);
    let finishCreate!: () => void;
    driver.createGate = new Promise((res) => (finishCreate = res));
    await apply(serviceDoc('db', { health: { tcp: { port: 6379 }, interval: '1s' } }), serviceDoc('web'));
    await r.pass(); // launches the create of web-1, which stops half-way
    assert.equal(driver.instances.get('web-1')!.state, 'created');
    let releaseProbe!: () => void;
    probeGate = new Promise((res) => (releaseProbe = res));
    now += 1000; // db-1's check is due: the next pass waits on it after listing the machine
    const pass = r.pass();
    await new Promise((res) => setTimeout(res, 20));
    finishCreate();
    await r.idle(); // web-1 is running now; the pass still holds its listing from before
    releaseProbe();
    await pass;
    await r.idle();
    assert.deepEqual(driver.calls.filter((c) => c.endsWith('web-1')), ['create web-1'], 'not removed and made again');
  });

  it('never runs two passes at once, however they are called', async () => {
    await apply(serviceDoc('web', { replicas: 3, health: { tcp: { port: 80 } } }));
    let concurrent = 0;
    let most = 0;
    const r = make(async () => {
      concurrent++;
      most = Math.max(most, concurrent);
      await new Promise((res) => setTimeout(res, 20));
      concurrent--;
      return null;
    });
    const passes = await Promise.all([r.pass(), r.pass(), r.pass()]);
    await r.idle();
    // Only the first pass creates; the later ones, run after it, see its creates in flight.
    assert.deepEqual(passes.map((p) => p.actions.filter((a) => a.kind === 'create').length), [3, 0, 0]);
    assert.deepEqual(names(), ['web-1', 'web-2', 'web-3']);
    assert.ok(most <= 3);
  });

  it('gives instances the service names in /etc/hosts, and pushes a changed set to running ones', async () => {
    await apply(serviceDoc('api', { ports: [{ port: 80 }] }), serviceDoc('worker'));
    const r = make();
    await step(r);
    assert.deepEqual(driver.hosts.get('worker-1'), { api: '10.96.0.1' }, 'only services with ports get an address');
    await apply(serviceDoc('api', { ports: [{ port: 80 }] }), serviceDoc('worker'), serviceDoc('db', { ports: [{ port: 5432 }] }));
    await step(r);
    await new Promise((res) => setImmediate(res));
    for (const name of ['api-1', 'db-1', 'worker-1']) assert.deepEqual(driver.hosts.get(name), { api: '10.96.0.1', db: '10.96.0.3' }, name);
  });

  it('drains an instance before stopping it on purpose, and publishes who is ready', async () => {
    const drained: string[] = [];
    const seen: string[][] = [];
    const r = new Reconciler({ store, driver, log: cliLogger('silent'), clock, health: new HealthMonitor(async () => null, clock), beforeStop: async (name) => {
      drained.push(`${name} (${driver.instances.get(name)?.state})`);
    } });
    r.onMembership((m) => seen.push(m.instances.filter((i) => i.ready).map((i) => i.name)));
    await apply(serviceDoc('web', { replicas: 2 }));
    await step(r);
    await step(r);
    assert.deepEqual(seen.at(-1), ['web-1', 'web-2']);
    await apply(serviceDoc('web', { replicas: 1 }));
    await step(r);
    assert.deepEqual(drained, ['web-2 (running)'], 'drained while still running, before the stop');
    assert.deepEqual(driver.calls.filter((c) => c.endsWith('web-2')), ['create web-2', 'stop web-2', 'remove web-2']);
    await step(r);
    assert.deepEqual(seen.at(-1), ['web-1']);
  });

  describe('one slow thing never holds the others', () => {
    it('plans while a probe hangs: another service is scaled and a crashed instance replaced at once', async () => {
      await apply(serviceDoc('stuck', { health: { http: { path: '/', port: 80 }, interval: '10s', timeout: '10s' } }), serviceDoc('good'));
      let release!: () => void;
      const hung = new Promise<string | null>((res) => (release = () => res('timed out')));
      const r = make(async (_check, target) => (target.name.startsWith('stuck') ? hung : null));
      await step(r);
      const passed = await Promise.race([r.pass().then(() => 'pass ended'), new Promise((res) => setTimeout(() => res('pass waited'), 500))]);
      assert.equal(passed, 'pass ended', 'a pass never waits on a probe');
      driver.crash('good-1', 137);
      await apply(serviceDoc('stuck', { health: { http: { path: '/', port: 80 }, interval: '10s', timeout: '10s' } }), serviceDoc('good', { replicas: 2 }), serviceDoc('new'));
      now += 1000;
      await step(r);
      assert.deepEqual(names(), ['good-1', 'good-2', 'new-1', 'stuck-1']);
      assert.equal(driver.instances.get('good-1')!.state, 'running');
      assert.equal(r.health.running, 1, 'the hung probe is still running');
      release();
      await r.health.settled();
    });

    it('a stop that waits out a long grace period holds no slot: another service is created meanwhile, even with one slot', async () => {
      await apply(serviceDoc('slow', { replicas: 2, stopGracePeriod: '1h' }), serviceDoc('fast'));
      let endGrace!: () => void;
      driver.slowStops.set('slow', new Promise((res) => (endGrace = res)));
      const r = new Reconciler({ store, driver, log: cliLogger('silent'), clock, parallelism: 1, health: new HealthMonitor(async () => null, clock) });
      await step(r);
      await apply(serviceDoc('slow', { replicas: 0, stopGracePeriod: '1h' }), serviceDoc('fast', { replicas: 3 }));
      await r.pass();
      for (let i = 0; i < 50 && names().filter((n) => n.startsWith('fast')).length < 3; i++) await new Promise((res) => setTimeout(res, 10));
      assert.deepEqual(names(), ['fast-1', 'fast-2', 'fast-3', 'slow-1', 'slow-2'], 'fast scaled while slow instances are still stopping');
      endGrace();
      await r.idle();
      assert.deepEqual(names(), ['fast-1', 'fast-2', 'fast-3']);
    });

    it('takes work in turn across services: one service with many creates does not starve another', async () => {
      await apply(serviceDoc('many', { replicas: 6 }));
      const r = new Reconciler({ store, driver, log: cliLogger('silent'), clock, parallelism: 1, health: new HealthMonitor(async () => null, clock) });
      let open!: () => void;
      driver.createGate = new Promise((res) => (open = res));
      await r.pass();
      await apply(serviceDoc('many', { replicas: 6 }), serviceDoc('one'));
      await r.pass();
      driver.createGate = null;
      open();
      await r.idle();
      const order = driver.calls.filter((c) => c.startsWith('create')).map((c) => c.slice(7));
      assert.ok(order.indexOf('one-1') <= 2, `one-1 created among the first (${order.join(', ')})`);
    });

    it('acts only on its scope (the CLI converge of one command), and probes nothing else', async () => {
      await apply(serviceDoc('a', { replicas: 2 }), serviceDoc('b', { replicas: 2, health: { tcp: { port: 80 } } }));
      const probed: string[] = [];
      const r = new Reconciler({ store, driver, log: cliLogger('silent'), clock, scope: new Set(['a']), health: new HealthMonitor(async (_c, t) => {
        probed.push(t.name);
        return null;
      }, clock) });
      await step(r);
      await r.health.settled();
      assert.deepEqual(names(), ['a-1', 'a-2']);
      assert.deepEqual(probed, []);
    });

    it('keeps events and status it could not write (a full disk) for the next write', async () => {
      await apply(serviceDoc('web'));
      const r = make();
      const update = store.update.bind(store);
      let fail = true;
      store.update = (async (...args: Parameters<Store['update']>) => {
        if (fail) throw new Error('failed to write state file: no space left on device');
        return update(...args);
      }) as Store['update'];
      await step(r);
      await step(r); // sees web-1 running and ready: a second failed write
      assert.equal((await store.read()).events.filter((e) => e.reason === 'InstanceCreated').length, 0);
      fail = false;
      await r.flush();
      const data = await store.read();
      assert.deepEqual(data.events.filter((e) => e.reason === 'InstanceCreated').map((e) => e.message), ['web-1 created (revision 1): scaling to 1']);
      assert.equal((data.instances as Record<string, { ready: boolean }>)['web-1']?.ready, true);
    });

    it('on shutdown, abandons what is in flight and ends running probes at once', async () => {
      await apply(serviceDoc('web', { health: { exec: { command: ['sleep', '1000'] }, interval: '10s', timeout: '10s' } }));
      let aborted = false;
      const r = make((_c, _t, _ms, signal) => new Promise((res) => signal?.addEventListener('abort', () => {
        aborted = true;
        res('aborted');
      })));
      r.start();
      await step(r);
      for (let i = 0; i < 50 && r.health.running === 0; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(r.health.running, 1);
      driver.createGate = new Promise(() => {}); // a create that never finishes
      await apply(serviceDoc('web', { replicas: 2, health: { exec: { command: ['sleep', '1000'] }, interval: '10s', timeout: '10s' } }));
      await r.pass();
      const t = Date.now();
      await r.stop({ abandon: true });
      assert.ok(aborted, 'the probe was aborted');
      assert.ok(Date.now() - t < 1000, 'stop did not wait for the create');
    });
  });

  it('replaces an instance it is asked to evict (the disk quota), with the reason on the restart, once', async () => {
    await apply(serviceDoc('web', { replicas: 2 }));
    const r = make();
    await step(r);
    await step(r); // the pass that lists web-2 running
    r.evict('web-2', 'web uses 9.0Mi of its 8Mi disk quota (writable layers 9.0Mi, volumes 0Ki): web-2 wrote 9.0Mi and is replaced');
    now += 1000; // a first replacement waits until 1 s after the start, like a first crash
    await step(r);
    await step(r);
    await r.flush();
    const restarted = (await store.read()).events.filter((e) => e.reason === 'InstanceRestarted').map((e) => e.message);
    assert.deepEqual(restarted, ['web-2 restarted (1): web uses 9.0Mi of its 8Mi disk quota (writable layers 9.0Mi, volumes 0Ki): web-2 wrote 9.0Mi and is replaced']);
    assert.equal(driver.instances.get('web-1')!.labels[LABELS.restarts], '0');
  });
});
