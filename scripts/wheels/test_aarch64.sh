#!/usr/bin/env bash
# The aarch64 wheel on an emulated arm64 CPython 3.11 (a Raspberry Pi OS / Debian bookworm
# userland under qemu-user), against the x86_64 source build:
#   bash scripts/wheels/test_aarch64.sh [WHEEL]
# 1. qemu-aarch64 10.0 from Debian trixie's qemu-user package (debfetch.py, checksummed; bookworm's
#    7.2 crashes inside LiteRT's Interpreter), or $QEMU_AARCH64;
# 2. aarch64_sysroot.sh: Debian bookworm's arm64 python3.11 with numpy, ai-edge-litert, tqdm and
#    pytest aarch64 wheels from PyPI, no libjpeg anywhere in it; the wheel installed into its own
#    folder (pip --target --platform), no compiler involved;
# 3. `edge-dct classify` on the 40 clothing photos under qemu;
# 4. parity.py: read_dct on the whole shared corpus and prepare's tensors bit-identical to the
#    x86_64 source build's, top-5 labels identical, scores within 1e-3.  The int8 default model's
#    logits are not always bit-identical across ISAs: with identical input tensors, ai-edge-litert
#    2.3.0's XNNPACK on arm64 rounds 41 of the 40x1000 int8 logits (5 photos) one step (0.095)
#    away from x86_64's (the same on x86 AVX2 and AVX-512 VNNI, and on every emulated arm64 CPU
#    model), which moves those photos' scores by up to 3.1e-4;
# 5. the decoder, geometry (prepare), codec (encode/transcode, whose fused writer takes its
#    portable, non-SSE2 path here), header and thread tests run on the wheel under qemu (a copy
#    of those tests outside the source tree, so edge_dct comes from the wheel).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=${EDGE_DCT_WORK:-$HOME/edge_dct_work}/wheelbuild
WHEEL=$(realpath "${1:-$(ls "$ROOT"/dist/wheels/edge_dct-*-cp311-cp311-manylinux_*_aarch64.whl | tail -1)}")
S=$WORK/sys-3.11-arm64
OUTDIR=${OUT:-$WORK/test-aarch64}
[ -x .venv/bin/python ] || { echo "the source build (.venv) is needed: bash scripts/setup.sh" >&2; exit 1; }
T0=$(date +%s)
pin() {  # NAME -> NAME==VERSION of the source build's .venv
  echo "$1==$(.venv/bin/python -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1")"
}
step() { echo "[wheel-test aarch64 $(( $(date +%s) - T0 ))s] $*" >&2; }

if [ -z "${QEMU_AARCH64:-}" ]; then
  QEMU_AARCH64=$WORK/qemu-trixie/usr/bin/qemu-aarch64
  if [ ! -x "$QEMU_AARCH64" ]; then
    step "qemu-user from Debian trixie"
    python3 scripts/wheels/debfetch.py --suite trixie --arch amd64 --into "$WORK/qemu-trixie" qemu-user
  fi
fi
export QEMU_AARCH64
step "$("$QEMU_AARCH64" --version | head -1)"
bash scripts/wheels/aarch64_sysroot.sh "$S"

step "install $(basename "$WHEEL")"
WHL=$OUTDIR/wheel
rm -rf "$WHL" && mkdir -p "$OUTDIR"
python3 -m pip install -q --disable-pip-version-check --no-deps --target "$WHL" \
  --only-binary=:all: --implementation cp --python-version 3.11 --platform manylinux_2_28_aarch64 \
  "$WHEEL" 2> >(grep -v -e "as the 'root' user" -e 'is ignored: it is neither' >&2)
