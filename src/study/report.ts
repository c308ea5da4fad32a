/**
 * The study's self-contained HTML report, written for a researcher: what was tested (the test set, each trial's
 * settings), the metrics against training-set size (the paper's Figure 2, repeated seeds as mean with min–max
 * bars, augmented and transfer points labelled), test photos of different animals translated by every trial
 * (Figure 3), loss curves (the L1 term and the adversarial terms on separate panels, smoothed over the raw trace),
 * and a blinded ranking mode in which an expert orders the trials' translations and exports ranking.json for
 * `pix2pix-webgpu waem` (the paper's comparison of the metrics with visual inspection).
 * Images are data URLs and charts inline SVG: report.html is one file. Its data is embedded as JSON
 * (#report-data) so the ranking mode can shuffle the images and `waem` can re-render the page with fitted weights.
 */
import { escapeXml, lineChart, smooth, type ChartPoint, type Series } from './svg_chart.js';
import type { TrialSettings } from './study_config.js';
import type { WaemWeights } from '../metrics/waem.js';

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
  /** The settings that produced this row (resolution, networks, epochs, lr, seed, steps). */
  settings?: TrialSettings;
}

/** Who and what a grid row shows. */
export interface GridRowInfo {
  file: string;
  animal?: string;
  fur?: string;
  bed?: string;
}

/** The held-out test set, stated in the report. */
export interface TestSetSummary {
  images: number;
  /** Each held-out animal with its fur and bed colour. */
  animals: { id: string; fur?: string; bed?: string; images: number }[];
  /** Where the images come from (the dataset folder). */
  source?: string;
}

/** The WAEM weights the report's WAEM column uses, and where they came from. */
export interface WaemInfo {
  weights?: WaemWeights;
  /** e.g. 'default (FID counts twice)', or 'fitted to ranking.json (4 photos)'. */
  source: string;
  /** Kendall tau between the expert's ranking and WAEM / each single metric (after a fit). */
  taus?: Record<string, number>;
  shares?: number[];
}

export interface StudyReport {
  title: string;
  createdAt: string;
  device?: string;
  trials: TrialReport[];
  grid: { files: string[]; inputs: string[]; truths: string[]; rows?: GridRowInfo[] };
  testSet?: TestSetSummary;
  /** FID/KID: the weights file used, or absent (the report then says how to add them). */
  fidWeights?: string;
  waem?: WaemInfo;
  config?: unknown;
  notes?: string[];
}

export const REPORT_METRICS: { key: keyof MetricMeans; label: string; better: 'lower' | 'higher' }[] = [
  { key: 'mse', label: 'MSE', better: 'lower' },
  { key: 'nrmse', label: 'NRMSE', better: 'lower' },
  { key: 'psnr', label: 'PSNR (dB)', better: 'higher' },
  { key: 'ssim', label: 'SSIM', better: 'higher' },
  { key: 'fid', label: 'FID', better: 'lower' },
  { key: 'kid', label: 'KID', better: 'lower' },
  { key: 'waem', label: 'WAEM', better: 'higher' },
  { key: 'skeleton', label: 'skeleton recovery', better: 'higher' },
];

export const FID_WEIGHTS_URL = 'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth';

function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4);
}

const KIND_LABEL: Record<string, string> = { size: 'real pairs (size sweep)', augment: 'augmented', transfer: 'transfer' };

/** A short label for a non-sweep point: "augmented 10→30", "transfer white→black". */
function pointLabel(t: TrialReport): string {
  if (t.kind === 'augment') return `augmented ${t.trainPairs}→${t.effectivePairs}`;
  if (t.kind === 'transfer') {
    const pre = t.settings?.pretrain?.filter?.bed;
    const fine = t.settings?.filter?.bed;
    return pre && fine ? `transfer ${pre}→${fine} bed` : `transfer (${t.name})`;
  }
  return t.name;
}

/**
 * Figure 2's series for one metric, x = real training pairs. Trials of one kind at the same x (repeats with other
 * seeds) become one point: their mean, with min and max as the spread; augmented and transfer points are labelled.
 */
/**
 * The size charts use a log x axis when the sweep spans more than a decade of training pairs (the demo's 8, 24 and
 * 1105; the paper's 50 to 700): on a linear axis the small points crowd the left edge, where the augmented and
 * transfer points sit too.
 */
