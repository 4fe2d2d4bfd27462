import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { commitApply, planApply, type PlannedSecret } from '../../../src/api/apply.js';
import { commitSecret, rolledTemplateHash } from '../../../src/api/secret-state.js';
import { grantSecret, listSecrets, removeSecret, rotateKey, setSecret } from '../../../src/api/secrets.js';
import { formatProblem } from '../../../src/errors.js';
import { SecretVault } from '../../../src/secrets/vault.js';
import type { StateData } from '../../../src/store/state.js';
import { Store } from '../../../src/store/store.js';
import { tempDir } from '../../helpers/paths.js';
import { request, serviceDoc, stateWith, T0 } from '../../helpers/state.js';

const uses = { env: { TOKEN: { secret: 'metaverse', key: 'token' } }, secrets: [{ name: 'metaverse', mountPath: '/run/secrets/m', items: [{ key: 'url', path: 'url' }] }] };

/** A stored secret (a version that exists only in the state: pure tests never read values). */
function withSecret(data: StateData, name: string, keys: string[], digest = 'd1', source = 'cli', origin: string | null = null, usableBy?: string[]): StateData {
  commitSecret(data, { name, keys, digest, source, origin, commit: null, changedKeys: null, usableBy }, T0);
  return data;
}

/** A SealedSecret of the set, as planSecrets makes it. */
function planned(name: string, keys: string[], changed = true): PlannedSecret {
  return {
    name, keys, changed, changedKeys: null, origin: 'sealed.yaml:3:19', digest: 'd2',
    values: Object.fromEntries(keys.map((k) => [k, Buffer.from('x')])),
    locate: () => ({ file: 'sealed.yaml', line: 5, column: 3 }),
  };
}

const problems = (plan: ReturnType<typeof planApply>) => plan.problems.map(formatProblem);

