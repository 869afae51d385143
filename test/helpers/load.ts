/** One request sent by a load loop and how it ended. */
export interface Sample {
  /** Path of the request (which endpoint answered). */
  path?: string;
  startedAt: number;
  endedAt: number;
  /** HTTP status, or 0 when no answer came before the client gave up. */
  status: number;
  retryAfter: string | null;
  code?: string;
  /** Job id of a 202 or a 200. */
  id?: string;
}

/** Sends one JSON POST and records how it ended. */
export async function sample(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  giveUpMs = 20_000,
): Promise<Sample> {
  const startedAt = Date.now();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(giveUpMs),
    });
    const parsed = (await res.json().catch(() => ({}))) as {
      id?: string;
      error?: { code?: string };
    };
    return {
      path: new URL(url).pathname,
      startedAt,
      endedAt: Date.now(),
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      code: parsed.error?.code,
      id: parsed.id,
    };
  } catch {
    return {
      path: new URL(url).pathname,
      startedAt,
      endedAt: Date.now(),
      status: 0,
      retryAfter: null,
    };
  }
}

/** Runs `concurrency` loops calling `send(n)` until stopped; collects every sample. */
export function loadLoops(
  concurrency: number,
  send: (n: number) => Promise<Sample>,
  pauseMs = 0,
): { samples: Sample[]; stop(): Promise<Sample[]> } {
  const samples: Sample[] = [];
  let running = true;
  let n = 0;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      samples.push(await send(n++));
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    samples,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return samples;
    },
  };
}
