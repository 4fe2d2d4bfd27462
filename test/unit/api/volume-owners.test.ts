import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { applyServices, planApply } from '../../../src/api/apply.js';
import { ManifestError, formatProblem } from '../../../src/errors.js';
import { Store } from '../../../src/store/store.js';
import { readVolumeOwners, writeVolumeOwners } from '../../../src/util/volume-owners.js';
import { tempDir } from '../../helpers/paths.js';
import { request, serviceDoc, stateWith } from '../../helpers/state.js';

const withVolume = (name: string, volume: string) => serviceDoc(name, { volumes: [{ name: volume, mountPath: '/data' }] });
const messages = (plan: ReturnType<typeof planApply>) => plan.problems.map(formatProblem);

describe('apply: named volumes are private to their source', () => {
  it("refuses a volume that another source's stored service uses", () => {
    const data = stateWith([withVolume('admin', 'admin-db')], 'cli');
    const plan = planApply(data, request([withVolume('web', 'admin-db')], { source: 'folder:/srv/students' }));
    assert.deepEqual(messages(plan), [
      'new.yaml:8:13: spec.volumes[0].name: volume "admin-db" belongs to source cli; use another name (volumes are private to the source that made them)',
    ]);
  });

  it('refuses a volume the registry records as another source\'s, though no service uses it now', () => {
    const plan = planApply(stateWith([]), request([withVolume('web', 'admin-db')], { source: 'git:https://example.org/class.git', volumeOwners: { 'admin-db': 'cli' } }));
    assert.deepEqual(messages(plan), [
      'new.yaml:8:13: spec.volumes[0].name: volume "admin-db" belongs to source cli; use another name (volumes are private to the source that made them)',
    ]);
  });

  it('lets the owning source use its volume again, from another service too', () => {
    const data = stateWith([withVolume('admin', 'admin-db')], 'cli');
    const plan = planApply(data, request([withVolume('admin', 'admin-db'), withVolume('backup', 'admin-db')], { volumeOwners: { 'admin-db': 'cli' } }));
    assert.deepEqual(plan.problems, []);
    assert.deepEqual(plan.changes.map((c) => `${c.name} ${c.action}`), ['admin unchanged', 'backup created']);
  });

  it('lets the first source take a volume no one owns', () => {
    const plan = planApply(stateWith([]), request([withVolume('web', 'redis-data')], { source: 'folder:/srv/metaverse' }));
    assert.deepEqual(plan.problems, []);
  });

  it("applyServices reads the registry in the store's home", async () => {
    const home = tempDir('carte-volowners-');
    try {
      const store = Store.open(home);
      fs.mkdirSync(path.join(home, 'volumes'));
      await writeVolumeOwners(path.join(home, 'volumes'), { 'admin-db': 'cli' });
      assert.deepEqual(await readVolumeOwners(path.join(home, 'volumes')), { 'admin-db': 'cli' });
      await assert.rejects(applyServices(store, request([withVolume('web', 'admin-db')], { source: 'folder:/srv/students' })), (e: unknown) => {
        assert.ok(e instanceof ManifestError);
        assert.deepEqual(e.problems.map(formatProblem), [
          'new.yaml:8:13: spec.volumes[0].name: volume "admin-db" belongs to source cli; use another name (volumes are private to the source that made them)',
        ]);
        return true;
      });
      assert.deepEqual(Object.keys((await store.read()).services), []);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
