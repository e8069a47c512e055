#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py) on a lent GPU machine, which has torch but not bitsandbytes and cannot
# reach a package index. Two steps (docs/gpu.md, "First GPU run"):
#   1. here:  bash benchmarks/gpu_run.sh prepare
#             builds the carry set into the ignored .whl/ folder (benchmarks/carry.py: the wheels the machine lacks,
#             bitsandbytes slimmed to its CUDA 12.8 and 13.0 libraries, the Python-3.12-only ones downloaded), prints
#             each wheel's size and fails if the working tree plus .whl exceed its 56 MiB budget (64 MiB carried).
#             It rebuilds the packages installed in .venv (PYTHON=... names another interpreter).
#   2. there: the device tool's run with carry [".whl"], timeout_s 480 and the command
#             bash benchmarks/gpu_run.sh run [DEADLINE_S]
#             installs the wheels into /tmp/site, prints the versions and the GPU, runs the check under its global
#             deadline (default 360 s: the 6 minutes of device time it is sized for) and writes $OUT/gpu_check.json
#             (saved after every section and every measured point, so a killed run keeps them) and $OUT/gpu_check.log.
#             docs/gpu.md explains the JSON.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
  rm -rf .whl
  "${PYTHON:-.venv/bin/python}" benchmarks/carry.py --out .whl --download
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
