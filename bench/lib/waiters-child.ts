// Waiters process: queues `n` jobs (POST /v1/jobs) while no worker runs, opens one long-poll
// (GET /v1/jobs/{id}?wait=60) per job on a socket of its own, prints {"open":n} once every poll
// is sent, then prints one JSON summary line when every poll has been answered.
// Usage: waiters-child.ts '{"apiUrl":...,"n":...,"seed":...}'
import { request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { percentile } from './stats.js';
import { uniqueRow } from './rows.js';

const { apiUrl, n, seed } = JSON.parse(process.argv[2] ?? '{}') as {
  apiUrl: string;
  n: number;
  seed: number;
};

async function queueJobs(): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < n; start += 200) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(200, n - start) }, async (_, i) => {
        const res = await fetch(`${apiUrl}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'breast-cancer',
            features: uniqueRow(seed + start + i, 30),
          }),
        });
        const body = (await res.json()) as { id?: string };
        if (res.status !== 202 || !body.id) throw new Error(`POST /v1/jobs answered ${res.status}`);
        return body.id;
      }),
    );
    ids.push(...batch);
  }
  return ids;
}

interface Answer {
  completed: boolean;
  /** HTTP status and job status of the answer, or the socket error: tallied in the summary. */
  outcome: string;
  delayMs?: number;
  error?: string;
}

// One socket per waiter (no agent pooling), as 10,000 separate clients would open.
function longPoll(id: string): { sent: Promise<void>; answer: Promise<Answer> } {
  let written: () => void = () => undefined;
  const sent = new Promise<void>((resolve) => (written = resolve));
  const answer = new Promise<Answer>((resolve) => {
    const req = request(`${apiUrl}/v1/jobs/${id}?wait=60`, { agent: false }, (res) => {
      // Timed when the answer's first body bytes arrive, before this process parses them: the
      // API may send the head of a long-poll's 200 at once and its body when the job ends.
      let answeredAt = 0;
      let text = '';
      res.on('data', (d: Buffer) => {
        answeredAt ||= Date.now();
        text += d.toString();
      });
      res.on('end', () => {
        const outcome = (status: string) => `${res.statusCode} ${status}`;
        try {
          const body = JSON.parse(text) as { status?: string; finishedAt?: string };
          resolve({
            completed: body.status === 'completed',
            outcome: outcome(body.status ?? 'no status'),
            delayMs: body.finishedAt ? answeredAt - Date.parse(body.finishedAt) : undefined,
          });
        } catch {
          resolve({ completed: false, outcome: outcome('not JSON') });
        }
      });
    });
    req.on('error', (err) => {
      written();
      resolve({ completed: false, outcome: err.message, error: err.message });
    });
    // A poll waits at most 60 s for its job; one still open long after has been lost.
    req.setTimeout(120_000, () => req.destroy(new Error('no answer within 120 s')));
    req.end(written);
  });
  return { sent, answer };
}

async function main(): Promise<void> {
  const ids = await queueJobs();
  const polls: Array<Promise<Answer>> = [];
  // Opened 250 at a time, each group once sent: thousands of connects in one tick would only
  // overflow the API's listen backlog (511), a client-side artefact.
  for (let start = 0; start < ids.length; start += 250) {
    const group = ids.slice(start, start + 250).map(longPoll);
    polls.push(...group.map((p) => p.answer));
    await Promise.all(group.map((p) => p.sent));
  }
  process.stdout.write(`{"open":${ids.length}}\n`);
  // This process is timed too: an answer is stamped when its loop gets to it, so its own lag
  // and CPU are part of every delay it reports.
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const cpuAtOpen = process.cpuUsage();
  const answers = await Promise.all(polls);
  lag.disable();
  const cpu = process.cpuUsage(cpuAtOpen);
  const delays = answers.flatMap((a) => (a.delayMs === undefined ? [] : [a.delayMs]));
  const errors = answers.filter((a) => a.error);
  const outcomes: Record<string, number> = {};
  for (const a of answers) outcomes[a.outcome] = (outcomes[a.outcome] ?? 0) + 1;
  process.stdout.write(
    JSON.stringify({
      waiters: n,
      answered: answers.length - errors.length,
      completed: answers.filter((a) => a.completed).length,
      p50DelayMs: percentile(delays, 50),
      p99DelayMs: percentile(delays, 99),
      maxDelayMs: percentile(delays, 100),
      clientLagP99Ms: lag.percentile(99) / 1e6,
      clientCpuS: (cpu.user + cpu.system) / 1e6,
      firstError: errors[0]?.error,
      outcomes,
    }) + '\n',
  );
}

main().catch((err: unknown) => {
  process.stdout.write(JSON.stringify({ error: String(err) }) + '\n');
  process.exit(1);
});
