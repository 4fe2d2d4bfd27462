// The dashboard in a real browser (headless Chromium) against a real daemon
// with a running service and users made by `carte user add`: the sign-in page
// before any user exists, an operator's overview and charts (service total and
// per instance) and logs, a refused rollback's reason, a restart whose event
// arrives over the live stream, a viewer refused (403, nothing changed),
// a POST without the CSRF token refused, and the audit an admin reads.
// Screenshots go to test-output/dashboard/; CARTE_DOC_SCREENSHOTS=1 also copies
// them to docs/img/ (done once, when the page's look changes).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { addUser, chartPoints, freePort, haveChromium, launchBrowser, signIn, waitForDashboard } from '../helpers/browser.js';
import { buildBusybox, makeE2eEnv, readiness, webManifest, type E2eEnv } from '../helpers/e2e.js';
import { eventually, requireRoot } from '../helpers/linux.js';
import { ROOT, tempDir } from '../helpers/paths.js';

const OUT = path.join(ROOT, 'test-output', 'dashboard');
// A memory hog (as in alerts.test.ts): a 59 MiB file in its tmpfs under a 64 MiB limit fires memory-high.
const HOG = `apiVersion: carte/v1
kind: Service
metadata: { name: hog }
spec:
  image: e2e/busybox:1
  command: [sh, -c, "busybox dd if=/dev/zero of=/dev/shm/hog bs=1M count=59 2>/dev/null && exec busybox sleep 1000000"]
  resources: { memory: 64Mi }
  stopGracePeriod: 0s
`;
const PASSWORD = 'correct horse battery staple';

