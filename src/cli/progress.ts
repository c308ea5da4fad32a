/**
 * A progress bar with rate and ETA for long work (epochs, steps, evaluation, synthesis).
 * On a TTY it redraws one line; otherwise (CI, pipes) it prints a line every few seconds so logs stay short.
 */
export class Progress {
  private readonly start = Date.now();
  private lastPrint = 0;
  private done = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'it',
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {}

  tick(n = 1, suffix = ''): void {
    this.done += n;
    const now = Date.now();
    const finished = this.done >= this.total;
    const interval = this.stream.isTTY ? 100 : 5000;
    if (!finished && now - this.lastPrint < interval) return;
    this.lastPrint = now;
    this.render(suffix, finished);
  }

  private render(suffix: string, finished: boolean): void {
    if (this.quiet) return;
    const elapsed = (Date.now() - this.start) / 1000;
    const rate = this.done / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    // No rate (and no ETA) until a measurable time has passed: the first tick would claim millions per second.
    const rateText = elapsed < 0.5 ? `? ${this.unit}/s` : rate >= 1 ? `${rate.toFixed(2)} ${this.unit}/s` : `${(1 / Math.max(rate, 1e-9)).toFixed(2)} s/${this.unit}`;
    const line = `${this.label} [${bar}] ${this.done}/${this.total} ${rateText} elapsed ${fmtTime(elapsed)} eta ${finished ? '0s' : elapsed < 0.5 ? '?' : fmtTime(eta)}${suffix ? ` ${suffix}` : ''}`;
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