export function sizeAxisIsLog(trials: readonly TrialReport[]): boolean {
  const sizes = trials.map((t) => t.trainPairs).filter((n) => n > 0);
  return sizes.length > 0 && Math.max(...sizes) / Math.min(...sizes) >= 10;
}

export function metricSeries(trials: readonly TrialReport[], key: keyof MetricMeans): Series[] {
  const byKind = new Map<string, Map<number, TrialReport[]>>();
  for (const t of trials) {
    const y = t.metrics[key];
    if (y === undefined || !Number.isFinite(y)) continue;
    if (!byKind.has(t.kind)) byKind.set(t.kind, new Map());
    const g = byKind.get(t.kind)!;
    if (!g.has(t.trainPairs)) g.set(t.trainPairs, []);
    g.get(t.trainPairs)!.push(t);
  }
  return [...byKind.entries()].map(([kind, groups]) => {
    const points: ChartPoint[] = [...groups.entries()].map(([x, ts]) => {
      const ys = ts.map((t) => t.metrics[key] as number);
      const mean = ys.reduce((s, v) => s + v, 0) / ys.length;
      const p: ChartPoint = { x, y: mean };
      if (ys.length > 1) {
        p.lo = Math.min(...ys);
        p.hi = Math.max(...ys);
      }
      if (kind !== 'size') p.label = pointLabel(ts[0]) + (ts.length > 1 ? ` (${ts.length} seeds)` : '');
      return p;
    });
    const seeds = Math.max(...[...groups.values()].map((g) => g.length));
    const name = `${KIND_LABEL[kind] ?? kind}${seeds > 1 ? `, mean of ${seeds}` : ''}`;
    return { name, points, line: kind === 'size' };
  });
}

/**
 * Choose `n` grid rows from the test images: distinct animals first, picked so the fur colours and bed colours
 * are all covered as early as possible, then further poses. Returns indices into `rows`.
 */
export function pickGridRows(rows: readonly GridRowInfo[], n: number): number[] {
  const animals = new Map<string, number[]>();
  rows.forEach((r, i) => {
    const id = r.animal ?? r.file;
    if (!animals.has(id)) animals.set(id, []);
    animals.get(id)!.push(i);
  });
  const order: string[] = [];
  const left = [...animals.keys()];
  const seen = new Set<string>();
  while (left.length) {
    // The animal adding the most unseen fur/bed colours (and fur x bed combination); ties: dataset order.
    let best = 0;
    let bestGain = -1;
    left.forEach((id, k) => {
      const r = rows[animals.get(id)![0]];
      const gain = [`fur:${r.fur}`, `bed:${r.bed}`, `combo:${r.fur}/${r.bed}`].filter((f) => !f.includes('undefined') && !seen.has(f)).length;
      if (gain > bestGain) [best, bestGain] = [k, gain];
    });
    const id = left.splice(best, 1)[0];
    const r = rows[animals.get(id)![0]];
    for (const f of [`fur:${r.fur}`, `bed:${r.bed}`, `combo:${r.fur}/${r.bed}`]) seen.add(f);
    order.push(id);
  }
  const picked: number[] = [];
  for (let round = 0; picked.length < Math.min(n, rows.length); round++) {
    for (const id of order) {
      const list = animals.get(id)!;
      // Successive rounds take other poses, spread over the animal's images.
      if (round < list.length && picked.length < n) picked.push(list[(round * 2 + order.indexOf(id)) % list.length]);
    }
    if (round > rows.length) break;
  }
  return [...new Set(picked)];
}

/**
 * The trials shown in the image grid and offered for blind ranking: one per (kind, real pairs) point, the first
 * seed, so repeats do not crowd the grid (the charts and the table show every seed).
 */
