"""ImageNet-1k class names, recreated from timm's synset files.

``timm`` (Apache-2.0) ships ``timm/data/_info/imagenet_synsets.txt`` (the 1000 ImageNet-1k
WordNet ids) and ``imagenet_synset_to_lemma.txt`` (id, tab, comma-separated lemmas). The class
index of the usual ImageNet-1k models is the position of the synset in sorted order; the
human-readable name is the first lemma, made unique where two classes share it (see
:func:`imagenet_labels`).

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

from ..data.workspace import work_dir

_INFO_DIR = "timm/data/_info"
_SYNSETS = "imagenet_synsets.txt"
_LEMMAS = "imagenet_synset_to_lemma.txt"
QUALIFIERS = {"n02012849": "crane (bird)", "n03126707": "crane (machine)"}
"""Labels of classes that share their only lemma with another class."""


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
        1000 distinct strings; entry ``i`` names the ``i``-th synset in sorted order: its first
        lemma (e.g. ``0 -> 'tench'``, ``207 -> 'golden retriever'``), or, where another class
        has the same first lemma (case-insensitive), its first two lemmas
        (``'maillot, tank suit'``, ``'Cardigan, Cardigan Welsh corgi'``), and where that is
        still not unique a short qualifier (``'crane (bird)'``, ``'crane (machine)'``).

    Raises:
        FileNotFoundError: no source of the synset files was found; fetch one with
            ``pip download --no-deps timm -d ~/edge_dct_work/dl``.
    """
    lemmas_of = {}
    for line in _synset_texts(timm_wheel)[1].splitlines():
        wnid, _, lemmas = line.partition("\t")
        lemmas_of[wnid] = [lemma.strip() for lemma in lemmas.split(",") if lemma.strip()]
    synsets = imagenet_synsets(timm_wheel)
    first = [lemmas_of[s][0].lower() for s in synsets]
    labels = [", ".join(lemmas_of[s][:2]) if first.count(key) > 1 else lemmas_of[s][0]
              for s, key in zip(synsets, first)]
    folded = [label.lower() for label in labels]
    labels = [QUALIFIERS.get(s, f"{label} ({s})") if folded.count(label.lower()) > 1 else label
              for s, label in zip(synsets, labels)]
    return tuple(labels)
