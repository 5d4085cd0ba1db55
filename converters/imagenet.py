"""ImageNet-1k class names, recreated from timm's synset files.

``timm`` (Apache-2.0) ships ``timm/data/_info/imagenet_synsets.txt`` (the 1000 ImageNet-1k
WordNet ids) and ``imagenet_synset_to_lemma.txt`` (id, tab, comma-separated lemmas). The class
index of the usual ImageNet-1k models is the position of the synset in sorted order; the
human-readable name is the first lemma.

The files are read either from an installed ``timm`` (found without importing it, so torch is
not needed) or straight out of a timm wheel, which ``pip download --no-deps timm`` fetches
without any dependency.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import zipfile
from pathlib import Path

_INFO_DIR = "timm/data/_info"
_SYNSETS = "imagenet_synsets.txt"
_LEMMAS = "imagenet_synset_to_lemma.txt"


def work_dir() -> Path:
    """Folder for everything that must stay out of the repository (weights, wheels, exports).

    Returns:
        ``$EDGE_DCT_WORK`` if set, else ``~/edge_dct_work``.
    """
    return Path(os.environ.get("EDGE_DCT_WORK", Path.home() / "edge_dct_work"))


def _read_from_installed_timm() -> tuple[str, str] | None:
    spec = importlib.util.find_spec("timm")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    info = Path(list(spec.submodule_search_locations)[0]) / "data" / "_info"
    if not (info / _SYNSETS).is_file():
        return None
    return (info / _SYNSETS).read_text(), (info / _LEMMAS).read_text()


def _read_from_wheel(wheel: Path) -> tuple[str, str]:
    with zipfile.ZipFile(wheel) as zf:
        return tuple(zf.read(f"{_INFO_DIR}/{name}").decode("utf-8") for name in (_SYNSETS, _LEMMAS))


def _find_timm_wheel() -> Path | None:
    env = os.environ.get("EDGE_DCT_TIMM_WHEEL")
    if env:
        return Path(env)
    wheels = sorted(work_dir().glob("**/timm-*.whl"))
    return wheels[-1] if wheels else None


@functools.lru_cache(maxsize=None)
def _synset_texts(timm_wheel: str | None = None) -> tuple[str, str]:
    """(synsets file, synset-to-lemma file) from timm (see :func:`imagenet_labels`)."""
    texts = None
    wheel = Path(timm_wheel) if timm_wheel else None
    if wheel is None:
        texts = _read_from_installed_timm()
        wheel = None if texts else _find_timm_wheel()
    if texts is None:
        if wheel is None or not wheel.is_file():
            raise FileNotFoundError(
                "ImageNet synset files not found: install timm, or run "
                "`pip download --no-deps timm -d ~/edge_dct_work/dl` (or set EDGE_DCT_TIMM_WHEEL)"
            )
        texts = _read_from_wheel(wheel)
    return texts


def imagenet_synsets(timm_wheel: str | None = None) -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet ids in sorted order: position = class index."""
    synsets = sorted(line.strip() for line in _synset_texts(timm_wheel)[0].splitlines() if line.strip())
    if len(synsets) != 1000:
        raise ValueError(f"expected 1000 ImageNet-1k synsets, found {len(synsets)}")
    return tuple(synsets)


@functools.lru_cache(maxsize=None)
def imagenet_labels(timm_wheel: str | None = None) -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, index-aligned with the usual classifier outputs.

    Args:
        timm_wheel: path of a timm wheel to read the synset files from. When ``None``, look in
            ``$EDGE_DCT_TIMM_WHEEL``, then an installed ``timm``, then ``timm-*.whl`` under
            :func:`work_dir`.

    Returns:
        1000 strings; entry ``i`` is the first lemma of the ``i``-th synset in sorted order
        (e.g. ``0 -> 'tench'``, ``207 -> 'golden retriever'``).

    Raises:
        FileNotFoundError: no source of the synset files was found; fetch one with
            ``pip download --no-deps timm -d ~/edge_dct_work/dl``.
    """
    lemma_of = {}
    for line in _synset_texts(timm_wheel)[1].splitlines():
        wnid, _, lemmas = line.partition("\t")
        lemma_of[wnid] = lemmas.split(",")[0].strip()
    return tuple(lemma_of[s] for s in imagenet_synsets(timm_wheel))
