// Dashboard first load (root): a real daemon with a few services, the page in
// headless Chromium. For each run, a fresh browser context (empty cache,
// signed in through the API first) loads the overview, then a service page,
// and reads the page's own marks: navigation start → services table drawn,
// and → every chart of the service page drawn with its series. Goal: ≤ 1 s.
// Also prints the bundle's size (raw and gzip) and the bytes one load moves.
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser } from 'puppeteer-core';
import { addUser, chartPoints, freePort, haveChromium, launchBrowser, waitForDashboard } from '../test/helpers/browser.js';
import { buildBusybox, makeE2eEnv, readiness, webManifest } from '../test/helpers/e2e.js';
import { eventually } from '../test/helpers/linux.js';
import { ROOT, tempDir } from '../test/helpers/paths.js';

if (process.getuid?.() !== 0) {
  console.log('dashboard benchmark skipped: it needs root');
  process.exit(0);
}
if (!haveChromium()) {
  console.log('dashboard benchmark skipped: no /usr/bin/chromium (apt-get install chromium)');
  process.exit(0);
}

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const GOAL_MS = 1000;
const PASSWORD = 'bench password 1';
const SERVICES: Array<[string, number]> = [['web', 2], ['api', 2], ['worker', 1], ['cache', 1]];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const max = (xs: number[]) => Math.max(...xs);

function bundleSizes(): string {
  return ['index.html', 'app.js', 'app.css'].map((f) => {
    const body = fs.readFileSync(path.join(ROOT, 'dist', 'web', f));
    return `${f} ${(body.length / 1024).toFixed(1)} KiB (${(gzipSync(body).length / 1024).toFixed(1)} KiB gzip)`;
  }).join(', ');
}

interface Load { overviewMs: number; chartsMs: number; bytes: number; points: number; timeline: string }

/** One cold load in a fresh context: sign in by the API (not timed), then the overview, then web's page. */
async function coldLoad(browser: Browser, base: string): Promise<Load> {
  const context = await browser.createBrowserContext();
  try {
    const page = await context.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    // Sign in on an API URL so the page's files are not cached yet.
    await page.goto(`${base}/api/session`);
    const ok = await page.evaluate(async (pw: string) => (await fetch('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench', password: pw }) })).ok, PASSWORD);
    if (!ok) throw new Error('signing in failed');
    let bytes = 0;
    page.on('response', (r) => {
      const len = Number(r.headers()['content-length'] ?? 0);
      bytes += len;
    });
    await page.goto(`${base}/`);
    await page.waitForFunction(() => performance.getEntriesByName('carte:overview-drawn').length > 0, { timeout: 30_000 });
    const overviewMs = await page.evaluate(() => performance.getEntriesByName('carte:overview-drawn')[0]!.startTime);
    // A service page as a first load (a bookmark opened): a new tab with the cache off, so its files are fetched again.
    const svc = await context.newPage();
    await svc.setViewport({ width: 1280, height: 900 });
    await svc.setCacheEnabled(false);
    await svc.goto(`${base}/#/services/web`);
    await svc.waitForFunction(() => performance.getEntriesByName('carte:charts-drawn').length > 0, { timeout: 30_000 });
    const chartsMs = await svc.evaluate(() => performance.getEntriesByName('carte:charts-drawn')[0]!.startTime);
    const points = Object.values(await chartPoints(svc)).reduce((a, b) => a + b, 0);
    // Where the service page's time went: each request's start → end, and the page's milestones.
    // (A string: this file is compiled without the DOM's types.)
    const timeline = await svc.evaluate(`(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const rows = ['document ' + nav.responseEnd.toFixed(0), 'domContentLoaded ' + nav.domContentLoadedEventEnd.toFixed(0)];
      for (const r of performance.getEntriesByType('resource')) {
        rows.push(r.name.replace(location.origin, '').replace(/[?].*metric=(\\w+).*/, '?$1') + ' ' + r.startTime.toFixed(0) + '→' + r.responseEnd.toFixed(0));
      }
      for (const m of performance.getEntriesByType('mark')) rows.push(m.name + ' ' + m.startTime.toFixed(0));
      return rows.join(', ');
    })()`) as string;
    return { overviewMs, chartsMs, bytes, points, timeline };
  } finally {
    await context.close();
  }
}

const e = makeE2eEnv();
const manifests = tempDir('carte-bench-dash-');
let browser: Browser | undefined;
try {
  await buildBusybox(e);
  for (const [name, replicas] of SERVICES) fs.writeFileSync(path.join(manifests, `${name}.yaml`), webManifest({ name, replicas }));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  e.daemon(['--watch', manifests, '--resync', '5s', '--http', `127.0.0.1:${port}`]);
  await waitForDashboard(base);
  await addUser(e, 'bench', 'viewer', PASSWORD);
  const total = SERVICES.reduce((n, [, r]) => n + r, 0);
  await eventually(async () => SERVICES.every(([name, r]) => readiness(e.state(), name).filter((i) => i.ready).length === r), 60_000, `${total} ready instances`);
  // Let the collector take a few samples, so the charts have lines to draw.
  await new Promise((r) => setTimeout(r, 10_000));
  browser = await launchBrowser();
  await coldLoad(browser, base); // warm-up: Chromium's own first start of a renderer
  const loads: Load[] = [];
  for (let i = 0; i < RUNS; i++) loads.push(await coldLoad(browser, base));
  const ov = loads.map((l) => l.overviewMs);
  const ch = loads.map((l) => l.chartsMs);
  console.log(`Dashboard first load (headless Chromium, ${SERVICES.length} services / ${total} instances, ${RUNS} runs, each a fresh context with an empty cache)`);
  console.log(`bundle: ${bundleSizes()}`);
  console.log(`overview drawn:      median ${median(ov).toFixed(0)} ms, max ${max(ov).toFixed(0)} ms (bytes moved ${median(loads.map((l) => l.bytes))})`);
  console.log(`service charts drawn: median ${median(ch).toFixed(0)} ms, max ${max(ch).toFixed(0)} ms (${median(loads.map((l) => l.points))} readings drawn), goal ≤ ${GOAL_MS} ms: ${median(ch) <= GOAL_MS ? 'met' : 'NOT met'}`);
  if (process.env.BENCH_DETAIL === '1') console.log(`a service page's timeline (ms from navigation start): ${loads.at(-1)!.timeline}`);
} finally {
  await browser?.close().catch(() => {});
  await e.teardown();
  fs.rmSync(manifests, { recursive: true, force: true });
}
