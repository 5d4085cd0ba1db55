#!/usr/bin/env bash
# The x86_64 wheel against the source build (.venv), on this machine's Python:
#   bash scripts/wheels/test_x86_64.sh [WHEEL]
# 1. a fresh venv with only the wheel and its PyPI dependencies; `ldd` of the extension must list
#    no libjpeg (libjpeg-turbo is inside);
# 2. `edge-dct classify` on the 40 clothing photos, run from outside the source tree;
# 3. parity.py: top-5 and scores on the 40 photos, read_dct on the whole shared corpus and
#    prepare's tensors identical to the source build's;
# 4. bench_builds.py: decode speed of both builds in one process (bar: within 5%; WHEEL_BENCH=0
#    skips it, as the test suite does: speed is for benchmarks, not tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=${EDGE_DCT_WORK:-$HOME/edge_dct_work}/wheelbuild
PY=${PYTHON:-python3}
tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
WHEEL=${1:-$(ls "$ROOT"/dist/wheels/edge_dct-*-"$tag-$tag"-manylinux_*_x86_64.whl | tail -1)}
VENV=$WORK/venv-wheel-x86_64
OUTDIR=${OUT:-$WORK/test-x86_64}
[ -x .venv/bin/python ] || { echo "the source build (.venv) is needed: bash scripts/setup.sh" >&2; exit 1; }
T0=$(date +%s)
step() { echo "[wheel-test x86_64 $(( $(date +%s) - T0 ))s] $*" >&2; }

step "fresh venv with $(basename "$WHEEL")"
rm -rf "$VENV" && "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$WHEEL"
ext=$(cd /tmp && "$VENV/bin/python" -c 'import edge_dct._jpeg as m; print(m.__file__)')
case $ext in "$VENV"/*) ;; *) echo "imported $ext, not the wheel's" >&2; exit 1 ;; esac
ldd "$ext"
if ldd "$ext" | grep -qi jpeg; then echo "the wheel's extension links a system libjpeg" >&2; exit 1; fi

step "edge-dct classify on the 40 clothing photos"
mkdir -p "$OUTDIR"
(cd /tmp && "$VENV/bin/edge-dct" classify "$ROOT/../shared/corpus/photos/clothing" --no-progress) | tail -3

step "parity with the source build"
(cd /tmp && "$VENV/bin/python" "$ROOT/scripts/wheels/parity.py" dump "$OUTDIR/wheel.json")
.venv/bin/python scripts/wheels/parity.py dump "$OUTDIR/source.json"
.venv/bin/python scripts/wheels/parity.py compare "$OUTDIR/source.json" "$OUTDIR/wheel.json" --exact-scores

if [ "${WHEEL_BENCH:-1}" != 0 ]; then
  step "decode speed, both builds in one process"
  .venv/bin/python scripts/wheels/bench_builds.py "$(ls edge_dct/_jpeg*.so)" "$ext" --repeat 7
fi
step "passed"
