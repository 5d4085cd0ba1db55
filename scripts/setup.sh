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
  command -v jpegtran >/dev/null || need_apt+=(libjpeg-turbo-progs)  # lossless-rotation oracle
  command -v nasm >/dev/null || need_apt+=(nasm)  # libjpeg-turbo x86 SIMD in the wheel test
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

# Android bridge host/ARM tests: JDK, aarch64 cross compiler, arm64 libjpeg-turbo, qemu-user
if [ "${1:-}" = "--test" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null &&
   ! { command -v javac && command -v aarch64-linux-gnu-gcc && command -v qemu-aarch64; } >/dev/null; then
  echo "setup: installing the Android bridge test tools" >&2
  sh android_bridge/scripts/install_tools.sh >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${pip[@]}" --upgrade pip >/dev/null
if [ "${1:-}" = "--test" ]; then
  # the workstation toolkit (converters/) and its tests: TensorFlow, Keras, teacher weights
  "${pip[@]}" -e ".[test,bench]" -r requirements-converters.txt
  work=${EDGE_DCT_WORK:-$HOME/edge_dct_work}
  ls "$work"/dl/timm-*.whl >/dev/null 2>&1 ||
    .venv/bin/python -m pip download -q --no-deps timm==1.0.31 -d "$work/dl" >/dev/null
else
  "${pip[@]}" -e .
fi