describe('e2e: the dashboard in a browser', function () {
  this.timeout(180_000);
  let e: E2eEnv;
  let manifests: string;
  let browser: Browser | undefined;
  let base: string;
  let page: Page;

  before(async function () {
    requireRoot(this);
    if (!haveChromium()) {
      if (process.env.CI === 'true') throw new Error('the browser test needs /usr/bin/chromium (apt-get install chromium), and CI=true forbids skipping it');
      console.log('      (skipped: no /usr/bin/chromium — apt-get install chromium)');
      this.skip();
    }
    e = makeE2eEnv();
    manifests = tempDir('carte-dash-');
    await buildBusybox(e);
    fs.writeFileSync(path.join(manifests, 'web.yaml'), webManifest({ replicas: 2 }));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // Samples every second (charts fill sooner); memory-high after 2 s instead of 1 min.
    const config = path.join(manifests, '..', `${path.basename(manifests)}-daemon.yaml`);
    fs.writeFileSync(config, 'alerts:\n  interval: 1s\n  rules:\n    memory-high: { for: 2s, clear: 2s }\n');
    e.daemon(['--watch', manifests, '--resync', '1s', '--http', `127.0.0.1:${port}`, '--collect-interval', '1s', '--config', config]);
    await waitForDashboard(base);
    await eventually(async () => readiness(e.state(), 'web').filter((i) => i.ready).length === 2, 30_000, 'two ready instances of web');
    fs.mkdirSync(OUT, { recursive: true });
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
  });
  after(async () => {
    await browser?.close().catch(() => {});
    await e?.teardown();
    if (manifests) {
      fs.rmSync(manifests, { recursive: true, force: true });
      fs.rmSync(`${manifests}-daemon.yaml`, { force: true });
    }
  });

  const revision = () => e.state().services.web!.revision.revision;
  const shot = async (p: Page, name: string) => {
    await p.screenshot({ path: path.join(OUT, name) });
    if (process.env.CARTE_DOC_SCREENSHOTS === '1') fs.copyFileSync(path.join(OUT, name), path.join(ROOT, 'docs', 'img', name));
  };
  /** A POST from inside the page (its cookie session), with or without the session's CSRF token. */
  const postFromPage = (p: Page, url: string, withCsrf: boolean) => p.evaluate(async (u: string, csrf: boolean) => {
    const session = (await (await fetch('/api/session')).json()) as { csrf: string };
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (csrf) headers['x-csrf-token'] = session.csrf;
    const r = await fetch(u, { method: 'POST', headers, body: '{}' });
    return { status: r.status, body: (await r.json()) as unknown };
  }, url, withCsrf);

  it('before any user exists, the sign-in page gives the command that creates the first one', async () => {
    await page.goto(base);
    await page.waitForSelector('#first-user');
    assert.equal(await page.$eval('.notice h2', (el) => el.textContent), 'No user exists yet');
    assert.equal(await page.$eval('.notice pre', (el) => el.textContent), 'carte user add NAME --role admin');
  });

  it('an operator signs in and sees the running service on the overview', async () => {
    await addUser(e, 'alice', 'operator', PASSWORD);
    await addUser(e, 'vic', 'viewer', PASSWORD);
    await addUser(e, 'ada', 'admin', PASSWORD);
    await page.reload();
    await signIn(page, 'alice', PASSWORD);
    assert.equal(await page.$eval('header.top .who', (el) => el.textContent), 'alice operator');
    await eventually(async () => (await page.$$eval('tr[data-service=web] td', (tds) => tds.map((td) => td.textContent)))[0] === '2/2', 20_000, 'web 2/2 on the overview');
    const cells = () => page.$$eval('tr[data-service=web] td', (tds) => tds.map((td) => td.textContent));
    assert.equal((await cells())[1], 'Converged');
    // CPU needs two samples of the collector (a rate); then the row has every figure.
    await eventually(async () => (await cells())[3] !== '—', 60_000, "web's CPU on the overview");
    assert.match((await cells())[4]!, /^\d+(\.\d)? (KiB|MiB)$/);
    await page.waitForSelector('section li[data-reason]');
    await shot(page, 'dashboard-overview.png');
  });

  it("the service page draws CPU and memory charts with readings of the service's instances", async () => {
    await page.click('a[href="#/services/web"]');
    await page.waitForSelector('figure.chart canvas');
    assert.equal(await page.title(), 'web — carte');
    assert.deepEqual(Object.keys(await chartPoints(page)), ['CPU', 'Memory', 'Network', 'Block I/O', 'Requests']);
    // Two readings make a line (one is a dot).
    await eventually(async () => {
      const p = await chartPoints(page);
      return p.CPU! >= 2 && p.Memory! >= 2 && p.Network! >= 2;
    }, 90_000, 'readings on the CPU, memory and network charts');
    assert.deepEqual(await page.$$eval('tr[data-instance] th', (ths) => ths.map((th) => th.textContent)), ['web-1', 'web-2']);
    // One line per instance on request.
    await page.click('input[name=mode]:not(:checked)');
    await eventually(async () => (await page.$$eval('figure[data-chart=CPU] .u-legend .u-series .u-label', (ls) => ls.map((l) => l.textContent))).join(',') === 'Time,web-1,web-2', 20_000, 'a CPU line per instance');
    await page.click('input[name=mode]:not(:checked)');
    await eventually(async () => (await page.$$eval('figure[data-chart=CPU] .u-legend .u-series .u-label', (ls) => ls.map((l) => l.textContent))).join(',') === 'Time,CPU', 20_000, "the service's CPU line");
    // An instance's logs (busybox httpd -f writes nothing: the panel says so).
    await page.click('tr[data-instance=web-1] button.link');
    await page.waitForSelector('section.logs h3');
    assert.equal(await page.$eval('section.logs h3', (el) => el.textContent), 'Logs of web-1 (last 200 lines)');
    await eventually(async () => (await page.$eval('section.logs pre', (el) => el.textContent)) === '(no output)', 10_000, 'the logs of web-1');
    await page.click('xpath/.//section[contains(@class,"logs")]//button[text()="Close"]');
  });

  it("a refused action shows the server's reason and its status on the page", async () => {
    const rollback = await page.waitForSelector('xpath/.//section[@aria-label="Actions"]/button[text()="Roll back"]');
    await rollback!.click();
    await page.waitForSelector('.actions .status.error');
    assert.equal(await page.$eval('.actions .status.error', (el) => el.textContent), 'service "web" has no earlier revision to roll back to (HTTP 409)');
    assert.equal(revision(), 1);
  });

  it('an operator restarts the service from its page and sees the event arrive on the live stream', async () => {
    // For the docs' screenshot only: a minute and a half of readings before the restart, so the lines show.
    if (process.env.CARTE_DOC_SCREENSHOTS === '1') await eventually(async () => (await chartPoints(page)).CPU! >= 90, 150_000, '90 CPU readings');
    const before = revision();
    const restart = await page.waitForSelector('xpath/.//section[@aria-label="Actions"]/button[text()="Restart"]');
    await restart!.click();
    await page.waitForSelector('.actions .status.ok');
    assert.equal(await page.$eval('.actions .status', (el) => el.textContent), `service/web restarting (revision ${before + 1})`);
    assert.equal(revision(), before + 1);
    const event = await page.waitForSelector('li[data-reason=RestartRequested]', { timeout: 20_000 });
    assert.match((await event!.evaluate((el) => el.textContent))!, new RegExp(`service/web RestartRequested revision ${before + 1}: every instance is replaced, one by one$`));
    // The screenshot: the last 5 minutes, with the deploy and restart markers.
    await page.select('.chart-controls select', String(5 * 60_000));
    await page.waitForSelector('.charts[data-window="300000"]');
    await page.waitForSelector('details.markers');
    await page.screenshot({ path: path.join(OUT, 'dashboard-service.png'), fullPage: true });
    if (process.env.CARTE_DOC_SCREENSHOTS === '1') fs.copyFileSync(path.join(OUT, 'dashboard-service.png'), path.join(ROOT, 'docs', 'img', 'dashboard-service.png'));
    // The overview's recent events come only from the stream (/api/events/stream).
    await page.click('nav a[href="#/"]');
    await page.waitForSelector('section li[data-reason=RestartRequested]', { timeout: 20_000 });
  });

  it('a viewer sees no actions, and a restart it sends anyway is refused with 403 and changes nothing', async () => {
    const context = await browser!.createBrowserContext();
    try {
      const viewer = await context.newPage();
      await viewer.goto(`${base}/#/services/web`);
      await signIn(viewer, 'vic', PASSWORD);
      await viewer.waitForSelector('.role-note');
      assert.equal(await viewer.$eval('.role-note', (el) => el.textContent), 'You can look, not act: actions need the operator role.');
      assert.equal(await viewer.$('section[aria-label=Actions]'), null);
      assert.equal(await viewer.$('xpath/.//button[text()="Sync now"]'), null);
      // On a phone's width the page reflows: nothing but the tables scrolls sideways.
      await viewer.setViewport({ width: 390, height: 844 });
      await viewer.waitForSelector('figure.chart canvas');
      // The charts are redrawn at the new width when the resize reaches them (a frame or more later on a busy machine).
      await viewer.waitForFunction('document.documentElement.scrollWidth === 390', { timeout: 10_000 }).catch(() => undefined);
      assert.equal(await viewer.evaluate('document.documentElement.scrollWidth'), 390);
      await viewer.screenshot({ path: path.join(OUT, 'dashboard-phone.png'), fullPage: true });
      const before = revision();
      const r = await postFromPage(viewer, '/api/services/web/restart', true);
      assert.deepEqual(r, { status: 403, body: { error: 'vic has the viewer role: this needs operator' } });
      assert.equal(revision(), before);
    } finally {
      await context.close();
    }
  });

  it("a POST without the session's CSRF token is refused with 403 and changes nothing", async () => {
    const before = revision();
    const r = await postFromPage(page, '/api/services/web/restart', false);
    assert.deepEqual(r, { status: 403, body: { error: 'the x-csrf-token header is missing or wrong: reload the page (scripts: use a bearer token)' } });
    assert.equal(revision(), before);
  });

  it("an admin's audit page lists the operator's restart and the viewer's refusal", async () => {
    const context = await browser!.createBrowserContext();
    try {
      const admin = await context.newPage();
      await admin.goto(`${base}/#/audit`);
      await signIn(admin, 'ada', PASSWORD);
      await admin.waitForSelector('table.audit tbody tr');
      const rows = await admin.$$eval('table.audit tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(1, 6).map((td) => td.textContent)));
      assert.ok(rows.some((r) => r.join('|') === 'alice (user)|dashboard|restart|service/web|ok'), JSON.stringify(rows));
      assert.ok(rows.some((r) => r.join('|') === 'vic (user)|dashboard|restart|service/web|refused'), JSON.stringify(rows));
    } finally {
      await context.close();
    }
  });

  it('a firing alert shows in the banner on every view', async () => {
    fs.writeFileSync(path.join(manifests, 'hog.yaml'), HOG);
    const banner = await page.waitForSelector('.alerts-banner li', { timeout: 60_000 });
    assert.match((await banner!.evaluate((el) => el.textContent))!, /^warning memory-high instance\/hog-1: .+ since \d\d:\d\d:\d\d$/);
    assert.equal(await page.$eval('.alerts-banner > strong', (el) => el.textContent), '1 alert firing');
    await page.click('a[href="#/services/web"]');
    await page.waitForSelector('.alerts-banner li');
  });
});
