#!/usr/bin/env bash
# Each x86_64 wheel on its own CPython, not the host's: CPython 3.10 (Ubuntu jammy), 3.12 (Ubuntu
# noble) and 3.13 (Debian trixie) unpacked with their libraries into a sysroot (no libjpeg in
# it) and run through that sysroot's own loader; numpy and ai-edge-litert from PyPI.
#   bash scripts/wheels/other_pythons.sh [3.10 3.12 3.13]
# Per version: `edge-dct classify` on the 40 clothing photos and parity.py against the source
# build (top-5, scores, read_dct on the corpus, prepare's tensors).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=${EDGE_DCT_WORK:-$HOME/edge_dct_work}/wheelbuild
VERSIONS=${*:-3.10 3.12 3.13}
suite() { case $1 in 3.10) echo jammy-updates ;; 3.12) echo noble-updates ;; 3.13) echo trixie ;; esac; }
mkdir -p "$WORK/test-x86_64"
[ -f "$WORK/test-x86_64/source.json" ] ||
  .venv/bin/python scripts/wheels/parity.py dump "$WORK/test-x86_64/source.json"
for py in $VERSIONS; do
  S=$WORK/sys-$py-amd64 tag=cp${py/./}
  wheel=$(ls "$ROOT"/dist/wheels/edge_dct-*-"$tag-$tag"-manylinux_*_x86_64.whl | tail -1)
  [ -x "$S/usr/bin/python$py" ] ||
    python3 scripts/wheels/debfetch.py --suite "$(suite "$py")" --arch amd64 --into "$S" --deps \
      --exclude 'libjpeg*' --exclude tzdata --exclude media-types --exclude 'debconf*' \
      --exclude 'perl*' "python$py"
  rm -rf "$S/site"
  python3 -m pip install -q --disable-pip-version-check --target "$S/site" --only-binary=:all: \
    --implementation cp --python-version "$py" --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    "$wheel"
  if find "$S" -name 'libjpeg*.so*' | grep -q .; then echo "a libjpeg in $S" >&2; exit 1; fi
  loader=$S/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2  # merged /usr (Debian 12+, Ubuntu 24.04)
  [ -e "$loader" ] || loader=$S/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
  run() { (cd /tmp && PYTHONHOME=$S/usr PYTHONPATH=$S/site PYTHONNOUSERSITE=1 \
    "$loader" --library-path "$S/lib/x86_64-linux-gnu:$S/usr/lib/x86_64-linux-gnu" \
    "$S/usr/bin/python$py" "$@"); }
  echo "== $(basename "$wheel") on $(run -c 'import sys; print(sys.version.split()[0])')"
  run -c 'import edge_dct._jpeg as m, sys; assert m.__file__.startswith(sys.argv[1]), m.__file__' "$S/site"
  run -m edge_dct.cli classify "$ROOT/../shared/corpus/photos/clothing" --no-progress | tail -1
  run "$ROOT/scripts/wheels/parity.py" dump "$WORK/test-x86_64/$tag.json"
  .venv/bin/python scripts/wheels/parity.py compare "$WORK/test-x86_64/source.json" \
    "$WORK/test-x86_64/$tag.json" --exact-scores
done
