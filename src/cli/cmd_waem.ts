/**
 * `waem --results results.json --ranking ranking.json`: the paper's comparison of the metrics with an expert's
 * visual inspection. The expert ranks the trials' translations blind in the report (ranking.json, one order per
 * test photo); the orders are combined by mean position (Borda), WAEM's weights are fitted to the combined order
 * (fitWaemWeights), and the command prints the weights and the Kendall tau between the expert and WAEM and between
 * the expert and each single metric, writes waem_weights.json (usable as a study's "evaluate.waemWeights"), and
 * re-renders the report with the fitted weights.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { defineCommand, UsageError } from './command.js';

export interface ExpertRanking {
  format?: string;
  version?: number;
  trials: string[];
  images: { file: string; order: string[] }[];
}

interface ResultRow {
  name: string;
  metrics: Record<string, number | undefined>;
}

export interface WaemFitReport {
  /** The expert's combined order of the ranked trials, best first, with each one's mean position (1 = best). */
  order: { name: string; meanPosition: number }[];
  weights: import('../metrics/waem.js').WaemWeights;
  shares: number[];
  /** Kendall tau between the expert's order and WAEM (fitted), WAEM with the default weights, and each metric. */
  taus: Record<string, number>;
  /** WAEM of every result row with the fitted weights. */
  waem: Record<string, number>;
  fidPresent: boolean;
}

const LOWER_IS_BETTER = new Set(['mse', 'nrmse', 'fid', 'kid']);
const SINGLE_METRICS = ['mse', 'nrmse', 'psnr', 'ssim', 'fid', 'kid', 'skeleton'] as const;

/** Check a parsed ranking.json against the results: every ranked name is a result, each image orders them all. */
export function checkRanking(ranking: ExpertRanking, results: readonly ResultRow[], where: string): void {
  if (!ranking || !Array.isArray(ranking.images) || !Array.isArray(ranking.trials)) throw new UsageError(`${where}: not a ranking (expected {"trials": [...], "images": [{"file", "order": [...]}]}, as the report exports)`);
  if (ranking.images.length === 0) throw new UsageError(`${where}: no ranked photos`);
  const names = new Set(results.map((r) => r.name));
  for (const t of ranking.trials) if (!names.has(t)) throw new UsageError(`${where}: trial '${t}' is not in the results (results have ${[...names].join(', ')})`);
  for (const im of ranking.images) {
    const order = im.order ?? [];
    if (order.length !== ranking.trials.length || new Set(order).size !== order.length || order.some((t) => !ranking.trials.includes(t))) {
      throw new UsageError(`${where}: photo ${im.file} orders ${order.length} trials (${order.join(', ')}); expected each of ${ranking.trials.join(', ')} once`);
    }
  }
}

/** Combine the expert's per-photo orders, fit WAEM to them, and measure every metric's agreement. */
export async function fitToExpert(results: readonly ResultRow[], ranking: ExpertRanking): Promise<WaemFitReport> {
  const { fitWaemWeights, kendallTau, waem, DEFAULT_WAEM_WEIGHTS } = await import('../metrics/waem.js');
  const pos = new Map(ranking.trials.map((t) => [t, 0]));
  for (const im of ranking.images) im.order.forEach((t, k) => pos.set(t, pos.get(t)! + k + 1));
  const order = ranking.trials
    .map((name) => ({ name, meanPosition: pos.get(name)! / ranking.images.length }))
    .sort((a, b) => a.meanPosition - b.meanPosition || a.name.localeCompare(b.name));
  const index = new Map(results.map((r, i) => [r.name, i]));
  const expert = order.map((o) => index.get(o.name)!);
  const fidPresent = results.every((r) => Number.isFinite(r.metrics.fid));
  // Without FID every model's 1/FID term is 0: the fit gives it no weight.
  const sets = results.map((r) => ({ mse: r.metrics.mse!, nrmse: r.metrics.nrmse!, psnr: r.metrics.psnr!, ssim: r.metrics.ssim!, fid: fidPresent ? r.metrics.fid! : Infinity }));
  const fit = fitWaemWeights(sets, expert);
  const taus: Record<string, number> = { 'WAEM (fitted)': fit.kendallTau, 'WAEM (default weights)': kendallTau(sets.map((m) => waem(m, DEFAULT_WAEM_WEIGHTS)), expert) };
  for (const k of SINGLE_METRICS) {
    const v = results.map((r) => r.metrics[k]);
    if (expert.some((i) => !Number.isFinite(v[i]))) continue;
    taus[k] = kendallTau(v.map((x) => (LOWER_IS_BETTER.has(k) ? -(x as number) : (x as number))), expert);
  }
  const fitted: Record<string, number> = {};
  results.forEach((r, i) => (fitted[r.name] = waem(sets[i], fit.weights)));
  // With FID absent its standardised term is 0 for every model, so whatever share the fit left on it ranks
  // nothing: report the shares of the terms that exist.
  let shares = fit.shares;
  if (!fidPresent) {
    const rest = shares.slice(0, 4).reduce((s, v) => s + v, 0);
    shares = rest > 0 ? [...shares.slice(0, 4).map((v) => v / rest), 0] : shares;
  }
  return { order, weights: fit.weights, shares, taus, waem: fitted, fidPresent };
}

