/**
 * A real browser for the console's tests: Debian's chromium, driven headless
 * by playwright-core (which never downloads a browser of its own here), and
 * what the tests ask of every page: axe-core's serious and critical
 * violations, and the bytes its first load transferred.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.APIKEY_OPERATOR_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium package (.ci/run does)`);
  // Chromium's sandbox cannot start as root (CI runs as root); elsewhere it stays on.
  const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation { id: string; impact: string; help: string; nodes: number }

/**
 * axe-core run in the page. It is evaluated through the DevTools protocol, which the page's
 * Content-Security-Policy does not govern, so the console's CSP stays as strict as it is.
 */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const g = globalThis as unknown as {
      axe: { run(ctx: unknown, o: object): Promise<{ violations: { id: string; impact: string; help: string; nodes: unknown[] }[] }> };
      document: unknown;
    };
    const r = await g.axe.run(g.document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }));
  });
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export interface PageLoad { bytes: number; requests: string[]; foreign: string[] }

/**
 * Loads `url` in a fresh context (nothing cached) and adds up what every response of that first
 * load transferred, headers and bodies, as the browser counted them.
 */
export async function measureFirstLoad(browser: Browser, storageState: Awaited<ReturnType<BrowserContext['storageState']>>, url: string): Promise<PageLoad> {
  const context = await browser.newContext({ storageState });
  const page = await context.newPage();
  const responses: Promise<number>[] = [];
  const requests: string[] = [];
  const origin = new URL(url).origin;
  page.on('request', (r) => requests.push(r.url()));
  page.on('requestfinished', (r) => {
    responses.push(r.sizes().then((s) => s.responseBodySize + s.responseHeadersSize));
  });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForLoadState('networkidle');
  const bytes = (await Promise.all(responses)).reduce((a, b) => a + b, 0);
  await context.close();
  return { bytes, requests, foreign: requests.filter((r) => !r.startsWith(origin) && !r.startsWith('data:')) };
}

/**
 * What the page in front of the browser weighed on its first load, measured by the browser
 * (Resource Timing): the document and every resource it loaded, with a stylesheet or script that
 * came from the cache counted at its full size as a first visit would pay it.
 */
export async function pageWeight(page: Page): Promise<number> {
  return page.evaluate(() => {
    const perf = (globalThis as unknown as { performance: { getEntriesByType(t: string): { transferSize: number; encodedBodySize: number }[] } }).performance;
    const entries = [...perf.getEntriesByType('navigation'), ...perf.getEntriesByType('resource')];
    // 300 bytes: about what the headers of one answer of the console take.
    return entries.reduce((sum, e) => sum + Math.max(e.transferSize, e.encodedBodySize + 300), 0);
  });
}
