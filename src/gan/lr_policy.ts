/**
 * The reference's 'linear' learning-rate policy (models/networks.py get_scheduler):
 *
 *   lambda_rule(epoch) = 1 − max(0, epoch + epoch_count − n_epochs) / (n_epochs_decay + 1)
 *
 * wrapped in torch's LambdaLR, so lr = lr0 · lambda_rule(k) after k scheduler steps. The reference's
 * train.py steps the scheduler once at the *start* of every epoch (model.update_learning_rate() before
 * the epoch's iterations), so training epoch e (counting from epoch_count) runs with
 * k = e − epoch_count + 1. With n_epochs = n_epochs_decay = 100 that is lr0 up to epoch 99, then a
 * linear decay reaching 0 in epoch 200.
 */

export interface LinearPolicy {
  /** Epochs at the initial learning rate (reference --n_epochs, default 100). */
  nEpochs: number;
  /** Epochs of linear decay to zero (reference --n_epochs_decay, default 100). */
  nEpochsDecay: number;
  /** The first epoch's number (reference --epoch_count, default 1). */
  epochCount?: number;
}

/** lambda_rule(k): the LambdaLR factor after k scheduler steps. */
export function linearLambda(k: number, p: LinearPolicy): number {
  const epochCount = p.epochCount ?? 1;
  return 1 - Math.max(0, k + epochCount - p.nEpochs) / (p.nEpochsDecay + 1);
}

/** The factor the reference trains epoch `epoch` with (scheduler stepped at each epoch's start). */
export function linearLrFactorForEpoch(epoch: number, p: LinearPolicy): number {
  return linearLambda(epoch - (p.epochCount ?? 1) + 1, p);
}
