# Sourced by scripts/demo and scripts/test: create .venv when missing and (re)install the
# project into it when pyproject.toml changed since the last install. Says so on stderr: the
# scripts' stdout is theirs (scripts/bench prints JSON there).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv" >&2
  "$PY" -m venv .venv >&2
fi
STAMP=.venv/.niyantra-installed
if [[ ! -f $STAMP ]] || [[ pyproject.toml -nt $STAMP ]] || ! .venv/bin/python -c "import orchestrator" 2>/dev/null; then
  echo "==> installing niyantra and its dependencies into .venv" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip >&2
  # compat: the project's root on sys.path by a .pth, not setuptools' import finder (~20 ms at every
  # start of python, so of every niyantra command); the default mode when a setuptools has dropped it
  .venv/bin/python -m pip install --quiet -e ".[dev]" --config-settings editable_mode=compat >&2 2>/dev/null ||
    .venv/bin/python -m pip install --quiet -e ".[dev]" >&2
  touch "$STAMP"
fi
# Python writes no bytecode where PYTHONDONTWRITEBYTECODE is set (as in many containers, this CI's
# too): compile the project's modules here, so no process compiles them from source at every start
# (~80 ms of each niyantra command, and of every agent and projector started); current ones are skipped.
.venv/bin/python -m compileall -q -j 0 orchestrator projections node_agent schemas >/dev/null || true
export PATH="$ROOT/.venv/bin:$PATH"
