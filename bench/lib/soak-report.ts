import { percentile, round } from './stats.js';
import type { Kind, Outcome } from './soak-traffic.js';

/** Kinds whose latency is reported (hostile requests and batches are checked, not timed). */
const TIMED: Kind[] = ['hit', 'miss', 'job', 'ws'];

/** One minute of a soak. */
export interface MinuteRow {
  minute: number;
  ops: number;
  errors: number;
  /** p99 latency of each timed kind, ms. */
  p99: Partial<Record<Kind, number>>;
  /** p99 over every timed kind, ms. */
  p99All: number;
}

/** Counts of failures by failure kind, and by detail (e.g. `hostile:oversize 500`). */
export interface ErrorCounts {
  byFailure: Record<string, number>;
  byDetail: Record<string, number>;
}

/** Collects outcomes of a soak, by minute. */
export class SoakRecorder {
  private readonly minutes: Outcome[][] = [];

  constructor(private readonly startedAt: number) {}

  add(outcome: Outcome): void {
    const m = Math.max(0, Math.floor((outcome.at - this.startedAt) / 60_000));
    (this.minutes[m] ??= []).push(outcome);
  }

  /** Everything recorded. */
  all(): Outcome[] {
    return this.minutes.flat();
  }

  /** The row of minute `m` (0-based). */
  minuteRow(m: number): MinuteRow {
    const outcomes = this.minutes[m] ?? [];
    const ok = outcomes.filter((o) => !o.failure);
    const p99: Partial<Record<Kind, number>> = {};
    for (const kind of TIMED) {
      const ms = ok.filter((o) => o.kind === kind).map((o) => o.ms);
      if (ms.length > 0) p99[kind] = round(percentile(ms, 99), 1);
    }
    const timed = ok.filter((o) => TIMED.includes(o.kind)).map((o) => o.ms);
    return {
      minute: m + 1,
      ops: outcomes.length,
      errors: outcomes.length - ok.length,
      p99,
      p99All: round(percentile(timed, 99), 1),
    };
  }

  /** Rows of every minute so far. */
  rows(): MinuteRow[] {
    return this.minutes.map((_, m) => this.minuteRow(m));
  }

  errors(): ErrorCounts {
    const byFailure: Record<string, number> = {};
    const byDetail: Record<string, number> = {};
    for (const o of this.all()) {
      if (!o.failure) continue;
      byFailure[o.failure] = (byFailure[o.failure] ?? 0) + 1;
      const key = `${o.kind}: ${o.detail ?? o.failure}`;
      byDetail[key] = (byDetail[key] ?? 0) + 1;
    }
    return { byFailure, byDetail };
  }

  /** Operations by kind, and how many of each failed. */
  kinds(): Record<string, { ops: number; failed: number; p50: number; p99: number }> {
    const out: Record<string, { ops: number; failed: number; p50: number; p99: number }> = {};
    for (const o of this.all()) {
      const k = (out[o.kind] ??= { ops: 0, failed: 0, p50: NaN, p99: NaN });
      k.ops++;
      if (o.failure) k.failed++;
    }
    for (const kind of Object.keys(out)) {
      const ms = this.all()
        .filter((o) => o.kind === kind && !o.failure)
        .map((o) => o.ms);
      const k = out[kind];
      if (k) {
        k.p50 = round(percentile(ms, 50), 1);
        k.p99 = round(percentile(ms, 99), 1);
      }
    }
    return out;
  }
}

/** One printed line of a minute row. */
export function formatMinute(row: MinuteRow): string {
  const kinds = TIMED.map((k) => `${k} ${row.p99[k] ?? '-'}`).join(', ');
  return (
    `minute ${String(row.minute).padStart(2)}: ${String(row.ops).padStart(6)} ops, ` +
    `${row.errors} errors, p99 ${row.p99All} ms (${kinds})`
  );
}
