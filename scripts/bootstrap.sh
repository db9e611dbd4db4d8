# shellcheck shell=bash
# Sourced by scripts/serve and scripts/test: install uv if missing, then the locked deps.
# Not "$@": a sourced script sees its caller's arguments (pytest's, for scripts/test).
# UV_SYNC_ARGS picks the groups (scripts/serve passes --no-dev).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv" >&2
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
fi
# --compile-bytecode: this machine's environment sets PYTHONDONTWRITEBYTECODE, so without
# it every start compiles every installed module from source (importing the app took
# 36-41 s at load 11 without any cache, 6-8 s with one: past the tests' 30 s health wait);
# after the first sync it only checks the files' times (under 1 s).
# shellcheck disable=SC2086
uv sync --frozen --compile-bytecode ${UV_SYNC_ARGS:-} >&2
