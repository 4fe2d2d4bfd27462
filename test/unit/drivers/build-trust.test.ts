import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { archiveEntryRefusal } from '../../../src/drivers/linux/images/archive.js';
import { climbsAboveRoot } from '../../../src/drivers/linux/images/context-sources.js';
import {
  ALWAYS_DENIED_HOST_PATHS, DEFAULT_HOST_COPY_PREFIXES, explainHostRefusal, hasPrivateKeyHeader, isWithin, judgeHostPath, makeHostCopyRules, privateKeyByName,
} from '../../../src/drivers/linux/images/host-policy.js';
import { resolvePath } from '../../../src/util/resolve-path.js';
import { tempDir } from '../../helpers/paths.js';

// Debian 12's layout: /bin, /sbin, /lib, /lib64 are links into /usr.
const DEBIAN: Record<string, string> = { '/bin': '/usr/bin', '/sbin': '/usr/sbin', '/lib': '/usr/lib', '/lib64': '/usr/lib64' };
const rules = makeHostCopyRules(DEFAULT_HOST_COPY_PREFIXES, '/var/lib/carte', (p) => DEBIAN[p] ?? p);
const LIST = '/usr, /bin, /sbin, /lib, /lib64, /etc/ssl/certs, /usr/share/zoneinfo';

