#!/usr/bin/env bash
# Builds edge_dct's binary wheels without Docker and without a system libjpeg:
#   bash scripts/wheels/build.sh                # cp310-cp313 x x86_64, aarch64 + sdist -> dist/wheels/
#   PYVERS="3.11" ARCHS="x86_64" bash scripts/wheels/build.sh
#
# Per target it cross-compiles with `zig cc -target <arch>-linux-gnu.2.28 -mcpu=baseline`
# (ziglang from PyPI), links libjpeg-turbo statically (built here from Debian's pinned,
# checksummed source tarball, with its SIMD: NASM SSE2/AVX2 on x86_64, NEON on aarch64) and
# hides every symbol but PyInit__jpeg.  CPython's headers for each target come from Debian's
# libpython3.X-dev packages (scripts/wheels/debfetch.py, checksummed): 3.11 from Debian bookworm,
# 3.13 from Debian trixie, 3.10 and 3.12 from Ubuntu jammy and noble (see py_suite below).
# Tools and sources live in $EDGE_DCT_WORK/wheelbuild (default ~/edge_dct_work), never in git.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=${EDGE_DCT_WORK:-$HOME/edge_dct_work}/wheelbuild
PYVERS=${PYVERS:-"3.10 3.11 3.12 3.13"}
ARCHS=${ARCHS:-"x86_64 aarch64"}
OUT=${OUT:-$ROOT/dist/wheels}
JPEG_VER=2.1.5
JPEG_TGZ=libjpeg-turbo_${JPEG_VER}.orig.tar.gz
JPEG_SHA=254f3642b04e309fee775123133c6464181addc150499561020312ec61c1bf7c
JPEG_URL=http://deb.debian.org/debian/pool/main/libj/libjpeg-turbo/$JPEG_TGZ
ZIG_VER=0.17.1
NUMPY_VER=2.2.6   # headers only; numpy >= 2 headers build extensions that run on numpy 1.x too
T0=$(date +%s)
mkdir -p "$WORK" "$OUT"
log() { echo "[build_wheels $(( $(date +%s) - T0 ))s] $*" >&2; }

# ---- tools: zig cc, auditwheel, wheel, Cython (a venv of their own) --------------------------
TOOLS=$WORK/tools
if ! "$TOOLS/bin/python" -c "import numpy, Cython, auditwheel, setuptools; assert int(setuptools.__version__.split(\".\")[0]) >= 77" 2>/dev/null || ! "$TOOLS/bin/python" -m ziglang version 2>/dev/null | grep -qx "$ZIG_VER"; then
  log "tools venv"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install -q --disable-pip-version-check "ziglang==$ZIG_VER" \
    auditwheel wheel "Cython>=3.0,<3.3" "setuptools>=77" build "numpy==$NUMPY_VER"
fi
command -v nasm >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq nasm >/dev/null; } ||
  { echo "nasm is needed for libjpeg-turbo's x86 SIMD (apt-get install nasm)" >&2; exit 1; }
mkdir -p "$WORK/bin"
for arch in $ARCHS; do
  for tool in cc ar ranlib; do
    w=$WORK/bin/zig-$tool-$arch
    case $tool in
      cc) printf '#!/bin/sh\nexec "%s" -m ziglang cc -target %s-linux-gnu.2.28 -mcpu=baseline "$@"\n' "$TOOLS/bin/python" "$arch" > "$w" ;;
      *)  printf '#!/bin/sh\nexec "%s" -m ziglang %s "$@"\n' "$TOOLS/bin/python" "$tool" > "$w" ;;
    esac
    chmod +x "$w"
  done
done

# ---- libjpeg-turbo source (pinned, checksummed) and static builds -------------------------------
if [ ! -f "$WORK/$JPEG_TGZ" ]; then
  log "download $JPEG_URL"
  curl -fsSL "$JPEG_URL" -o "$WORK/$JPEG_TGZ.tmp" && mv "$WORK/$JPEG_TGZ.tmp" "$WORK/$JPEG_TGZ"
fi
echo "$JPEG_SHA  $WORK/$JPEG_TGZ" | sha256sum -c --quiet - ||
  { echo "checksum mismatch: $WORK/$JPEG_TGZ" >&2; exit 1; }
