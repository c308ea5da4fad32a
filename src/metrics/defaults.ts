/**
 * Evaluation defaults in one place: the metrics API (computeSsim, evaluateFolders), the `evaluate` CLI
 * command and the study runner all take them from here, so a default changes in one line.
 * Browser-safe (constants only).
 */

/** The SSIM variants: skimage's defaults (7x7 uniform, sample covariance) or the Gaussian window (11x11, sigma 1.5). */
export const SSIM_MODES = ['skimage', 'gaussian'] as const;

/** Which SSIM: one of {@link SSIM_MODES}. */
export type SsimMode = (typeof SSIM_MODES)[number];

export const EVALUATION_DEFAULTS = {
  /** skimage.metrics.structural_similarity's own defaults, what the seed paper's numbers were computed with. */
  ssimMode: 'skimage',
  /** Test images shown per trial in a study's report grid. */
  gridImages: 4,
} as const satisfies { ssimMode: SsimMode; gridImages: number };
