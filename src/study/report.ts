/**
 * The study's self-contained HTML report: metric-vs-training-set-size charts (the paper's Figure 2), a grid of
 * the same test photos translated by every trial next to the ground truth (Figure 3), loss curves, and the table.
 * Images are inlined as data URLs and charts as inline SVG, so report.html is one file with no scripts.
 */
import { escapeXml, lineChart, type Series } from './svg_chart.js';

export interface MetricMeans {
  mse: number;
  nrmse: number;
  psnr: number;
  ssim: number;
  fid?: number;
  kid?: number;
  waem?: number;
  /** Phantoms only: correlation of the translation's fine structure with the bone layer (src/metrics/skeleton.ts). */
  skeleton?: number;
}

export interface LossRecord {
  step: number;
  epoch: number;
  G_GAN: number;
  G_L1: number;
  D_real: number;
  D_fake: number;
  lr: number;
}

export interface TrialReport {
  name: string;
  kind: string;
  /** Real training pairs (the x axis of Figure 2). */
  trainPairs: number;
  /** Pairs actually seen per epoch (after offline augmentation). */
  effectivePairs: number;
  metrics: MetricMeans;
  losses: LossRecord[];
  /** One translated test image per grid row, as PNG data URLs, in the order of `grid.files`. */
  samples: string[];
  seconds?: number;
}

export interface StudyReport {
  title: string;
  createdAt: string;
  device?: string;
  trials: TrialReport[];
  grid: { files: string[]; inputs: string[]; truths: string[] };
  config?: unknown;
  notes?: string[];
}

const METRICS: { key: keyof MetricMeans; label: string; better: string }[] = [
  { key: 'mse', label: 'MSE', better: 'lower is better' },
  { key: 'nrmse', label: 'NRMSE', better: 'lower is better' },
  { key: 'psnr', label: 'PSNR (dB)', better: 'higher is better' },
  { key: 'ssim', label: 'SSIM', better: 'higher is better' },
  { key: 'fid', label: 'FID', better: 'lower is better' },
  { key: 'kid', label: 'KID', better: 'lower is better' },
  { key: 'waem', label: 'WAEM', better: 'higher is better' },
  { key: 'skeleton', label: 'skeleton recovery', better: 'higher is better' },
];

function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4);
}

/** Group trials into chart series by kind (size sweep, augmented, transfer...), x = real training pairs. */
function metricSeries(trials: readonly TrialReport[], key: keyof MetricMeans): Series[] {
  const byKind = new Map<string, Series>();
  for (const t of trials) {
    const y = t.metrics[key];
    if (y === undefined || !Number.isFinite(y)) continue;
    let s = byKind.get(t.kind);
    if (!s) byKind.set(t.kind, (s = { name: t.kind, points: [] }));
    s.points.push({ x: t.trainPairs, y });
  }
  return [...byKind.values()];
}

export function renderReport(r: StudyReport): string {
  const charts = METRICS.filter((m) => metricSeries(r.trials, m.key).length > 0).map((m) =>
    lineChart(metricSeries(r.trials, m.key), { title: `${m.label} vs training pairs (${m.better})`, xLabel: 'real training pairs', yLabel: m.label }),
  );
  const lossCharts = r.trials
    .filter((t) => t.losses.length > 0)
    .map((t) => {
      const keys = ['G_GAN', 'G_L1', 'D_real', 'D_fake'] as const;
      const series = keys.map((k) => ({ name: k, points: t.losses.map((l) => ({ x: l.step, y: l[k] })) }));
      return lineChart(series, { title: `losses: ${t.name}`, xLabel: 'step', yLabel: 'loss', width: 380, height: 240 });
    });
  const head = ['trial', 'kind', 'real pairs', 'pairs/epoch', ...METRICS.map((m) => m.label), 'time'];
  const rows = r.trials.map(
    (t) =>
      `<tr><td>${escapeXml(t.name)}</td><td>${escapeXml(t.kind)}</td><td>${t.trainPairs}</td><td>${t.effectivePairs}</td>${METRICS.map((m) => `<td>${fmt(t.metrics[m.key])}</td>`).join('')}<td>${t.seconds !== undefined ? `${t.seconds.toFixed(0)} s` : '–'}</td></tr>`,
  );
  const gridHead = `<tr><th>photo</th>${r.trials.map((t) => `<th>${escapeXml(t.name)}</th>`).join('')}<th>ground truth</th></tr>`;
  const gridRows = r.grid.files.map((f, i) => {
    const cells = r.trials.map((t) => `<td>${t.samples[i] ? `<img src="${t.samples[i]}" alt="${escapeXml(`${t.name} ${f}`)}">` : '–'}</td>`).join('');
    return `<tr><td><img src="${r.grid.inputs[i]}" alt="${escapeXml(`photo ${f}`)}"><div class="fn">${escapeXml(f)}</div></td>${cells}<td><img src="${r.grid.truths[i]}" alt="${escapeXml(`truth ${f}`)}"></td></tr>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(r.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
table.grid td{text-align:center;padding:2px}table.grid img{width:160px;image-rendering:pixelated;display:block}
.fn{font-size:10px;color:#666}.meta{color:#666}
</style></head><body>
<h1>${escapeXml(r.title)}</h1>
<p class="meta">Generated ${escapeXml(r.createdAt)}${r.device ? ` on ${escapeXml(r.device)}` : ''} by pix2pix-webgpu.</p>
${(r.notes ?? []).map((n) => `<p>${escapeXml(n)}</p>`).join('\n')}
<h2>Metrics against training-set size</h2>
<div class="charts" id="metric-charts">${charts.join('\n')}</div>
<h2>Results</h2>
<table id="results"><thead><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table>
<h2>Test photos translated by every trial</h2>
<table class="grid" id="image-grid"><thead>${gridHead}</thead><tbody>${gridRows.join('\n')}</tbody></table>
<h2>Loss curves</h2>
<div class="charts" id="loss-charts">${lossCharts.join('\n')}</div>
</body></html>
`;
}
