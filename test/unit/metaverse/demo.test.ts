// The demo's manifests hold no credential, and `make demo` makes the secret
// they name (demo.ts ensureSecret) through the CLI without ever putting a
// value on a command line. The CLI is faked here: these tests read what it
// is asked to do; test/e2e/metaverse.test.ts runs the real one.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { covers, ensureSecret, MANIFESTS, secretValues, usableByOf, type Result } from '../../../examples/metaverse/demo.js';
import { ROOT } from '../../helpers/paths.js';

interface Manifest { metadata: { name: string }; spec: { env?: Record<string, unknown>; secrets?: Array<{ name: string; mountPath: string; items?: Array<{ key: string; path: string }> }> } }
const manifests = () => fs.readdirSync(MANIFESTS).filter((f) => f.endsWith('.yaml')).sort()
  .map((f) => ({ file: f, text: fs.readFileSync(path.join(MANIFESTS, f), 'utf8') }));
const ref = (key: string) => ({ secret: 'metaverse', key });

describe('metaverse demo: the manifests hold no credential', () => {
  it('no password, token or Redis config is written in manifests/, not even the old public one', () => {
    for (const { file, text } of manifests()) {
      assert.doesNotMatch(text, /change-me|metaverse-demo-secret|AGE-SECRET-KEY|[0-9a-f]{32}/i, file);
      const values = text.split('\n').map((l) => l.replace(/(^|\s)#.*$/, '')).join('\n');
      assert.doesNotMatch(values, /requirepass|PASSWORD: [^{]|SECRET: [^{]/, `${file}, outside comments`);
    }
  });

  it('every server takes TOKEN_SECRET from the secret, and those with a REDIS_URL their REDIS_PASSWORD', () => {
    const docs = manifests().map(({ text }) => YAML.parse(text) as Manifest);
    const env = Object.fromEntries(docs.map((d) => [d.metadata.name, d.spec.env ?? {}]));
    for (const s of ['login', 'asset', 'map', 'game']) assert.deepEqual(env[s]!.TOKEN_SECRET, ref('token'), s);
    const withRedis = docs.filter((d) => d.spec.env?.REDIS_URL).map((d) => d.metadata.name).sort();
    assert.deepEqual(withRedis, ['game', 'login', 'map']);
    for (const s of withRedis) assert.deepEqual(env[s]!.REDIS_PASSWORD, ref('redis-password'), s);
    for (const [service, vars] of Object.entries(env)) {
      for (const [name, value] of Object.entries(vars)) {
        if (/SECRET|PASSWORD|TOKEN$|KEY$/.test(name)) assert.equal(typeof value, 'object', `${service} ${name} is a secret reference`);
      }
    }
  });

  it('redis mounts only the redis.conf key, where its image reads it first', () => {
    const redis = YAML.parse(fs.readFileSync(path.join(MANIFESTS, 'redis.yaml'), 'utf8')) as Manifest;
    assert.deepEqual(redis.spec.secrets, [{ name: 'metaverse', mountPath: '/run/secrets/metaverse', items: [{ key: 'redis.conf', path: 'redis.conf' }] }]);
    const cartefile = fs.readFileSync(path.join(ROOT, 'examples', 'metaverse', 'redis', 'Cartefile'), 'utf8');
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(cartefile)![1]!) as string[];
    assert.deepEqual(cmd.slice(0, 2), ['redis-server', '/run/secrets/metaverse/redis.conf']);
    assert.equal(cmd.includes('--protected-mode'), false, 'protected mode keeps its default (yes)');
  });
});

describe('metaverse demo: the secret "metaverse" (ensureSecret)', () => {
  const DIR = '/srv/demo/manifests';
  const KEYS = 'redis-password\nredis.conf\ntoken\n';
  const listing = (usableBy: string) => `NAME        KEYS                              SOURCE   USABLE BY${' '.repeat(Math.max(1, usableBy.length - 6))}UPDATED   USED BY\n`
    + `metaverse   redis-password,redis.conf,token   cli      ${usableBy}   3m        game,login\n`;

  /** A fake CLI: `get` answers `stored` (keys, or null: not found), `list` answers `list`; `set` reads its files as the CLI would. */
  function fakeCarte(stored: string | null, list = '') {
    const calls: string[][] = [];
    const seen: { values: Record<string, string>; modes: Record<string, number>; folderMode: number; folder: string } = { values: {}, modes: {}, folderMode: 0, folder: '' };
    const carte = async (args: string[]): Promise<Result> => {
      calls.push(args);
      const ok = (stdout = '') => ({ code: 0, stdout, stderr: '' });
      if (args[1] === 'get') return stored === null ? { code: 1, stdout: '', stderr: 'error: secret "metaverse" not found\n' } : ok(stored);
      if (args[1] === 'list') return ok(list);
      if (args[1] === 'set') {
        args.forEach((a, i) => {
          if (args[i - 1] !== '--from-file') return;
          const [key, file] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
          seen.values[key] = fs.readFileSync(file, 'utf8');
          seen.modes[key] = fs.statSync(file).mode & 0o777;
          seen.folder = path.dirname(file);
          seen.folderMode = fs.statSync(seen.folder).mode & 0o777;
        });
        return ok('secret/metaverse created\n');
      }
      if (args[1] === 'grant') return ok('secret/metaverse usable by …\n');
      throw new Error(`unexpected carte ${args.join(' ')}`);
    };
    return { carte, calls, seen };
  }
  const grants = (args: string[]) => args.filter((_, i) => args[i - 1] === '--usable-by');

  it('first run: sets the three keys from 0600 files in a private folder removed after, never a value in the arguments; grants cli and the folder source', async () => {
    const { carte, calls, seen } = fakeCarte(null);
    const said: string[] = [];
    assert.equal(await ensureSecret(carte, DIR, (l) => said.push(l)), 'created');
    const set = calls.find((c) => c[1] === 'set')!;
    assert.deepEqual(set.slice(0, 4), ['secret', 'set', 'metaverse', '--no-start']);
    assert.deepEqual(grants(set), ['cli', `folder:${DIR}`]);
    assert.deepEqual(Object.keys(seen.values).sort(), ['redis-password', 'redis.conf', 'token']);
    assert.deepEqual([seen.modes, seen.folderMode], [{ 'redis-password': 0o600, 'redis.conf': 0o600, token: 0o600 }, 0o700]);
    assert.match(seen.values.token!, /^[0-9a-f]{64}$/);
    assert.match(seen.values['redis-password']!, /^[0-9a-f]{64}$/);
    assert.notEqual(seen.values.token, seen.values['redis-password']);
    assert.match(seen.values['redis.conf']!, new RegExp(`^#.*\\nrequirepass ${seen.values['redis-password']}\\n$`));
    for (const v of [seen.values.token!, seen.values['redis-password']!]) assert.equal(set.some((a) => a.includes(v)), false, 'no value among the arguments');
    assert.equal(fs.existsSync(seen.folder), false, 'the files are gone');
    assert.deepEqual(said, [`secret metaverse created: keys redis-password, redis.conf, token, usable by cli, folder:${DIR}; kept encrypted in CARTE_HOME/secrets`]);
  });

  it('later runs keep it when it has its keys and the grant (also through a pattern): nothing is set', async () => {
    for (const usable of [`cli,folder:${DIR}`, 'cli,folder:/srv/*', `folder:${DIR},cli,git:*`]) {
      const { carte, calls } = fakeCarte(KEYS, listing(usable));
      assert.equal(await ensureSecret(carte, DIR), 'kept', usable);
      assert.deepEqual(calls.map((c) => c[1]), ['get', 'list']);
    }
  });

  it('a grant without the folder source (the checkout moved) is widened, keeping the values and the old grants', async () => {
    const { carte, calls } = fakeCarte(KEYS, listing('cli,folder:/old/place/manifests'));
    const said: string[] = [];
    assert.equal(await ensureSecret(carte, DIR, (l) => said.push(l)), 'granted');
    assert.equal(calls.some((c) => c[1] === 'set'), false, 'the values are not set again');
    assert.deepEqual(grants(calls.find((c) => c[1] === 'grant')!), ['cli', 'folder:/old/place/manifests', `folder:${DIR}`]);
    assert.equal(said[0], `secret metaverse granted to folder:${DIR} (the checkout moved?); now usable by cli, folder:/old/place/manifests, folder:${DIR}`);
  });

  it('rotate sets new values even when all is in place', async () => {
    const { carte, calls } = fakeCarte(KEYS, listing(`cli,folder:${DIR}`));
    assert.equal(await ensureSecret(carte, DIR, () => {}, { rotate: true }), 'rotated');
    assert.deepEqual(calls.map((c) => c[1]), ['get', 'list', 'set']);
  });

  it('a secret of that name without the keys the manifests use, or a failing CLI, is an error saying what to do; nothing is set', async () => {
    const partial = fakeCarte('token\n', listing(`cli,folder:${DIR}`));
    await assert.rejects(ensureSecret(partial.carte, DIR), { message: 'secret "metaverse" exists without keys redis-password, redis.conf, which the manifests use: run "node dist/examples/metaverse/demo.js rotate" to set them all (the services that use it roll)' });
    assert.equal(partial.calls.some((c) => c[1] === 'set'), false);
    const failing = async (): Promise<Result> => ({ code: 1, stdout: '', stderr: 'error: cannot read secret key /etc/carte/secret.key: permission denied (secrets need root: run carte as root)\n' });
    await assert.rejects(ensureSecret(failing, DIR), { message: 'carte secret get metaverse failed (exit 1):\nerror: cannot read secret key /etc/carte/secret.key: permission denied (secrets need root: run carte as root)' });
  });

  it('reads the USABLE BY column by the header\'s positions (a folder may have spaces); patterns match as in the policy', () => {
    assert.deepEqual(usableByOf(listing('cli,folder:/home/a b/manifests'), 'metaverse'), ['cli', 'folder:/home/a b/manifests']);
    assert.equal(usableByOf(listing('cli'), 'other'), null);
    assert.equal(covers('folder:/srv/*', 'folder:/srv/demo/manifests'), true);
    assert.equal(covers('folder:/srv/*', 'folder:/srvx'), false);
    assert.equal(covers('folder:/a.b', 'folder:/axb'), false, 'only * is special');
    assert.equal(covers('cli', 'cli'), true);
  });

  it('makes new values each time', () => {
    assert.notEqual(secretValues().token, secretValues().token);
  });
});
