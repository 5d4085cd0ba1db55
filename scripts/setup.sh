#!/usr/bin/env bash
# Sets up edge_dct from a clean clone: system packages (when missing and
# running as root), a virtualenv in .venv, and the package built in place.
#   bash scripts/setup.sh           # runtime + CLI
#   bash scripts/setup.sh --test    # also the test/benchmark dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
pkg-config --exists libjpeg 2>/dev/null || need_apt+=(libjpeg62-turbo-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v gcc >/dev/null || need_apt+=(gcc)
if [ "${1:-}" = "--test" ]; then
  command -v clang >/dev/null || need_apt+=(clang)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need_apt[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: please install: ${need_apt[*]} (e.g. sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
