#!/usr/bin/env bash
# Prints the path of highway's virtualenv, creating it first when missing.
# The venv lives in the cache (outside the repo), keyed by a hash of pyproject.toml, so a second
# run and a fresh clone of the same revision reuse it; the project itself is installed editable.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/highway; else default_cache="$HOME/.cache/highway"; fi
cache="${HIGHWAY_CACHE:-$default_cache}"
python="${PYTHON:-python3}"
# key on the interpreter and the pinned dependencies only, so editing tool settings keeps the venv
key=$("$python" - <<'PY' | sha256sum | cut -c1-16
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(sys.version, project["dependencies"], project.get("optional-dependencies"))
PY
)
venv="$cache/venv/$key"
if [ ! -f "$venv/.ready" ]; then
  echo "highway: creating the virtualenv in $venv (first run downloads ~600 MB of wheels)" >&2
  rm -rf "$venv"
  mkdir -p "$cache/venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade "pip==25.3" "setuptools==80.9.0" "wheel==0.45.1" >&2
  "$venv/bin/pip" install --progress-bar on ".[dev]" >&2
  touch "$venv/.ready"
fi
"$venv/bin/pip" install --quiet --no-deps --no-build-isolation -e . >&2
echo "$venv"