describe('build trust boundary: host path rules', () => {
  it('matches prefixes on whole path components', () => {
    assert.deepEqual([['/usr', '/usr'], ['/usr/bin/node', '/usr'], ['/usrx/bin', '/usr'], ['/us', '/usr'], ['/etc/passwd', '/']].map(([p, f]) => isWithin(p!, f!)), [true, true, false, false, true]);
  });

  it('adds the real path of each prefix and deny entry, so /bin and /usr/bin both match', () => {
    assert.deepEqual(rules.prefixes, ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/etc/ssl/certs', '/usr/share/zoneinfo']);
    assert.deepEqual(rules.allowed, ['/usr', '/bin', '/usr/bin', '/sbin', '/usr/sbin', '/lib', '/usr/lib', '/lib64', '/usr/lib64', '/etc/ssl/certs', '/usr/share/zoneinfo']);
    assert.deepEqual(rules.denied, [...ALWAYS_DENIED_HOST_PATHS, '/var/lib/carte']);
    assert.deepEqual(makeHostCopyRules(['/opt/tools/', '/srv/../usr'], undefined, () => null).prefixes, ['/opt/tools', '/usr']);
  });

  it('judges a path: prefixes first, then the deny list, then private key names', () => {
    const wide = makeHostCopyRules(['/'], '/var/lib/carte', () => null);
    const cases: Array<[string, typeof rules, unknown]> = [
      ['/usr/bin/node', rules, null],
      ['/bin/busybox', rules, null],
      ['/etc/ssl/certs/ca-certificates.crt', rules, null],
      ['/etc/shadow', rules, { kind: 'outside' }],
      ['/etc/passwd', rules, { kind: 'outside' }],
      ['/etc/shadow', wide, { kind: 'denied', entry: '/etc/shadow' }],
      ['/etc/shadow-', wide, { kind: 'denied', entry: '/etc/shadow-' }],
      ['/root/.bashrc', wide, { kind: 'denied', entry: '/root' }],
      ['/home/ada/notes', wide, { kind: 'denied', entry: '/home' }],
      ['/proc/1/environ', wide, { kind: 'denied', entry: '/proc' }],
      ['/var/lib/carte/state.json', wide, { kind: 'denied', entry: '/var/lib/carte' }],
      ['/etc/passwd', wide, null],
      ['/usr/share/doc/x/id_rsa', rules, { kind: 'key-name' }],
      ['/usr/share/doc/x/id_ed25519_sk', rules, { kind: 'key-name' }],
      ['/usr/share/doc/x/id_rsa.pub', rules, null],
      ['/etc/ssh/ssh_host_ed25519_key', wide, { kind: 'key-name' }],
      ['/etc/ssh/ssh_host_ed25519_key.pub', wide, null],
      ['/usr/share/x/.ssh/config', rules, { kind: 'ssh-folder', folder: '/usr/share/x/.ssh' }],
      ['/usr/share/x/server.pem', rules, null],
    ];
    for (const [p, r, want] of cases) assert.deepEqual(judgeHostPath(p, r), want, p);
  });

  it('leaves *.pem and *.key to their contents: a private key header, in any of its armours', () => {
    assert.deepEqual(['/etc/ssl/certs/a.pem', '/x/server.KEY', '/x/server.crt', '/x/id_rsa'].map(privateKeyByName), ['check-header', 'check-header', null, { kind: 'key-name' }]);
    assert.deepEqual(
      ['-----BEGIN PRIVATE KEY-----', '-----BEGIN RSA PRIVATE KEY-----', '-----BEGIN OPENSSH PRIVATE KEY-----', '-----BEGIN ENCRYPTED PRIVATE KEY-----', '-----BEGIN CERTIFICATE-----', '-----BEGIN PUBLIC KEY-----'].map(hasPrivateKeyHeader),
      [true, true, true, true, false, false],
    );
  });

  it('explains each refusal in one line, for the source, a link, a folder entry and a library', () => {
    const it = { noun: 'it', path: '/etc/shadow' };
    const wide = makeHostCopyRules(['/'], undefined, () => null);
    assert.equal(explainHostRefusal(it, { kind: 'outside' }, rules), `not allowed by the server policy (host files may come from ${LIST})`);
    assert.equal(explainHostRefusal({ link: 'it', target: '/etc/shadow' }, { kind: 'outside' }, rules), `it leads to /etc/shadow, outside the allowed host folders (${LIST})`);
    assert.equal(explainHostRefusal({ noun: 'its library /opt/lib/libx.so', path: '/opt/lib/libx.so' }, { kind: 'outside' }, rules), `its library /opt/lib/libx.so is outside the allowed host folders (${LIST})`);
    assert.equal(explainHostRefusal(it, { kind: 'denied', entry: '/etc/shadow' }, wide), 'it is a path no build may read, whatever the server policy says');
    assert.equal(explainHostRefusal({ noun: 'it', path: '/root/x' }, { kind: 'denied', entry: '/root' }, wide), 'it is inside /root, which no build may read, whatever the server policy says');
    assert.equal(explainHostRefusal({ link: 'it', target: '/etc/shadow' }, { kind: 'denied', entry: '/etc/shadow' }, wide), 'it leads to /etc/shadow, which no build may read, whatever the server policy says');
    assert.equal(explainHostRefusal({ link: '/usr/x/k', target: '/root/k' }, { kind: 'denied', entry: '/root' }, wide), '/usr/x/k leads to /root/k, inside /root, which no build may read, whatever the server policy says');
    assert.equal(explainHostRefusal({ noun: '/usr/x/id_rsa', path: '/usr/x/id_rsa' }, { kind: 'key-name' }, rules), '/usr/x/id_rsa is a private key file, which no build may read');
    assert.equal(explainHostRefusal({ noun: 'it', path: '/usr/x/tls.pem' }, { kind: 'key-header' }, rules), 'it is a file holding a PRIVATE KEY, which no build may read');
    assert.equal(explainHostRefusal({ noun: 'it', path: '/usr/x/.ssh/k' }, { kind: 'ssh-folder', folder: '/usr/x/.ssh' }, rules), 'it is inside the SSH folder /usr/x/.ssh, which no build may read');
    assert.equal(explainHostRefusal({ noun: '/usr/x/secret', path: '/usr/x/secret' }, { kind: 'unreadable', mode: 0o100600 }, rules), '/usr/x/secret is readable only by its owner or group (mode 0600), and a build copies only host files every user may read');
    assert.equal(explainHostRefusal(it, { kind: 'outside' }, makeHostCopyRules([], undefined, () => null)), 'not allowed by the server policy (it allows no host files)');
  });
});

describe('build trust boundary: context links and archive entries', () => {
  it('tells a relative link that would climb above the image root from where it lands', () => {
    const cases: Array<[string, string, boolean]> = [
      ['/etc', 'passwd', false],
      ['/etc', '../usr/lib/x', false],
      ['/etc', '../../x', true],
      ['/', '..', true],
      ['/a/b', '../../c', false],
      ['/a/b', 'x/../../../..', true],
      ['/a', '/etc/passwd', false],
    ];
    for (const [dir, text, want] of cases) assert.equal(climbsAboveRoot(dir, text), want, `${dir} ${text}`);
  });

  it('refuses archive entries that leave DEST or are not plain files, folders and links', () => {
    const cases: Array<[Parameters<typeof archiveEntryRefusal>[0], string | null]> = [
      [{ path: 'app/main.js', type: 'File' }, null],
      [{ path: './app/', type: 'Directory' }, null],
      [{ path: 'bin/sh', type: 'SymbolicLink', linkpath: 'busybox' }, null],
      [{ path: 'a/b/up', type: 'SymbolicLink', linkpath: '../../c' }, null],
      [{ path: 'a/hard', type: 'Link', linkpath: 'a/main.js' }, null],
      [{ path: '../../etc/x', type: 'File' }, '"../../etc/x", which climbs out with ".."'],
      [{ path: 'a/../../x', type: 'File' }, '"a/../../x", which climbs out with ".."'],
      [{ path: '/etc/x', type: 'File' }, '"/etc/x", an absolute path'],
      [{ path: 'lnk', type: 'SymbolicLink', linkpath: '/etc/passwd' }, '"lnk", a link to /etc/passwd, outside the archive'],
      [{ path: 'a/lnk', type: 'SymbolicLink', linkpath: '../../etc' }, '"a/lnk", a link to ../../etc, outside the archive'],
      [{ path: 'hard', type: 'Link', linkpath: '/etc/shadow' }, '"hard", a hard link to /etc/shadow, outside the archive'],
      [{ path: 'hard', type: 'Link', linkpath: '../x' }, '"hard", a hard link to ../x, outside the archive'],
      [{ path: 'dev/null', type: 'CharacterDevice' }, '"dev/null", a device node'],
      [{ path: 'dev/sda', type: 'BlockDevice' }, '"dev/sda", a device node'],
      [{ path: 'pipe', type: 'FIFO' }, '"pipe", a FIFO'],
    ];
    for (const [entry, want] of cases) assert.equal(archiveEntryRefusal(entry), want, entry.path);
  });
});

describe('resolvePath', () => {
  let dir: string;
  before(() => {
    dir = fs.realpathSync(tempDir('carte-resolve-'));
    fs.mkdirSync(path.join(dir, 'a/b'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a/b/f'), '');
    fs.symlinkSync('a/b', path.join(dir, 'ab'));
    fs.symlinkSync('/etc', path.join(dir, 'etc'));
    fs.symlinkSync('loop2', path.join(dir, 'loop1'));
    fs.symlinkSync('loop1', path.join(dir, 'loop2'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const inside = (hop: { target: string }) => (isWithin(hop.target, dir) ? null : 'outside');

  it('follows links inside, takes ".." on the real folder, and reports every hop', async () => {
    const hops: string[] = [];
    const res = await resolvePath(dir, 'ab/../b/f', (hop) => (hops.push(`${path.relative(dir, hop.link)} -> ${hop.text}`), null));
    assert.deepEqual(res, { kind: 'found', real: path.join(dir, 'a/b/f') });
    assert.deepEqual(hops, ['ab -> a/b']);
  });

  it('stops at the first link the judge refuses, before looking past it', async () => {
    assert.deepEqual(await resolvePath(dir, 'etc/no-such-file', inside), { kind: 'refused', reason: 'outside', hop: { link: path.join(dir, 'etc'), text: '/etc', target: '/etc' } });
  });

  it('says what is missing, and gives up on loops', async () => {
    assert.deepEqual(await resolvePath(dir, 'a/nope/x', inside), { kind: 'missing', at: path.join(dir, 'a/nope') });
    assert.deepEqual(await resolvePath(dir, 'a/b/f/x', inside), { kind: 'missing', at: path.join(dir, 'a/b/f') });
    assert.equal((await resolvePath(dir, 'loop1', inside)).kind, 'loop');
  });
});
