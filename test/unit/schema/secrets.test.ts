import assert from 'node:assert/strict';
import { templateHash, toManifest } from '../../../src/schema/canonical.js';
import { problemLines, serviceDoc, services, yaml } from '../../helpers/manifests.js';

const web = (spec: string) => `apiVersion: carte/v1
kind: Service
metadata: { name: web }
spec:
  image: busybox:1
${spec}`;

describe('manifests: secret references', () => {
  it('reads env values that are secret references apart from plain ones, and secret volumes with their defaults', () => {
    const [s] = services({ 'web.yaml': web(`  env:
    PLAIN: hello
    TOKEN: { secret: metaverse, key: token }
  secrets:
    - { name: metaverse, mountPath: /run/secrets/metaverse }
    - { name: tls, mountPath: /etc/tls, items: [{ key: cert, path: certs/web.pem }], mode: "0440" }
`) });
    const spec = s!.object.spec;
    assert.deepEqual(spec.env, { PLAIN: 'hello' });
    assert.deepEqual(spec.secretEnv, { TOKEN: { secret: 'metaverse', key: 'token' } });
    assert.deepEqual(spec.secrets, [
      { name: 'metaverse', mountPath: '/run/secrets/metaverse', items: null, mode: 0o400 },
      { name: 'tls', mountPath: '/etc/tls', items: [{ key: 'cert', path: 'certs/web.pem' }], mode: 0o440 },
    ]);
    // Shown as written, references only: `carte get -o yaml` prints this.
    const m = toManifest(s!.object).spec as Record<string, unknown>;
    assert.deepEqual(m.env, { PLAIN: 'hello', TOKEN: { secret: 'metaverse', key: 'token' } });
    assert.deepEqual(m.secrets, [
      { name: 'metaverse', mountPath: '/run/secrets/metaverse', mode: '0400' },
      { name: 'tls', mountPath: '/etc/tls', items: [{ key: 'cert', path: 'certs/web.pem' }], mode: '0440' },
    ]);
    // The manifest form reads back to the same object.
    const [again] = services({ 'again.yaml': yaml({ ...toManifest(s!.object) } as Record<string, unknown>) });
    assert.deepEqual(again!.object, s!.object);
  });

  it('a spec without secrets keeps the template hash it had before secrets existed, and references are part of it', () => {
    const [plain] = services({ 'a.yaml': yaml(serviceDoc('a', { env: { A: '1' } })) });
    assert.equal(plain!.object.spec.secretEnv, undefined);
    assert.equal(plain!.object.spec.secrets, undefined);
    assert.equal(templateHash(plain!.object.spec), templateHash({ ...plain!.object.spec }));
    const [ref] = services({ 'b.yaml': yaml(serviceDoc('a', { env: { A: '1', T: { secret: 's', key: 'k' } } })) });
    const [other] = services({ 'c.yaml': yaml(serviceDoc('a', { env: { A: '1', T: { secret: 's', key: 'j' } } })) });
    assert.notEqual(templateHash(ref!.object.spec), templateHash(plain!.object.spec));
    assert.notEqual(templateHash(ref!.object.spec), templateHash(other!.object.spec));
  });

  const cases: Array<[string, string, string[]]> = [
    ['a reference missing its key, with an unknown field', web(`  env:
    TOKEN: { secret: metaverse, keys: token }
`), [
      'x.yaml:7:12: spec.env.TOKEN: missing required field "key"',
      'x.yaml:7:33: spec.env.TOKEN.keys: unknown field "keys" (did you mean "key"?)',
    ]],
    ['a secret name that is not a name', web(`  env:
    TOKEN: { secret: Meta_Verse, key: token }
`), ['x.yaml:7:22: spec.env.TOKEN.secret: "Meta_Verse" is not a valid name (lowercase letters, digits and "-", starting with a letter, at most 40 characters)']],
    ['an env value of the wrong shape', web(`  env:
    LIST: [1]
`), ['x.yaml:7:11: spec.env.LIST: expected a string, a number, true or false, or a secret reference { secret: NAME, key: KEY }, got a list']],
    ['an unquoted mode (YAML reads 0400 as the number 400)', web(`  secrets:
    - { name: metaverse, mountPath: /run/secrets, mode: 0400 }
`), ['x.yaml:7:57: spec.secrets[0].mode: expected a string, got 400']],
    ['a mode that is not octal', web(`  secrets:
    - { name: metaverse, mountPath: /run/secrets, mode: "0800" }
`), ['x.yaml:7:57: spec.secrets[0].mode: "0800" is not an octal file mode in quotes, e.g. "0440"']],
    ['an absolute item path', web(`  secrets:
    - name: tls
      mountPath: /etc/tls
      items: [{ key: key, path: /abs }]
`), ['x.yaml:9:33: spec.secrets[0].items[0].path: "/abs" is not a relative file path (inside mountPath, not starting with /)']],
    ['item paths that leave the volume, or repeat', web(`  secrets:
    - name: tls
      mountPath: /etc/tls
      items:
        - { key: cert, path: ../../etc/passwd }
        - { key: a, path: x/y }
        - { key: b, path: x//y }
`), [
      'x.yaml:10:30: spec.secrets[0].items[0].path: "../../etc/passwd" must name a file inside mountPath (no "..", not a folder)',
      'x.yaml:12:27: spec.secrets[0].items[2].path: "x/y" is already the path of items[1]',
    ]],
    ['a secret volume on a mount path already taken, or over /proc', web(`  volumes: [{ name: data, mountPath: /data }]
  secrets:
    - { name: a, mountPath: /data/ }
    - { name: b, mountPath: /proc/x }
`), [
      'x.yaml:8:29: spec.secrets[0].mountPath: "/data" is already mounted by volumes[0]',
      'x.yaml:9:29: spec.secrets[1].mountPath: cannot mount a volume over or inside /proc: the kernel\'s view there is carte\'s to set up (mount it elsewhere, e.g. /data)',
    ]],
    ['a plain Secret: values never sit in manifests', 'apiVersion: carte/v1\nkind: Secret\nmetadata: { name: x }\n', [
      'x.yaml:2:7: kind: "Secret" is not a kind of carte/v1: secret values never sit in manifests (store one with "carte secret set NAME", or commit the output of "carte secret seal NAME" as a SealedSecret)',
    ]],
    ['a SealedSecret with no data, a bad key and an unknown field', `apiVersion: carte/v1
kind: SealedSecret
metadata: { name: metaverse }
spec:
  data: {}
  type: Opaque
---
apiVersion: carte/v1
kind: SealedSecret
metadata: { name: other }
spec:
  data:
    "bad key": x
`, [
      'x.yaml:5:9: spec.data: needs at least 1 entry',
      'x.yaml:6:3: spec.type: unknown field "type" (known fields: data)',
      'x.yaml:13:5: spec.data.bad key: "bad key" is not a valid secret key (letters, digits, "-", "_" and ".", at most 253 characters)',
    ]],
    ['a SealedSecret name defined twice', `apiVersion: carte/v1
kind: SealedSecret
metadata: { name: metaverse }
spec: { data: { token: x } }
---
apiVersion: carte/v1
kind: SealedSecret
metadata: { name: metaverse }
spec: { data: { token: y } }
`, ['x.yaml:8:19: metadata.name: secret "metaverse" is already defined at x.yaml:3:19']],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => assert.deepEqual(problemLines({ 'x.yaml': text }), expected));
  }
});
