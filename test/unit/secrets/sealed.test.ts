import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { formatProblem } from '../../../src/errors.js';
import { generateIdentity, recipientOf } from '../../../src/secrets/age.js';
import type { SecretKey } from '../../../src/secrets/key.js';
import { openSealedSecrets, sealedSecretYaml, sealValue } from '../../../src/secrets/sealed.js';
import { parse } from '../../helpers/manifests.js';

async function newKey(): Promise<SecretKey> {
  const id = await generateIdentity();
  return { file: '/test/secret.key', identities: [id], recipient: await recipientOf(id) };
}

/** Opens the SealedSecrets of a text as a source would; problems as the CLI prints them. */
async function open(text: string, key: SecretKey, source = 'git:https://example.test/team-a.git#main:.') {
  const { sealedSecrets, problems } = parse({ 'sealed.yaml': text });
  assert.deepEqual(problems, []);
  const r = await openSealedSecrets(sealedSecrets, key, source);
  return { secrets: r.secrets, problems: r.problems.map(formatProblem) };
}

describe('sealed secrets', () => {
  it('seal → open: a SealedSecret document whose values only the server key opens', async () => {
    const key = await newKey();
    const text = await sealedSecretYaml(key.recipient, 'metaverse', { url: Buffer.from('redis://x'), token: Buffer.from('s3cr3t') });
    assert.ok(!text.includes('s3cr3t'));
    const doc = parseYaml(text) as { apiVersion: string; kind: string; metadata: unknown; spec: { data: Record<string, string> } };
    assert.deepEqual([doc.apiVersion, doc.kind, doc.metadata, Object.keys(doc.spec.data)], ['carte/v1', 'SealedSecret', { name: 'metaverse' }, ['token', 'url']]);
    assert.match(doc.spec.data.token!, /^-----BEGIN AGE ENCRYPTED FILE-----\n[\s\S]+\n-----END AGE ENCRYPTED FILE-----\n$/);
    const r = await open(text, key);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.secrets.map((s) => [s.name, s.origin, Object.fromEntries(Object.entries(s.values).map(([k, v]) => [k, v.toString()]))]),
      [['metaverse', 'sealed.yaml:4:9', { token: 's3cr3t', url: 'redis://x' }]]);
  });

  it('refuses a tampered value, a value sealed for another key, and one moved to another name, each at its value', async () => {
    const key = await newKey();
    const other = await newKey();
    const good = await sealValue(key.recipient, 'metaverse', 'token', Buffer.from('s3cr3t'));
    const lines = good.split('\n');
    // One character of the payload changed: the authentication tag no longer matches.
    const i = lines.length - 3;
    lines[i] = lines[i]!.slice(0, 5) + (lines[i]![5] === 'A' ? 'B' : 'A') + lines[i]!.slice(6);
    const tampered = lines.join('\n');
    const foreign = await sealValue(other.recipient, 'metaverse', 'url', Buffer.from('x'));
    const moved = await sealValue(key.recipient, 'db', 'password', Buffer.from('x'));
    const indent = (t: string) => t.trimEnd().split('\n').map((l) => `      ${l}`).join('\n');
    const text = `apiVersion: carte/v1
kind: SealedSecret
metadata: { name: metaverse }
spec:
  data:
    token: |
${indent(tampered)}
    url: |
${indent(foreign)}
    copied: |
${indent(moved)}
    plain: not-a-sealed-value
`;
    const at = (key: string) => text.split('\n').findIndex((l) => l.startsWith(`    ${key}:`)) + 1;
    const r = await open(text, key);
    assert.deepEqual(r.secrets, []);
    assert.deepEqual(r.problems, [
      `sealed.yaml:${at('token')}:12: spec.data.token: is not a value sealed by "carte secret seal", or was changed after sealing (seal it again: carte secret seal metaverse)`,
      `sealed.yaml:${at('url')}:10: spec.data.url: cannot be opened with this server's key: it was sealed for another public key, or changed since (seal it again: carte secret seal metaverse --public-key ${key.recipient})`,
      `sealed.yaml:${at('copied')}:13: spec.data.copied: was sealed for key "password" of secret "db", not for key "copied" of secret "metaverse": a sealed value opens only where it was sealed for (seal it again: carte secret seal metaverse)`,
      `sealed.yaml:${at('plain')}:12: spec.data.plain: is not a value sealed by "carte secret seal", or was changed after sealing (seal it again: carte secret seal metaverse)`,
    ]);
  });

  it('sealed with --source, opens in that source only: a copy committed to another source is refused at its value', async () => {
    const key = await newKey();
    const teamA = 'git:https://example.test/team-a.git#main:.';
    const text = await sealedSecretYaml(key.recipient, 'metaverse', { token: Buffer.from('s3cr3t') }, teamA);
    const mine = await open(text, key, teamA);
    assert.deepEqual([mine.problems, mine.secrets.map((s) => s.values.token!.toString())], [[], ['s3cr3t']]);
    const copied = await open(text, key, 'folder:/srv/team-b');
    assert.deepEqual(copied.secrets, []);
    assert.deepEqual(copied.problems, [
      `sealed.yaml:7:12: spec.data.token: was sealed for source "${teamA}", not for this one ("folder:/srv/team-b"): a sealed value opens only in the source it was sealed for (seal it again: carte secret seal metaverse --source 'folder:/srv/team-b')`,
    ]);
    // Without --source a value opens in any source (what the docs say of it).
    const anywhere = await open(await sealedSecretYaml(key.recipient, 'metaverse', { token: Buffer.from('x') }), key, 'folder:/srv/team-b');
    assert.deepEqual(anywhere.problems, []);
  });
});
