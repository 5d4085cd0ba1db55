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
  else
    git_dir="$work/.git-$3"
    [ -d "$git_dir" ] || git clone --bare --filter=blob:none "https://github.com/$repo" "$git_dir"
  fi
  git --git-dir "$git_dir" archive "$commit" | tar -x -C "$dest"
  echo "$3: $(find "$dest" -type f -iname '*.jp*g' | wc -l) JPEGs from $repo@$commit"
}

# Imagenette: 10 ImageNet classes at 224x224; train/ calibrates, val/ evaluates.
fetch thunderInfy/imagenette b850f030 imagenette
