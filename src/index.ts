/**
 * pix2pix-webgpu: the browser-safe core. Everything here runs on any WebGPU device, in a browser or in
 * Node (Dawn); nothing here imports a runtime dependency. The exports are grouped for an app developer:
 * the model and the metrics first, the kernels for building other models last (the API reference in
 * docs/api follows the same order).
 *
 * @module pix2pix-webgpu
 */

// ---- Model: create, train, translate, save (Pix2Pix) and its options ----
export {
  Pix2Pix,
  NonFiniteLossError,
  padReflect,
  type Pix2PixOptions,
  type ResolvedConfig,
  type Pix2PixLosses,
  type Batch,
  type TranslateOptions,
  type Pix2PixCheckpoint,
  type CheckpointSources,
  type CheckpointInput,
  type NamedStateSource,
  type StateSource,
  type GanMode,
} from './gan/pix2pix.js';
export { resolvePix2PixOptions, PIX2PIX_DEFAULTS, NET_G_VALUES, NORM_VALUES, GAN_MODE_VALUES, type NetG, type TuneTiming } from './gan/options.js';
export { downloadBytes, type DownloadOptions, type DownloadProgress } from './gan/from_url.js';
export { UnetGenerator, NLayerDiscriminator, type GeneratorConfig, type DiscriminatorConfig, type GeneratorRun } from './gan/networks.js';
export { linearLambda, linearLrFactorForEpoch, type LinearPolicy } from './gan/lr_policy.js';

// ---- Metrics: MSE, NRMSE, PSNR, SSIM, FID, KID, WAEM ----
export { computePixelMetrics, pixelStatsForward, pixelMetricsFromStats, type PixelMetrics, type PixelMetricsOptions, type NrmseNormalization } from './metrics/pixel.js';
export { computeSsim, ssimForward, ssimWindow, type SsimMode, type SsimOptions, type SsimResult } from './metrics/ssim.js';
export { EVALUATION_DEFAULTS, SSIM_MODES } from './metrics/defaults.js';
export {
  frechetDistance,
  frechetDistanceFromFeatures,
  featureStatistics,
  fidFromFeatures,
  fidFromStatistics,
  computeFid,
  extractFeatures,
  type FeatureStatistics,
  type FrechetResult,
  type FrechetOptions,
  type FidResult,
} from './metrics/frechet.js';
export type { FeatureExtractor, FeatureMatrix } from './metrics/features.js';
export { kid, kidSubsets, type KidOptions, type KidResult } from './metrics/kid.js';
export { waem, computeWaem, waemTerms, waemWeightsFromShares, fitWaemWeights, kendallTau, DEFAULT_WAEM_WEIGHTS, DEFAULT_WAEM_SHARES, TYPICAL_METRICS, type MetricSet, type WaemWeights, type WaemFit } from './metrics/waem.js';
export { InceptionExtractor, createInceptionExtractorFromWeights, INCEPTION_FEATURE_DIMS, type InceptionOptions } from './metrics/inception.js';
export { loadInceptionWeights, FID_WEIGHTS_FILE, FID_WEIGHTS_URL } from './metrics/inception_weights.js';

// ---- Data: images, augmentation, phantoms, splits, manifests ----
export {
  parseAugmentSpec,
  outputSize as augmentOutputSize,
  AugmentSpecError,
  GEOMETRIC_TRANSFORMS,
  PHOTOMETRIC_TRANSFORMS,
  type AugmentSpec,
  type TransformSpec,
  type LeafSpec,
  type BorderMode,
} from './data/augment_schema.js';
export { createAugmenter, Augmenter, AugmentPlan, type AugmenterOptions, type AugmentRunOptions } from './data/augment.js';
export { augmentPairCpu } from './data/augment_cpu.js';
export { type ImageF32, createImage, imagesToTensorData, tensorDataToImages, cropImage, convertChannels } from './data/image.js';
export { makeAnimal, renderPhantomPair, poseParams, FIELD_OF_VIEW_MM, type AnimalParams, type PoseParams, type PhantomPair, type Colour } from './data/phantom.js';
export { splitByAnimal, subsetPairs, filterPairs, type PairFilter, type SplittableEntry } from './data/split.js';
export { imageFromBitmap, imageToBlob } from './data/image_browser.js';
export { parseManifest, formatManifestCsv, type ManifestEntry } from './data/manifest.js';

