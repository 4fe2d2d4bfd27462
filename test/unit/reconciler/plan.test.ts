import assert from 'node:assert/strict';
import { BACKOFF, plan, restartDelay } from '../../../src/reconciler/plan.js';
import type { Action, DesiredService, InstanceView, RolloutState } from '../../../src/reconciler/types.js';
import { serviceDoc, services, yaml } from '../../helpers/manifests.js';
import { templateHash } from '../../../src/schema/canonical.js';
import { describeWait } from '../../../src/model/wait.js';

const NOW = 1_000_000;

function svc(name: string, spec: Record<string, unknown> = {}, extra: Partial<DesiredService> = {}): DesiredService {
  const [loaded] = services({ 'x.yaml': yaml(serviceDoc(name, spec)) });
  const s = loaded!.object.spec;
  return { name, spec: s, templateHash: templateHash(s), revision: 1, source: 'cli', suspended: false, ...extra };
}

function inst(d: DesiredService, ordinal: number, over: Partial<InstanceView> = {}): InstanceView {
  return {
    name: `${d.name}-${ordinal}`, service: d.name, ordinal, templateHash: d.templateHash, state: 'running',
    ready: true, healthKnown: true, unhealthy: false, broken: false, exitCode: null, oomKilled: false,
    createdAt: NOW - 100_000 + ordinal, startedAt: NOW - 100_000 + ordinal, finishedAt: null, restarts: 0, ...over,
  };
}

const run = (desired: DesiredService[], instances: InstanceView[], rollouts: Record<string, RolloutState> = {}, now = NOW) =>
  plan({ desired, instances, rollouts, now });
/** Actions as short strings, for exact comparison. */
const brief = (actions: Action[]) => actions.map((a) => {
  switch (a.kind) {
    case 'create': case 'remove': case 'restart': return `${a.kind} ${a.name}`;
    case 'rollout': return `rollout ${a.service} ${a.templateHash === null ? 'done' : 'start'}`;
    case 'wait': return `wait ${a.service}: ${describeWait(a.service, a.cause, NOW)}`;
  }
});

