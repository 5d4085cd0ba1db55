"""Turns the pure-Python edge_dct wheel into a binary wheel for one target.

Adds the compiled extension and the licence files, sets the wheel's tag and writes a fresh
RECORD (sha256 of every file), as PEP 427 asks.

Usage:
    python scripts/wheels/assemble.py PURE.whl EXT.so TAG OUTDIR [--license NAME=PATH ...]
    (TAG e.g. cp311-cp311-manylinux_2_28_aarch64)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import zipfile


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def assemble(pure: str, ext: str, tag: str, outdir: str, licenses: dict[str, str]) -> str:
    """Writes ``{name}-{version}-{tag}.whl`` into ``outdir``; returns its path."""
    with zipfile.ZipFile(pure) as zin:
        files = {n: zin.read(n) for n in zin.namelist() if not n.endswith("/RECORD")}
    info = next(n.split("/")[0] for n in files if n.split("/")[0].endswith(".dist-info"))
    wheel = files[f"{info}/WHEEL"].decode().splitlines()
    wheel = [ln for ln in wheel if not ln.startswith(("Tag:", "Root-Is-Purelib:"))]
    wheel += ["Root-Is-Purelib: false", f"Tag: {tag}"]
    files[f"{info}/WHEEL"] = ("\n".join(wheel) + "\n").encode()
    with open(ext, "rb") as f:
        files[f"edge_dct/{os.path.basename(ext)}"] = f.read()
    for name, path in licenses.items():
        with open(path, "rb") as f:
            files[f"{info}/licenses/{name}"] = f.read()
    record = [f"{n},{_digest(d)},{len(d)}" for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = os.path.join(outdir, f"{info[:-len('.dist-info')]}-{tag}.whl")
    with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for name in sorted(files, key=lambda n: (n.startswith(info), n)):  # dist-info last
            zout.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), files[name],
                          compress_type=zipfile.ZIP_DEFLATED)
    os.replace(out + ".tmp", out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pure")
    ap.add_argument("ext")
    ap.add_argument("tag")
    ap.add_argument("outdir")
    ap.add_argument("--license", action="append", default=[], metavar="NAME=PATH")
    args = ap.parse_args()
    licenses = dict(item.split("=", 1) for item in args.license)
    print(assemble(args.pure, args.ext, args.tag, args.outdir, licenses))


if __name__ == "__main__":
    main()
