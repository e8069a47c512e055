#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py) on a lent GPU machine, which has torch but not bitsandbytes and cannot
# reach a package index. Two steps (docs/gpu.md, "First GPU run"):
#   1. here:  bash benchmarks/gpu_run.sh prepare
#             downloads the wheels into the ignored .whl/ folder and checks that the working tree plus .whl stay under
#             the 64 MiB the device tool carries (EXTRA_WHEELS="transformers==5.24.0" adds one, ~13 MiB, if needed).
#   2. there: the device tool's run with carry [".whl"], timeout_s 480 and the command
#             bash benchmarks/gpu_run.sh run [DEADLINE_S]
#             installs the wheels into /tmp/site, prints the versions and the GPU, runs the check under its global
#             deadline (default 360 s: the 6 minutes of device time it is sized for) and writes $OUT/gpu_check.json
#             (saved after every section and every measured point, so a killed run keeps them) and $OUT/gpu_check.log.
#             docs/gpu.md explains the JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(bitsandbytes==0.50.2 peft==0.21.2 trl==1.16.0 accelerate==1.15.0 datasets==5.2.0 nbclient==0.11.0)
LIMIT=$((64 * 1048576))

case "${1:-}" in
prepare)
  rm -rf .whl && mkdir -p .whl
  # shellcheck disable=SC2086  # EXTRA_WHEELS is a space-separated list
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_24_x86_64 --platform any --dest .whl "${WHEELS[@]}" ${EXTRA_WHEELS:-}
  tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
  total=$((tree + $(du -sb .whl | cut -f1)))
  ls -l .whl
  echo "working tree + .whl = $((total / 1048576)) MiB (the device tool carries at most 64 MiB)"
  [ "$total" -lt "$LIMIT" ] || { echo "too large to carry: drop a wheel from EXTRA_WHEELS" >&2; exit 1; }
  ;;
run)
  out="${OUT:-.}"
  python3 -c "import sys; print('python', sys.version)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD" HF_HUB_OFFLINE=1
  python3 benchmarks/gpu_check.py "$out/gpu_check.json" --deadline-s "${2:-360}" 2>&1 | tee "$out/gpu_check.log"
  ;;
*)
  echo "usage: bash benchmarks/gpu_run.sh prepare | run [DEADLINE_S]" >&2
  exit 2
  ;;
esac
