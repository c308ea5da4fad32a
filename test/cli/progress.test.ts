// Progress: says what happens during warm-up, and estimates rate and ETA from the items after the first
// (the first training step compiles every kernel: counting it promised an ETA of hundreds of hours).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Progress } from '../../src/cli/progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  const stream = { isTTY, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream;
  // The text of the line as a terminal shows it last.
  const last = () => writes[writes.length - 1].replace(/^\r\x1b\[2K/, '').trim();
  return { stream, writes, last };
}

describe('Progress', () => {
  afterEach(() => vi.useRealTimers());

  it('a slow first step (kernel compilation) does not enter the rate: the ETA comes from later steps', () => {
    vi.useFakeTimers({ now: 0 });
    const { stream, writes, last } = fakeStream(true);
    const bar = new Progress('train', 1000, 'step', stream);
    bar.note('compiling kernels…');
    expect(last()).toBe('train: compiling kernels…');
    vi.advanceTimersByTime(3000);
    // On a terminal the waiting line counts the seconds, so a long warm-up does not look like a hang.
    expect(last()).toBe('train: compiling kernels… 3s');
    vi.advanceTimersByTime(107_000);
    bar.tick();
    expect(last()).toMatch(/^train \[\.+\] 1\/1000 \? step\/s elapsed 1m50s eta \?$/);
    const printed = writes.length;
    vi.advanceTimersByTime(1000);
    expect(writes.length).toBe(printed); // the note's timer stopped at the first tick
    bar.tick();
    // 1 step/s from the second step on: 998 steps left → 16m38s (not 2/111 s → 15h23m).
    expect(last()).toMatch(/ 2\/1000 1\.00 step\/s elapsed 1m51s eta 16m38s$/);
  });

  it('a resumed run counts from its step, with the rate from the steps it does', () => {
    vi.useFakeTimers({ now: 0 });
    const { stream, last } = fakeStream(true);
    const bar = new Progress('train', 1000, 'step', stream);
    bar.update(501, 'epoch 51');
    expect(last()).toMatch(/ 501\/1000 \? step\/s .* eta \? epoch 51$/);
    vi.advanceTimersByTime(500);
    bar.update(502);
    expect(bar.rate()).toBe(2);
    expect(last()).toMatch(/ 502\/1000 2\.00 step\/s .* eta 4m09s$/);
  });

  it('without a terminal it prints the note once and a line every few seconds, and the last one', () => {
    vi.useFakeTimers({ now: 0 });
    const { stream, writes } = fakeStream(false);
    const bar = new Progress('synth', 3, 'pair', stream);
    bar.note('loading…');
    vi.advanceTimersByTime(10_000);
    expect(writes).toEqual(['synth: loading…\n']);
    bar.tick();
    vi.advanceTimersByTime(1000);
    bar.tick();
    vi.advanceTimersByTime(1000);
    bar.tick(1, 'done');
    expect(writes.length).toBe(3);
    expect(writes[2]).toMatch(/^synth \[#+\] 3\/3 1\.00 pair\/s elapsed 12s eta 0s done\n$/);
  });
});