SRC=$WORK/libjpeg-turbo-$JPEG_VER
[ -d "$SRC" ] || tar -xzf "$WORK/$JPEG_TGZ" -C "$WORK"
for arch in $ARCHS; do
  inst=$WORK/jpeg-$arch
  [ -f "$inst/lib/libjpeg.a" ] && continue
  log "libjpeg-turbo $JPEG_VER for $arch"
  rm -rf "$WORK/jpeg-build-$arch"
  cmake -S "$SRC" -B "$WORK/jpeg-build-$arch" -G "Unix Makefiles" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
    -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=$arch \
    -DCMAKE_C_COMPILER="$WORK/bin/zig-cc-$arch" -DCMAKE_AR="$WORK/bin/zig-ar-$arch" \
    -DCMAKE_RANLIB="$WORK/bin/zig-ranlib-$arch" -DCMAKE_ASM_NASM_COMPILER="$(command -v nasm)" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_C_FLAGS="-fvisibility=hidden -ffp-contract=off" \
    -DENABLE_SHARED=OFF -DENABLE_STATIC=ON -DWITH_TURBOJPEG=OFF -DWITH_JAVA=OFF -DWITH_SIMD=ON \
    -DREQUIRE_SIMD=ON -DWITH_JPEG8=OFF -DCMAKE_INSTALL_PREFIX="$inst" -DCMAKE_INSTALL_LIBDIR=lib \
    > "$WORK/jpeg-build-$arch.log"
  make -C "$WORK/jpeg-build-$arch" -j"$(nproc)" jpeg-static >> "$WORK/jpeg-build-$arch.log"
  mkdir -p "$inst/lib" "$inst/include"
  cp "$WORK/jpeg-build-$arch/libjpeg.a" "$inst/lib/"
  cp "$SRC"/jpeglib.h "$SRC"/jmorecfg.h "$SRC"/jerror.h "$WORK/jpeg-build-$arch"/jconfig.h "$inst/include/"
done

# ---- CPython and NumPy headers per target -----------------------------------------------------
deb_arch() { case $1 in x86_64) echo amd64 ;; aarch64) echo arm64 ;; esac; }
# Debian carries 3.11 (bookworm) and 3.13 (trixie); 3.10 and 3.12 come from Ubuntu's archive
# (jammy, noble), whose arm64 half (ports.ubuntu.com) this build cannot reach.
py_suite() { case $1 in 3.10) echo jammy-updates ;; 3.11) echo bookworm ;; 3.12) echo noble-updates ;;
  3.13) echo trixie ;; *) echo "no known archive carries CPython $1's headers" >&2; exit 1 ;; esac; }
# arm64's pyconfig.h differs from amd64's in exactly four lines for both 3.11 and 3.13 (x86 inline
# asm, wchar_t's signedness, the support tier): where only amd64's is at hand, apply that delta.
arm64_from_amd64() {  # py
  local from=$WORK/pyhdr/$1-amd64 to=$WORK/pyhdr/$1-arm64
  rm -rf "$to" && mkdir -p "$to/usr/include/aarch64-linux-gnu/python$1"
  cp -r "$from/usr/include/python$1" "$to/usr/include/"
  sed -e 's|^#define HAVE_GCC_ASM_FOR_X64 1|/* #undef HAVE_GCC_ASM_FOR_X64 */|' \
      -e 's|^#define HAVE_GCC_ASM_FOR_X87 1|/* #undef HAVE_GCC_ASM_FOR_X87 */|' \
      -e 's|^/\* #undef HAVE_USABLE_WCHAR_T \*/|#define HAVE_USABLE_WCHAR_T 1|' \
      -e 's|^#define PY_SUPPORT_TIER 1|#define PY_SUPPORT_TIER 2|' \
      "$from/usr/include/x86_64-linux-gnu/python$1/pyconfig.h" \
      > "$to/usr/include/aarch64-linux-gnu/python$1/pyconfig.h"
}
for arch in $ARCHS; do
  for py in $PYVERS; do
    hdr=$WORK/pyhdr/$py-$(deb_arch "$arch")
    [ -f "$hdr/usr/include/python$py/Python.h" ] && continue
    suite=$(py_suite "$py")
    if [ "$arch" = aarch64 ] && [ "${suite%%-*}" = jammy -o "${suite%%-*}" = noble ]; then
      [ -f "$WORK/pyhdr/$py-amd64/usr/include/python$py/Python.h" ] ||
        python3 scripts/wheels/debfetch.py --suite "$suite" --arch amd64 \
          --into "$WORK/pyhdr/$py-amd64" "libpython$py-dev" >&2
      log "CPython $py headers for aarch64 (amd64's + the arm64 pyconfig.h delta)"
      arm64_from_amd64 "$py"
      continue
    fi
    log "CPython $py headers for $arch"
    python3 scripts/wheels/debfetch.py --suite "$suite" --arch "$(deb_arch "$arch")" \
      --into "$hdr" "libpython$py-dev" >&2
  done
  npinc=$WORK/numpy-$NUMPY_VER-$arch
  if [ ! -f "$npinc/numpy/ndarrayobject.h" ]; then
    log "NumPy $NUMPY_VER headers for $arch"
    rm -rf "$WORK/npdl-$arch" && mkdir -p "$WORK/npdl-$arch" "$npinc"
    "$TOOLS/bin/python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform "manylinux_2_17_$arch" --python-version 3.11 "numpy==$NUMPY_VER" -d "$WORK/npdl-$arch"
    "$TOOLS/bin/python" -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
