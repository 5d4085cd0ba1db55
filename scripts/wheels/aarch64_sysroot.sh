#!/usr/bin/env bash
# An arm64 CPython 3.11 sysroot for the emulated Raspberry Pi test, nothing installed over the host:
#   bash scripts/wheels/aarch64_sysroot.sh [SYSROOT]     (default ~/edge_dct_work/wheelbuild/sys-3.11-arm64)
# 1. Debian bookworm's arm64 python3.11 and its libraries (libstdc++6 and libgcc-s1 for LiteRT),
#    SHA-256-checked and unpacked by debfetch.py, with no libjpeg in it (checked with find);
# 2. numpy, ai-edge-litert, tqdm and pytest aarch64 wheels from PyPI (the host .venv's versions
#    when it has them) into SYSROOT/site with the host's pip (--target, --platform);
# 3. `import numpy, ai_edge_litert.interpreter` under qemu-aarch64.
# Idempotent: each step is skipped when its stamp records the same inputs.  Run Python with
#   PYTHONHOME=SYSROOT/usr PYTHONPATH=SYSROOT/site qemu-aarch64 -L SYSROOT SYSROOT/usr/bin/python3.11
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${EDGE_DCT_WORK:-$HOME/edge_dct_work}/wheelbuild
S=$(realpath -m "${1:-$WORK/sys-3.11-arm64}")
QEMU=${QEMU_AARCH64:-qemu-aarch64}
T0=$(date +%s)
step() { echo "[aarch64-sysroot $(( $(date +%s) - T0 ))s] $*" >&2; }

# -- 1. CPython and its libraries from Debian ------------------------------------------------
DEBS="python3.11 libpython3.11-stdlib libstdc++6 libgcc-s1"
EXCLUDES="libjpeg* tzdata media-types debconf* perl*"
want="bookworm arm64 $DEBS -- $EXCLUDES"
if [ "$(cat "$S/.debfetch-done" 2>/dev/null)" != "$want" ]; then
  step "Debian bookworm arm64: $DEBS (and their Depends, without $EXCLUDES)"
  rm -rf "$S" && mkdir -p "$S"
  excl=(); for e in $EXCLUDES; do excl+=(--exclude "$e"); done
  # shellcheck disable=SC2086
  python3 scripts/wheels/debfetch.py --suite bookworm --arch arm64 --into "$S" --deps "${excl[@]}" $DEBS
  echo "$want" > "$S/.debfetch-done"
else
  step "reusing $S (Debian packages)"
fi
[ -x "$S/usr/bin/python3.11" ] || { echo "no usr/bin/python3.11 in $S" >&2; exit 1; }
if find "$S" -name 'libjpeg*' | grep .; then echo "libjpeg in $S" >&2; exit 1; fi

# -- 2. aarch64 wheels from PyPI ----------------------------------------------------------------
pin() {  # NAME -> NAME==VERSION of the host .venv, or NAME when it has none
  local v=""
  [ -x .venv/bin/python ] &&
    v=$(.venv/bin/python -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" 2>/dev/null || true)
  echo "$1${v:+==$v}"
}
REQS="$(pin numpy) $(pin ai-edge-litert) $(pin tqdm) $(pin pytest)"
if [ "$(cat "$S/site/.pip-done" 2>/dev/null)" != "$REQS" ]; then
  step "aarch64 wheels into $S/site: $REQS"
  rm -rf "$S/site"
  # shellcheck disable=SC2086
  python3 -m pip install -q --disable-pip-version-check --no-warn-script-location \
    --cache-dir "$WORK/pip-cache" --target "$S/site" --only-binary=:all: \
    --implementation cp --python-version 3.11 --platform manylinux_2_28_aarch64 \
    --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    $REQS 2> >(grep -v -e 'is ignored: it is neither' -e "as the 'root' user" >&2)
  echo "$REQS" > "$S/site/.pip-done"
else
  step "reusing $S/site ($REQS)"
fi

# -- 3. it runs -------------------------------------------------------------------------------
step "import numpy, ai_edge_litert.interpreter under $QEMU"
(cd /tmp && PYTHONHOME=$S/usr PYTHONPATH=$S/site PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 \
  "$QEMU" -L "$S" "$S/usr/bin/python3.11" -c '
import platform, sys
import numpy, ai_edge_litert.interpreter
print(f"{platform.machine()} CPython {sys.version.split()[0]}: numpy {numpy.__version__}, "
      f"ai_edge_litert from {ai_edge_litert.interpreter.__file__}")
assert platform.machine() == "aarch64", platform.machine()')
step "ready: $S"
