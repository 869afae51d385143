/** How the lock thread reaches Redis: plain data (no functions cross the thread boundary). */
export type LockConnection =
  | { kind: 'single'; url: string; options: Record<string, unknown> }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; options: Record<string, unknown> };

/** workerData of the lock thread. */
export interface LockThreadInit {
  connection: LockConnection;
  /** TTL each renewal gives a lock, milliseconds (WORKER_LOCK_MS). */
  lockMs: number;
  /** Period of the renewal rounds, milliseconds. */
  renewMs: number;
  /** Renewals stop when the main thread has not beaten for this long, milliseconds (WORKER_HUNG_MS). */
  hungMs: number;
  /**
   * An adopted job no hold confirms within this long is let go (its fetch's reply was lost),
   * milliseconds; default max(2 x lockMs, 10 s).
   */
  confirmMs?: number;
}

/** Messages to the lock thread. */
export type LockRequest =
  | {
      type: 'hold';
      /** `<prefix>:<queue>:` (BullMQ's key of the queue, with its trailing colon). */
      queueKey: string;
      jobId: string;
      token: string;
      /** When Redis gave the job to this worker (BullMQ `processedOn`), ms since the epoch. */
      fetchedAt?: number;
    }
  /** Stop renewing; `token` (of a job abandoned, see LockKeeper.processor): adoption leaves it alone. */
  | { type: 'release'; queueKey: string; jobId: string; token?: string }
  /**
   * Jobs of this queue whose lock token starts with `<workerId>:` are this worker's (BullMQ's
   * tokens): while the worker is late, the thread adopts them, fetched ones not yet held too.
   */
  | { type: 'watch'; queueKey: string; workerId: string }
  /** Keep `key` set (with the lock TTL) while the worker lives: a fast-lane consumer's alive key. */
  | { type: 'alive'; key: string }
  | { type: 'unalive'; key: string }
  | { type: 'beat' };

/** Messages from the lock thread. */
export type LockEvent =
  /** The job is still active but its lock is gone or another worker's: it may run twice. */
  | { type: 'lost'; queueKey: string; jobId: string }
  /** The main thread stopped beating: renewals stopped, its jobs will go to other workers. */
  | { type: 'hung'; sinceMs: number }
  | { type: 'error'; message: string };
