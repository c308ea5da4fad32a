// Rebuild the PyTorch fixtures' initial weights and inputs (scripts/fixtures/pix2pix.py) from their hash recipes.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hashNormal, hashUniform } from '../../src/runtime/random.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import type { StateDict } from '../../src/io/state_dict.js';
import { loadFixture } from '../helpers/fixtures.js';

export interface RecipeEntry {
  key: string;
  shape: number[];
  seed?: number;
  mean?: number;
  std?: number;
  const?: number;
}

export interface TrainFixture {
  config: {
    inputChannels: number;
    outputChannels: number;
    numDowns: number;
    ngf: number;
    ndf: number;
    nLayersD: number;
    norm: 'batch' | 'instance';
    dropout: boolean;
    batch: number;
    height: number;
    width: number;
    steps: number;
    lr: number;
    beta1: number;
    beta2: number;
    lambdaL1: number;
    inputSeed: number;
    targetSeed: number;
  };
  recipeG: RecipeEntry[];
  recipeD: RecipeEntry[];
  losses: { G_GAN: number; G_L1: number; D_real: number; D_fake: number }[];
  checks: Record<string, number>;
  /** Step-1 gradient of every parameter ('G.model.model.0.weight'): L2 norm and the first 16 values. */
  grads: Record<string, { norm: number; head: number[]; roundingNoise: number }>;
  /** Per tensor after 3 steps: max |torch float32 − torch float64|, how far float32 rounding alone moves it. */
  sensitivity: Record<string, number>;
  file: string;
}

export interface PthCase {
  file: string;
  inputChannels: number;
  outputChannels: number;
  numDowns: number;
  ngf: number;
  norm: string;
  keys: number;
  droppedKeys?: string[];
}

export interface Pix2PixFixture {
  instance: TrainFixture;
  batch: TrainFixture;
  pth: { batch: PthCase; instance_legacy: PthCase; input: { seed: number; shape: number[] } };
  expectedFiles: string;
}

export const fixture = loadFixture<Pix2PixFixture>('pix2pix');

export function fixtureBytes(rel: string): Uint8Array {
  const buf = readFileSync(fileURLToPath(new URL(`../fixtures/${rel}`, import.meta.url)));
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function fixtureTensors(rel: string): StateDict {
  return parseSafetensors(fixtureBytes(rel), rel);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The state dict a recipe describes (float32 values, as torch holds them). */
export function stateDictFromRecipe(recipe: RecipeEntry[]): StateDict {
  const sd: StateDict = new Map();
  for (const r of recipe) {
    const n = numel(r.shape);
    const data = new Float32Array(n);
    if (r.const !== undefined) data.fill(r.const);
    else for (let i = 0; i < n; i++) data[i] = hashNormal(r.seed!, i) * r.std! + r.mean!;
    sd.set(r.key, { shape: [...r.shape], data, dtype: r.key.endsWith('num_batches_tracked') ? 'I64' : 'F32' });
  }
  return sd;
}

/** 2 * hashUniform(seed, i) - 1, rounded to f32 as the script does. */
export function hashInput(seed: number, shape: readonly number[]): Float32Array {
  const n = numel(shape);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 2 * hashUniform(seed, i) - 1;
  return out;
}
