/**
 * A progress bar with rate and ETA for long work (epochs, steps, evaluation, synthesis).
 * On a TTY it redraws one line; otherwise (CI, pipes) it prints a line every few seconds so logs stay short.
 *
 * Rates are measured from the first item on, never from the start: the first item often carries a one-off
 * cost (the first training step compiles every GPU kernel, ~2 minutes on a software adapter), and counting
 * it would promise an ETA of hundreds of hours. Until a second item is done the rate and ETA are '?'.
 * {@link note} says what happens meanwhile ("compiling kernels…").
 */
export class Progress {
  private readonly start = Date.now();
  private lastPrint = -Infinity;
  private done = 0;
  /** When the first item was done, and the count then: the origin of the rate. */
  private base: { time: number; done: number } | null = null;
  private noteTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'it',
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {}

  /**
   * Say what is happening before the next item is done (e.g. "compiling kernels…"). Printed at once; on
   * a TTY the line shows the seconds it has been waiting, until the next tick.
   */
  note(message: string): void {
    this.clearNote();
    if (this.quiet) return;
    const since = Date.now();
    const line = () => `${this.label}: ${message}`;
    if (!this.stream.isTTY) {
      this.stream.write(`${line()}\n`);
      return;
    }
    this.stream.write(`\r\x1b[2K${line()}`);
    this.noteTimer = setInterval(() => this.stream.write(`\r\x1b[2K${line()} ${fmtTime((Date.now() - since) / 1000)}`), 1000);
    this.noteTimer.unref?.();
  }

  /** `n` more items done. */
  tick(n = 1, suffix = ''): void {
    this.update(this.done + n, suffix);
  }

  /** `done` items done in all (e.g. the step number of a resumed run; the first call sets the rate's origin). */
  update(done: number, suffix = ''): void {
    this.clearNote();
    const now = Date.now();
    this.done = done;
    this.base ??= { time: now, done };
    const finished = this.done >= this.total;
    const interval = this.stream.isTTY ? 100 : 5000;
    if (!finished && now - this.lastPrint < interval) return;
    this.lastPrint = now;
    this.render(suffix, finished, now);
  }

  /** Items per second since the first item, or null until one more item and some time have passed. */
  rate(now = Date.now()): number | null {
    if (!this.base) return null;
    const items = this.done - this.base.done;
    const seconds = (now - this.base.time) / 1000;
    return items > 0 && seconds > 0 ? items / seconds : null;
  }

  private clearNote(): void {
    if (this.noteTimer) clearInterval(this.noteTimer);
    this.noteTimer = null;
  }

  private render(suffix: string, finished: boolean, now: number): void {
    if (this.quiet) return;
    const elapsed = (now - this.start) / 1000;
    const rate = this.rate(now);
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const rateText = rate === null ? `? ${this.unit}/s` : rate >= 1 ? `${rate.toFixed(2)} ${this.unit}/s` : `${(1 / rate).toFixed(2)} s/${this.unit}`;
    const eta = finished ? '0s' : rate === null ? '?' : fmtTime((this.total - this.done) / rate);
    const line = `${this.label} [${bar}] ${this.done}/${this.total} ${rateText} elapsed ${fmtTime(elapsed)} eta ${eta}${suffix ? ` ${suffix}` : ''}`;
    if (this.stream.isTTY) this.stream.write(`\r\x1b[2K${line}${finished ? '\n' : ''}`);
    else this.stream.write(`${line}\n`);
  }
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