describe('plan', () => {
  describe('replicas', () => {
    it('creates the missing replicas with the lowest free numbers', () => {
      const web = svc('web', { replicas: 3 });
      assert.deepEqual(brief(run([web], [inst(web, 2)])), ['create web-1', 'create web-3']);
    });

    it('does nothing when converged', () => {
      const web = svc('web', { replicas: 2 });
      assert.deepEqual(run([web], [inst(web, 1), inst(web, 2)]), []);
    });

    it('scales down: not-ready first, then newest', () => {
      const web = svc('web', { replicas: 1 });
      const instances = [inst(web, 1), inst(web, 2, { ready: false }), inst(web, 3, { createdAt: NOW }), inst(web, 4)];
      assert.deepEqual(brief(run([web], instances)), ['remove web-2', 'remove web-3', 'remove web-4']);
    });

    it('removes the instances of a deleted service, and all of a stopped one', () => {
      const web = svc('web');
      const db = svc('db');
      assert.deepEqual(brief(run([svc('web', {}, { suspended: true })], [inst(web, 1), inst(db, 1)])), ['remove db-1', 'remove web-1']);
    });

    it('cleans up a lost instance and replaces it under a new name', () => {
      const web = svc('web');
      assert.deepEqual(brief(run([web], [inst(web, 1, { state: 'lost', ready: false })])), ['remove web-1', 'create web-2']);
    });
  });

  describe('restart policy and crash-loop backoff', () => {
    const exited = (d: DesiredService, over: Partial<InstanceView> = {}) =>
      inst(d, 1, { state: 'exited', ready: false, exitCode: 1, finishedAt: NOW - 500, startedAt: NOW - 1000, ...over });

    it('always: restarts after the backoff, and says when while waiting', () => {
      const web = svc('web', { restart: 'always' });
      assert.deepEqual(brief(run([web], [exited(web, { finishedAt: NOW - 1000 })])), ['restart web-1']);
      const actions = run([web], [exited(web, { restarts: 3, exitCode: 2 })]);
      assert.deepEqual(actions, [
        { kind: 'wait', service: 'web', cause: { kind: 'crash-loop', instance: 'web-1', exit: 'exited with code 2', restarts: 3, until: NOW - 500 + 8000 }, until: NOW - 500 + 8000 },
      ]);
      assert.deepEqual(brief(actions), ['wait web: web-1 exited with code 2; restart 4 in 8s (CrashLoopBackOff)']);
    });

    it('on-failure: restarts failures and OOM kills, not clean exits', () => {
      const job = svc('job', { restart: 'on-failure' });
      assert.deepEqual(brief(run([job], [exited(job, { exitCode: 0 })])), []);
      assert.deepEqual(brief(run([job], [exited(job, { exitCode: 137, oomKilled: true, finishedAt: NOW - 5000 })])), ['restart job-1']);
    });

    it('never: an exited instance stays as it is and is not replaced', () => {
      const job = svc('job', { restart: 'never' });
      assert.deepEqual(run([job], [exited(job)]), []);
    });

    it('backs off exponentially to a cap, and forgets after a stable run', () => {
      assert.deepEqual([0, 1, 2, 5, 20].map(restartDelay), [1000, 2000, 4000, 32_000, BACKOFF.maxMs]);
      const web = svc('web');
      const stable = exited(web, { restarts: 9, startedAt: NOW - BACKOFF.stableMs - 10_000, finishedAt: NOW - 1500 });
      assert.deepEqual(brief(run([web], [stable])), ['restart web-1']);
    });

    it('replaces broken instances and those failing liveness at once', () => {
      const web = svc('web', { replicas: 2 });
      assert.deepEqual(brief(run([web], [inst(web, 1, { broken: true }), inst(web, 2, { unhealthy: true, ready: false })])), ['restart web-1', 'restart web-2']);
    });
  });

  describe('dependsOn', () => {
    it('holds creates until every dependency has a ready instance', () => {
      const db = svc('db');
      const web = svc('web', { dependsOn: ['db'] });
      assert.deepEqual(brief(run([db, web], [])), ['create db-1', 'wait web: waiting for db to be ready (dependsOn)']);
      assert.deepEqual(brief(run([db, web], [inst(db, 1, { ready: false })])), ['wait web: waiting for db to be ready (dependsOn)']);
      assert.deepEqual(brief(run([db, web], [inst(db, 1)])), ['create web-1']);
    });

    it('does not wait for a dependency scaled to zero (traffic wakes it)', () => {
      const map = svc('map', { replicas: 0 });
      const web = svc('web', { dependsOn: ['map'] });
      assert.deepEqual(brief(run([map, web], [])), ['create web-1']);
    });
  });

  describe('rolling update', () => {
    it('records the rollout start and its end', () => {
      const v1 = svc('web', { replicas: 1 });
      const v2 = svc('web', { replicas: 1, image: 'test/web:2' }, { revision: 2 });
      assert.deepEqual(brief(run([v2], [inst(v1, 1)])), ['rollout web start', 'create web-2']);
      assert.deepEqual(brief(run([v2], [inst(v2, 2)], { web: { templateHash: v2.templateHash, startedAt: NOW } })), ['rollout web done']);
    });

    it('stops a rollout that misses its deadline and keeps the old instances', () => {
      const v1 = svc('web', { replicas: 2 });
      const v2 = svc('web', { replicas: 2, image: 'test/web:2', update: { progressDeadline: '1m' } }, { revision: 2 });
      const instances = [inst(v1, 1), inst(v1, 2), inst(v2, 3, { ready: false })];
      const rollouts = { web: { templateHash: v2.templateHash, startedAt: NOW - 61_000 } };
      assert.deepEqual(brief(run([v2], instances, rollouts)), [
        'wait web: rollout of revision 2 failed: 0 of 2 new instances ready after 60s; the old instances keep serving (fix the manifest, or "carte rollback web")',
      ]);
    });

    /** Runs passes until converged, each followed by every running instance turning ready; checks invariants on the way. */
    function simulate(v1: DesiredService, v2: DesiredService, replicas: number) {
      let world: InstanceView[] = Array.from({ length: replicas }, (_, k) => inst(v1, k + 1));
      let rollouts: Record<string, RolloutState> = {};
      const ready = () => world.filter((i) => i.ready).length;
      let minReady = ready();
      let maxTotal = world.length;
      for (let pass = 0; pass < 50; pass++) {
        const actions = plan({ desired: [v2], instances: world, rollouts, now: NOW + pass * 1000 });
        if (actions.length === 0) return { world, minReady, maxTotal, passes: pass };
        for (const a of actions) {
          if (a.kind === 'create') world.push(inst(v2, Number(a.name.split('-')[1]), { ready: false, createdAt: NOW + pass }));
          if (a.kind === 'remove') world = world.filter((i) => i.name !== a.name);
          if (a.kind === 'rollout') rollouts = a.templateHash ? { web: { templateHash: a.templateHash, startedAt: a.at } } : {};
        }
        minReady = Math.min(minReady, ready());
        maxTotal = Math.max(maxTotal, world.length);
        world = world.map((i) => ({ ...i, ready: true })); // health checks pass
      }
      throw new Error('did not converge in 50 passes');
    }

    it('maxSurge 1, maxUnavailable 0: never below the replica count of ready instances, never above one extra', () => {
      const v1 = svc('web', { replicas: 3 });
      const v2 = svc('web', { replicas: 3, image: 'test/web:2' }, { revision: 2 });
      const r = simulate(v1, v2, 3);
      assert.deepEqual(r.world.map((i) => [i.templateHash === v2.templateHash, i.ready]), [[true, true], [true, true], [true, true]]);
      assert.equal(r.minReady, 3);
      assert.equal(r.maxTotal, 4);
    });

    it('maxSurge 0, maxUnavailable 1: replaces in place, one at a time', () => {
      const v1 = svc('web', { replicas: 2, update: { maxSurge: 0, maxUnavailable: 1 } });
      const v2 = svc('web', { replicas: 2, image: 'test/web:2', update: { maxSurge: 0, maxUnavailable: 1 } }, { revision: 2 });
      const r = simulate(v1, v2, 2);
      assert.equal(r.world.filter((i) => i.templateHash === v2.templateHash).length, 2);
      assert.equal(r.minReady, 1);
      assert.equal(r.maxTotal, 2);
    });

    it('maxSurge 25% of 8 rounds up to 2 extra', () => {
      const v1 = svc('web', { replicas: 8, update: { maxSurge: '25%' } });
      const v2 = svc('web', { replicas: 8, image: 'test/web:2', update: { maxSurge: '25%' } }, { revision: 2 });
      const r = simulate(v1, v2, 8);
      assert.equal(r.maxTotal, 10);
      assert.equal(r.minReady, 8);
    });
  });

  describe('what is not known yet, and creates that keep failing', () => {
    it('keeps an old instance whose health is not known yet during a rollout (a restarted daemon has not checked it)', () => {
      const old = svc('web', { replicas: 2 });
      const web = svc('web', { replicas: 2, image: 'test/web:2' }, { revision: 2 });
      const unknown = { ready: false, healthKnown: false };
      const rollouts = { web: { templateHash: web.templateHash, startedAt: NOW } };
      // Known not ready: replaced first (nothing is lost). Not known: kept, not counted as available.
      assert.deepEqual(brief(run([web], [inst(old, 1, { ready: false }), inst(old, 2)], rollouts)), ['remove web-1', 'create web-3', 'create web-4']);
      assert.deepEqual(brief(run([web], [inst(old, 1, unknown), inst(old, 2, unknown)], rollouts)), ['create web-3']);
    });

    it('waits out a create backoff, with a typed cause and a countdown', () => {
      const web = svc('web', { replicas: 2 });
      const actions = plan({ desired: [web], instances: [inst(web, 1)], rollouts: {}, createBackoff: { web: { failures: 3, until: NOW + 4000 } }, now: NOW });
      assert.deepEqual(actions, [{ kind: 'wait', service: 'web', cause: { kind: 'create-backoff', failures: 3, until: NOW + 4000 }, until: NOW + 4000 }]);
      assert.deepEqual(brief(actions), ['wait web: creating instances failed 3 times; retrying in 4s']);
      assert.deepEqual(brief(plan({ desired: [web], instances: [inst(web, 1)], rollouts: {}, createBackoff: { web: { failures: 3, until: NOW } }, now: NOW })), ['create web-2']);
    });

    it('a backoff earned by another template does not hold back a new revision (the fix starts at once)', () => {
      const web = svc('web', { replicas: 2 });
      const earned = { web: { failures: 6, until: NOW + 60_000, templateHash: 'the-broken-one' } };
      assert.deepEqual(brief(plan({ desired: [web], instances: [inst(web, 1)], rollouts: {}, createBackoff: earned, now: NOW })), ['create web-2']);
      const same = { web: { ...earned.web, templateHash: web.templateHash } };
      assert.deepEqual(brief(plan({ desired: [web], instances: [inst(web, 1)], rollouts: {}, createBackoff: same, now: NOW })), ['wait web: creating instances failed 6 times; retrying in 60s']);
    });

    it('a backoff of one service does not hold another', () => {
      const a = svc('a');
      const b = svc('b');
      assert.deepEqual(brief(plan({ desired: [a, b], instances: [], rollouts: {}, createBackoff: { a: { failures: 1, until: NOW + 1000 } }, now: NOW })), [
        'wait a: creating instances failed once; retrying in 1s', 'create b-1',
      ]);
    });
  });

  describe('replacement on request (disk quota)', () => {
    it('replaces at once the first time, then paced like a crash loop', () => {
      const web = svc('web');
      const reason = 'web uses 9.0Mi of its 8Mi disk quota (writable layers 9.0Mi, volumes 0Ki): web-1 wrote 9.0Mi and is replaced';
      assert.deepEqual(brief(run([web], [inst(web, 1, { evictReason: reason, startedAt: NOW - 5000 })])), ['restart web-1']);
      assert.deepEqual(run([web], [inst(web, 1, { evictReason: reason, startedAt: NOW - 5000 })])[0], { kind: 'restart', service: 'web', name: 'web-1', templateHash: web.templateHash, revision: 1, reason });
      // Third life, started 1 s ago: waits until 4 s after its start.
      assert.deepEqual(brief(run([web], [inst(web, 1, { evictReason: reason, restarts: 2, startedAt: NOW - 1000 })])), ['wait web: web-1 was replaced for its disk use; restart 3 in 3s (CrashLoopBackOff)']);
    });
  });
});
