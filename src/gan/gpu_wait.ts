/**
 * Waiting for a training step without taking the GPU's cores.
 *
 * Dawn in Node (the `webgpu` package) resolves mapAsync and onSubmittedWorkDone by processing its events from
 * setImmediate callbacks, over and over, until the work is done: while a step runs, the JavaScript thread spins
 * on a core. On a software adapter the "GPU" is CPU threads (lavapipe runs a dispatch on one thread per core),
 * so on the 2-core machine the spinning thread took about a third of the CPU the kernels wanted (a Node CPU
 * profile of 100 `small` steps: 6.6 s in processImmediate and 4.3 s of garbage collection against 5.2 s idle;
 * bench/RESULTS.md, 2026-11-30 afternoon, lavapipe). A timer creates no pending Dawn work, so nothing polls while
 * it runs: the step sleeps through most of its expected GPU time first and only then waits as before.
 *
 * When the caller has queued the next step behind the one waited for (the trainer does: Pix2Pix.trainStep),
 * the GPU stays busy past this step's end, so the sleep goes nearer to it (fractionQueued) and less is polled.
 *
 * The expected time is the shortest of the recent steps (start of its GPU work to read-back), so a slow step (load, a first
 * run) does not make the next sleep long, and a sleep that outlasted the work shortens the next one: a step
 * measured while sleeping too long records at most the sleep, and the estimate comes down to the real time in
 * a few steps. Browsers wait for the GPU process without spinning the page's thread, and a GPU's kernels do
 * not run on the CPU's cores: no pacing there ({@link pacingWanted}).
 */

import { isSoftwareClass, type DeviceClass } from '../kernels/conv/device_class.js';

/** Whether this runtime's WebGPU polls on the JavaScript thread while waiting (Dawn's Node bindings). */
export const WAIT_POLLS = typeof process !== 'undefined' && !!process.versions?.node;

/**
 * Whether to pace: where waiting polls and the adapter runs its kernels on the CPU (software classes). On a GPU
 * the polling thread takes nothing the kernels need, and a timer's millisecond granularity would only add latency
 * to short steps.
 */
export function pacingWanted(cls: DeviceClass, polls = WAIT_POLLS): boolean {
  return polls && isSoftwareClass(cls);
}

export class GpuWaitPacer {
  private readonly recent: number[] = [];

  constructor(
    /** Pace at all (default: where waiting polls). */
    readonly enabled = WAIT_POLLS,
    /** Part of the expected time to sleep: the rest is waited for as before, so a faster step loses little. */
    readonly fraction = 0.8,
    /** Steps the expectation looks back over. */
    readonly window = 8,
    /** Steps measured before the first sleep. */
    readonly warmup = 2,
    /**
     * The part slept when another step is already queued behind the one waited for: the GPU has work until that
     * one ends too, so waking a little late costs nothing, while each millisecond of polling takes a core.
     * Still under 1, so that a step measured after an oversleep does not ratchet the estimate up.
     */
    readonly fractionQueued = 0.95,
  ) {}

  /**
   * Milliseconds to sleep before waiting on the GPU (0 when not pacing or still measuring), `elapsedMs` after
   * the step's GPU work began.
   */
  sleepMs(elapsedMs = 0, queuedBehind = false): number {
    if (!this.enabled || this.recent.length < this.warmup) return 0;
    return Math.max(0, (queuedBehind ? this.fractionQueued : this.fraction) * Math.min(...this.recent) - elapsedMs);
  }

  /** One step's time from the start of its GPU work (its submission, or the previous step's end if later) to its results being readable, ms. */
  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.recent.push(ms);
    if (this.recent.length > this.window) this.recent.shift();
  }

  /** Sleep for {@link sleepMs} (resolves at once when that is under a millisecond). */
  async pace(elapsedMs = 0, queuedBehind = false): Promise<void> {
    const ms = this.sleepMs(elapsedMs, queuedBehind);
    if (ms >= 1) await new Promise<void>((resolve) => setTimeout(resolve, ms));
  }

  /** Forget the history (a new graph: its time is not the old one's). */
  reset(): void {
    this.recent.length = 0;
  }
}
