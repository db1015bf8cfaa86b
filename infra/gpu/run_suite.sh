#!/usr/bin/env bash
# On the lent GPU machine (the device tool's `run`, with `carry: [".whl"]`): install the carried wheels beside
# the image's own packages, then run the GPU suite; its table is printed and its JSON and log land in $OUT.
# Arguments go to the suite (e.g. --parts train,fsdp to re-run two parts).
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PATH="/tmp/site/bin:$PATH" PYTHONUNBUFFERED=1 ALIGNOPS_HOME=/tmp/alignops-home
export BENTOML_DO_NOT_TRACK=true WANDB_MODE=offline DVC_NO_ANALYTICS=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -m benchmarks.gpu_suite "$@" 2>&1 | tee "${OUT:-/tmp}/gpu_suite.log"
