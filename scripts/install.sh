#!/usr/bin/env bash
# Everything decant needs on a fresh Debian/Ubuntu machine with Python 3.11: the package and its
# Python dependencies, and KenLM's estimator (lmplz, build_binary) for `decant lm train`.
# Used by README, .ci/run and docker/Dockerfile alike.  --test also installs what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras=""
for arg in "$@"; do
  case "$arg" in
    --test) extras="[test]" ;;
    *) echo "usage: scripts/install.sh [--test]" >&2; exit 2 ;;
  esac
done
# the stock pip resolves an old trafilatura that misses lxml_html_clean
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet -e ".${extras}"
# pyenv installs: make the new `decant` entry point visible on PATH
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
bash scripts/build_kenlm.sh
if [ -n "$extras" ]; then
  # headless Chromium renders the HTML report in tests/jobs/test_report.py
  if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
    fi
  fi
fi
echo "decant installed: $("$PY" -c 'import importlib.metadata as m; print(m.version("decant"))')"
