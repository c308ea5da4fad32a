/**
 * Loading the next files while the current one is used.
 *
 * Decoding an image with sharp (or reading a file) is a round trip to libuv's thread pool of a few milliseconds,
 * most of it waiting (145 of the demo's test images: 0.3 s one at a time, 0.1 s all in flight). With reads ahead
 * and writes in the background, a demo trial's translation of its 145 test photos went from ~2.1 to ~1.3 s and
 * its scoring (evaluateFolders and skeleton recovery) from ~2.1 to ~1.5 s on the 2-core machine
 * (bench/RESULTS.md, issue 14).
 */

/**
 * `load(item, index)` over `items`, yielded in order, with up to `depth` loads in flight. A load that fails
 * throws when its turn comes (never earlier, so the first failing item in order is the one reported), and the
 * loads started ahead of a consumer that stops early never become unhandled rejections.
 */
export async function* loadAhead<T, R>(items: readonly T[], load: (item: T, index: number) => Promise<R>, depth = 8): AsyncGenerator<R> {
  if (!(depth >= 1)) throw new RangeError(`loadAhead: depth must be >= 1, got ${depth}`);
  const pending: Promise<R>[] = [];
  let next = 0;
  while (pending.length > 0 || next < items.length) {
    while (next < items.length && pending.length < depth) {
      const p = load(items[next], next);
      // Handled here; the rejection still reaches the consumer through the await below.
      p.catch(() => undefined);
      pending.push(p);
      next++;
    }
    yield await pending.shift()!;
  }
}

/**
 * Both results, awaited in argument order: when both reject, `first`'s failure is the one thrown (Promise.all
 * throws whichever rejects first in time), and `second`'s never becomes an unhandled rejection. Reading a pair
 * of files this way reports the first file's error whatever their decoding times.
 */
export async function bothInOrder<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  second.catch(() => undefined);
  return [await first, await second];
}

/**
 * Runs tasks (e.g. encoding and writing a file) in the background with at most `limit` unfinished, so a loop
 * can go on to its next item while the last one's output is written. `settle()` waits for all of them and
 * throws the first failure in start order.
 */
export class BackgroundTasks {
  private readonly running: Promise<void>[] = [];

  constructor(readonly limit = 8) {
    if (!(limit >= 1)) throw new RangeError(`BackgroundTasks: limit must be >= 1, got ${limit}`);
  }

  /** Start `task`; first waits for the oldest unfinished one when `limit` are running (throwing its failure). */
  async add(task: () => Promise<void>): Promise<void> {
    while (this.running.length >= this.limit) await this.running.shift();
    const p = task();
    p.catch(() => undefined);
    this.running.push(p);
  }

  /** Wait for every task started; throws the first failure in start order. */
  async settle(): Promise<void> {
    while (this.running.length) await this.running.shift();
  }
}
