import { describe, expect, it } from 'vitest';
import { Gatherer } from '../../src/api/predict/group-commit.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A Gatherer whose first send stays in flight until `gate` opens; it answers `r<item>`. */
function firstSendHeld() {
  const sends: number[][] = [];
  const gate = deferred<void>();
  const g = new Gatherer<number, string>({
    maxItems: 100,
    maxRows: 100,
    rowsOf: () => 1,
    flush: async (_k, items) => {
      sends.push(items);
      if (sends.length === 1) await gate.promise;
      return items.map((x) => `r${x}`);
    },
  });
  return { sends, gate, g };
}

describe('Gatherer', () => {
  it('sends a lone item at once, without waiting for company', async () => {
    const sends: number[][] = [];
    const g = new Gatherer<number, number>({
      maxItems: 10,
      maxRows: 100,
      rowsOf: () => 1,
      flush: (_k, items) => {
        sends.push(items);
        return Promise.resolve(items.map((x) => x * 2));
      },
    });
    await expect(g.submit('m', 21)).resolves.toBe(42);
    expect(sends).toEqual([[21]]);
  });

  it('groups the items that arrive while a send is in flight into the next send', async () => {
    const { sends, gate, g } = firstSendHeld();
    const first = g.submit('m', 0);
    const rest = [1, 2, 3, 4].map((x) => g.submit('m', x));
    expect(sends).toEqual([[0]]);
    gate.resolve();
    expect(await first).toBe('r0');
    expect(await Promise.all(rest)).toEqual(['r1', 'r2', 'r3', 'r4']);
    expect(sends).toEqual([[0], [1, 2, 3, 4]]);
  });

  it('lets items read later in the turn that ended a send join the next send', async () => {
    const { sends, gate, g } = firstSendHeld();
    const first = g.submit('m', 0);
    const waiting = g.submit('m', 1);
    // Two callbacks of one timers phase: the send's reply, then another socket's request.
    // Microtasks run between them, so the reply's continuation must not send at once.
    let late: Promise<string> | undefined;
    setTimeout(() => gate.resolve(), 1);
    setTimeout(() => {
      late = g.submit('m', 2);
    }, 1);
    await first;
    await new Promise((r) => setTimeout(r, 5));
    expect(await Promise.all([waiting, late])).toEqual(['r1', 'r2']);
    expect(sends).toEqual([[0], [1, 2]]);
  });

  it('keeps keys apart and respects the row bound', async () => {
    const sends: Array<[string, number[]]> = [];
    const gate = deferred<void>();
    const g = new Gatherer<number, number>({
      maxItems: 100,
      maxRows: 5,
      rowsOf: (x) => x,
      flush: async (k, items) => {
        sends.push([k, items]);
        await gate.promise;
        return items;
      },
    });
    const all = [
      g.submit('a', 1),
      g.submit('b', 1),
      g.submit('a', 3),
      g.submit('a', 2),
      g.submit('a', 4),
    ];
    gate.resolve();
    await Promise.all(all);
    expect(sends).toEqual([
      ['a', [1]],
      ['b', [1]],
      ['a', [3, 2]],
      ['a', [4]],
    ]);
  });

  it('rejects every item of a failed send and goes on with the next', async () => {
    let n = 0;
    const gate = deferred<void>();
    const g = new Gatherer<number, number>({
      maxItems: 100,
      maxRows: 100,
      rowsOf: () => 1,
      flush: async (_k, items) => {
        n++;
        if (n === 1) {
          await gate.promise;
          throw new Error('redis down');
        }
        return items;
      },
    });
    const first = g.submit('m', 1);
    const second = g.submit('m', 2);
    gate.resolve();
    await expect(first).rejects.toThrow('redis down');
    await expect(second).resolves.toBe(2);
  });
});
