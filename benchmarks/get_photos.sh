#!/usr/bin/env bash
# Fetches the large-photo benchmark set (5-16 MP camera photos, EXIF, baseline
# and progressive, 4:2:0/4:2:2/4:4:4) from Debian's wallpaper packages into
# ${EDGE_DCT_WORK:-~/edge_dct_work}/photos/large.  Licences: see each
# package's /usr/share/doc/*/copyright (kept beside the photos).
set -euo pipefail
work=${EDGE_DCT_WORK:-$HOME/edge_dct_work}
dest=$work/photos/large
mkdir -p "$dest" "$work/debs"
cd "$work/debs"
for pkg in plasma-workspace-wallpapers mate-backgrounds; do
  ls ${pkg}_*.deb >/dev/null 2>&1 || apt-get download "$pkg" >/dev/null
  rm -rf "x-$pkg" && dpkg-deb -x ${pkg}_*.deb "x-$pkg"
  find "x-$pkg" -type f \( -iname '*.jpg' -o -iname '*.jpeg' \) | while read -r f; do
    # keep one file per distinct image (packages ship several resolutions)
    cp -n "$f" "$dest/${pkg}__$(echo "${f#x-$pkg/}" | tr '/' '_')"
  done
  find "x-$pkg" -name copyright -path '*doc*' -exec cp {} "$dest/COPYRIGHT.$pkg" \;
done
echo "$(ls "$dest"/*.jp* "$dest"/*.JP* 2>/dev/null | wc -l) photos in $dest"
