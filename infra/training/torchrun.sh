#!/usr/bin/env bash
# Multi-node pretraining with torchrun: run this once on every node.
#
#   NNODES=4 NODE_RANK=<0..3> MASTER_ADDR=<node 0's address> NPROC_PER_NODE=8 \
#   RUN_DIR=/shared/runs/base-01 DATASET_DIR=/shared/datasets/coco JOB=job.json \
#   infra/training/torchrun.sh
#
# JOB is a training job as JSON (components/training/job.py: config, validated dataset, lineage), as the
# `pretrain` flow writes it to <run dir>/launch/job.json; in its config set scale.num_nodes = NNODES and
# scale.devices = NPROC_PER_NODE, data.train_shards to s3:// URLs and logging.checkpoint_dir to an s3:// prefix
# for data larger than the disks.
# Credentials come from the environment or an AWS profile (AWS_PROFILE, AWS_ENDPOINT_URL_S3), never the config.
# Re-running the same command resumes every rank from the last checkpoint.
set -euo pipefail

: "${NNODES:?number of nodes}" "${NODE_RANK:?this node's rank}" "${MASTER_ADDR:?node 0's address}"
: "${RUN_DIR:?shared run directory}" "${DATASET_DIR:?dataset directory (manifest for validation)}"
: "${JOB:?training job JSON}"
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"
MASTER_PORT="${MASTER_PORT:-29500}"

export DVC_NO_ANALYTICS=1 WANDB_MODE="${WANDB_MODE:-offline}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}"

exec python -m torch.distributed.run \
  --nnodes="$NNODES" --node-rank="$NODE_RANK" --nproc-per-node="$NPROC_PER_NODE" \
  --rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT" --rdzv-id="${RDZV_ID:-alignops}" \
  -m components.training.launch --job "$JOB" --dataset "$DATASET_DIR" --run-dir "$RUN_DIR"
