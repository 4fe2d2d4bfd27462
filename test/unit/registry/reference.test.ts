import assert from 'node:assert/strict';
import { allowsPlainHttp, defaultPullPolicy, isRegistryReference, localName, parseReference, remoteName } from '../../../src/schema/image-reference.js';
import { selectPlatform } from '../../../src/drivers/linux/images/registry.js';
import { skopeoMessage } from '../../../src/drivers/linux/images/skopeo.js';
import { normalizeRef } from '../../../src/drivers/linux/images/store.js';
import fs from 'node:fs';
import path from 'node:path';
import type { CarteError } from '../../../src/errors.js';
import { loadRegistriesConfig, parseRegistriesConfig } from '../../../src/registry/config.js';
import { tempDir } from '../../helpers/paths.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('image references', () => {
  it('parses registry hosts by Docker\'s rule (a ".", a ":" or localhost)', () => {
    assert.deepEqual(parseReference('127.0.0.1:5000/team/app:1.2'), { registry: '127.0.0.1:5000', repository: 'team/app', tag: '1.2', digest: null });
    assert.deepEqual(parseReference(`registry.example/team/app@${D}`), { registry: 'registry.example', repository: 'team/app', tag: null, digest: D });
    assert.deepEqual(parseReference('localhost/app'), { registry: 'localhost', repository: 'app', tag: null, digest: null });
    assert.deepEqual(parseReference('metaverse/login:1.0'), { registry: null, repository: 'metaverse/login', tag: '1.0', digest: null });
    assert.deepEqual(parseReference('redis:7'), { registry: null, repository: 'redis', tag: '7', digest: null });
    assert.deepEqual(parseReference('[::1]:5000/app:1'), { registry: '[::1]:5000', repository: 'app', tag: '1', digest: null });
    for (const bad of ['Bad Name', 'App:1', 'a//b', 'host:5000/App', `app@sha256:${'x'.repeat(64)}`, 'app:', '']) assert.equal(parseReference(bad), null, bad);
  });

  it('keeps pulled images under the name as written; bare names are docker.io', () => {
    assert.equal(normalizeRef('busybox'), 'busybox:latest');
    assert.equal(normalizeRef('127.0.0.1:5000/team/app'), '127.0.0.1:5000/team/app:latest');
    assert.equal(normalizeRef(`127.0.0.1:5000/team/app:1@${D}`), `127.0.0.1:5000/team/app@${D}`);
    assert.deepEqual(remoteName(parseReference('redis:7')!), { registry: 'docker.io', ref: 'docker.io/library/redis:7' });
    assert.deepEqual(remoteName(parseReference('team/app')!), { registry: 'docker.io', ref: 'docker.io/team/app:latest' });
    assert.equal(localName(parseReference('redis')!), 'redis:latest');
    assert.equal(isRegistryReference('metaverse/login:1.0'), false);
    assert.equal(isRegistryReference('127.0.0.1:5000/team/app:1'), true);
    assert.equal(isRegistryReference(`app@${D}`), true);
  });

  it('allows plain HTTP on loopback and on listed registries only', () => {
    for (const r of ['127.0.0.1:5000', '127.1.2.3', 'localhost:5000', '[::1]:5000']) assert.equal(allowsPlainHttp(r), true, r);
    for (const r of ['10.0.0.1:5000', 'registry.example', 'localhost.example:5000']) assert.equal(allowsPlainHttp(r), false, r);
    assert.equal(allowsPlainHttp('registry.lan:5000', ['registry.lan:5000']), true);
    assert.equal(allowsPlainHttp('registry.lan:5001', ['registry.lan:5000']), false);
  });

  it('pulls :latest always, as Kubernetes does', () => {
    assert.equal(defaultPullPolicy(parseReference('h.example/app')!), 'Always');
    assert.equal(defaultPullPolicy(parseReference('h.example/app:latest')!), 'Always');
    assert.equal(defaultPullPolicy(parseReference('h.example/app:1')!), 'IfNotPresent');
    assert.equal(defaultPullPolicy(parseReference(`h.example/app@${D}`)!), 'IfNotPresent');
  });
});

describe('registry pulls (pure parts)', () => {
  it('selects linux/amd64 from an index, or lists what it has', () => {
    const index = { manifests: [
      { digest: 'sha256:arm', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { digest: 'sha256:amd', platform: { os: 'linux', architecture: 'amd64' } },
    ] };
    assert.equal(selectPlatform(index, 'pull x'), 'sha256:amd');
    assert.throws(() => selectPlatform({ manifests: [index.manifests[0]!] }, 'pull x'), { message: 'pull x: no linux/amd64 image in its index (it has linux/arm64/v8)' });
  });

  it('keeps skopeo\'s message, not its log decoration', () => {
    const stderr = 'time="2026-12-06T23:45:01Z" level=fatal msg="Error parsing image name \\"docker://127.0.0.1:5917/x/y:1\\": reading manifest 1 in 127.0.0.1:5917/x/y: manifest unknown: manifest unknown"\n';
    assert.equal(skopeoMessage(stderr), 'reading manifest 1 in 127.0.0.1:5917/x/y: manifest unknown: manifest unknown');
  });
});

describe('the daemon config\'s registries section', () => {
  it('reads insecure registries', () => {
    assert.deepEqual(parseRegistriesConfig('registries:\n  insecure: [registry.lan:5000]\nwatch: [a]\n', 'd.yaml'), { config: { insecure: ['registry.lan:5000'] }, problems: [] });
    assert.deepEqual(parseRegistriesConfig('watch: [a]\n', 'd.yaml').config, { insecure: [] });
    assert.deepEqual(parseRegistriesConfig('registries:\n', 'd.yaml').config, { insecure: [] });
  });

  it('a bad section stops the daemon, every problem located', () => {
    const dir = tempDir();
    const file = path.join(dir, 'daemon.yaml');
    fs.writeFileSync(file, 'watch: [a]\nregistries:\n  insecure: registry.lan:5000\n');
    assert.throws(() => loadRegistriesConfig(file), (e: CarteError) => {
      assert.equal(e.message, `1 problem in the daemon config ${file}; the daemon did not start`);
      assert.equal(e.exitCode, 2);
      assert.deepEqual(e.details, [`${file}:3:13: registries.insecure: expected a list, got "registry.lan:5000"`]);
      return true;
    });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('locates what is wrong', () => {
    const r = parseRegistriesConfig('registries:\n  insecure: ["http://x:5000"]\n  mirrors: []\n', 'd.yaml');
    assert.equal(r.config, null);
    assert.deepEqual(r.problems.map((p) => `${p.position?.line}:${p.position?.column} ${p.path}: ${p.message}`), [
      '2:14 registries.insecure[0]: "http://x:5000" is not a registry\'s host:port, e.g. registry.lan:5000',
      '3:3 registries.mirrors: unknown field "mirrors" (known fields: insecure)',
    ]);
  });
});
