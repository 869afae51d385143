import { accessSync, constants } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (package `chromium`), or the binary CHROMIUM_PATH names. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Hosts a page may call outside this service: web fonts, which fall back to local ones. */
export const FONT_HOSTS = new Set(['fonts.googleapis.com', 'fonts.gstatic.com']);

/**
 * Starts headless Chromium through playwright-core (never a browser it downloads itself). A
 * missing binary is an error, not a skip: the browser tests are part of `npm test`.
 */
export async function launchChromium(): Promise<Browser> {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
  } catch {
    throw new Error(
      `No Chromium at ${CHROMIUM_PATH}: install Debian's package (apt-get install -y chromium; ` +
        '.ci/run does this) or set CHROMIUM_PATH to a Chromium binary.',
    );
  }
  // playwright-core adds --headless, --no-sandbox (as root) and a fresh --user-data-dir itself.
  // The rest keep Chromium from calling Google's services, which a closed network refuses.
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    timeout: 15_000,
    args: [
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** One network event a page caused. */
export interface NetworkEvent {
  kind: 'request' | 'response' | 'requestfailed';
  method: string;
  url: string;
  resourceType: string;
  /** The HTTP status (responses only). */
  status?: number;
  /** Chromium's error text (failed requests only). */
  failure?: string;
}

/**
 * Records every request, response and failed request of `context`, and aborts each request that
 * leaves `origin`: what the page renders must not depend on the internet, whether or not the
 * machine running the test can reach it.
 */
export async function recordNetwork(
  context: BrowserContext,
  origin: string,
): Promise<NetworkEvent[]> {
  const events: NetworkEvent[] = [];
  context.on('request', (r) => {
    events.push({
      kind: 'request',
      method: r.method(),
      url: r.url(),
      resourceType: r.resourceType(),
    });
  });
  context.on('response', (res) => {
    const r = res.request();
    events.push({
      kind: 'response',
      method: r.method(),
      url: r.url(),
      resourceType: r.resourceType(),
      status: res.status(),
    });
  });
  context.on('requestfailed', (r) => {
    events.push({
      kind: 'requestfailed',
      method: r.method(),
      url: r.url(),
      resourceType: r.resourceType(),
      failure: r.failure()?.errorText ?? 'unknown',
    });
  });
  await context.route(
    (url) => url.origin !== origin && url.protocol !== 'data:',
    (route) => route.abort('internetdisconnected'),
  );
  return events;
}

/**
 * What is wrong in `events`: a request to this service that failed or was answered with an
 * error status, or a request to any other host but a font host.
 */
export function networkProblems(events: NetworkEvent[], origin: string): string[] {
  const problems: string[] = [];
  for (const e of events) {
    const url = new URL(e.url);
    const line = `${e.kind} ${e.method} ${e.url} (${e.resourceType})`;
    if (url.origin === origin) {
      if (e.kind === 'requestfailed') problems.push(`${line} failed: ${e.failure}`);
      if (e.status !== undefined && e.status >= 400) problems.push(`${line} answered ${e.status}`);
    } else if (url.protocol !== 'data:' && !FONT_HOSTS.has(url.hostname)) {
      problems.push(`${line}: not this service and not a font host`);
    }
  }
  return problems;
}
