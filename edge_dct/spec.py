"""InputSpec: the model contract stored inside every edge_dct .tflite bundle (v1).

JSON form (docs/design.md)::

    {"version": 1, "grid": [28, 28],
     "resize": {"mode": "shorter_side", "size": 256},
     "chroma": "420", "layout": "split",
     "channels": {"y": [0, ..., 63], "cb": [0, 1, 8, 9], "cr": [0, 1, 8, 9]},
     "normalize": {"mean": [...], "std": [...]},     # per selected channel: y, cb, cr
     "labels": ["tench", ...]}

Coefficient indices are in natural order inside an 8x8 block: ``k = 8*v + u``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from edge_dct.errors import InvalidSpecError  # re-exported: its home was this module

COMPONENTS = ("y", "cb", "cr")
ALL64: tuple[int, ...] = tuple(range(64))
DCTNET24: dict[str, tuple[int, ...]] = {
    "y": tuple(8 * v + u for v in range(4) for u in range(4)),
    "cb": (0, 1, 8, 9),
    "cr": (0, 1, 8, 9),
}


@dataclass(frozen=True)
class TensorInfo:
    """One model input derived from a spec: name, shape (batch 1, NHWC)."""

    name: str
    shape: tuple[int, int, int, int]


@dataclass(frozen=True)
class InputSpec:
    """What a DCT model expects as input (InputSpec v1).

    Attributes:
        grid: Luma blocks ``(H, W)``, both even; the model sees ``8H x 8W`` pixels' worth.
        resize: ``{"mode": "shorter_side", "size": N}`` (shorter side to N, then centre
            crop) or ``{"mode": "stretch"}``.
        chroma: Chroma geometry the model expects; ``"420"`` (chroma grid = grid / 2).
        layout: ``"split"`` (inputs ``y`` and ``cbcr``) or ``"merged"`` (one input ``dct``).
        channels: Selected coefficient indices per component ``y``, ``cb``, ``cr``.
        normalize: ``{"mean": [...], "std": [...]}`` per selected channel (y, cb, cr
            order), or None for plain dequantized coefficients.
        labels: Class names, index-aligned with the model's output, or None.
    """

    grid: tuple[int, int] = (28, 28)
    resize: Mapping[str, Any] = field(default_factory=lambda: {"mode": "shorter_side", "size": 256})
    chroma: str = "420"
    layout: str = "split"
    channels: Mapping[str, tuple[int, ...]] = field(
        default_factory=lambda: {c: ALL64 for c in COMPONENTS})
    normalize: Mapping[str, tuple[float, ...]] | None = None
    labels: tuple[str, ...] | None = field(default=None, repr=False)
    version: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        object.__setattr__(self, "resize", dict(self.resize))
        object.__setattr__(self, "channels",
                           {c: tuple(int(i) for i in self.channels.get(c, ())) for c in COMPONENTS})
        if self.normalize is not None:
            object.__setattr__(self, "normalize", {
                "mean": tuple(float(x) for x in self.normalize.get("mean", ())),
                "std": tuple(float(x) for x in self.normalize.get("std", ())),
            })
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        self.validate()

    # -- validation -------------------------------------------------------------------
    def validate(self) -> None:
        """Raises InvalidSpecError naming the first bad field."""
        if self.version != 1:
            raise InvalidSpecError(f"version: {self.version} is not supported (only 1)")
        if len(self.grid) != 2 or any(g < 2 or g > 512 or g % 2 for g in self.grid):
            raise InvalidSpecError(f"grid: {list(self.grid)} must be two even block counts 2..512")
        mode = self.resize.get("mode")
        if mode == "shorter_side":
            size = self.resize.get("size")
            if not isinstance(size, int) or not 1 <= size <= 65535:
                raise InvalidSpecError(f"resize.size: {size!r} must be an int 1..65535")
        elif mode != "stretch":
            raise InvalidSpecError(f"resize.mode: {mode!r} must be 'shorter_side' or 'stretch'")
        if self.chroma != "420":
            raise InvalidSpecError(f"chroma: {self.chroma!r} is not supported (only '420')")
        if self.layout not in ("split", "merged"):
            raise InvalidSpecError(f"layout: {self.layout!r} must be 'split' or 'merged'")
        for c in COMPONENTS:
            sel = self.channels[c]
            if any(not 0 <= k <= 63 for k in sel) or len(set(sel)) != len(sel):
                raise InvalidSpecError(f"channels.{c}: indices must be distinct, 0..63")
        if not self.channels["y"]:
            raise InvalidSpecError("channels.y: at least one luma channel is needed")
        if self.layout == "split" and not (self.channels["cb"] or self.channels["cr"]):
            raise InvalidSpecError("channels: the split layout needs chroma channels")
        if self.normalize is not None:
            n = self.num_channels
            for key in ("mean", "std"):
                if len(self.normalize[key]) != n:
                    raise InvalidSpecError(
                        f"normalize.{key}: {len(self.normalize[key])} values for {n} channels")
            if any(not s > 0 for s in self.normalize["std"]):
                raise InvalidSpecError("normalize.std: every value must be > 0")

    # -- derived ----------------------------------------------------------------------
    @property
    def num_channels(self) -> int:
        """Selected channels over all components."""
        return sum(len(self.channels[c]) for c in COMPONENTS)

    @property
    def tensors(self) -> tuple[TensorInfo, ...]:
        """The model inputs, in the order prepare() returns them."""
        h, w = self.grid
        ny = len(self.channels["y"])
        nc = len(self.channels["cb"]) + len(self.channels["cr"])
        if self.layout == "split":
            return (TensorInfo("y", (1, h, w, ny)), TensorInfo("cbcr", (1, h // 2, w // 2, nc)))
        return (TensorInfo("dct", (1, h, w, ny + nc)),)

    def normalization(self, component: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(mean, std) float32 arrays of one component's selected channels, or None."""
        if self.normalize is None:
            return None
        start = 0
        for c in COMPONENTS:
            n = len(self.channels[c])
            if c == component:
                return (np.asarray(self.normalize["mean"][start:start + n], np.float32),
                        np.asarray(self.normalize["std"][start:start + n], np.float32))
            start += n
        raise KeyError(component)

    # -- (de)serialization ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict (InputSpec v1)."""
        d: dict[str, Any] = {
            "version": self.version,
            "grid": list(self.grid),
            "resize": dict(self.resize),
            "chroma": self.chroma,
            "layout": self.layout,
            "channels": {c: list(self.channels[c]) for c in COMPONENTS},
            "normalize": None if self.normalize is None else
            {k: list(v) for k, v in self.normalize.items()},
        }
        if self.labels is not None:
            d["labels"] = list(self.labels)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "InputSpec":
        """Builds and validates a spec; unknown fields are an error (they would be ignored)."""
        if not isinstance(d, Mapping):
            raise InvalidSpecError(f"spec must be a JSON object, got {type(d).__name__}")
        known = {"version", "grid", "resize", "chroma", "layout", "channels", "normalize", "labels"}
        unknown = set(d) - known
        if unknown:
            raise InvalidSpecError(f"{sorted(unknown)[0]}: unknown field")
        for required in ("version", "grid", "layout", "channels"):
            if required not in d:
                raise InvalidSpecError(f"{required}: missing")
        channels = d["channels"]
        if not isinstance(channels, Mapping) or set(channels) - set(COMPONENTS):
            raise InvalidSpecError("channels: must map 'y', 'cb', 'cr' to index lists")
        try:
            return cls(
                version=d["version"], grid=tuple(d["grid"]),
                resize=d.get("resize", {"mode": "shorter_side", "size": 256}),
                chroma=d.get("chroma", "420"), layout=d["layout"], channels=channels,
                normalize=d.get("normalize"), labels=d.get("labels"))
        except (TypeError, ValueError, AttributeError) as e:
            if isinstance(e, InvalidSpecError):
                raise
            raise InvalidSpecError(f"malformed spec: {e}") from e

    @classmethod
    def from_json(cls, text: str | bytes) -> "InputSpec":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise InvalidSpecError(f"not JSON: {e}") from e


def dct_spec(grid: Sequence[int] = (28, 28), layout: str = "split", selection: str = "all64",
             size: int | None = None) -> InputSpec:
    """A spec for the usual evaluation protocol (shorter side 8/7 of the crop, then crop).

    Args:
        grid: Luma blocks (H, W).
        layout: "split" or "merged".
        selection: "all64" or "dctnet24".
        size: Shorter side before the centre crop; default 8/7 of the crop (256 for 224).
    """
    sel = {c: ALL64 for c in COMPONENTS} if selection == "all64" else DCTNET24
    if selection not in ("all64", "dctnet24"):
        raise InvalidSpecError(f"selection: {selection!r} must be 'all64' or 'dctnet24'")
    size = size if size is not None else round(64 * min(grid) / 7)
    return InputSpec(grid=tuple(grid), resize={"mode": "shorter_side", "size": size},
                     layout=layout, channels=sel)
