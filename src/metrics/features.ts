/**
 * The plug-in point for feature backbones (InceptionV3 pool3 for FID/KID, or any other network): an extractor
 * turns a batch of images into one feature row per image. The metrics code only depends on this interface.
 */
import type { GpuContext } from '../runtime/context.js';
import type { Tensor } from '../runtime/tensor.js';

/** A network that maps images to feature vectors (e.g. InceptionV3's 2048-d pool3 for FID). */
export interface FeatureExtractor {
  /** Shown in reports and errors, e.g. 'inception-v3-pool3'. */
  readonly name: string;
  /** Length of each feature vector. */
  readonly dims: number;
  /**
   * Features of a batch. `images` is [N, C, H, W] with values in [0, 1] (C = 1 or 3; the extractor resizes and
   * converts channels as its network needs). Returns a new [N, dims] tensor that the caller destroys.
   */
  extract(ctx: GpuContext, images: Tensor): Promise<Tensor>;
  /** Free the network's GPU memory. */
  destroy(): void;
}

/** Features read back to the CPU: `rows` vectors of `cols` values, row-major. */
export interface FeatureMatrix {
  data: Float32Array | Float64Array;
  rows: number;
  cols: number;
}