// ---- Checkpoints and files: safetensors, .pth, state dicts, read budgets ----
export { type StateDict, type StateDictEntry, type TensorListing, numelOf } from './io/state_dict.js';
export { parseSafetensors, parseSafetensorsFile, openSafetensors, serializeSafetensors, type SafetensorsFile, type SafetensorsOptions, type OpenedSafetensors } from './io/safetensors.js';
export { loadPth, openPth, isPth, type PthOptions, type OpenedPth } from './io/pth.js';
export { DEFAULT_READ_BUDGET, BUDGET_ENV, resolveBudget, type ReadBudget, type ReaderOptions } from './io/budget.js';
export { CheckpointMismatchError, inferGeneratorConfig, inferDiscriminatorConfig, readStateDict, loadStateDictInto, type TensorShapes } from './gan/state_dict.js';

// ---- Errors ----
export * from './runtime/errors.js';
export { MissingDependencyError, NODE_INSTALL_COMMAND, OPTIONAL_PACKAGES, type OptionalPackage } from './runtime/optional_deps.js';

// ---- Runtime: devices, tensors, memory planning, self-test ----
export { createContext } from './runtime/device.js';
export { GpuContext, Dispatch, BufferUsage, destroyDispatches, type AdapterInfo, type ContextOptions, type KernelSpec, type Binding, type AllocationStats } from './runtime/context.js';
export { Tensor, TensorStorage, numel } from './runtime/tensor.js';
export { planMemory, type MemoryPlan, type MemoryPlanOptions } from './runtime/memory_plan.js';
export { Rng, hashUniform, hashNormal, pcgHash, mixSeed } from './runtime/random.js';
export { selfTest, type SelfTestReport, type SelfTestCase } from './selftest.js';

// ---- Kernels and layers: WGSL ops with forward/backward, for building other models ----
export { activationForward, activationBackward, activationBackwardNeeds, type Activation } from './kernels/activation.js';
export {
  conv2dForward,
  conv2dForwardDirect,
  conv2dBackwardInput,
  conv2dBackwardInputDirect,
  conv2dBackwardWeight,
  conv2dBackwardWeightDirect,
  conv2dOutputShape,
  type Conv2dParams,
  type ConvBackwardOptions,
  type ConvImpl,
} from './kernels/conv2d.js';
export {
  convTranspose2dForward,
  convTranspose2dForwardDirect,
  convTranspose2dBackwardInput,
  convTranspose2dBackwardInputDirect,
  convTranspose2dBackwardWeight,
  convTranspose2dBackwardWeightDirect,
  convTranspose2dOutputShape,
  type ConvTranspose2dParams,
} from './kernels/conv_transpose2d.js';
export { TRAIN_MODE, EVAL_MODE } from './layers/layer.js';
export { Conv2d, ConvTranspose2d } from './layers/conv.js';
export { BatchNorm2d, InstanceNorm2d, GroupNorm2d, normGroupsFor, DEFAULT_NORM_GROUPS } from './layers/norm.js';
export { instanceNormForward, instanceNormBackward } from './kernels/instance_norm.js';
export { batchNormForward, batchNormBackward } from './kernels/batch_norm.js';
export { groupNormForward, groupNormBackward } from './kernels/group_norm.js';
export { bceWithLogitsForward, bceWithLogitsBackward, mseLossForward, mseLossBackward, l1LossForward, l1LossBackward } from './kernels/loss.js';
export { sumForward } from './kernels/reduce.js';
export { adamStep, updateAdam } from './kernels/adam.js';
export { dropoutForward, dropoutBackward, setDropoutSeed } from './kernels/dropout.js';
export { concatChannelsForward, concatChannelsBackward } from './kernels/concat.js';
export { initNormal, initConstant } from './kernels/init.js';
export { maxPool2dForward, avgPool2dForward, globalAvgPoolForward, pool2dOutputShape, type Pool2dParams, type AvgPool2dParams } from './kernels/pool.js';
export { resizeBilinearForward, type ResizeParams } from './kernels/resize.js';
export { channelSliceCopy, type ChannelSliceParams } from './kernels/channel_slice.js';
