// The build's trust boundary in real builds: what a Cartefile may not make
// carte (root) read, each refused with its exact message and nothing stored;
// and the ordinary builds still working.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { ImageBuilder } from '../../src/drivers/linux/images/build.js';
import { DEFAULT_HOST_COPY_PREFIXES } from '../../src/drivers/linux/images/host-policy.js';
import { ImageStore } from '../../src/drivers/linux/images/store.js';
import { Runner } from '../../src/drivers/linux/exec.js';
import { cliLogger } from '../../src/log.js';
import { requireRoot } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';

const LIST = '/usr, /bin, /sbin, /lib, /lib64, /etc/ssl/certs, /usr/share/zoneinfo';

interface TarEntry {
  path: string;
  type: 'File' | 'SymbolicLink';
  linkpath?: string;
  body?: string;
}

/** Writes a tar by hand: tar tools (and node-tar's packer) refuse to write the entries these tests need. */
function writeTar(file: string, entries: TarEntry[]): void {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = Buffer.alloc(512);
    new tar.Header({ path: e.path, type: e.type, linkpath: e.linkpath, mode: 0o644, size: body.length, mtime: new Date(0), uid: 0, gid: 0 }).encode(header);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  fs.writeFileSync(file, Buffer.concat([...blocks, Buffer.alloc(1024)]));
}

