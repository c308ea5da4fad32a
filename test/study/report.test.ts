// The report as a researcher reads it: repeated seeds drawn as mean with spread, augmented and transfer points
// labelled, the L1 and adversarial losses on separate panels (smoothed over a faint raw trace), the test set and
// each trial's settings stated, the grid's rows from different animals covering both colours, and what to do
// when FID is missing. Pure string checks (the Chromium test is report_ranking.test.ts).
import { describe, it, expect } from 'vitest';
import { gridTrials, metricSeries, parseReportData, reduceLosses, sizeAxisIsLog, pickGridRows, renderReport, REPORT_LOSS_POINTS, type StudyReport, type TrialReport } from '../../src/study/report.js';
import { lineChart, logTicks, smooth } from '../../src/study/svg_chart.js';
import type { TrialSettings } from '../../src/study/study_config.js';

const settings = (o: Partial<TrialSettings> = {}): TrialSettings => ({
  imageSize: '64x128',
  numDowns: 6,
  ngf: 8,
  ndf: 8,
  nLayersD: 3,
  norm: 'batch',
  dropout: false,
  lr: 0.002,
  lambdaL1: 100,
  batchSize: 1,
  seed: 0,
  nEpochs: 8,
  nEpochsDecay: 8,
  steps: 128,
  realPairs: 8,
  pairsPerEpoch: 8,
  manifestHash: 'abc',
  ...o,
});

function trial(name: string, kind: string, n: number, ssim: number, extra: Partial<TrialReport> = {}): TrialReport {
  return {
    name,
    kind,
    trainPairs: n,
    effectivePairs: n,
    metrics: { mse: 0.01, nrmse: 0.2, psnr: 20, ssim, waem: 1, skeleton: ssim / 2 },
    // G_L1 around 20-40 (x100), the adversarial terms around 0.7: the L1 term must not flatten them.
    losses: Array.from({ length: 200 }, (_, s) => ({ step: s + 1, epoch: 1 + Math.floor(s / 20), G_GAN: 0.7 + 0.3 * Math.sin(s), G_L1: 40 - s / 10 + 5 * Math.cos(s * 1.3), D_real: 0.6 + 0.1 * Math.sin(s * 0.7), D_fake: 0.5, lr: 2e-3 })),
    samples: ['data:image/png;base64,AAAA', 'data:image/png;base64,BBBB'],
    settings: settings({ seed: Number(name.split('-s')[1] ?? 0), realPairs: n }),
    ...extra,
  };
}

function report(trials: TrialReport[], extra: Partial<StudyReport> = {}): StudyReport {
  return {
    title: 'test',
    createdAt: '2026-01-01',
    trials,
    grid: { files: ['m001_p0', 'm002_p1'], inputs: ['data:image/png;base64,P1', 'data:image/png;base64,P2'], truths: ['data:image/png;base64,T1', 'data:image/png;base64,T2'], rows: [{ file: 'm001_p0', animal: 'm001', fur: 'white', bed: 'black' }, { file: 'm002_p1', animal: 'm002', fur: 'black', bed: 'white' }] },
    ...extra,
  };
}

const sweep = [
  trial('n8-s0', 'size', 8, 0.5),
  trial('n8-s1', 'size', 8, 0.6),
  trial('n8-s2', 'size', 8, 0.7),
  trial('n24-s0', 'size', 24, 0.8),
  trial('n110', 'size', 110, 0.9),
  trial('aug-8to32', 'augment', 8, 0.65, { effectivePairs: 32 }),
  trial('transfer-w2b', 'transfer', 8, 0.55, { settings: settings({ filter: { bed: 'black' }, pretrain: { pairs: 24, filter: { bed: 'white' }, epochs: 16 } }) }),
];

