// The ceiling for a cache hit: a bare Hono route that does what a hit needs and nothing else —
// the service's own request validation (zod schema, width check, float32 conversion), the
// SHA-256 input hash and one Redis GET — and answers the cached JSON. No middleware, no metrics.
// Each step the cheapest known way, as the service may take it too: the body read straight from
// Node's request (a web Request costs streams and an abort signal per request) and an
// auto-pipelined Redis connection.
// Usage: bare-server.ts <redisUrl> <port>; prints "listening <port>" once it answers.
import type { IncomingMessage } from 'node:http';
import { serve, type HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
import { inputHash } from '../src/shared/input-hash.js';
import { parseOrThrow, PredictRequestSchema, toInput } from '../src/shared/schemas.js';

const [redisUrl = 'redis://127.0.0.1:6379', port = '0'] = process.argv.slice(2);
const MODEL = 'breast-cancer';
const VERSION = '1.0.0';
const WIDTH = 30;
const redis = new Redis(redisUrl, { enableAutoPipelining: true });

function readBody(incoming: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    incoming.once('error', reject);
  });
}

const app = new Hono<{ Bindings: HttpBindings }>();
app.post('/v1/models/:model/predict', async (c) => {
  let input;
  try {
    const body = parseOrThrow(PredictRequestSchema, JSON.parse(await readBody(c.env.incoming)));
    input = toInput(body, WIDTH, 1000);
  } catch (err) {
    return c.json({ error: String(err) }, 422);
  }
  const hash = inputHash(MODEL, VERSION, input.rows, input.values);
  const cached = await redis.get(`bench-bare:cache:${hash}`);
  if (cached === null) {
    // The first request fills the cache, as a worker would; every later one is a hit.
    const result = {
      prediction: 1,
      label: 'benign',
      confidence: 0.98,
      probabilities: [0.02, 0.98],
    };
    await redis.set(`bench-bare:cache:${hash}`, JSON.stringify(result), 'EX', 3600);
    return c.json({
      id: hash.slice(0, 24),
      model: MODEL,
      version: VERSION,
      cached: false,
      ...result,
    });
  }
  const result = JSON.parse(cached) as object;
  return c.json({ id: hash.slice(0, 24), model: MODEL, version: VERSION, cached: true, ...result });
});
serve({ fetch: app.fetch, port: Number(port), hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`listening ${info.port}\n`);
});
process.on('SIGTERM', () => {
  redis.disconnect();
  process.exit(0);
});