[z.extract(n, sys.argv[2]) for n in z.namelist() if n.startswith('numpy/_core/include/numpy/')]" \
      "$WORK"/npdl-$arch/numpy-*.whl "$WORK/npdl-$arch"
    cp -r "$WORK/npdl-$arch/numpy/_core/include/numpy" "$npinc/"
  fi
done

# ---- the extension: one Cython translation, compiled per target ------------------------------
GEN=$WORK/gen
mkdir -p "$GEN"
log "cythonize"
"$TOOLS/bin/cython" -3 -X embedsignature=True -I cython_ext cython_ext/_jpeg.pyx -o "$GEN/_jpeg.c"
CORE=(cython_ext/edct_*.c)  # the C core, as setup.py lists it
printf '{\n  global: PyInit__jpeg;\n  local: *;\n};\n' > "$GEN/exports.map"
# -ffp-contract=off: no fused multiply-add, so x86_64 and aarch64 compute bit-identical tensors
CFLAGS_COMMON=(-O3 -fPIC -fvisibility=hidden -ffp-contract=off -fno-sanitize=all -Wall
               -Wno-unused-function -Wno-incompatible-pointer-types-discards-qualifiers -DNDEBUG ${EXTRA_CFLAGS:-})
build_ext() {  # arch py -> path of the .so
  local arch=$1 py=$2 tag=${2/./} hdr=$WORK/pyhdr/$2-$(deb_arch "$1")
  local obj=$WORK/obj/$arch-cp$tag so
  so=$obj/_jpeg.cpython-$tag-$arch-linux-gnu.so
  rm -rf "$obj" && mkdir -p "$obj"
  local inc=(-Icython_ext -I"$WORK/jpeg-$arch/include" -I"$WORK/numpy-$NUMPY_VER-$arch"
             -I"$hdr/usr/include/python$py" -I"$hdr/usr/include")
  local objs=()
  for c in "${CORE[@]}"; do
    "$WORK/bin/zig-cc-$arch" -std=c99 "${CFLAGS_COMMON[@]}" "${inc[@]}" -c "$c" -o "$obj/$(basename "$c" .c).o"
    objs+=("$obj/$(basename "$c" .c).o")
  done
  "$WORK/bin/zig-cc-$arch" "${CFLAGS_COMMON[@]}" -Wno-unreachable-code-fallthrough "${inc[@]}" \
    -DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION -c "$GEN/_jpeg.c" -o "$obj/_jpeg.o"
  "$WORK/bin/zig-cc-$arch" -shared -o "$so" "$obj/_jpeg.o" "${objs[@]}" \
    "$WORK/jpeg-$arch/lib/libjpeg.a" -lm -Wl,--version-script="$GEN/exports.map" -s
  echo "$so"
}

# ---- the pure-Python part, then one binary wheel per target -----------------------------------
log "pure-Python wheel"
rm -rf "$WORK/pure" && mkdir -p "$WORK/pure"
EDGE_DCT_NO_EXT=1 "$TOOLS/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps \
  --no-build-isolation -w "$WORK/pure" . >&2
rm -rf build/lib build/bdist.* edge_dct.egg-info/SOURCES.txt.tmp
PURE=$(ls "$WORK"/pure/edge_dct-*-py3-none-any.whl)
LICENSES=(--license "libjpeg-turbo/LICENSE.md=$SRC/LICENSE.md" --license "libjpeg-turbo/README.ijg=$SRC/README.ijg")
for arch in $ARCHS; do
  for py in $PYVERS; do
    tag=cp${py/./}
    log "extension for $tag $arch"
    so=$(build_ext "$arch" "$py")
    whl=$("$TOOLS/bin/python" scripts/wheels/assemble.py "$PURE" "$so" \
      "$tag-$tag-manylinux_2_28_$arch" "$OUT" "${LICENSES[@]}")
    "$TOOLS/bin/auditwheel" show "$whl" | tr '\n' ' ' | sed 's/  */ /g' >&2; echo >&2
    log "$(basename "$whl") $(du -k "$whl" | cut -f1) kB"
  done
done
log "sdist"
"$TOOLS/bin/python" -m build -q --sdist -o "$OUT" . >&2
log "done: $(ls "$OUT" | tr '\n' ' ')"
