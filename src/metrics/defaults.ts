/**
 * Evaluation defaults in one place: the metrics API (computeSsim, evaluateFolders), the `evaluate` CLI
 * command and the study runner all take them from here, so a default changes in one line.
 * Browser-safe (constants only).
 */

/** Which SSIM: skimage's defaults (7x7 uniform, sample covariance) or the Gaussian-window variant (11x11, sigma 1.5). */
export type SsimMode = 'skimage' | 'gaussian';

/** Every {@link SsimMode}, for option checks and help texts. */
export const SSIM_MODES = ['skimage', 'gaussian'] as const satisfies readonly SsimMode[];

export const EVALUATION_DEFAULTS = {
  /** skimage.metrics.structural_similarity's own defaults, what the seed paper's numbers were computed with. */
  ssimMode: 'skimage',
  /** Test images shown per trial in a study's report grid. */
  gridImages: 4,
} as const satisfies { ssimMode: SsimMode; gridImages: number };
