#!/usr/bin/env bash
# Multi-node pretraining with torchrun: run this once on every node.
#
#   NNODES=4 NODE_RANK=<0..3> MASTER_ADDR=<node 0's address> NPROC_PER_NODE=8 \
#   RUN_DIR=/shared/runs/base-01 DATASET_DIR=/shared/datasets/coco TRAIN_CONFIG=train.json \
#   infra/training/torchrun.sh
#
# TRAIN_CONFIG is a TrainConfig as JSON with "num_nodes" = NNODES and "devices" = NPROC_PER_NODE;
# set "train_shards" to s3:// URLs and "checkpoint_dir" to an s3:// prefix for data larger than the disks.
# Credentials come from the environment or an AWS profile (AWS_PROFILE, AWS_ENDPOINT_URL_S3), never the config.
# Re-running the same command resumes every rank from the last checkpoint.
set -euo pipefail

: "${NNODES:?number of nodes}" "${NODE_RANK:?this node's rank}" "${MASTER_ADDR:?node 0's address}"
: "${RUN_DIR:?shared run directory}" "${DATASET_DIR:?dataset directory (manifest for validation)}"
: "${TRAIN_CONFIG:?TrainConfig JSON}"
NPROC_PER_NODE="${NPROC_PER_NODE:-8}"
MASTER_PORT="${MASTER_PORT:-29500}"

export DVC_NO_ANALYTICS=1 WANDB_MODE="${WANDB_MODE:-offline}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}"

exec python -m torch.distributed.run \
  --nnodes="$NNODES" --node-rank="$NODE_RANK" --nproc-per-node="$NPROC_PER_NODE" \
  --rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT" --rdzv-id="${RDZV_ID:-alignops}" \
  -m components.training.launch --config "$TRAIN_CONFIG" --dataset "$DATASET_DIR" --run-dir "$RUN_DIR" \
  ${LINEAGE:+--lineage "$LINEAGE"}
