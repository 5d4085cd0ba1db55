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
