/**
 * `inferq batch` over a connection that breaks: a TCP proxy between the real CLI (a child
 * process) and the real API cuts the upload, or the results download, mid-way.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueRow } from '../helpers/fixtures.js';
import { eventually, REDIS_URL } from '../helpers/env.js';
import { createStack, type TestStack } from '../helpers/stack.js';
import { startCuttingProxy, type CuttingProxy } from './cutting-proxy.js';
import { lines, runCli, stopRunningClis } from './run-cli.js';

const ROWS = 4000;
let stack: TestStack;
let proxy: CuttingProxy;
let redis: Redis;
let dir: string;
let downloadedId = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inferq-resume-'));
  stack = await createStack({ env: { BATCH_CHUNK_ROWS: '100' } });
  const port = await stack.api.listen(0, '127.0.0.1');
  proxy = await startCuttingProxy(port);
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const body = Array.from({ length: ROWS }, (_, i) =>
    JSON.stringify({ id: `r${i}`, features: uniqueRow(70_000 + i) }),
  );
  writeFileSync(join(dir, 'rows.jsonl'), `${body.join('\n')}\n`); // ~1.3 MB
});

afterAll(async () => {
  await stopRunningClis();
  await proxy?.close();
  redis?.disconnect();
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The ids of every batch that has a key under this stack's prefix (records, rows, results). */
async function batchIds(): Promise<Set<string>> {
  const base = stack.config.QUEUE_PREFIX.replace(/[{}]/g, '');
  const ids = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `*${base}*batch*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const id = /batch:\{?([0-9a-f]{8}-[0-9a-f-]{27})/.exec(key)?.[1];
      if (id) ids.add(id);
    }
  } while (cursor !== '0');
  return ids;
}

function expectComplete(file: string): void {
  const out = lines(readFileSync(join(dir, file), 'utf8')).map(
    (l) => JSON.parse(l) as { index: number; id: string; status: string },
  );
  expect(out).toHaveLength(ROWS);
  expect(out.map((l) => l.index)).toEqual(Array.from({ length: ROWS }, (_, i) => i));
  expect(out.map((l) => l.id)).toEqual(Array.from({ length: ROWS }, (_, i) => `r${i}`));
  expect(out.every((l) => l.status === 'completed')).toBe(true);
}

describe('inferq batch over a connection that breaks', () => {
  it('sends the file again when the upload is cut, leaving one batch and no staged rows of the broken one', async () => {
    const before = await batchIds();
    const cuts = proxy.cuts();
    proxy.arm({ request: 'POST /v1/batches', afterBytes: 400_000, direction: 'upload' });
    const run = await runCli(dir, [
      'batch',
      'rows.jsonl',
      '-m',
      'breast-cancer',
      '-o',
      'up.jsonl',
      '--url',
      proxy.url,
    ]);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.code, run.stderr).toBe(0);
    expect(proxy.cuts()).toBe(cuts + 1);
    expect(run.stdout).toMatch(
      /the upload of rows\.jsonl broke .*sending it again \(attempt 2 of 5\)/,
    );
    const id = /batch (\S+) queued: 4000 rows/.exec(run.stdout)?.[1] ?? '';
    expect(id).not.toBe('');
    expectComplete('up.jsonl');
    // The broken upload's staged chunks are deleted by the server: only the batch that ran
    // remains under this producer's prefix.
    await eventually(async () => {
      const ids = await batchIds();
      return ids.size === before.size + 1 && ids.has(id);
    }, 10_000);
  });

  it('resumes the results download after the last line written when it is cut', async () => {
    const cuts = proxy.cuts();
    proxy.arm({ request: '/results HTTP/1.1', afterBytes: 150_000, direction: 'download' });
    const run = await runCli(dir, [
      'batch',
      'rows.jsonl',
      '-m',
      'breast-cancer',
      '-o',
      'down.jsonl',
      '--url',
      proxy.url,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(proxy.cuts()).toBe(cuts + 1);
    expect(run.stderr).toMatch(
      /the results stream broke after \d+ of 4000 rows .*resuming after row \d+/,
    );
    expectComplete('down.jsonl');
    downloadedId = /batch (\S+) queued/.exec(run.stdout)?.[1] ?? '';
  });

  it('resumes inferq results <id> the same way', async () => {
    expect(downloadedId).not.toBe('');
    const cuts = proxy.cuts();
    proxy.arm({ request: '/results HTTP/1.1', afterBytes: 200_000, direction: 'download' });
    const run = await runCli(dir, [
      'results',
      downloadedId,
      '-o',
      'again.jsonl',
      '--url',
      proxy.url,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(proxy.cuts()).toBe(cuts + 1);
    expect(run.stderr).toContain('resuming after row');
    expectComplete('again.jsonl');
  });
});
