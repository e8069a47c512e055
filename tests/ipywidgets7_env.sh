#!/usr/bin/env bash
# Colab's set, at CPU scale: ipywidgets 7.7 (what Colab ships and its first cell keeps) over the packages BASE_PY's
# environment holds (`make test` gives the pinned set's venv: the known-good versions the Colab cell installs for what
# Colab lacks). Runs tests/lessons/test_widgets.py, so that the widget panels are checked on 7.7 as well as on the 8.x
# of the project venv (JupyterLab 4), then chapters 0 (set-up) and 6 (the real-model recipes) under nbval in this
# venv's own kernel.
#
#   tests/ipywidgets7_env.sh [pytest args for the widget tests]
#
# Environment:
#   IPYW7_ENV   the venv to create/reuse (default /tmp/ipyw7); delete it to start from scratch
#   IPYW7_MODE  link (default): a venv made without --system-site-packages that holds only ipywidgets 7.7 and its
#               widget packages (widgetsnbextension 3.6, jupyterlab_widgets 1.x, ipython_genutils) and reaches the
#               heavy packages (torch, transformers, peft, ipykernel, matplotlib, pytest) of BASE_PY's environment
#               through a .pth placed after its own site-packages: ipywidgets 7.7 shadows the 8.x there.
#               full: install lorakit and every dependency from the package index into the venv (no sharing; for a
#               CI runner without a project venv; much slower: torch alone is hundreds of MB).
#   BASE_PY     the interpreter whose packages link mode reuses (default: the project's .venv/bin/python)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_DIR="${IPYW7_ENV:-/tmp/ipyw7}"
MODE="${IPYW7_MODE:-link}"
BASE_PY="${BASE_PY:-$ROOT/.venv/bin/python}"
start=$SECONDS

if [ ! -x "$ENV_DIR/bin/python" ]; then
  if [ -x "$BASE_PY" ]; then
    interpreter="$("$BASE_PY" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
  else
    interpreter="$(command -v python3)"
  fi
  "$interpreter" -m venv "$ENV_DIR"
fi
PY="$ENV_DIR/bin/python"

if ! "$PY" -c 'import sys, ipywidgets; sys.exit(not ipywidgets.__version__.startswith("7.7"))' 2>/dev/null; then
  if [ "$MODE" = full ]; then
    "$PY" -m pip install -q "ipywidgets==7.7.*" pytest -e "$ROOT"
  else
    "$PY" -m pip install -q --no-deps "ipywidgets==7.7.*" "widgetsnbextension==3.6.*" "jupyterlab_widgets>=1.0,<2" \
      ipython_genutils
    site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    base_site="$("$BASE_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # addsitedir (not a bare path line) also runs the .pth files there (editable installs, etc.); it appends, so the
    # venv's own ipywidgets 7.7 stays first on sys.path
    echo "import site; site.addsitedir('$base_site')" > "$site/zz_lorakit_base_env.pth"
  fi
fi

version="$("$PY" -c 'import ipywidgets; print(ipywidgets.__version__)')"
echo "ipywidgets $version in $ENV_DIR (set up in $((SECONDS - start)) s)"
case "$version" in 7.7.*) ;; *) echo "expected ipywidgets 7.7.x, got $version" >&2; exit 1 ;; esac

cd "$ROOT"
status=0
"$PY" -m pytest tests/lessons/test_widgets.py -q -p no:cacheprovider "$@" || status=$?
echo "tests/lessons/test_widgets.py under ipywidgets $version: exit $status, $((SECONDS - start)) s so far"
LORAKIT_SCALE=cpu "$PY" -m pytest notebooks/source/00_setup notebooks/source/06_recipes --nbval-lax --nbval-current-env \
  --nbval-sanitize-with tests/nbval_sanitize.cfg -p tests.nbval_quiet -q -p no:cacheprovider || status=$?
echo "chapters 0 and 6 under nbval with ipywidgets $version: exit $status, $((SECONDS - start)) s in all"
exit $status