describe('study report', () => {
  it('draws repeated seeds as one point: mean with min-max spread; labels augmented and transfer points', () => {
    const series = metricSeries(sweep, 'ssim');
    const size = series.find((s) => s.name.startsWith('real pairs'))!;
    expect(size.name).toContain('mean of 3');
    expect(size.points.map((p) => p.x)).toEqual([8, 24, 110]);
    expect(size.points[0].y).toBeCloseTo(0.6, 12);
    expect([size.points[0].lo, size.points[0].hi]).toEqual([0.5, 0.7]);
    expect(size.points[1].lo).toBeUndefined();
    expect(series.find((s) => s.name === 'augmented')!.points[0].label).toBe('augmented 8→32');
    expect(series.find((s) => s.name === 'transfer')!.points[0].label).toBe('transfer white→black bed');
    const svg = lineChart(series, { title: 'SSIM', xLabel: 'pairs', yLabel: 'SSIM' });
    expect((svg.match(/class="spread"/g) ?? []).length).toBe(1);
    expect(svg).toContain('>augmented 8→32</text>');
    expect(svg).toContain('>transfer white→black bed</text>');
  });

  it('puts the L1 term and the adversarial terms on separate panels, smoothed over a faint raw trace', () => {
    const html = renderReport(report([trial('n8-s0', 'size', 8, 0.5)]));
    const panels = html.match(/<div class="losspair"[\s\S]*?<\/div>/g)!;
    expect(panels.length).toBe(1);
    const svgs = panels[0].match(/<svg[\s\S]*?<\/svg>/g)!;
    expect(svgs.length).toBe(2);
    const [l1, adv] = svgs;
    expect(l1).toContain('data-series="G_L1"');
    expect(l1).not.toContain('data-series="G_GAN"');
    for (const k of ['G_GAN', 'D_real', 'D_fake']) expect(adv).toContain(`data-series="${k}"`);
    expect(adv).not.toContain('data-series="G_L1"');
    // The adversarial panel's axis fits its own values (about 0.4..1), not G_L1's 20..45.
    const ticks = [...adv.matchAll(/text-anchor="end" font-size="10">([-\d.e]+)</g)].map((m) => Number(m[1]));
    expect(Math.max(...ticks)).toBeLessThan(2);
    expect(adv).toContain('data-series="G_GAN raw"');
    expect(adv).toMatch(/data-series="G_GAN raw"[^>]*stroke-opacity="0.22"/);
    expect(smooth([0, 0, 3, 0, 0], 3)).toEqual([0, 1, 1, 1, 0]);
  });

  it('draws and embeds a long training (the seed: 164600 steps) as bucket means, without overflowing the stack', () => {
    // 21000 steps made the adversarial panel 126000 points, whose Math.min(...points) threw RangeError.
    const steps = 164600;
    const losses = Array.from({ length: steps }, (_, s) => ({ step: s + 1, epoch: 1 + Math.floor(s / 823), G_GAN: 0.7 + 0.3 * Math.sin(s), G_L1: 40 - s / 1e4, D_real: 0.6, D_fake: s % 2, lr: 2e-4 }));
    const html = renderReport(report([trial('n700', 'size', 700, 0.8, { losses })]));
    const panels = html.match(/<div class="losspair"[\s\S]*?<\/div>/g)!;
    const paths = [...panels[0].matchAll(/data-series="([^"]+)" d="([^"]+)"/g)];
    expect(paths.length).toBe(8);
    for (const [, , d] of paths) expect((d.match(/L/g) ?? []).length + 1).toBe(REPORT_LOSS_POINTS);
    const embedded = parseReportData(html)!.trials[0].losses;
    expect(embedded.length).toBe(REPORT_LOSS_POINTS);
    // Bucket 0 holds steps 1..164 (164600 / 1000 = 164.6): D_fake alternates 0, 1 from 0, so its mean is 82/164.
    expect(embedded[0].step).toBe(164);
    expect(embedded[0].D_fake).toBeCloseTo(82 / 164, 12);
    expect(embedded.at(-1)!.step).toBe(steps);
    // Re-rendered from the embedded data (as `waem` does), the loss curves are the same.
    const again = renderReport(parseReportData(html)!);
    expect(again.match(/<div class="losspair"[\s\S]*?<\/div>/g)).toEqual(panels);
    expect(reduceLosses(embedded)).toEqual(embedded);
    expect(html.length).toBeLessThan(2e6);
    // lineChart itself takes any number of points (its axis range is a loop, not a spread).
    expect(lineChart([{ name: 'many', points: losses.map((l) => ({ x: l.step, y: l.G_L1 })) }], { title: 't', xLabel: 'x', yLabel: 'y' })).toContain('data-series="many"');
  });

  it("states the test set and each trial's settings; explains how to add FID when it is missing", () => {
    const testSet = {
      images: 20,
      source: 'data',
      animals: [
        { id: 'm001', fur: 'white', bed: 'black', images: 5 },
        { id: 'm002', fur: 'black', bed: 'white', images: 5 },
        { id: 'm003', fur: 'white', bed: 'white', images: 5 },
        { id: 'm004', fur: 'black', bed: 'black', images: 5 },
      ],
    };
    const html = renderReport(report(sweep, { testSet }));
    expect(html).toContain('Test set: 20 images of 4 held-out animals never seen in training; fur: 2 white, 2 black; beds: 2 white, 2 black');
    expect(html).toContain('m001 (white fur, black bed, 5 images)');
    const row = html.match(/<tr><td>transfer-w2b<\/td>.*?<\/tr>/)![0];
    for (const cell of ['64x128', 'U-Net 6 levels, ngf 8', 'PatchGAN 3 layers, ndf 8', '8+8 (pretrain 16 on 24 white-bed)', '0.002', '128']) expect(row).toContain(`<td>${cell}</td>`);
    // The L1 weight is a column and in the L1 panel's title: the demo departs from the reference's 100.
    expect(html).toContain('<th>λ L1</th>');
    expect(row).toMatch(/<td>0\.002<\/td><td>100<\/td>/);
    expect(html).toContain('transfer-w2b: L1 term (λ·|G(x)−y|, λ = 100)');
    expect(html).toMatch(/<th>skeleton recovery<\/th>/);
    expect(html).toContain('id="fid-missing"');
    expect(html).toContain('demo --fid-weights FILE');
    expect(html).toContain('PIX2PIX_FID_WEIGHTS');
    const withFid = renderReport(report(sweep.map((t) => ({ ...t, metrics: { ...t.metrics, fid: 40, kid: 0.01 } })), { fidWeights: 'pt_inception.pth' }));
    expect(withFid).not.toContain('id="fid-missing"');
    expect(withFid).toContain('FID and KID use');
  });

  it('shows one seed per point in the grid, with who each row is; embeds its data for re-rendering', () => {
    expect(gridTrials(sweep).map((t) => t.name)).toEqual(['n8-s0', 'n24-s0', 'n110', 'aug-8to32', 'transfer-w2b']);
    const html = renderReport(report(sweep));
    const gridHead = html.match(/<table class="grid"[\s\S]*?<\/thead>/)![0];
    expect(gridHead).not.toContain('n8-s1');
    expect(html).toContain('m001 · white fur · black bed');
    const data = parseReportData(html)!;
    expect(data.trials.length).toBe(sweep.length);
    expect((data as unknown as { ranked: string[] }).ranked).toEqual(gridTrials(sweep).map((t) => t.name));
    // A title with a script end tag cannot break out of the embedded JSON.
    const evil = renderReport(report(sweep, { title: '</script><script>alert(1)</script>' }));
    expect(parseReportData(evil)!.title).toBe('</script><script>alert(1)</script>');
  });

  it('picks grid rows from different animals covering both fur colours and both beds', () => {
    // Five poses each of four animals, in file order: the first four images are all one animal.
    const combos = [
      ['white', 'white'],
      ['white', 'black'],
      ['black', 'white'],
      ['black', 'black'],
    ];
    const rows = combos.flatMap(([fur, bed], a) => Array.from({ length: 5 }, (_, p) => ({ file: `m00${a}_p${p}`, animal: `m00${a}`, fur, bed })));
    const picked = pickGridRows(rows, 4).map((i) => rows[i]);
    expect(new Set(picked.map((r) => r.animal)).size).toBe(4);
    expect(new Set(picked.map((r) => r.fur))).toEqual(new Set(['white', 'black']));
    expect(new Set(picked.map((r) => r.bed))).toEqual(new Set(['white', 'black']));
    // Two rows: both colours of fur and of bed already (white/white with black/black, not white/black first).
    const two = pickGridRows(rows, 2).map((i) => rows[i]);
    expect(new Set(two.map((r) => r.fur)).size).toBe(2);
    expect(new Set(two.map((r) => r.bed)).size).toBe(2);
    // More rows than animals: further poses, no repeats.
    const six = pickGridRows(rows, 6);
    expect(new Set(six).size).toBe(6);
    expect(pickGridRows(rows.slice(0, 3), 4).length).toBe(3);
  });
});

