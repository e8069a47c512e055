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
# Before spending device time:
#   here:     bash benchmarks/gpu_run.sh simulate
#             a machine like the lent one on this CPU: a venv (SIM_ENV, default /tmp/lent-machine) with only torch,
#             transformers 5.17 (and their requirements), pandas and pyarrow from the package index, the carry set
#             installed into a target as `run` does, and gpu_check's CPU dry run there (its JSON in SIM_ENV). It needs
#             the package index once, for the venv; it found that training imported IPython and that transformers
#             5.25 needs the kernels package, neither of which the lent machine has.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
  rm -rf .whl
  "${PYTHON:-.venv/bin/python}" benchmarks/carry.py --out .whl --download
  ;;
simulate)
  env_dir="${SIM_ENV:-/tmp/lent-machine}"
  if [ ! -x "$env_dir/bin/python" ]; then
    python3 -m venv "$env_dir"
    "$env_dir/bin/pip" install -q "${TORCH:-torch==2.13.0}" transformers==5.17.0 pandas pyarrow
  fi
  rm -rf "$env_dir/site" "$env_dir/carry" "$env_dir/empty-cache"
  "${PYTHON:-.venv/bin/python}" benchmarks/carry.py --out "$env_dir/carry"
  "$env_dir/bin/python" -m pip install -q --no-index --no-deps --no-compile --target "$env_dir/site" "$env_dir"/carry/*.whl
  # an empty lorakit cache, as there: the course tokenizer must come from the carry folder
  LORAKIT_CACHE="$env_dir/empty-cache" LORAKIT_CARRY_DIR="$env_dir/carry" PYTHONPATH="$env_dir/site:$PWD" HF_HUB_OFFLINE=1 \
    "$env_dir/bin/python" benchmarks/gpu_check.py --dry-run \
    "$env_dir/gpu_check.json" --deadline-s 300 --only preflight course memory slowdown throughput
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
  echo "usage: bash benchmarks/gpu_run.sh prepare | simulate | run [DEADLINE_S]" >&2
  exit 2
  ;;
esac
