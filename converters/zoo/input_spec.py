"""InputSpec v1 dictionaries (docs/design.md, "InputSpec"): the contract a model states about its input.

The converter writes the spec (plus labels) into each ``.tflite`` bundle as the ``edge_dct``
metadata buffer; the runtime and the Android bridge read it.

DCT coefficient indices are in natural (row-major) order inside an 8x8 block:
``k = 8 * v + u`` with ``v`` the vertical and ``u`` the horizontal frequency (libjpeg's order,
not zigzag).

Pixel models (the RGB / YCbCr baselines and the EfficientNet-Lite0 teacher) use the same
fields with ``layout`` ``"rgb"`` or ``"ycbcr"``: one input ``image [1, 8H, 8W, 3]`` and
``channels`` naming the three planes. The SDK must decode such models' inputs to pixels.

DCT specs come from the SDK (``edge_dct.spec``); their ``normalize`` is the identity (raw
dequantized coefficients) unless a recipe fits statistics (``converters.train.default_model``).
"""

from __future__ import annotations

from typing import Any

from edge_dct.spec import ALL64, DCTNET24
from edge_dct.spec import dct_spec as sdk_dct_spec

CHANNEL_SELECTIONS: dict[str, dict[str, tuple[int, ...]]] = {
    "all64": {"y": ALL64, "cb": ALL64, "cr": ALL64},
    "dctnet24": DCTNET24,
}
"""Channel selections by name (natural-order indices, from ``edge_dct.spec``)."""


def dct_spec(grid: tuple[int, int], layout: str, selection: str = "all64") -> dict[str, Any]:
    """InputSpec v1 of a DCT model (labels excluded; the exporter adds them).

    Built by the SDK's ``edge_dct.spec.dct_spec`` (one implementation of the contract) and
    returned as its JSON dict. ``normalize`` is the identity (mean 0, std 1: plain dequantized
    coefficients) until a recipe fits per-channel statistics (see ``converters.train.default_model``).

    Args:
        grid: luma blocks ``(H, W)``; chroma is ``(H/2, W/2)`` (``"420"``).
        layout: ``"split"`` (inputs ``y`` and ``cbcr``, Cb channels before Cr) or
            ``"merged"`` (one input ``dct`` with chroma repeated 2x2).
        selection: a key of :data:`CHANNEL_SELECTIONS`.
    """
    if layout not in ("split", "merged"):
        raise ValueError(f"layout must be 'split' or 'merged', not {layout!r}")
    spec = sdk_dct_spec(grid, layout, selection).to_dict()
    n = sum(len(v) for v in spec["channels"].values())
    spec["normalize"] = {"mean": [0.0] * n, "std": [1.0] * n}
    return spec


def pixel_spec(grid: tuple[int, int], colour: str, mean: float, std: float) -> dict[str, Any]:
    """InputSpec of a pixel model (input ``image [1, 8H, 8W, 3]``, float32).

    Args:
        grid: the image size in 8x8 blocks, ``(H, W)``.
        colour: ``"rgb"`` or ``"ycbcr"`` (JFIF full-range YCbCr); also the ``layout`` value.
        mean: subtracted from every 0..255 sample.
        std: the difference is divided by it.

    Returns:
        JSON-serialisable dict with the InputSpec v1 fields.
    """
    return {
        "version": 1,
        "grid": list(grid),
        "resize": resize_for_grid(grid),
        "chroma": "444",
        "layout": colour,
        "channels": list(colour.upper()) if colour == "rgb" else ["Y", "Cb", "Cr"],
        "normalize": {"mean": [float(mean)] * 3, "std": [float(std)] * 3},
    }


def resize_for_grid(grid: tuple[int, int]) -> dict[str, Any]:
    """The ``resize`` field for a grid: shorter side to ``8/7`` of the crop, then centre crop."""
    # The usual 256 -> 224 evaluation protocol, scaled to the grid: shorter side = 8/7 of the crop.
    return {"mode": "shorter_side", "size": round(8 * min(grid) * 8 / 7)}