describe('linux: what a build may read', function () {
  this.timeout(120_000);
  let home: string;
  let store: ImageStore;
  let builder: ImageBuilder;
  let ctx: string;
  let cartefile: string;
  /** A temp folder outside every prefix, and one the widened builder allows. */
  let outside: string;
  let allowed: string;
  let widened: ImageBuilder;

  before(function () {
    requireRoot(this);
    home = tempDir('carte-trust-home-');
    store = new ImageStore(home);
    const runner = new Runner(cliLogger('error'));
    builder = new ImageBuilder(store, runner);
    outside = tempDir('carte-trust-outside-');
    allowed = tempDir('carte-trust-allowed-');
    // mkdtemp makes 0700 folders; a build copies only what every user could reach.
    fs.chmodSync(outside, 0o755);
    fs.chmodSync(allowed, 0o755);
    widened = new ImageBuilder(store, runner, { hostCopyPrefixes: [...DEFAULT_HOST_COPY_PREFIXES, allowed] });
    fs.writeFileSync(path.join(outside, 'secret'), 'not yours\n');
    // A link inside an allowed folder that leads out of it: the test makes it in its own folder, never in /usr.
    fs.symlinkSync('/etc/shadow', path.join(allowed, 'evil'));
    fs.writeFileSync(path.join(allowed, 'tls.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n');
    fs.writeFileSync(path.join(allowed, 'owner-only'), 'x', { mode: 0o600 });
    fs.writeFileSync(path.join(allowed, 'tool'), 'a tool\n', { mode: 0o644 });
  });
  after(() => {
    for (const d of [home, outside, allowed]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });
  beforeEach(() => {
    ctx = tempDir('carte-trust-ctx-');
    cartefile = path.relative(process.cwd(), path.join(ctx, 'Cartefile'));
  });
  afterEach(() => {
    if (ctx) fs.rmSync(ctx, { recursive: true, force: true });
  });

  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(ctx, rel)), { recursive: true });
    fs.writeFileSync(path.join(ctx, rel), text);
  };
  const link = (rel: string, target: string) => {
    fs.mkdirSync(path.dirname(path.join(ctx, rel)), { recursive: true });
    fs.symlinkSync(target, path.join(ctx, rel));
  };
  const stored = async () => ({
    images: (await store.list()).map((i) => i.ref),
    layers: fs.readdirSync(store.layersDir).sort(),
    records: fs.readdirSync(store.imagesDir).filter((f) => f !== 'refs.lock').sort(),
  });
  /** Builds, expecting a refusal; returns its message, after checking nothing was stored. */
  const refusal = async (text: string, by = builder): Promise<string> => {
    if (!fs.existsSync(path.join(ctx, 'Cartefile'))) write('Cartefile', text);
    const before = await stored();
    const message = await by.build({ context: ctx, tag: 'trust/refused:1' }).then(() => 'built', (e: Error) => e.message);
    assert.deepEqual(await stored(), before, 'no image, layer or cache entry stored');
    return message;
  };

  describe('COPY --from=host', () => {
    it('refuses /etc/shadow, /root/x and a file outside the allowed folders', async () => {
      assert.equal(await refusal('FROM scratch\nCOPY --from=host /etc/shadow /loot/\n'), `${cartefile}:2: COPY --from=host /etc/shadow: not allowed by the server policy (host files may come from ${LIST})`);
      fs.rmSync(path.join(ctx, 'Cartefile'));
      assert.equal(await refusal('FROM scratch\n\nCOPY --from=host /root/x /loot/\n'), `${cartefile}:3: COPY --from=host /root/x: not allowed by the server policy (host files may come from ${LIST})`);
      fs.rmSync(path.join(ctx, 'Cartefile'));
      assert.equal(await refusal(`FROM scratch\nCOPY --from=host ${outside}/secret /loot/\n`), `${cartefile}:2: COPY --from=host ${outside}/secret: not allowed by the server policy (host files may come from ${LIST})`);
    });

    it('refuses a link inside an allowed folder that leads out of it', async () => {
      assert.equal(
        await refusal(`FROM scratch\nCOPY --from=host ${allowed}/evil /loot/\n`, widened),
        `${cartefile}:2: COPY --from=host ${allowed}/evil: it leads to /etc/shadow, outside the allowed host folders (${LIST}, ${allowed})`,
      );
    });

    it('keeps the deny list and private keys out whatever the prefixes say', async () => {
      const everything = new ImageBuilder(store, new Runner(cliLogger('error')), { hostCopyPrefixes: ['/'] });
      assert.equal(await refusal('FROM scratch\nCOPY --from=host /etc/shadow /loot/\n', everything), `${cartefile}:2: COPY --from=host /etc/shadow: it is a path no build may read, whatever the server policy says`);
      fs.rmSync(path.join(ctx, 'Cartefile'));
      assert.equal(
        await refusal(`FROM scratch\nCOPY --from=host ${home}/images/refs.json /loot/\n`, everything),
        `${cartefile}:2: COPY --from=host ${home}/images/refs.json: it is inside ${home}, which no build may read, whatever the server policy says`,
      );
      fs.rmSync(path.join(ctx, 'Cartefile'));
      assert.equal(await refusal(`FROM scratch\nCOPY --from=host ${allowed}/tls.pem /loot/\n`, widened), `${cartefile}:2: COPY --from=host ${allowed}/tls.pem: it is a file holding a PRIVATE KEY, which no build may read`);
      fs.rmSync(path.join(ctx, 'Cartefile'));
      assert.equal(
        await refusal(`FROM scratch\nCOPY --from=host ${allowed}/owner-only /loot/\n`, widened),
        `${cartefile}:2: COPY --from=host ${allowed}/owner-only: it is readable only by its owner or group (mode 0600), and a build copies only host files every user may read`,
      );
    });

    it('refuses a host file in a folder someone other than root may change (an entry could be swapped mid-copy)', async () => {
      const student = path.join(allowed, 'student');
      fs.mkdirSync(student, { mode: 0o755 });
      fs.writeFileSync(path.join(student, 'tool'), 'x\n', { mode: 0o644 });
      fs.chownSync(student, 1000, 1000);
      const open = path.join(allowed, 'open');
      fs.mkdirSync(open);
      fs.chmodSync(open, 0o777);
      fs.writeFileSync(path.join(open, 'tool'), 'x\n', { mode: 0o644 });
      try {
        assert.equal(await refusal(`FROM scratch\nCOPY --from=host ${student}/tool /t\n`, widened),
          `${cartefile}:2: COPY --from=host ${student}/tool: ${student}/tool is in ${student}, which user 1000 owns (mode 0755): a build copies host files only from folders only root can change (an entry could be swapped for a link mid-copy)`);
        fs.rmSync(path.join(ctx, 'Cartefile'));
        assert.equal(await refusal(`FROM scratch\nCOPY --from=host ${open} /t/\n`, widened),
          `${cartefile}:2: COPY --from=host ${open}: it is in ${open}, which others may change (mode 0777): a build copies host files only from folders only root can change (an entry could be swapped for a link mid-copy)`);
      } finally {
        fs.rmSync(student, { recursive: true, force: true });
        fs.rmSync(open, { recursive: true, force: true });
      }
    });

    it('a build\'s own prefixes (its source\'s policy section) replace the builder\'s', async () => {
      write('Cartefile', `FROM scratch\nCOPY --from=host ${allowed}/tool /section-tool\n`);
      const narrowed = await widened.build({ context: ctx, tag: 'trust/section:1', hostCopyPrefixes: ['/usr'] }).then(() => 'built', (e: Error) => e.message);
      assert.equal(narrowed, `${cartefile}:2: COPY --from=host ${allowed}/tool: not allowed by the server policy (host files may come from /usr)`);
      const result = await builder.build({ context: ctx, tag: 'trust/section:1', hostCopyPrefixes: [allowed] });
      assert.equal(result.ref, 'trust/section:1');
      await store.untag('trust/section:1');
      await store.gc(new Set());
    });

    it('judges before the cache: a source the policy no longer allows is not served from the cache', async () => {
      write('Cartefile', `FROM scratch\nCOPY --from=host ${allowed}/tool /tool\n`);
      const first = await widened.build({ context: ctx, tag: 'trust/tool:1' });
      assert.equal((await widened.build({ context: ctx, tag: 'trust/tool:1' })).cachedSteps, 1);
      assert.equal(await refusal(''), `${cartefile}:2: COPY --from=host ${allowed}/tool: not allowed by the server policy (host files may come from ${LIST})`);
      await store.untag('trust/tool:1');
      await store.gc(new Set());
      assert.equal(store.hasLayer(first.image.layers[0]!), false);
    });
  });

  describe('build context', () => {
    it('refuses a source reached through a context link to /etc', async () => {
      link('conf', '/etc');
      assert.equal(await refusal('FROM scratch\nCOPY conf/passwd /x\n'), `${cartefile}:2: COPY conf/passwd /x: conf is a link to /etc, outside the build context`);
    });

    it('refuses a folder holding a link to /etc/passwd', async () => {
      write('conf/app.ini', 'a=1\n');
      link('conf/pw', '/etc/passwd');
      assert.equal(await refusal('FROM scratch\n\n\nCOPY conf/ /etc/app/\n'), `${cartefile}:4: COPY conf/ /etc/app/: conf/pw is a link to /etc/passwd, outside the build context`);
    });

    it('refuses a link that stays in the context but would climb above the image root', async () => {
      // ctx/a/b/c/up → ctx/x on this machine, but from /c/up in the image it climbs above /.
      write('x', '');
      link('a/b/c/up', '../../../x');
      assert.equal(await refusal('FROM scratch\nCOPY a/b/ /\n'), `${cartefile}:2: COPY a/b/ /: a/b/c/up is a link to ../../../x, which climbs above the image's root from /c/up`);
    });

    it('refuses ADD of archives with "..", absolute paths and links out', async () => {
      writeTar(path.join(ctx, 'evil.tar'), [{ path: 'ok.txt', type: 'File', body: 'ok' }, { path: '../../etc/x', type: 'File', body: 'pwned' }]);
      writeTar(path.join(ctx, 'abs.tar'), [{ path: '/etc/x', type: 'File', body: 'pwned' }]);
      writeTar(path.join(ctx, 'lnk.tar'), [{ path: 'pw', type: 'SymbolicLink', linkpath: '/etc/passwd' }]);
      assert.equal(await refusal('FROM scratch\nADD evil.tar /srv/\n'), `${cartefile}:2: ADD evil.tar /srv/: evil.tar holds "../../etc/x", which climbs out with ".."`);
      fs.rmSync(path.join(ctx, 'Cartefile'));
      assert.equal(await refusal('FROM scratch\nADD abs.tar /srv/\n'), `${cartefile}:2: ADD abs.tar /srv/: abs.tar holds "/etc/x", an absolute path`);
      fs.rmSync(path.join(ctx, 'Cartefile'));
      assert.equal(await refusal('FROM scratch\nADD lnk.tar /srv/\n'), `${cartefile}:2: ADD lnk.tar /srv/: lnk.tar holds "pw", a link to /etc/passwd, outside the archive`);
      assert.equal(fs.existsSync('/etc/x'), false);
    });

    it('refuses a Cartefile or .carteignore that is a symbolic link', async () => {
      write('real', 'FROM scratch\n');
      link('Cartefile', 'real');
      assert.equal(await refusal(''), `${cartefile}:0: the Cartefile is a symbolic link; it must be a regular file`);
      fs.rmSync(path.join(ctx, 'Cartefile'));
      write('Cartefile', 'FROM scratch\n');
      link('.carteignore', '/etc/shadow');
      assert.equal(await refusal(''), `${path.relative(process.cwd(), path.join(ctx, '.carteignore'))}:0: the .carteignore is a symbolic link; it must be a regular file`);
    });

    it('reads a Cartefile outside the context (-f) only when every user may read it', async () => {
      const attempt = async (file: string) => {
        const before = await stored();
        const message = await builder.build({ context: ctx, cartefile: file, tag: 'trust/refused:1' }).then(() => 'built', (e: Error) => e.message);
        assert.deepEqual(await stored(), before);
        return message;
      };
      assert.equal(await attempt('/etc/shadow'), `${path.relative(process.cwd(), '/etc/shadow')}:0: the Cartefile is outside the build context and /etc/shadow is not readable by every user (mode 0640), so a build may not read it`);
      fs.writeFileSync(path.join(outside, 'Cartefile'), 'FROM scratch\nCOPY x /x\n');
      write('x', 'x');
      assert.equal((await builder.build({ context: ctx, cartefile: path.join(outside, 'Cartefile'), tag: 'trust/outside:1' })).steps, 1);
    });
  });

  describe('ordinary builds', () => {
    it('builds busybox and node from the host, with their libraries', async () => {
      write('Cartefile', 'FROM scratch\nCOPY --from=host /bin/busybox /bin/busybox\nCMD ["/bin/busybox", "sh"]\n');
      const busybox = await builder.build({ context: ctx, tag: 'trust/busybox:1' });
      assert.equal(fs.lstatSync(path.join(store.layerPath(busybox.image.layers[0]!), 'bin/busybox')).isFile(), true);

      write('Cartefile', 'FROM scratch\nCOPY --from=host /usr/bin/node /usr/bin/node\nCOPY app/ /app/\nCMD ["node", "/app/main.js"]\n');
      write('app/main.js', 'console.log("hi")\n');
      const node = await builder.build({ context: ctx, tag: 'trust/node:1' });
      const layer = store.layerPath(node.image.layers[0]!);
      assert.equal(fs.lstatSync(path.join(layer, 'usr/bin/node')).isFile(), true);
      const libc = fs.realpathSync('/lib/x86_64-linux-gnu/libc.so.6');
      assert.equal(fs.statSync(path.join(layer, '/lib/x86_64-linux-gnu/libc.so.6')).size, fs.statSync(libc).size, 'libc copied, dereferenced');
    });

    it('follows a named context link inside the context, and keeps links inside a folder as links', async () => {
      write('shared/conf/app.ini', 'a=1\n');
      link('shared/conf/current.ini', 'app.ini');
      link('conf', 'shared/conf');
      write('Cartefile', 'FROM scratch\nCOPY conf/ /etc/app/\n');
      const r = await builder.build({ context: ctx, tag: 'trust/conf:1' });
      const layer = store.layerPath(r.image.layers[0]!);
      assert.equal(fs.readFileSync(path.join(layer, 'etc/app/app.ini'), 'utf8'), 'a=1\n');
      assert.equal(fs.readlinkSync(path.join(layer, 'etc/app/current.ini')), 'app.ini');
    });

    it('copies an allowed host folder, leaving out (and saying so) the links in it that lead elsewhere', async () => {
      write('Cartefile', 'FROM scratch\nCOPY --from=host /usr/share/zoneinfo /usr/share/zoneinfo\n');
      const lines: string[] = [];
      const r = await builder.build({ context: ctx, tag: 'trust/tz:1', onProgress: (l) => lines.push(l) });
      const layer = store.layerPath(r.image.layers[0]!);
      assert.equal(fs.statSync(path.join(layer, 'usr/share/zoneinfo/Europe/Paris')).isFile(), true);
      // Debian's tzdata ships localtime → /etc/localtime (the machine's own zone).
      const localtime = fs.readlinkSync('/usr/share/zoneinfo/localtime', { encoding: 'utf8' });
      assert.equal(localtime, '/etc/localtime', 'the Debian 12 layout this test expects');
      assert.deepEqual(lines.filter((l) => l.includes('left out')), [
        `STEP 2/2: COPY --from=host /usr/share/zoneinfo /usr/share/zoneinfo: left out: /usr/share/zoneinfo/localtime leads to /etc/localtime, outside the allowed host folders (${LIST})`,
      ]);
      assert.equal(fs.existsSync(path.join(layer, 'usr/share/zoneinfo/localtime')), false);
    });
  });
});