if find "$S" "$WHL" -name 'libjpeg*.so*' | grep .; then echo "a shared libjpeg in the test's userland" >&2; exit 1; fi
needed=$(readelf -d "$WHL"/edge_dct/_jpeg*.so | awk '/NEEDED/ {print $NF}' | tr -d '[]' | tr '\n' ' ')
echo "the extension needs: $needed"
case $needed in *jpeg*) echo "the wheel's extension links a shared libjpeg" >&2; exit 1 ;; esac
run() { (cd /tmp && PYTHONHOME=$S/usr PYTHONPATH=$WHL:$S/site PYTHONNOUSERSITE=1 \
  PYTHONDONTWRITEBYTECODE=1 "$QEMU_AARCH64" -L "$S" "$S/usr/bin/python3.11" "$@"); }
run -c 'import edge_dct._jpeg as m, platform, sys
assert m.__file__.startswith(sys.argv[1]), m.__file__
print(platform.machine(), m.__file__)' "$WHL"

step "edge-dct classify on the 40 clothing photos (emulated)"
run -m edge_dct.cli classify "$ROOT/../shared/corpus/photos/clothing" --no-progress | tail -3

step "parity with the x86_64 source build"
.venv/bin/python scripts/wheels/parity.py dump "$OUTDIR/source.json"
run "$ROOT/scripts/wheels/parity.py" dump "$OUTDIR/aarch64.json"
.venv/bin/python scripts/wheels/parity.py compare "$OUTDIR/source.json" "$OUTDIR/aarch64.json" \
  --score-tol 1e-3

step "decoder, prepare (geometry), codec, header and thread tests on the wheel (emulated)"
T=$OUTDIR/pytest
rm -rf "$T" && mkdir -p "$T/repo/tests" "$T/cache"
ln -s "$(realpath "$ROOT/../shared")" "$T/shared"  # conftest finds the corpus at ../shared
cp -r tests/__init__.py tests/conftest.py tests/jpeg_reference.py tests/oracle tests/test_header.py \
  tests/test_decoder.py tests/test_geometry.py tests/test_threads.py tests/test_codec.py "$T/repo/tests/"
# test_geometry's pixel reference is Pillow + OpenCV, test_codec's readers Pillow + simplejpeg:
# their aarch64 wheels (with libjpegs of their own)
# go into a folder of their own, only on this step's path, after the checks above.
python3 -m pip install -q --disable-pip-version-check --no-warn-script-location --target "$T/pil" \
  --cache-dir "$WORK/pip-cache" --only-binary=:all: --implementation cp --python-version 3.11 \
  --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 "$(pin pillow)" \
  "$(pin opencv-python-headless)" "$(pin simplejpeg)" --no-deps \
  2> >(grep -v -e "as the 'root' user" -e 'is ignored: it is neither' >&2)
# The tests' oracle (tests/oracle: libjpeg-turbo's own decoder and encoder, not the edct core) is
# compiled for aarch64 here, with the static libjpeg-turbo the wheel was built from, into the
# cache file tests/oracle looks for, so the userland still holds no libjpeg.
[ -f "$WORK/jpeg-aarch64/lib/libjpeg.a" ] ||
  ARCHS=aarch64 PYVERS=3.11 OUT="$OUTDIR/build" bash scripts/wheels/build.sh
tag=$(python3 -c 'import hashlib, sys; print(hashlib.sha1(open(sys.argv[1], "rb").read()).hexdigest()[:12])' \
  tests/oracle/oracle.c)
"$WORK/bin/zig-cc-aarch64" -O2 -shared -fPIC -I"$WORK/jpeg-aarch64/include" tests/oracle/oracle.c \
  "$WORK/jpeg-aarch64/lib/libjpeg.a" -o "$T/cache/oracle-$tag.so"
# The peak_memory tests measure a child process's peak RSS: a child Python cannot be started
# under qemu-user without binfmt_misc, and qemu's own memory would swamp the measure anyway.
(cd "$T/repo" && EDGE_DCT_TEST_CACHE=$T/cache PYTHONHOME=$S/usr PYTHONPATH=$WHL:$S/site:$T/pil \
  PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 "$QEMU_AARCH64" -L "$S" "$S/usr/bin/python3.11" \
  -m pytest -q -p no:cacheprovider -k "not peak_memory" tests | tail -3)
step "passed"
