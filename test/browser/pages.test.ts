import { randomUUID } from 'node:crypto';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, removeKeys, uniquePrefix } from '../helpers/env.js';
import { startApiProcess, type ApiProcess } from '../helpers/processes.js';
import { launchChromium, networkProblems, recordNetwork, type NetworkEvent } from './chromium.js';

const ADMIN_TOKEN = randomUUID();
// Each step takes 1-4 s on a quiet machine; the margin is for a shared, loaded one.
const STEP_MS = 20_000;

describe('the pages render offline in Debian Chromium (real API process)', () => {
  const prefix = uniquePrefix('browser');
  let api: ApiProcess | undefined;
  let browser: Browser | undefined;
  // Kept for the tests to throw: a failed beforeAll would only mark them skipped.
  let setupError: Error | undefined;

  beforeAll(async () => {
    const [started, launched] = await Promise.allSettled([
      startApiProcess({
        REDIS_URL,
        QUEUE_PREFIX: prefix,
        ADMIN_TOKEN,
        // With API keys on, the pages must still open without one.
        API_KEYS: 'browser-test-key',
        MODEL_RESCAN_MS: '0',
      }),
      launchChromium(),
    ]);
    if (started.status === 'fulfilled') api = started.value;
    if (launched.status === 'fulfilled') browser = launched.value;
    const failed = [started, launched].find((r) => r.status === 'rejected');
    if (failed) {
      const reason: unknown = failed.reason;
      setupError = reason instanceof Error ? reason : new Error(String(reason));
    }
  }, 45_000);

  afterAll(async () => {
    await browser?.close();
    await api?.stop(5000);
    await removeKeys(prefix);
  });

  /** Opens `path` in a fresh context, runs `check` on the page, and returns the network log. */
  async function visit(
    path: string,
    check: (page: Page) => Promise<void>,
    options: BrowserContextOptions = {},
  ): Promise<{ events: NetworkEvent[]; pageErrors: string[] }> {
    if (setupError) throw setupError;
    if (!api || !browser) throw new Error('no API process or browser');
    const context = await browser.newContext(options);
    try {
      const events = await recordNetwork(context, api.url);
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (err) => pageErrors.push(err.message));
      const res = await page.goto(`${api.url}${path}`, { timeout: STEP_MS });
      expect(res?.status()).toBe(200);
      await check(page);
      // Late requests (polling, fonts, icons) are recorded too.
      await page.waitForLoadState('networkidle', { timeout: STEP_MS });
      // A copy: closing the context aborts in-flight polls, which is no fault of the page.
      return { events: [...events], pageErrors };
    } finally {
      await context.close();
    }
  }

  /** Whether the service answered 200 to a request for `path` (any query string). */
  const okFromService = (events: NetworkEvent[], path: string) =>
    events.some((e) => {
      const url = new URL(e.url);
      return (
        e.kind === 'response' &&
        url.origin === api?.url &&
        url.pathname === path &&
        e.status === 200
      );
    });

  it('/docs lists the operations, with every asset served by the API itself', async () => {
    const { events, pageErrors } = await visit('/docs', async (page) => {
      const predict = page.locator('.opblock-summary-path[data-path="/v1/models/{model}/predict"]');
      await predict.first().waitFor({ state: 'visible', timeout: STEP_MS });
      expect(await page.locator('.info .title').innerText()).toMatch(/^inferq/);
    });
    expect(networkProblems(events, api!.url)).toEqual([]);
    expect(pageErrors).toEqual([]);
    for (const path of [
      '/docs/assets/swagger-ui.css',
      '/docs/assets/swagger-ui-bundle.js',
      '/docs/assets/init.js',
      '/openapi.json',
    ]) {
      expect(okFromService(events, path), path).toBe(true);
    }
  }, 45_000);

  it('/admin/queues (Bull Board) lists both queues after a Basic login with the token', async () => {
    const { events, pageErrors } = await visit(
      '/admin/queues',
      async (page) => {
        for (const queue of ['predict', 'batch']) {
          const link = page.locator(`a[href$="/queue/${queue}"]`, { hasText: queue });
          await link.first().waitFor({ state: 'visible', timeout: STEP_MS });
        }
      },
      // Only on the service's own origin: the token is never offered to another host.
      { httpCredentials: { username: 'admin', password: ADMIN_TOKEN, origin: api?.url } },
    );
    expect(networkProblems(events, api!.url)).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(okFromService(events, '/admin/queues/api/queues')).toBe(true);
  }, 45_000);
});
