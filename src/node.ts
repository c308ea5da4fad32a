/**
 * Node-only helpers (file I/O through sharp, checkpoints on disk, the training loop, dataset tools).
 * Re-exports the core. Needs the optional peer dependencies: `npm install webgpu sharp`.
 *
 * @module pix2pix-webgpu/node
 */
export * from './index.js';
export { writeFileAtomic, readFileBytes, loadStateDictFile, saveSafetensorsFile, FileWriteError } from './io/atomic_node.js';
export { readImage, writePng, encodePng } from './data/image_node.js';
export { expandDataset, copiesPerFile, type ExpandOptions, type ExpandResult } from './data/augment_node.js';
export { saveCheckpoint, loadCheckpoint, checkpointPaths, MixedCheckpointError, type CheckpointPaths } from './gan/checkpoint_node.js';
export { trainPix2Pix, DEFAULT_PAIR_CACHE_BYTES, type TrainerOptions, type TrainResult, type PairSource, type StepInfo } from './train/trainer_node.js';
export { evaluateFolders, pairFolders, type EvaluateFoldersOptions, type EvaluateFoldersResult, type PerImageMetrics } from './metrics/evaluate_node.js';
export { createInceptionExtractor, MissingFidWeightsError, FID_WEIGHTS_ENV } from './metrics/inception_node.js';
export { loadPairedDataset, type PairEntry, type PairedDataset, type PairedDatasetOptions } from './data/dataset_node.js';
export { synthesizeDataset, planDataset, SEED_DATASET, type SynthesizeOptions, type SynthesizeResult, type DatasetPlan, type PlannedAnimal } from './data/synth_node.js';
export { openPairs, type OpenedPair, type OpenPairsOptions } from './train/pair_sources_node.js';
// The study runner (train, translate and score each trial; resumable, shareable by workers) and its error
// (its trials failed, the others went on): what `pix2pix-webgpu study` runs, callable from code.
export {
  runStudy,
  loadStudyConfig,
  StudyTrialsFailedError,
  type StudyRunOptions,
  type StudyRunSummary,
  type TrialResult,
  type ClaimInfo,
  type StudyConfig,
  type TrialConfig,
} from './study/study_node.js';
export type { StudyTrainConfig, StudyEvaluateConfig } from './study/study_config.js';
