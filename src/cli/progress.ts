import cliProgress from 'cli-progress';

/** Where a batch stands. */
export interface ProgressSnapshot {
  completed: number;
  failed: number;
  total: number;
}

/** Shows a batch's progress. */
export interface ProgressDisplay {
  update(snapshot: ProgressSnapshot): void;
  stop(): void;
}

/** Options of the progress display. */
export interface ProgressOptions {
  label: string;
  total: number;
  /** Default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Least milliseconds between two plain progress lines (not a TTY); default 5000. */
  plainEveryMs?: number;
}

function barDisplay(options: ProgressOptions, stream: NodeJS.WriteStream): ProgressDisplay {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${options.label} [{bar}] {percentage}% | {value}/{total} rows | {failed} failed | ETA {eta_formatted}`,
      hideCursor: true,
      // Before the first rows finish the rate is unknown: show "…", not cli-progress's "NFs".
      formatTime: (t, opts, round) =>
        Number.isFinite(t) && t >= 0 ? cliProgress.Format.TimeFormat(t, opts, round) : '…',
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(options.total, 0, { failed: 0 });
  return {
    update: (s) => bar.update(s.completed + s.failed, { failed: s.failed }),
    stop: () => bar.stop(),
  };
}

// Without a terminal (logs, CI, pipes) a redrawn bar is noise: print a line now and then.
function plainDisplay(options: ProgressOptions, stream: NodeJS.WriteStream): ProgressDisplay {
  const everyMs = options.plainEveryMs ?? 5000;
  let last = Date.now();
  let done = -1;
  return {
    update: (s) => {
      const now = Date.now();
      const n = s.completed + s.failed;
      if (now - last < everyMs || n === done) return;
      last = now;
      done = n;
      stream.write(`${options.label}: ${n}/${s.total} rows done (${s.failed} failed)\n`);
    },
    stop: () => undefined,
  };
}

/** A progress bar on a terminal, periodic plain lines otherwise. */
export function createProgress(options: ProgressOptions): ProgressDisplay {
  const stream = options.stream ?? process.stderr;
  return stream.isTTY ? barDisplay(options, stream) : plainDisplay(options, stream);
}
