"""Fetches Debian (or Ubuntu) binary packages (and their dependencies) into a folder, without apt or root.

The wheel build takes CPython's headers for each target from Debian's ``libpython3.X-dev``
packages, and the emulated Raspberry Pi test unpacks an arm64 CPython into a sysroot the same
way.  Every package is checked against the SHA-256 in the suite's signed ``Packages`` index
(fetched over the same mirror apt uses) and unpacked with ``dpkg-deb -x``; nothing is installed
over the host.

Usage:
    python scripts/wheels/debfetch.py --suite bookworm --arch arm64 --into SYSROOT \
        [--deps] [--exclude 'libjpeg*'] PACKAGE...
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import lzma
import os
import subprocess
import sys
import urllib.request

MIRRORS = {"debian": "http://deb.debian.org/debian", "ubuntu": "http://archive.ubuntu.com/ubuntu"}
UBUNTU_SUITES = ("jammy", "noble")  # CPython 3.10 and 3.12 headers: no Debian release has them


def mirror_for(suite: str) -> str:
    """The archive that carries ``suite`` (Ubuntu's for jammy/noble, else Debian's)."""
    return MIRRORS["ubuntu" if suite.split("-")[0] in UBUNTU_SUITES else "debian"]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as r:
        return r.read()


def packages_index(suite: str, arch: str, cache: str) -> dict[str, dict[str, str]]:
    """Returns {package name: stanza fields} of ``suite``/main for ``arch`` (cached per day)."""
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"Packages_{suite}_{arch}")
    if not os.path.exists(path):
        raw = _get(f"{mirror_for(suite)}/dists/{suite}/main/binary-{arch}/Packages.xz")
        with open(path + ".tmp", "wb") as f:
            f.write(lzma.decompress(raw))
        os.replace(path + ".tmp", path)
    index: dict[str, dict[str, str]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for stanza in f.read().split("\n\n"):
            fields: dict[str, str] = {}
            key = None
            for line in stanza.splitlines():
                if line.startswith(" ") and key:
                    fields[key] += "\n" + line
                elif ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            if "Package" in fields:
                index.setdefault(fields["Package"], fields)
                for p in fields.get("Provides", "").split(","):
                    name = p.strip().split(" ")[0]
                    if name:
                        index.setdefault(name, fields)
    return index


def _depends(fields: dict[str, str]) -> list[str]:
    out = []
    for key in ("Pre-Depends", "Depends"):
        for clause in fields.get(key, "").split(","):
            first = clause.split("|")[0].strip()
            if first:
                out.append(first.split(" ")[0].split(":")[0])
    return out


def resolve(index: dict[str, dict[str, str]], names: list[str], deps: bool,
            exclude: list[str]) -> list[dict[str, str]]:
    """The packages ``names`` (with their recursive Depends when ``deps``), minus ``exclude``."""
    todo, seen, out = list(names), set(), []
    while todo:
        name = todo.pop(0)
        if name in seen or any(fnmatch.fnmatch(name, pat) for pat in exclude):
            continue
        seen.add(name)
        if name not in index:
            sys.exit(f"debfetch: no package {name!r} in the index")
        fields = index[name]
        if fields["Package"] in seen and fields["Package"] != name:
            continue
        seen.add(fields["Package"])
        out.append(fields)
        if deps:
            todo.extend(_depends(fields))
    return out


def fetch(fields: dict[str, str], cache: str, mirror: str) -> str:
    """Downloads one package into ``cache`` and checks its SHA-256; returns the .deb path."""
    path = os.path.join(cache, os.path.basename(fields["Filename"]))
    if not os.path.exists(path):
        data = _get(f"{mirror}/{fields['Filename']}")
        if hashlib.sha256(data).hexdigest() != fields["SHA256"]:
            sys.exit(f"debfetch: SHA-256 mismatch for {fields['Filename']}")
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("packages", nargs="+")
    ap.add_argument("--suite", default="bookworm")
    ap.add_argument("--arch", default="arm64")
    ap.add_argument("--into", required=True, help="folder the packages are unpacked into")
    ap.add_argument("--deps", action="store_true", help="also fetch the recursive Depends")
    ap.add_argument("--exclude", action="append", default=[], help="glob of packages to skip")
    ap.add_argument("--cache", default=os.path.expanduser("~/edge_dct_work/wheelbuild/debs"))
    args = ap.parse_args()
    index = packages_index(args.suite, args.arch, args.cache)
    if "-" in args.suite:  # a pocket (jammy-updates) holds only what changed since the release
        for name, fields in packages_index(args.suite.split("-")[0], args.arch, args.cache).items():
            index.setdefault(name, fields)
    chosen = resolve(index, args.packages, args.deps, args.exclude)
    os.makedirs(args.into, exist_ok=True)
    for fields in chosen:
        subprocess.run(["dpkg-deb", "-x", fetch(fields, args.cache, mirror_for(args.suite)), args.into],
                       check=True)
    print(f"debfetch: {len(chosen)} packages ({args.suite}/{args.arch}) unpacked into {args.into}")


if __name__ == "__main__":
    main()