export function gridTrials(trials: readonly TrialReport[]): TrialReport[] {
  const seen = new Set<string>();
  return trials.filter((t) => {
    const key = `${t.kind}/${t.trainPairs}/${t.kind === 'size' ? '' : t.name}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function settingsCells(s?: TrialSettings): string[] {
  if (!s) return ['–', '–', '–', '–', '–', '–', '–', '–'];
  const g = `U-Net ${s.numDowns} levels, ngf ${s.ngf}${s.dropout ? ', dropout' : ''}`;
  const d = s.nLayersD ? `PatchGAN ${s.nLayersD} layers, ndf ${s.ndf}` : '–';
  const epochs = `${s.nEpochs}+${s.nEpochsDecay}${s.pretrain ? ` (pretrain ${s.pretrain.epochs} on ${s.pretrain.pairs}${s.pretrain.filter?.bed ? ` ${s.pretrain.filter.bed}-bed` : ''})` : ''}`;
  return [s.imageSize, g, d, epochs, String(s.lr), s.lambdaL1 !== undefined ? String(s.lambdaL1) : '–', String(s.seed), String(s.steps)];
}

function testSetText(t: TestSetSummary): string {
  const count = (k: 'fur' | 'bed', v: string) => t.animals.filter((a) => a[k] === v).length;
  const colours = t.animals.some((a) => a.fur) ? `; fur: ${count('fur', 'white')} white, ${count('fur', 'black')} black; beds: ${count('bed', 'white')} white, ${count('bed', 'black')} black` : '';
  const list = t.animals.map((a) => `${a.id}${a.fur ? ` (${a.fur} fur, ${a.bed} bed, ${a.images} images)` : ` (${a.images} images)`}`).join(', ');
  return `Test set: ${t.images} images of ${t.animals.length} held-out animals never seen in training${colours}${t.source ? `, from ${t.source}` : ''}. Animals: ${list}. Metrics are means over all ${t.images} test images.`;
}

/**
 * Loss records a report draws and embeds per trial: a 330-px panel cannot show more, and the seed's 200 epochs of
 * 823 pairs are 164600 steps per trial (every step's record made the page tens of megabytes).
 */
export const REPORT_LOSS_POINTS = 1000;

/**
 * At most `max` records: the trial's own when it has no more, else the means of consecutive equal buckets of
 * steps (each carries its last step, epoch and iteration). Idempotent, so a report re-rendered from its
 * embedded data (`waem`) draws the same curves.
 */
export function reduceLosses(losses: readonly LossRecord[], max = REPORT_LOSS_POINTS): LossRecord[] {
  if (losses.length <= max) return [...losses];
  const keys = ['G_GAN', 'G_L1', 'D_real', 'D_fake', 'lr'] as const;
  const out: LossRecord[] = [];
  for (let b = 0; b < max; b++) {
    const lo = Math.floor((b * losses.length) / max);
    const hi = Math.floor(((b + 1) * losses.length) / max);
    const rec = { ...losses[hi - 1] };
    for (const k of keys) {
      let sum = 0;
      for (let i = lo; i < hi; i++) sum += losses[i][k];
      rec[k] = sum / (hi - lo);
    }
    out.push(rec);
  }
  return out;
}

function lossPanels(t: TrialReport): string {
  const n = t.losses.length;
  const window = Math.max(1, Math.round(n / 40));
  const trace = (k: keyof LossRecord, color: string, label: string): Series[] => {
    const ys = t.losses.map((l) => l[k] as number);
    const xs = t.losses.map((l) => l.step);
    const sm = smooth(ys, window);
    return [
      { name: `${label} raw`, color, opacity: 0.22, strokeWidth: 1, markers: false, legend: false, points: xs.map((x, i) => ({ x, y: ys[i] })) },
      { name: label, color, strokeWidth: 1.8, markers: false, points: xs.map((x, i) => ({ x, y: sm[i] })) },
    ];
  };
  const l1 = lineChart(trace('G_L1', '#1f77b4', 'G_L1'), { title: `${t.name}: L1 term (λ·|G(x)−y|${t.settings?.lambdaL1 !== undefined ? `, λ = ${t.settings.lambdaL1}` : ''})`, xLabel: 'step', yLabel: 'G_L1', width: 330, height: 200 });
  const adv = lineChart([...trace('G_GAN', '#d62728', 'G_GAN'), ...trace('D_real', '#2ca02c', 'D_real'), ...trace('D_fake', '#ff7f0e', 'D_fake')], {
    title: `${t.name}: adversarial terms`,
    xLabel: 'step',
    yLabel: 'loss',
    width: 330,
    height: 200,
  });
  return `<div class="losspair" data-trial="${escapeXml(t.name)}">${l1}${adv}</div>`;
}

/** The report's data, embedded as JSON for the ranking script and for `waem` (which re-renders the page). */
function embedJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Read the data a report embeds (to re-render it, e.g. with fitted WAEM weights). */
export function parseReportData(html: string): StudyReport | null {
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  return m ? (JSON.parse(m[1]) as StudyReport) : null;
}

/** The blinded ranking mode: plain script, no dependencies; see the file comment. */
const RANKING_SCRIPT = `
(() => {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const root = document.getElementById('ranking');
  const start = document.getElementById('ranking-start');
  const exportBtn = document.getElementById('ranking-export');
  const status = document.getElementById('ranking-status');
  const out = document.getElementById('ranking-output');
  const ranked = data.trials.filter((t) => data.ranked.includes(t.name));
  const trials = ranked.map((t) => t.name);
  const images = data.grid.files.map((file, i) => ({ file, i })).filter((im) => ranked.every((t) => t.samples[im.i]));
  const orders = [];
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const shuffle = (a) => { for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [a[i], a[j]] = [a[j], a[i]]; } return a; };
  const update = () => {
    const done = orders.filter((o) => o.picked.length === trials.length).length;
    status.textContent = done + ' of ' + images.length + ' photos ranked';
    exportBtn.disabled = done !== images.length;
  };
  start.addEventListener('click', () => {
    start.disabled = true;
    document.getElementById('ranking-help').hidden = false;
    for (const im of images) {
      const box = document.createElement('div');
      box.className = 'rank-item';
      box.dataset.image = String(orders.length);
      const head = document.createElement('div');
      head.className = 'rank-refs';
      for (const [label, src] of [['photo', data.grid.inputs[im.i]], ['ground truth', data.grid.truths[im.i]]]) {
        const f = document.createElement('figure');
        f.innerHTML = '<img alt="' + label + '"><figcaption>' + label + '</figcaption>';
        f.querySelector('img').src = src;
        f.querySelector('img').className = label === 'ground truth' ? 'rank-truth' : 'rank-photo';
        head.appendChild(f);
      }
      box.appendChild(head);
      const row = document.createElement('div');
      row.className = 'rank-candidates';
      const state = { file: im.file, perm: shuffle(trials.map((_, k) => k)), picked: [] };
      state.perm.forEach((trialIndex, pos) => {
        const c = document.createElement('button');
        c.type = 'button';
        c.className = 'rank-candidate';
        c.dataset.position = String(pos);
        c.innerHTML = '<img alt="candidate ' + letters[pos] + '"><span class="rank-letter">' + letters[pos] + '</span><span class="rank-badge"></span>';
        c.querySelector('img').src = ranked[trialIndex].samples[im.i];
        c.addEventListener('click', () => {
          if (state.picked.includes(trialIndex)) return;
          state.picked.push(trialIndex);
          c.classList.add('picked');
          c.querySelector('.rank-badge').textContent = String(state.picked.length);
          update();
        });
        row.appendChild(c);
      });
      const reset = document.createElement('button');
      reset.type = 'button';
      reset.className = 'rank-reset';
      reset.textContent = 'reset';
      reset.addEventListener('click', () => {
        state.picked = [];
        row.querySelectorAll('.rank-candidate').forEach((c) => { c.classList.remove('picked'); c.querySelector('.rank-badge').textContent = ''; });
        update();
      });
      box.appendChild(row);
      box.appendChild(reset);
      root.appendChild(box);
      orders.push(state);
    }
    update();
  });
  exportBtn.addEventListener('click', () => {
    const ranking = {
      format: 'pix2pix-webgpu expert ranking',
      version: 1,
      report: data.title,
      rankedAt: new Date().toISOString(),
      trials,
      images: orders.map((o) => ({ file: o.file, order: o.picked.map((k) => trials[k]) })),
    };
    const text = JSON.stringify(ranking, null, 2);
    out.textContent = text;
    out.hidden = false;
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    a.download = 'ranking.json';
    document.body.appendChild(a);
    a.click();
    a.remove();
  });
})();
`;

export function renderReport(full: StudyReport): string {
  const r: StudyReport = { ...full, trials: full.trials.map((t) => ({ ...t, losses: reduceLosses(t.losses) })) };
  const charts = REPORT_METRICS.filter((m) => metricSeries(r.trials, m.key).length > 0).map((m) =>
    lineChart(metricSeries(r.trials, m.key), { title: `${m.label} vs training pairs (${m.better} is better)`, xLabel: 'real training pairs', yLabel: m.label, logX: sizeAxisIsLog(r.trials) }),
  );
  const lossCharts = r.trials.filter((t) => t.losses.length > 0).map(lossPanels);
  const head = ['trial', 'kind', 'real pairs', 'pairs/epoch', 'resolution', 'generator', 'discriminator', 'epochs', 'lr', 'λ L1', 'seed', 'steps', ...REPORT_METRICS.map((m) => m.label), 'time'];
  const rows = r.trials.map(
    (t) =>
      `<tr><td>${escapeXml(t.name)}</td><td>${escapeXml(t.kind)}</td><td>${t.trainPairs}</td><td>${t.effectivePairs}</td>${settingsCells(t.settings)
        .map((c) => `<td>${escapeXml(c)}</td>`)
        .join('')}${REPORT_METRICS.map((m) => `<td>${fmt(t.metrics[m.key])}</td>`).join('')}<td>${t.seconds !== undefined ? `${t.seconds.toFixed(0)} s` : '–'}</td></tr>`,
  );
  const shown = gridTrials(r.trials);
  const gridHead = `<tr><th>photo</th>${shown.map((t) => `<th>${escapeXml(t.name)}</th>`).join('')}<th>ground truth</th></tr>`;
  const gridRows = r.grid.files.map((f, i) => {
    const info = r.grid.rows?.[i];
    const who = info?.fur ? `${info.animal ?? ''} · ${info.fur} fur · ${info.bed} bed` : '';
    const cells = shown.map((t) => `<td>${t.samples[i] ? `<img src="${t.samples[i]}" alt="${escapeXml(`${t.name} ${f}`)}">` : '–'}</td>`).join('');
    return `<tr><td><img src="${r.grid.inputs[i]}" alt="${escapeXml(`photo ${f}`)}"><div class="fn">${escapeXml(f)}${who ? `<br>${escapeXml(who)}` : ''}</div></td>${cells}<td><img src="${r.grid.truths[i]}" alt="${escapeXml(`truth ${f}`)}"></td></tr>`;
  });
  const hasFid = r.trials.some((t) => t.metrics.fid !== undefined && Number.isFinite(t.metrics.fid));
  const fidNote = hasFid
    ? `<p>FID and KID use pytorch-fid's InceptionV3 weights${r.fidWeights ? ` (${escapeXml(r.fidWeights)})` : ''}.</p>`
    : `<p class="missing" id="fid-missing"><b>FID and KID are missing</b>, and WAEM is shown without its FID term (the term the paper weights most). They need pytorch-fid's InceptionV3 weights, <code>pt_inception-2015-12-05-6726825d.pth</code> (<a href="${FID_WEIGHTS_URL}">download, 91 MB</a>). Add them with <code>pix2pix-webgpu demo --fid-weights FILE</code> (or set <code>PIX2PIX_FID_WEIGHTS=FILE</code>; in a study config, <code>"evaluate": {"fidWeights": "FILE"}</code>) and run it again: the trained weights are kept and only the scoring is redone.</p>`;
  const w = r.waem;
  const waemText = w
    ? `<p id="waem-weights">WAEM = a/MSE + b/NRMSE + c·PSNR + d·SSIM + e/FID with ${escapeXml(w.source)}${
        w.weights ? `: a = ${fmt(w.weights.a)}, b = ${fmt(w.weights.b)}, c = ${fmt(w.weights.c)}, d = ${fmt(w.weights.d)}, e = ${fmt(w.weights.e)}` : ''
      }.${w.taus ? ` Agreement with the expert (Kendall tau, 1 = same order): ${Object.entries(w.taus).map(([k, v]) => `${escapeXml(k)} ${v.toFixed(2)}`).join(', ')}.` : ''}</p>`
    : `<p id="waem-weights">WAEM uses the default weights (each term a sixth of the score at typical values, FID a third). Fit them to an expert's ranking below.</p>`;
  const hasSkeleton = r.trials.some((t) => t.metrics.skeleton !== undefined);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(r.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1500px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
.charts{display:flex;flex-wrap:wrap;gap:12px}.losspair{display:flex;gap:4px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
#results td,#results th{font-size:12px;padding:3px 5px}
table.grid td{text-align:center;padding:2px}table.grid img{width:160px;image-rendering:pixelated;display:block}
.fn{font-size:10px;color:#666}.meta{color:#666}.missing{background:#fff6e0;border:1px solid #e8c36a;padding:8px}
.rank-item{border:1px solid #ddd;margin:10px 0;padding:8px}.rank-refs,.rank-candidates{display:flex;gap:8px;flex-wrap:wrap}
.rank-refs img,.rank-candidate img{width:200px;image-rendering:pixelated;display:block}figure{margin:0}
.rank-candidate{position:relative;border:2px solid #ccc;background:#fff;padding:2px;cursor:pointer}
.rank-candidate.picked{border-color:#1f77b4}.rank-letter{position:absolute;top:4px;left:6px;color:#fff;font-weight:bold;text-shadow:0 0 3px #000}
.rank-badge{position:absolute;top:4px;right:6px;background:#1f77b4;color:#fff;border-radius:9px;padding:0 6px;font-weight:bold}
.rank-badge:empty{display:none}#ranking-output{max-height:200px;overflow:auto;background:#f8f8f8}
</style></head><body>
<h1>${escapeXml(r.title)}</h1>
<p class="meta">Generated ${escapeXml(r.createdAt)}${r.device ? ` on ${escapeXml(r.device)}` : ''} by pix2pix-webgpu.</p>
${r.testSet ? `<p id="test-set">${escapeXml(testSetText(r.testSet))}</p>` : ''}
${hasSkeleton ? '<p>Skeleton recovery (phantoms only): the correlation, inside the body, between the bone-scale structure (a band-pass from 0.4 to 1.6 mm, at least 1 to 2 pixels) of a translation and the phantom\'s bone layer (its projected bone thickness). The photo itself scores about 0.06, a grey silhouette without bones about 0, and the true X-ray about 0.87 at 64×128.</p>' : ''}
${fidNote}
${(r.notes ?? []).map((n) => `<p>${escapeXml(n)}</p>`).join('\n')}
<h2>Metrics against training-set size</h2>
<p class="meta">Points at the same size with several seeds show their mean, with bars from the lowest to the highest seed.</p>
<div class="charts" id="metric-charts">${charts.join('\n')}</div>
<h2>Results</h2>
${waemText}
<table id="results"><thead><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table>
<h2>Test photos translated by every trial</h2>${shown.length < r.trials.length ? '\n<p class="meta">One seed per point (the first); the table and charts include every seed.</p>' : ''}
<table class="grid" id="image-grid"><thead>${gridHead}</thead><tbody>${gridRows.join('\n')}</tbody></table>
<h2>Loss curves</h2>
<p class="meta">Per trial: the L1 term (left) and the adversarial terms (right) on their own scales; bold lines are moving averages, the faint lines the raw values (per step; means of equal runs of steps when a trial took more than ${REPORT_LOSS_POINTS} steps).</p>
<div class="charts" id="loss-charts">${lossCharts.join('\n')}</div>
<h2>Blinded ranking</h2>
<p>For each test photo, the trials' translations are shown in a random order, without names, beside the ground truth. Click them from best to worst; when every photo is ranked, export <code>ranking.json</code> and fit WAEM to it with <code>pix2pix-webgpu waem --results results.json --ranking ranking.json</code>, which prints how well each metric agrees with you and rewrites this report with the fitted weights.</p>
<p><button type="button" id="ranking-start">Start blinded ranking (${r.grid.files.length} photos, ${shown.length} translations each)</button>
<button type="button" id="ranking-export" disabled>Export ranking.json</button> <span id="ranking-status"></span></p>
<p id="ranking-help" hidden>Click the translations of each photo from best (1) to worst; "reset" starts that photo again.</p>
<div id="ranking"></div>
<pre id="ranking-output" hidden></pre>
<script type="application/json" id="report-data">${embedJson({ ...r, ranked: shown.map((t) => t.name) })}</script>
<script>${RANKING_SCRIPT}</script>
</body></html>
`;
}
