// Reading ahead (src/io/load_ahead.ts): results in order with a bounded number of loads in flight, the first
// failure in order reported at its turn, nothing left unhandled when the consumer stops early; a pair of reads
// reporting the first one's failure; background
// writes bounded the same way, their first failure thrown in start order.
import { describe, it, expect, afterEach, beforeEach } from 'vitest';
import { BackgroundTasks, bothInOrder, loadAhead } from '../../src/io/load_ahead.js';

const tick = () => new Promise<void>((r) => setTimeout(r, 1));

let unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(async () => {
  await tick();
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

describe('loadAhead', () => {
  it('yields in order with at most `depth` loads in flight, whatever order they finish in', async () => {
    let inFlight = 0;
    let most = 0;
    const items = [50, 5, 30, 1, 20, 2, 10];
    const got: number[] = [];
    for await (const v of loadAhead(items, async (ms, i) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, ms));
      inFlight--;
      return `${i}:${ms}`;
    }, 3)) got.push(Number(v.split(':')[0]));
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(most).toBe(3);
  });

  it('throws the first failure in order, at its turn, even when a later load failed first', async () => {
    const got: number[] = [];
    const run = async () => {
      for await (const v of loadAhead([0, 1, 2, 3], async (i) => {
        if (i === 3) throw new Error('late item failed first');
        await new Promise((r) => setTimeout(r, 5));
        if (i === 2) throw new Error('item 2 failed');
        return i;
      }, 4)) got.push(v);
    };
    await expect(run()).rejects.toThrow('item 2 failed');
    expect(got).toEqual([0, 1]);
  });

  it('a consumer that stops early leaves no unhandled rejection behind', async () => {
    for await (const v of loadAhead([0, 1, 2, 3], async (i) => {
      if (i > 0) throw new Error(`never awaited ${i}`);
      return i;
    }, 4)) {
      expect(v).toBe(0);
      break;
    }
  });

  it('rejects a depth below 1', async () => {
    await expect(loadAhead([1], async (x) => x, 0).next()).rejects.toThrow(RangeError);
  });
});

describe('bothInOrder', () => {
  it("gives both results; when both fail, the first argument's failure, even if the second failed sooner", async () => {
    expect(await bothInOrder(Promise.resolve(1), Promise.resolve('b'))).toEqual([1, 'b']);
    const slowFail = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('first, slower')), 5));
    await expect(bothInOrder(slowFail, Promise.reject(new Error('second, sooner')))).rejects.toThrow('first, slower');
  });
});

describe('BackgroundTasks', () => {
  it('keeps at most `limit` running; settle waits for all', async () => {
    const tasks = new BackgroundTasks(2);
    let running = 0;
    let most = 0;
    const done: number[] = [];
    for (let i = 0; i < 6; i++) {
      await tasks.add(async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 3));
        running--;
        done.push(i);
      });
    }
    await tasks.settle();
    expect(done.sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(most).toBe(2);
  });

  it('settle throws the first failure in start order; the others are handled', async () => {
    const tasks = new BackgroundTasks(8);
    await tasks.add(async () => {
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('first');
    });
    await tasks.add(async () => {
      throw new Error('second, failing sooner');
    });
    await expect(tasks.settle()).rejects.toThrow('first');
  });
});
