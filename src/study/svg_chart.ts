/**
 * Minimal SVG line charts for the self-contained HTML report (no script, no external assets), so the
 * report opens anywhere, prints, and can be checked by a test without a browser.
 */

export interface ChartPoint {
  x: number;
  y: number;
  /** Spread around y (e.g. min and max over seeds): drawn as a vertical bar with caps. */
  lo?: number;
  hi?: number;
  /** Drawn beside the marker (e.g. "augmented ×3"). */
  label?: string;
}

export interface Series {
  name: string;
  points: ChartPoint[];
  color?: string;
  /** Line opacity (default 1): a raw trace drawn faint under its smoothed line. */
  opacity?: number;
  strokeWidth?: number;
  /** Markers at the points (default: when there are at most 60). */
  markers?: boolean;
  /** Listed in the legend (default true). */
  legend?: boolean;
  /** Connect the points with a line (default true). */
  line?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** A log-scaled x axis (ticks at 1, 2 and 5 per decade, and at the data's x where there are few): for sweeps such as 8, 24, 1105 pairs. */
  logX?: boolean;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** "Nice" tick values covering [lo, hi] (1-2-5 steps). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  // A range below the values' float resolution (e.g. a mean of equal values off by one ulp) would never advance.
  if (!(step > 0) || lo + step === lo || hi + step === hi) return [lo];
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Ticks of a log axis over [lo, hi]: 1, 2 and 5 times each power of ten, or only the powers when that is too many. */
export function logTicks(lo: number, hi: number, count = 5): number[] {
  const k0 = Math.floor(Math.log10(lo));
  const k1 = Math.ceil(Math.log10(hi));
  const pick = (mantissas: number[]) => {
    const t: number[] = [];
    for (let k = k0; k <= k1; k++) for (const m of mantissas) {
      const v = Number((m * 10 ** k).toPrecision(12));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) t.push(v);
    }
    return t;
  };
  const dense = pick([1, 2, 5]);
  return dense.length <= 2 * count ? dense : pick([1]);
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** A line chart with axes, ticks, markers and a legend, as one <svg> element. */
export function lineChart(series: readonly Series[], o: ChartOptions): string {
  const W = o.width ?? 420;
  const H = o.height ?? 280;
  const m = { l: 62, r: 12, t: 28, b: 44 };
  const pts = series
    .flatMap((s) => s.points.flatMap((p) => [p, ...[p.lo, p.hi].filter((v): v is number => v !== undefined).map((y) => ({ x: p.x, y }))]))
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const tx = (x: number) => (o.logX ? Math.log10(Math.max(x, 1e-12)) : x);
  // Loops, not Math.min(...values): spreading ~120k arguments overflows the call stack (a 21000-step trial's
  // adversarial panel has 6 series of that many points).
  let [x0, x1, y0, y1] = pts.length ? [Infinity, -Infinity, Infinity, -Infinity] : [0, 1, 0, 1];
  for (const p of pts) {
    const x = tx(p.x);
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (p.y < y0) y0 = p.y;
    if (p.y > y1) y1 = p.y;
  }
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  // Equal up to rounding (a mean of equal values can differ from them in the last bit): a flat line.
  if (Math.abs(y1 - y0) <= 1e-9 * Math.max(Math.abs(y0), Math.abs(y1))) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  const padY = (y1 - y0) * 0.08;
  y0 -= padY;
  y1 += padY;
  const sx = (x: number) => m.l + ((tx(x) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(o.title)}">`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`);
  for (const t of niceTicks(y0, y1)) {
    const y = sy(t);
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-size="10">${fmtTick(t)}</text>`);
  }
  // On a log axis with few distinct x (a sweep's sizes) those are the labels, plus the powers of ten that would
  // not print over them; otherwise 1-2-5 ticks per decade.
  const dataX = [...new Set(pts.map((p) => p.x))];
  const apart = (a: number, b: number) => Math.abs(Math.log10(a / b)) > 0.06 * (x1 - x0);
  const xs = o.logX
    ? dataX.length <= 8
      ? [...dataX, ...logTicks(10 ** x0, 10 ** x1).filter((t) => Number.isInteger(Math.log10(t)) && dataX.every((x) => apart(x, t)))]
      : logTicks(10 ** x0, 10 ** x1)
    : [...new Set([...niceTicks(x0, x1), ...(pts.length <= 8 ? pts.map((p) => p.x) : [])])];
  for (const t of xs) {
    const x = sx(t);
    if (x < m.l - 1 || x > W - m.r + 1) continue;
    parts.push(`<text x="${x.toFixed(1)}" y="${H - m.b + 14}" text-anchor="middle" font-size="10">${fmtTick(t)}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle" font-size="11">${escapeXml(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="11">${escapeXml(o.yLabel)}</text>`);
  let legendRow = 0;
  // A translucent backing so the legend stays readable where a series passes under it.
  const listed = series.filter((s) => s.legend !== false);
  const legendRows = listed.length;
  // Sized to the longest name (about 6 px a character at font-size 10), so a long name is not cut off at the edge.
  const legendWidth = Math.max(112, 20 + 6 * Math.max(0, ...listed.map((s) => s.name.length)));
  const legendX = W - m.r - legendWidth;
  const legend: string[] = [];
  if (legendRows) legend.push(`<rect class="legend" x="${legendX - 2}" y="${m.t + 1}" width="${legendWidth}" height="${legendRows * 14 + 4}" fill="#fff" fill-opacity="0.8"/>`);
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const ps = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    const opacity = s.opacity !== undefined && s.opacity < 1 ? ` stroke-opacity="${s.opacity}"` : '';
    if (ps.length > 1 && s.line !== false) {
      const d = ps.map((p, k) => `${k ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join('');
      parts.push(`<path class="series" data-series="${escapeXml(s.name)}" d="${d}" fill="none" stroke="${color}" stroke-width="${s.strokeWidth ?? 1.8}"${opacity}/>`);
    }
    for (const p of ps) {
      if (p.lo === undefined || p.hi === undefined || !Number.isFinite(p.lo) || !Number.isFinite(p.hi)) continue;
      const x = sx(p.x).toFixed(1);
      const [a, b] = [sy(p.lo).toFixed(1), sy(p.hi).toFixed(1)];
      parts.push(`<path class="spread" d="M${x},${a}L${x},${b}M${(+x - 4).toFixed(1)},${a}L${(+x + 4).toFixed(1)},${a}M${(+x - 4).toFixed(1)},${b}L${(+x + 4).toFixed(1)},${b}" stroke="${color}" stroke-width="1.2" fill="none"/>`);
    }
    if (s.markers ?? ps.length <= 60) for (const p of ps) parts.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${color}"/>`);
    for (const p of ps) {
      if (!p.label) continue;
      const x = sx(p.x);
      const anchor = x > W - m.r - 70 ? 'end' : 'start';
      parts.push(`<text class="point-label" x="${(x + (anchor === 'end' ? -6 : 6)).toFixed(1)}" y="${(sy(p.y) - 5).toFixed(1)}" text-anchor="${anchor}" font-size="10" fill="${color}">${escapeXml(p.label)}</text>`);
    }
    if (s.legend === false) return;
    legend.push(`<rect x="${legendX + 2}" y="${m.t + 4 + legendRow * 14}" width="10" height="3" fill="${color}"/>`);
    legend.push(`<text x="${legendX + 16}" y="${m.t + 9 + legendRow * 14}" font-size="10">${escapeXml(s.name)}</text>`);
    legendRow++;
  });
  // Drawn last, over the series.
  parts.push(...legend, '</svg>');
  return parts.join('');
}

/** Centred moving average over `window` points (shrinking at the ends): the trend of a noisy loss trace. */
export function smooth(ys: readonly number[], window: number): number[] {
  const half = Math.max(0, Math.floor(window / 2));
  const prefix = new Float64Array(ys.length + 1);
  ys.forEach((y, i) => (prefix[i + 1] = prefix[i] + y));
  return ys.map((_, i) => {
    const a = Math.max(0, i - half);
    const b = Math.min(ys.length, i + half + 1);
    return (prefix[b] - prefix[a]) / (b - a);
  });
}
