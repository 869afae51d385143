// The ceiling for a cache hit: a bare Hono route that does one Redis GET and answers JSON.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { Redis } from 'ioredis';

const [redisUrl = 'redis://127.0.0.1:6379', port = '0'] = process.argv.slice(2);
const redis = new Redis(redisUrl);
await redis.set(
  'bench:bare',
  JSON.stringify({ prediction: 1, label: 'benign', confidence: 0.98, probabilities: [0.02, 0.98] }),
);
const app = new Hono();
app.post('/get', async (c) => {
  const value = await redis.get('bench:bare');
  return c.json({ cached: true, ...(JSON.parse(value ?? '{}') as object) });
});
serve({ fetch: app.fetch, port: Number(port), hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`listening ${info.port}\n`);
});
process.on('SIGTERM', () => {
  redis.disconnect();
  process.exit(0);
});
