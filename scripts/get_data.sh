#!/usr/bin/env bash
# Recreates the photo sets used to calibrate and evaluate the default model (issue #5)
# under ${EDGE_DCT_WORK:-~/edge_dct_work}/data, outside the repository.
#
#   bash scripts/get_data.sh [MIRROR_DIR]
#
# Each set is a public git repository at a fixed commit.  With MIRROR_DIR, repositories
# are read from MIRROR_DIR/<owner>+<name>/repo (bare mirrors); otherwise they are cloned.
# Files in ../shared/data/exclude-from-training.txt are excluded by the recipes that read
# these folders (converters/default_model.py), never deleted here.
set -euo pipefail
work=${EDGE_DCT_WORK:-$HOME/edge_dct_work}/data
mirror=${1:-}
mkdir -p "$work"

fetch() {  # owner/name commit folder
  local repo=$1 commit=$2 dest=$work/$3 git_dir
  if [ -d "$dest" ] && [ -n "$(ls -A "$dest")" ]; then echo "$3: present"; return; fi
  mkdir -p "$dest"
  if [ -n "$mirror" ]; then
    git_dir="$mirror/${repo/\//+}/repo"
    [ -d "$git_dir/.git" ] && git_dir="$git_dir/.git"  # a non-bare snapshot
  else
    git_dir="$work/.git-$3"
    [ -d "$git_dir" ] || git clone --bare --filter=blob:none "https://github.com/$repo" "$git_dir"
  fi
  # Some mirrors miss a blob: then extract what exists, file by file.
  if ! git --git-dir "$git_dir" archive "$commit" 2>/dev/null | tar -x -C "$dest" 2>/dev/null; then
    git --git-dir "$git_dir" ls-tree -r --name-only "$commit" | grep -iE '\.jpe?g$' |
      while IFS= read -r f; do
        mkdir -p "$dest/$(dirname "$f")"
        git --git-dir "$git_dir" show "$commit:$f" >"$dest/$f" 2>/dev/null || rm -f "$dest/$f"
      done
  fi
  echo "$3: $(find "$dest" -type f -iname '*.jp*g' | wc -l) JPEGs from $repo@$commit"
}

# Imagenette: 10 ImageNet classes at 224x224; train/ calibrates, val/ evaluates.
fetch thunderInfy/imagenette b850f030 imagenette
# Unlabelled-for-ImageNet photo sets, used for distillation (issue #5); research use.
fetch afroozsheikh/Intel-Image-Classifier 5b571f44 intel        # scenes ~150x150
fetch chanakya2734/Image-classification-using-CNN bf746c6e catsdogs  # cats/dogs ~400x374
fetch martinwestin/flower_classification c169e7e4 flowers      # flowers ~128x128
fetch alexeygrigorev/clothing-dataset 7ed86a9 clothing          # phone photos ~400x533, CC0

# High-resolution photos (2-18 MP wallpapers, several resolutions of each): training only, so that
# crops at the scales camera photos arrive at exercise every reduction path of prepare (issue #15).
# Debian's packages, pinned and checksummed; licences in each package's copyright file (kept beside).
debian_photos() {  # package version sha256
  local pkg=$1 version=$2 sum=$3 dest=$work/wallpapers/$1 deb
  if [ -d "$dest" ] && [ -n "$(ls -A "$dest")" ]; then echo "wallpapers/$pkg: present"; return; fi
  mkdir -p "$work/.debs" "$dest"
  deb=$work/.debs/${pkg}_${version#*:}.deb
  if [ ! -f "$deb" ]; then
    (cd "$work/.debs" && apt-get download -qq "$pkg=$version" 2>/dev/null && mv ${pkg}_*.deb "$deb") ||
      { echo "wallpapers/$pkg: apt-get download $pkg=$version failed (apt-get update first?)" >&2; rmdir "$dest"; return 1; }
  fi
  echo "$sum  $deb" | sha256sum -c --quiet || { echo "wallpapers/$pkg: checksum mismatch" >&2; return 1; }
  local tmp; tmp=$(mktemp -d)
  dpkg-deb -x "$deb" "$tmp"
  find "$tmp" -type f \( -iname '*.jpg' -o -iname '*.jpeg' \) | while IFS= read -r f; do
    cp "$f" "$dest/$(echo "${f#$tmp/usr/share/}" | tr '/ ' '__')"
  done
  find "$tmp" -name copyright -path '*doc*' -exec cp {} "$dest/COPYRIGHT" \;
  rm -rf "$tmp"
  echo "wallpapers/$pkg: $(find "$dest" -iname '*.jp*g' | wc -l) JPEGs from Debian $pkg $version"
}
debian_photos plasma-workspace-wallpapers 4:5.27.5-2 32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b
debian_photos mate-backgrounds 1.26.0-1 7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04
debian_photos ukui-wallpapers 20.04.3-1.1 6d49be70152e6d603163458e177e501deb0be8f2916389ccbfcf59b0d7fc0262
debian_photos lomiri-wallpapers-16.04 20.04.0-2 a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab
debian_photos lomiri-wallpapers-20.04 20.04.0-2 d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709
