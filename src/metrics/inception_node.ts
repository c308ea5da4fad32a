/**
 * Node helper: the FID InceptionV3 extractor from pytorch-fid's weights file on disk. Nothing is
 * bundled or downloaded: the user supplies pt_inception-2015-12-05-6726825d.pth.
 */
import type { GpuContext } from '../runtime/context.js';
import { FileFormatError, Pix2PixError } from '../runtime/errors.js';
import { readFileBytes } from '../io/atomic_node.js';
import { createInceptionExtractorFromWeights, type InceptionExtractor, type InceptionOptions } from './inception.js';
import { FID_WEIGHTS_FILE, FID_WEIGHTS_URL } from './inception_weights.js';

/** Environment variable naming the weights file when no path is passed. */
export const FID_WEIGHTS_ENV = 'PIX2PIX_FID_WEIGHTS';

/** The error thrown when no weights file is given: it names the file to download and the flag to pass. */
export class MissingFidWeightsError extends Pix2PixError {
  constructor() {
    super(
      'fid',
      `FID needs pytorch-fid's InceptionV3 weights: download ${FID_WEIGHTS_FILE} (${FID_WEIGHTS_URL}) and pass --fid-weights FILE` +
        ` (or set ${FID_WEIGHTS_ENV}=FILE)`,
    );
  }
}

/**
 * An InceptionExtractor from pytorch-fid's weights at `weightsPath` (default: $PIX2PIX_FID_WEIGHTS):
 * the .pth as pytorch-fid downloads it, or a .safetensors of the same state dict. Without a path
 * throws {@link MissingFidWeightsError}; a missing or wrong file throws an error naming it.
 */
export async function createInceptionExtractor(ctx: GpuContext, weightsPath?: string, opts: InceptionOptions = {}): Promise<InceptionExtractor> {
  const path = weightsPath || process.env[FID_WEIGHTS_ENV];
  if (!path) throw new MissingFidWeightsError();
  let bytes;
  try {
    bytes = await readFileBytes(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FileFormatError(path, `no such file; FID needs pytorch-fid's InceptionV3 weights ${FID_WEIGHTS_FILE} (${FID_WEIGHTS_URL})`);
    }
    throw e;
  }
  // From bytes, only the tensors the network uses are decoded (loadInceptionWeights).
  return createInceptionExtractorFromWeights(ctx, bytes, { ...opts, fileName: path });
}