describe('secrets in desired state', () => {
  it('a reference to a secret that does not exist, or to a key it lacks, is a located error saying what to do; nothing is planned', () => {
    assert.deepEqual(problems(planApply(stateWith([]), request([serviceDoc('web', uses)]))), [
      'new.yaml:9:15: spec.env.TOKEN.secret: secret "metaverse" does not exist (store it first: carte secret set metaverse --from-literal token=... --from-literal url=...)',
      'new.yaml:12:13: spec.secrets[0].name: secret "metaverse" does not exist (store it first: carte secret set metaverse --from-literal token=... --from-literal url=...)',
    ]);
    const data = withSecret(stateWith([]), 'metaverse', ['token']);
    assert.deepEqual(problems(planApply(data, request([serviceDoc('web', uses)]))), [
      'new.yaml:15:16: spec.secrets[0].items[0].key: secret "metaverse" has no key "url" (its keys: token; set it again with every key: carte secret set metaverse --from-literal token=... --from-literal url=...)',
    ]);
    assert.deepEqual(problems(planApply(withSecret(stateWith([]), 'metaverse', ['token', 'url']), request([serviceDoc('web', uses)]))), []);
  });

  it('a source uses only the secrets granted to it: its own by default; a grant names sources or patterns', () => {
    const data = withSecret(stateWith([]), 'metaverse', ['token', 'url']);
    const fromClass = request([serviceDoc('web', uses)], { source: 'git:https://git.example/class.git#main:.' });
    const refusal = 'secret "metaverse" is not usable by source git:https://git.example/class.git#main:.: it belongs to cli and is usable by cli (the administrator can allow it: carte secret grant metaverse --usable-by \'cli\' --usable-by \'git:https://git.example/class.git#main:.\')';
    assert.deepEqual(problems(planApply(data, fromClass)), [`new.yaml:9:15: spec.env.TOKEN.secret: ${refusal}`, `new.yaml:12:13: spec.secrets[0].name: ${refusal}`]);
    assert.deepEqual(problems(planApply(data, request([serviceDoc('web', uses)]))), []);
    const granted = withSecret(stateWith([]), 'metaverse', ['token', 'url'], 'd1', 'cli', null, ['cli', 'git:*']);
    assert.deepEqual(problems(planApply(granted, fromClass)), []);
    assert.deepEqual(problems(planApply(granted, request([serviceDoc('web', uses)], { source: 'folder:/srv/m' }))).length, 2);
  });

  it('a SealedSecret of the same set satisfies a reference; one another source owns is refused at its name', () => {
    assert.deepEqual(problems(planApply(stateWith([]), request([serviceDoc('web', uses)]), [planned('metaverse', ['token', 'url'])])), []);
    const data = withSecret(stateWith([]), 'metaverse', ['token', 'url'], 'd1', 'git:repo', 'x.yaml:3:9');
    assert.deepEqual(problems(planApply(data, request([serviceDoc('web', uses)]), [planned('metaverse', ['token', 'url'])])), [
      'sealed.yaml:5:3: metadata.name: secret "metaverse" belongs to source git:repo; change it there, or remove it first with "carte secret rm metaverse"',
      // And the stored one is not the CLI's to use.
      'new.yaml:9:15: spec.env.TOKEN.secret: secret "metaverse" is not usable by source cli: it belongs to git:repo and is usable by git:repo (the administrator can allow it: carte secret grant metaverse --usable-by \'git:repo\' --usable-by \'cli\')',
      'new.yaml:12:13: spec.secrets[0].name: secret "metaverse" is not usable by source cli: it belongs to git:repo and is usable by git:repo (the administrator can allow it: carte secret grant metaverse --usable-by \'git:repo\' --usable-by \'cli\')',
    ]);
  });

  it('a prune or a SealedSecret that drops a key a stored service uses is refused', () => {
    let data = withSecret(stateWith([]), 'metaverse', ['token', 'url'], 'd1', 'folder:/m', 'm.yaml:3:9', ['folder:/m', 'cli']);
    data = stateWith([serviceDoc('web', uses)], 'cli', data);
    assert.deepEqual(problems(planApply(data, request([], { source: 'folder:/m', prune: true }))), [
      'service "web" (source cli) uses secret "metaverse", which --prune would delete',
    ]);
    assert.deepEqual(problems(planApply(data, request([], { source: 'folder:/m', prune: true }), [planned('metaverse', ['token'])])), [
      'sealed.yaml:5:3: spec.data: service "web" (source cli) uses key "url" of secret "metaverse", which this SealedSecret leaves out',
    ]);
  });

  it('a changed value rolls the services that use it (a new revision, a new template), unless the same apply replaces them anyway', () => {
    let data = withSecret(stateWith([]), 'metaverse', ['token', 'url'], 'd1', 'cli', 'sealed.yaml:3:19');
    data = stateWith([serviceDoc('web', uses), serviceDoc('api', uses), serviceDoc('other')], 'cli', data);
    const before = { web: data.services.web!.revision, api: data.services.api!.revision };
    // api's image changes in the same apply: its instances are replaced by that, no second roll.
    const req = request([serviceDoc('web', uses), serviceDoc('api', { ...uses, image: 'test/api:2' }), serviceDoc('other')]);
    const plan = planApply(data, req, [planned('metaverse', ['token', 'url'])]);
    assert.deepEqual(plan.secretChanges.map((c) => `${c.name} ${c.action}`), ['metaverse updated']);
    commitApply(data, req, plan, T0);
    const web = data.services.web!;
    assert.equal(web.revision.revision, before.web.revision + 1);
    assert.deepEqual(web.revision.cause, { kind: 'secret', name: 'metaverse' });
    assert.equal(web.revision.hash, before.web.hash);
    assert.equal(web.revision.templateHash, rolledTemplateHash(before.web.templateHash, 'metaverse', 'd2'));
    assert.deepEqual(data.services.api!.revision.cause, { kind: 'apply' });
    assert.equal(data.services.other!.revision.revision, 1);
    assert.equal(data.secrets!.metaverse!.digest, 'd2');
    assert.deepEqual(data.events.slice(-3).map((e) => `${e.object} ${e.reason}: ${e.message}`), [
      'service/api Configured: revision 1 → 2 by cli (new.yaml:21:9): spec.image',
      'service/web SecretChanged: revision 2: secret metaverse changed; every instance is replaced, one by one',
      'secret/metaverse Updated: updated by cli (sealed.yaml:3:19) (new value); rolling service/web',
    ]);
    // The same value again: nothing is written, nothing rolls.
    const again = planApply(data, req, [planned('metaverse', ['token', 'url'], false)]);
    assert.deepEqual(again.secretChanges.map((c) => `${c.name} ${c.action}`), ['metaverse unchanged']);
  });

  describe('carte secret set, rm and list (with a store and a vault)', () => {
    let dir: string;
    let store: Store;
    let vault: SecretVault;
    beforeEach(function () {
      if (process.getuid?.() !== 0) this.skip(); // the key must be root's
      dir = tempDir('carte-secrets-');
      store = Store.open(path.join(dir, 'home'));
      vault = new SecretVault(store.home, path.join(dir, 'key', 'secret.key'));
    });
    afterEach(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

    it('creates, leaves an unchanged value alone, updates and rolls, refuses to drop a used key or remove a used secret', async () => {
      const v = (token: string) => ({ token: Buffer.from(token), url: Buffer.from('redis://x') });
      assert.deepEqual(await setSecret(store, vault, 'metaverse', v('one'), { now: T0 }), { action: 'created', rolled: [] });
      await store.update((data) => {
        stateWith([serviceDoc('web', uses)], 'cli', data);
      });
      assert.deepEqual(await setSecret(store, vault, 'metaverse', v('one'), { now: T0 }), { action: 'unchanged', rolled: [] });
      // The same values with a new grant: only who may use it changes, nothing rolls; the grant stays on later sets.
      assert.deepEqual(await setSecret(store, vault, 'metaverse', v('one'), { now: T0, usableBy: ['cli', 'git:*'] }), { action: 'updated', rolled: [] });
      assert.equal((await store.read()).events.at(-1)!.message, 'usable by cli, git:* (was cli)');
      assert.deepEqual(await setSecret(store, vault, 'metaverse', v('two'), { now: T0 }), { action: 'updated', rolled: ['web'] });
      const data = await store.read();
      assert.equal(data.events.at(-1)!.message, 'updated by cli (keys changed: token); rolling service/web');
      assert.deepEqual(fs.readdirSync(vault.dir).length, 2); // the previous version stays until the next write
      assert.equal((await vault.read('metaverse', data.secrets!.metaverse!.digest)).token!.toString(), 'two');
      assert.ok(!fs.readFileSync(store.file, 'utf8').includes('two'));
      await assert.rejects(setSecret(store, vault, 'metaverse', { token: Buffer.from('x') }), {
        message: 'secret "metaverse" would lose key "url", which service web uses: set it with that key too, or add --force (new instances will then fail to start)',
      });
      assert.deepEqual(listSecrets(await store.read()).map((r) => [r.name, r.keys, r.source, r.usableBy, r.users]), [['metaverse', ['token', 'url'], 'cli', ['cli', 'git:*'], ['web']]]);
      await assert.rejects(removeSecret(store, vault, 'metaverse'), {
        message: 'secret "metaverse" is used by service web (env TOKEN, volume /run/secrets/m): change that service first, or add --force (its new instances will then fail to start)',
      });
      await assert.rejects(removeSecret(store, vault, 'nope'), { message: 'secret "nope" not found' });
      assert.deepEqual(await removeSecret(store, vault, 'metaverse', { force: true }), { users: ['web'] });
      assert.deepEqual(fs.readdirSync(vault.dir), []);
      assert.equal((await store.read()).secrets!.metaverse, undefined);
    });

    it('grant: replaces who may use it, values and services untouched', async () => {
      await setSecret(store, vault, 'metaverse', { token: Buffer.from('one') }, { now: T0 });
      const digest = (await store.read()).secrets!.metaverse!.digest;
      assert.equal(await grantSecret(store, 'metaverse', ['cli', 'folder:/srv/*'], T0), 'updated');
      assert.equal(await grantSecret(store, 'metaverse', ['cli', 'folder:/srv/*'], T0), 'unchanged');
      const data = await store.read();
      assert.deepEqual([data.secrets!.metaverse!.usableBy, data.secrets!.metaverse!.digest], [['cli', 'folder:/srv/*'], digest]);
      assert.equal(data.events.at(-1)!.message, 'usable by cli, folder:/srv/* (was cli)');
      await assert.rejects(grantSecret(store, 'nope', ['cli']), { message: 'secret "nope" not found' });
    });

    it('rotate-key: a new key seals every secret again, values and services unchanged, the old key dropped (or kept)', async () => {
      await setSecret(store, vault, 'metaverse', { token: Buffer.from('one'), url: Buffer.from('u') }, { now: T0 });
      await store.update((data) => {
        stateWith([serviceDoc('web', uses)], 'cli', data);
      });
      const before = await store.read();
      const oldKey = await vault.key();
      const r = await rotateKey(store, vault, { keepOld: true, now: T0 });
      assert.deepEqual(r.secrets, ['metaverse']);
      const both = await vault.key();
      assert.deepEqual(both.identities.slice(0, 1), oldKey.identities);
      assert.equal(both.identities.length, 2);
      assert.notEqual(both.recipient, oldKey.recipient);
      const after = await store.read();
      assert.notEqual(after.secrets!.metaverse!.digest, before.secrets!.metaverse!.digest);
      assert.equal(after.services.web!.revision.revision, before.services.web!.revision.revision);
      assert.deepEqual(fs.readdirSync(vault.dir), [`metaverse.${after.secrets!.metaverse!.digest}.age`]);
      await rotateKey(store, vault, { now: T0 });
      const only = await vault.key();
      assert.equal(only.identities.length, 1);
      assert.ok(!both.identities.includes(only.identities[0]!));
      assert.equal((await vault.read('metaverse', (await store.read()).secrets!.metaverse!.digest)).token!.toString(), 'one');
      assert.equal(fs.statSync(vault.keyFile).mode & 0o777, 0o600);
    });
  });
});
