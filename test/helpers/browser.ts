// Headless Chromium for the dashboard's browser test and first-load benchmark:
// Debian's /usr/bin/chromium driven by puppeteer-core (no browser download).
// --no-sandbox because the root tiers run as root, which Chromium's sandbox refuses.
import fs from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { E2eEnv } from './e2e.js';
import { eventually } from './linux.js';

export const CHROMIUM = process.env.CARTE_CHROMIUM ?? '/usr/bin/chromium';

export function haveChromium(): boolean {
  return fs.existsSync(CHROMIUM);
}

export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
  });
}

export { freePort } from './metaverse.js';

/** Adds a dashboard user with `carte user add`, the password piped on stdin as an admin would. */
export async function addUser(e: E2eEnv, name: string, role: 'viewer' | 'operator' | 'admin', password: string): Promise<void> {
  const r = await e.carte(['user', 'add', name, '--role', role], { input: `${password}\n` });
  if (r.code !== 0) throw new Error(`carte user add ${name} failed: ${r.stderr}`);
}

/** Waits until the daemon's HTTP server answers /api/session. */
export async function waitForDashboard(base: string, ms = 20_000): Promise<void> {
  await eventually(async () => {
    try {
      return (await fetch(`${base}/api/session`)).ok;
    } catch {
      return false;
    }
  }, ms, `the dashboard at ${base}`);
}

/** Fills the sign-in form and waits for the signed-in header. */
export async function signIn(page: Page, name: string, password: string): Promise<void> {
  await page.waitForSelector('form[aria-label="Sign in"]');
  await page.type('input[name=name]', name);
  await page.type('input[name=password]', password);
  await Promise.all([page.waitForSelector('header.top .who'), page.click('form[aria-label="Sign in"] button[type=submit]')]);
}

/** Readings drawn by each chart of the page, by title (the Chart component's data-points). */
export function chartPoints(page: Page): Promise<Record<string, number>> {
  return page.$$eval('figure.chart', (figs) => Object.fromEntries(figs.map((f) => [f.getAttribute('data-chart') ?? '', Number(f.getAttribute('data-points'))])));
}