describe('svg charts', () => {
  it('puts a sweep over more than a decade (8, 24, 1105 pairs) on a log axis, so the small points do not crowd the left edge', () => {
    const wide = [trial('n8-s0', 'size', 8, 0.6), trial('n24-s0', 'size', 24, 0.75), trial('n1105', 'size', 1105, 0.9)];
    expect(sizeAxisIsLog(wide)).toBe(true);
    expect(sizeAxisIsLog(wide.slice(0, 2))).toBe(false);
    const cx = (svg: string) => [...svg.matchAll(/<circle cx="([\d.]+)"/g)].map((m) => Number(m[1]));
    const series = metricSeries(wide, 'ssim');
    // Where 24 sits between 8 and 1105: log10(3) / log10(138.1) = 0.223 on a log axis, 16 / 1097 = 0.015 on a linear one.
    const at = (xs: number[]) => (xs[1] - xs[0]) / (xs[2] - xs[0]);
    expect(at(cx(lineChart(series, { title: 't', xLabel: 'x', yLabel: 'y', logX: true })))).toBeCloseTo(Math.log10(3) / Math.log10(1105 / 8), 2);
    expect(at(cx(lineChart(series, { title: 't', xLabel: 'x', yLabel: 'y' })))).toBeLessThan(0.02);
    // The report's size charts are the log ones.
    const html = renderReport(report(wide));
    const chart = html.match(/<svg[^>]*aria-label="SSIM vs training pairs[\s\S]*?<\/svg>/)![0];
    expect(at(cx(chart))).toBeCloseTo(0.223, 2);
    const xLabels = [...chart.matchAll(/text-anchor="middle" font-size="10">([\d.]+)</g)].map((m) => Number(m[1]));
    // The sweep's sizes, and the one power of ten that does not print over them (10 is beside 8, 1000 beside 1105).
    expect(xLabels.sort((a, b) => a - b)).toEqual([8, 24, 100, 1105]);
    expect(logTicks(8, 1105)).toEqual([10, 20, 50, 100, 200, 500, 1000]);
    expect(logTicks(1, 1e6)).toEqual([1, 10, 100, 1000, 1e4, 1e5, 1e6]);
  });

  it('draws a flat series whose values differ only by rounding (a mean of equal seeds) without hanging', () => {
    const mean = (0.1 + 0.1 + 0.1) / 3; // 0.10000000000000002
    expect(mean).not.toBe(0.1);
    const svg = lineChart([{ name: 's', points: [{ x: 8, y: mean }, { x: 24, y: 0.1 }] }], { title: 't', xLabel: 'x', yLabel: 'y' });
    expect(svg).toContain('<path class="series"');
  });

  it('sizes the legend to its longest name, so "real pairs (size sweep), mean of 3" is not cut off at the edge', () => {
    const name = 'real pairs (size sweep), mean of 3';
    const svg = lineChart([{ name, points: [{ x: 8, y: 1 }, { x: 24, y: 2 }] }, { name: 'augmented', points: [{ x: 32, y: 1.5 }] }], { title: 't', xLabel: 'x', yLabel: 'y', width: 420 });
    const box = svg.match(/<rect class="legend" x="([-\d.]+)" y="[-\d.]+" width="([\d.]+)"/);
    expect(box).not.toBeNull();
    const [x, w] = [Number(box![1]), Number(box![2])];
    expect(x).toBeGreaterThanOrEqual(0);
    expect(x + w).toBeLessThanOrEqual(420);
    // About 6 px a character at font-size 10, plus the colour swatch: the box holds the whole name.
    expect(w).toBeGreaterThanOrEqual(6 * name.length + 16);
  });
});
