#!/usr/bin/env bash
# Here, before a GPU run: the wheels of infra/gpu/wheels.txt for the device's Python 3.12 on x86-64, into
# .whl/ (ignored by git; the device tool carries it: `carry: [".whl"]`, about 45 MiB of its 64).
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -v '^#' infra/gpu/wheels.txt | xargs python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_26_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl
du -sh .whl
