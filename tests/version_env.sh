#!/usr/bin/env bash
# Run the fast tier (pytest -m "not slow" tests) under a version set, in a small venv layered on the project's:
#
#   tests/version_env.sh pinned|minimum [pytest args]
#
# The venv (VERSION_ENV, default /tmp/lorakit-<set>) installs only the packages whose version in
# constraints/<set>.txt differs from BASE_PY's environment (and what they need at other versions), and reaches
# everything else there (torch included:
# no small CPU wheel of the torch floor is on the index, so the minimum set reuses the project's torch) through a .pth
# placed after its own site-packages, as tests/ipywidgets7_env.sh does. Delete the venv to start from scratch.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SET="${1:?usage: tests/version_env.sh pinned|minimum [pytest args]}"; shift
CONSTRAINTS="$ROOT/constraints/$SET.txt"
[ -f "$CONSTRAINTS" ] || { echo "no $CONSTRAINTS" >&2; exit 2; }
ENV_DIR="${VERSION_ENV:-/tmp/lorakit-$SET}"
BASE_PY="${BASE_PY:-$ROOT/.venv/bin/python}"
start=$SECONDS

if [ ! -x "$ENV_DIR/bin/python" ]; then
  interpreter="$("$BASE_PY" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
  "$interpreter" -m venv "$ENV_DIR"
  site="$("$ENV_DIR/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  base_site="$("$BASE_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "import site; site.addsitedir('$base_site')" > "$site/zz_lorakit_base_env.pth"
fi
PY="$ENV_DIR/bin/python"

# name==version lines whose version differs from what $PY sees now (torch is always the project's)
wanted="$("$PY" - "$CONSTRAINTS" <<'PYEOF'
import sys
from importlib.metadata import PackageNotFoundError, version
from packaging.version import Version
for line in open(sys.argv[1]):
    if line.startswith("# extras"):  # minimum.txt: the runtime floors only
        break
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, pin = line.split("==")
    if name == "torch":
        continue
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    if have is None or Version(have) != Version(pin):  # 5.0.0 is the pin 5.0
        print(f"{name}=={pin}")
PYEOF
)"
if [ -n "$wanted" ]; then
  echo "installing into $ENV_DIR: $(echo $wanted)"
  # with their dependencies, so that what they need at another version (huggingface-hub for transformers 5.0...) comes
  # too; whatever the project's environment already satisfies is reused from there
  constraints="$ENV_DIR/constraints-without-torch.txt"
  grep -v '^torch==' "$CONSTRAINTS" > "$constraints"
  # shellcheck disable=SC2086
  "$PY" -m pip install -q -c "$constraints" $wanted
fi
"$PY" -c 'import torch, transformers, peft, trl, accelerate, datasets, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__, "trl", trl.__version__, "accelerate", accelerate.__version__, "datasets", datasets.__version__, "tokenizers", tokenizers.__version__)'
echo "$SET venv ready in $((SECONDS - start)) s"

cd "$ROOT"
status=0
HF_HUB_OFFLINE=1 PYTHONPATH="$ROOT" "$PY" -m pytest -m "not slow" tests -q -p no:cacheprovider "$@" || status=$?
echo "fast tier under the $SET set: exit $status, $((SECONDS - start)) s in all"
exit $status
