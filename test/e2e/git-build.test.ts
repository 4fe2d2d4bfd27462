// Build from source: a service whose manifest (in Git) says `build:` is built
// from the same commit's tree, with RUN, and its image is tagged with the
// commit; a push of code and manifest rolls it; a push whose build fails is a
// Warning event naming the Cartefile line, and the last good revision keeps running.
import assert from 'node:assert/strict';
import { eventually, requireRoot } from '../helpers/linux.js';
import { buildBusybox, makeE2eEnv, readiness, type E2eEnv } from '../helpers/e2e.js';
import { makeGitRemote, type GitRemote } from '../helpers/git.js';

const MANIFEST = `apiVersion: carte/v1
kind: Service
metadata: { name: site }
spec:
  build: { context: ../app }
  replicas: 1
  ports: [{ name: http, port: 8080 }]
  health: { tcp: { port: http }, interval: 500ms, timeout: 500ms }
  stopGracePeriod: 1s
`;

const cartefile = (run: string) => `FROM e2e/busybox:1 AS page
COPY index.txt /www/index.html
${run}
FROM e2e/busybox:1
COPY --from=page /www /www
CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
`;

describe('e2e: build from the Git commit', function () {
  this.timeout(180_000);
  let e: E2eEnv;
  let remote: GitRemote;

  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    await buildBusybox(e);
    remote = makeGitRemote();
  });
  after(async () => {
    await e?.teardown();
    remote?.remove();
  });

  const ready = () => readiness(e.state(), 'site').filter((i) => i.ready);
  /** The page the ready instance serves, read inside it. */
  const page = async () => {
    const name = ready()[0]?.name;
    if (!name) return undefined;
    const r = await e.carte(['exec', name, '--', '/bin/busybox', 'cat', '/www/index.html']);
    return r.code === 0 ? r.stdout : undefined;
  };
  const imageTags = async () => (await e.carte(['images'])).stdout.split('\n').filter((l) => l.startsWith('carte-build/site ')).map((l) => l.split(/\s+/)[1]);

  it('builds the pushed commit (RUN included), tags the image with it, and serves it', async () => {
    const sha = remote.commitFiles({
      'manifests/site.yaml': MANIFEST, 'app/Cartefile': cartefile('RUN busybox sed -i s/version/VERSION/ /www/index.html'), 'app/index.txt': 'version 1\n',
    }, 'site v1');
    e.daemon(['--git', `file://${remote.repo}`, '--branch', 'main', '--path', 'manifests', '--interval', '1s']);
    assert.equal(await eventually(page, 60_000, 'site v1 to serve'), 'VERSION 1\n');
    assert.equal(e.state().services.site!.revision.commit, sha);
    assert.ok((await imageTags()).includes(sha.slice(0, 12)), (await imageTags()).join(' '));
  });

  it('a push of changed code rebuilds and rolls the service to it', async () => {
    const sha = remote.commitFiles({ 'app/index.txt': 'version 2\n' }, 'site v2');
    assert.equal(await eventually(async () => ((await page()) === 'VERSION 2\n' ? 'VERSION 2\n' : undefined), 60_000, 'site v2 to serve'), 'VERSION 2\n');
    assert.equal(e.state().services.site!.revision.commit, sha);
    assert.ok((await imageTags()).includes(sha.slice(0, 12)));
  });

  it('a push whose build fails is a Warning event naming the line, and the last good revision keeps running', async () => {
    const good = e.state().services.site!.revision.revision;
    const sha = remote.commitFiles({ 'app/Cartefile': cartefile('RUN echo broken; busybox false'), 'app/index.txt': 'version 3\n' }, 'site v3, broken');
    const warning = await eventually(async () => e.state().events.find((ev) => ev.type === 'Warning' && ev.object === 'service/site' && ev.message.includes('RUN echo broken; busybox false')), 60_000, 'the build failure event');
    assert.equal(warning.reason, 'CreateFailed');
    assert.match(warning.message, /app\/Cartefile:3: RUN echo broken; busybox false: the command exited with code 1 \(step 3\/6\)/);
    assert.equal(e.state().services.site!.revision.commit, sha, 'the new revision is stored');
    assert.ok(e.state().services.site!.revision.revision > good);
    assert.equal(await page(), 'VERSION 2\n', 'the last good revision keeps serving');
    assert.equal(ready().length, 1);
  });
});
