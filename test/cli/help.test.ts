import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const run = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/inferq.js', ...args], { encoding: 'utf8', timeout: 30_000 });

describe('one CLI parser for every command', () => {
  it.each(['api', 'worker', 'start', 'predict', 'batch', 'results'])(
    'prints the help of "inferq %s --help" and exits 0 without running it',
    (command) => {
      const out = run(command, '--help');
      expect(out.status).toBe(0);
      expect(out.stdout).toContain(`Usage: inferq ${command}`);
      // Nothing started: no log line of an API or worker.
      expect(out.stdout + out.stderr).not.toMatch(/"msg":"(api listening|worker started)"/);
    },
  );

  it('lists every command when run alone, and refuses an unknown one with a hint', () => {
    const alone = run();
    expect(alone.status).toBe(0);
    for (const command of ['api', 'worker', 'start', 'predict', 'batch', 'results'])
      expect(alone.stdout).toContain(command);
    const unknown = run('serve');
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown command 'serve'/);
  });
});
