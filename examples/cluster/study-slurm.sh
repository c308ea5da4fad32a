#!/bin/bash
# The seed's study (examples/study-seed.json: 7 trials) as a Slurm job array: one trial per array task, all
# tasks writing into one study folder on shared storage. Submit from the repository root:
#
#   npm run build                       # once, on shared storage
#   node dist/cli.js study --config examples/study-seed.json --plan      # trial indexes 0..6
#   jobid=$(sbatch --parsable examples/cluster/study-slurm.sh)
#   sbatch --dependency=afterany:$jobid --wrap \
#     "node dist/cli.js study --config examples/study-seed.json --out study-seed --report-only"
#
# The array range is the trial indexes of --plan (0-based); change it when you change the trials. A task
# started twice for one trial (a requeue, a duplicate submission) finds the trial claimed
# (trials/NAME/claim.json) and exits, or resumes it from its last checkpoint when the claim's worker has died
# (same host, process gone) or its heartbeat is older than --claim-timeout. A finished trial is not re-run
# unless its settings or data changed.
#SBATCH --job-name=pix2pix-study
#SBATCH --array=0-6
#SBATCH --gpus=1
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=3-00:00:00
#SBATCH --output=study-seed-logs/%A_%a.out
set -euo pipefail
mkdir -p study-seed-logs
CONFIG=${CONFIG:-examples/study-seed.json}
OUT=${OUT:-study-seed}
# SLURM_ARRAY_TASK_ID selects the trial; --data may point at the dataset on shared storage instead of the config's.
exec node dist/cli.js study --config "$CONFIG" --out "$OUT" --trial-index env ${DATA:+--data "$DATA"}