export const waemCommand = defineCommand({
  name: 'waem',
  summary: "fit WAEM's weights to an expert's blind ranking (exported by the report) and compare every metric with it",
  usage: 'waem --results results.json --ranking ranking.json [--report report.html] [--out waem_weights.json]',
  options: {
    results: { type: 'string', arg: 'FILE', description: "a study's results.json (from study or demo)" },
    ranking: { type: 'string', arg: 'FILE', description: "ranking.json exported by the report's blinded ranking mode" },
    report: { type: 'string', arg: 'FILE', description: 'the report to rewrite with the fitted weights (default: report.html beside results.json)' },
    out: { type: 'string', arg: 'FILE', description: 'where to write the fitted weights (default: waem_weights.json beside results.json)' },
  },
  epilog: [
    'The report (report.html) has a "Blinded ranking" section: rank each photo\'s translations, export ranking.json, then:',
    '  pix2pix-webgpu waem --results demo-out/study/results.json --ranking ~/Downloads/ranking.json',
    'Photos are combined by mean position. Kendall tau: 1 = the same order as the expert, -1 = reversed.',
    'The weights file can be used as a study config\'s "evaluate": {"waemWeights": {...}}.',
  ].join('\n'),
  async run(opts) {
    if (!opts.results) throw new UsageError('waem: --results FILE is required (a study\'s results.json)');
    if (!opts.ranking) throw new UsageError('waem: --ranking FILE is required (exported by the report\'s blinded ranking)');
    const readJson = <T>(flag: string, path: string): T => {
      if (!existsSync(path)) throw new UsageError(`waem: --${flag} ${path}: no such file`);
      try {
        return JSON.parse(readFileSync(path, 'utf8')) as T;
      } catch (e) {
        throw new UsageError(`waem: --${flag} ${path}: not JSON (${(e as Error).message})`);
      }
    };
    const resultsPath = resolve(opts.results);
    const results = readJson<ResultRow[]>('results', resultsPath);
    if (!Array.isArray(results) || results.some((r) => !r?.name || !r.metrics)) throw new UsageError(`waem: --results ${opts.results}: expected a study's results.json (a list of {name, metrics})`);
    const ranking = readJson<ExpertRanking>('ranking', resolve(opts.ranking));
    checkRanking(ranking, results, `waem: --ranking ${opts.ranking}`);
    const reportPath = resolve(opts.report ?? join(dirname(resultsPath), 'report.html'));
    if (opts.report && !existsSync(reportPath)) throw new UsageError(`waem: --report ${opts.report}: no such file`);

    const r = await fitToExpert(results, ranking);
    const fmt = (v: number) => (Math.abs(v) !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5) ? v.toExponential(3) : v.toPrecision(4));
    console.log(`expert's order (${ranking.images.length} photos, mean position): ${r.order.map((o) => `${o.name} ${o.meanPosition.toFixed(2)}`).join(', ')}`);
    console.log(`fitted WAEM weights: a=${fmt(r.weights.a)} b=${fmt(r.weights.b)} c=${fmt(r.weights.c)} d=${fmt(r.weights.d)} e=${fmt(r.weights.e)}`);
    console.log(`  shares of the standardised terms (1/MSE, 1/NRMSE, PSNR, SSIM, 1/FID): ${r.shares.map((s) => s.toFixed(3)).join(', ')}${r.fidPresent ? '' : ' (no FID in these results: its term gets no weight)'}`);
    console.log('Kendall tau with the expert (1 = same order, -1 = reversed):');
    for (const [k, v] of Object.entries(r.taus)) console.log(`  ${k.padEnd(24)} ${v.toFixed(3)}`);
    const { writeFileAtomic } = await import('../io/atomic_node.js');
    const weightsPath = resolve(opts.out ?? join(dirname(resultsPath), 'waem_weights.json'));
    const enc = new TextEncoder();
    await writeFileAtomic(weightsPath, enc.encode(`${JSON.stringify({ waemWeights: r.weights, shares: r.shares, kendallTau: r.taus, expertOrder: r.order, photos: ranking.images.length }, null, 2)}\n`));
    console.log(`weights: ${weightsPath}`);
    if (existsSync(reportPath)) {
      const { parseReportData, renderReport } = await import('../study/report.js');
      const data = parseReportData(readFileSync(reportPath, 'utf8'));
      if (!data) throw new UsageError(`waem: ${reportPath} has no embedded report data (written by an older version: run the study again to rewrite it)`);
      for (const t of data.trials) if (r.waem[t.name] !== undefined) t.metrics.waem = r.waem[t.name];
      data.waem = { weights: r.weights, shares: r.shares, taus: r.taus, source: `weights fitted to an expert's blind ranking of ${ranking.images.length} photos (${ranking.trials.length} trials)` };
      data.createdAt = new Date().toISOString();
      const { ranked: _r, ...clean } = data as typeof data & { ranked?: unknown };
      await writeFileAtomic(reportPath, enc.encode(renderReport(clean)));
      console.log(`report rewritten with the fitted weights: ${reportPath}`);
    } else console.log(`no report at ${reportPath}: pass --report FILE to rewrite one`);
  },
});
