// The daemon's policy read again: a valid new file takes over, a broken one
// changes nothing, an unchanged one is no news; and the stored services a
// tighter policy no longer admits are named with why.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { applyServices } from '../../../src/api/apply.js';
import { LivePolicy, type ReloadOutcome } from '../../../src/policy/live.js';
import { loadPolicy } from '../../../src/policy/load.js';
import { DEFAULT_POLICY } from '../../../src/policy/policy.js';
import { checkStoredServices } from '../../../src/policy/recheck.js';
import { Store } from '../../../src/store/store.js';
import { serviceDoc, services, yaml } from '../../helpers/manifests.js';
import { tempDir } from '../../helpers/paths.js';

describe('the live server policy', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = tempDir();
    file = path.join(dir, 'policy.yaml');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const start = (text: string) => {
    fs.writeFileSync(file, text);
    const where = { file, explicit: true };
    const live = new LivePolicy(loadPolicy(where), where);
    const seen: ReloadOutcome[] = [];
    live.onReload((o) => seen.push(o));
    return { live, seen };
  };

  it('takes a valid new file; keeps the policy in force when the new one is broken or gone; says when nothing changed', async () => {
    const { live, seen } = start('replicas: { perService: 5 }\n');
    assert.equal(live.current.rules.replicas.perService, 5);

    assert.deepEqual(await live.reload(), { kind: 'unchanged' });

    fs.writeFileSync(file, 'replicas: { perService: 3 }\n');
    assert.deepEqual(await live.reload(), { kind: 'reloaded', file });
    assert.equal(live.current.rules.replicas.perService, 3);

    fs.writeFileSync(file, 'replicas: { perServise: 1 }\n');
    assert.deepEqual(await live.reload(), {
      kind: 'refused',
      lines: [`1 problem in the server policy ${file}; it was not used`, `${file}:1:13: replicas.perServise: unknown field "perServise" (did you mean "perService"?)`],
    });
    assert.equal(live.current.rules.replicas.perService, 3);

    fs.rmSync(file);
    assert.deepEqual(await live.reload(), { kind: 'refused', lines: [`cannot read the server policy ${file}: no such file`] });
    assert.equal(live.current.rules.replicas.perService, 3);
    assert.equal(seen.length, 4);
  });

  it('the default file gone means the built-in defaults, as at start', async () => {
    fs.writeFileSync(file, 'replicas: { perService: 3 }\n');
    const where = { file, explicit: false };
    const live = new LivePolicy(loadPolicy(where), where);
    fs.rmSync(file);
    assert.deepEqual(await live.reload(), { kind: 'reloaded', file: null });
    assert.equal(live.current, DEFAULT_POLICY);
  });

  it('notices a change to the file by itself', async () => {
    const { live, seen } = start('replicas: { perService: 5 }\n');
    const stop = live.watch(50);
    try {
      // A new inode and size: what an editor's save-by-rename looks like. Saved again until seen:
      // fs.watchFile takes its first stat asynchronously, and a change before it is its baseline.
      for (let i = 0; i < 100 && seen.length === 0; i++) {
        fs.writeFileSync(`${file}.new`, 'replicas: { perService: 4, total: 40 }\n');
        fs.renameSync(`${file}.new`, file);
        for (let j = 0; j < 10 && seen.length === 0; j++) await new Promise((r) => setTimeout(r, 25));
      }
      assert.deepEqual(seen[0], { kind: 'reloaded', file });
      assert.equal(live.current.rules.replicas.total, 40);
    } finally {
      stop();
    }
  });

  it('a fixed policy never reloads', async () => {
    assert.deepEqual(await LivePolicy.fixed().reload(), { kind: 'unchanged' });
  });
});

describe('stored services under a new policy', () => {
  let home: string;
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('names each service the policy would refuse now, field by field', async () => {
    home = tempDir();
    const store = Store.open(home);
    const loose = { policy: loadPolicyText('volumes:\n  hostPaths: [{ path: /srv/data, write: true }]\n', home), home: '/var/lib/carte-test', realpath: () => null };
    await applyServices(store, {
      services: services({ 'm.yaml': yaml(
        serviceDoc('web', { volumes: [{ hostPath: '/srv/data/web', mountPath: '/data', readOnly: false }], resources: { memory: '1Gi' } }),
        serviceDoc('db', { resources: { memory: '128Mi' } }),
      ) }),
      source: 'cli', prune: false, admission: loose,
    });
    const data = await store.read();
    assert.deepEqual(checkStoredServices(data, loose), []);
    const strict = { ...loose, policy: loadPolicyText('volumes:\n  hostPaths: [{ path: /srv/data }]\nresources:\n  max: { memory: 512Mi }\n', home) };
    assert.deepEqual(checkStoredServices(data, strict), [{
      service: 'web',
      problems: [
        'spec.resources.memory: 1Gi is above the server policy\'s maximum of 512Mi',
        'spec.volumes[0].readOnly: false is not allowed: the server policy mounts /srv/data read-only (remove readOnly, or set it to true)',
      ],
    }]);
  });
});

function loadPolicyText(text: string, dir: string) {
  const file = path.join(dir, `policy-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, text);
  return loadPolicy({ file, explicit: true });
}
