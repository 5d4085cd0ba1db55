"""The teacher computed on the fly from the student's own input (shallow-cut distillation, #15).

Before a shallow cut (block 0, 1 or 2 of EfficientNet-Lite0) the teacher is cheap enough to run
beside the student, so no targets need caching and every crop can be new. The teacher's input
is the *exact inverse* of ``prepare``'s output: the student's coefficients (un-normalized with
the run's InputSpec), the 8x8 IDCT, nearest chroma upsampling, the JFIF YCbCr -> RGB matrix,
clamping to ``0..255`` and the teacher's ``(x - 127) / 128`` (what
:mod:`converters.zoo.dct_frontend` computes, plus the decoder's clamp). The adapter is then
never asked to reproduce what its input cannot show (the pixel-domain resampling of a real
decode); ``source="decode"`` gives the teacher the libjpeg-turbo decode of the same window
instead (:func:`converters.train.crops.teacher_crop`), to measure that difference.

The teacher is the PyTorch twin (:mod:`converters.train.torch_graph`) of the Keras
EfficientNet-Lite0 with its ImageNet weights, fp32, inference mode.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from edge_dct.spec import InputSpec

from ..zoo.dct_frontend import YCC_TO_RGB, idct_kernel
from ..zoo.efficientnet_dct import CUTS
from .torch_graph import TorchGraph, depth_to_space, nchw, to_torch

SOURCES = ("exact", "decode")


class ExactTeacher:
    """EfficientNet-Lite0 (fp32 twin) on the exact pixels of a student input.

    Args:
        cut: the student's cut (:data:`converters.zoo.efficientnet_dct.CUTS`).
        spec: the student's InputSpec (``split`` layout, all 64 coefficients; its
            ``normalize`` is undone before the IDCT).
        logits: also run the rest of the network (the logits stage needs the teacher's logits).
    """

    def __init__(self, cut: int, spec: InputSpec, logits: bool = True):
        from ..zoo.registry import build

        if spec.layout != "split" or len(spec.channels["y"]) != 64:
            raise ValueError("the exact teacher needs the split layout with all 64 coefficients")
        model = build("efficientnet_lite0_rgb", image_size=8 * spec.grid[0])
        self.layer = CUTS[cut]
        outputs = [self.layer] + (["logits"] if logits else [])
        self.graph = TorchGraph(model, outputs).to(memory_format=torch.channels_last).eval()
        to_torch(model, self.graph)
        for p in self.graph.parameters():
            p.requires_grad_(False)
        norm = spec.normalize
        mean = np.zeros(192, np.float32) if norm is None else np.asarray(norm["mean"], np.float32)
        std = np.ones(192, np.float32) if norm is None else np.asarray(norm["std"], np.float32)
        k = idct_kernel()  # [64 coefficients, 64 samples]
        # 1x1 convolutions (cout, cin, 1, 1) from normalized coefficients to samples
        self.wy = torch.from_numpy((std[:64, None] * k).T.copy())[..., None, None]
        self.by = torch.from_numpy(mean[:64] @ k + 128.0)
        kc = np.zeros((128, 128), np.float32)
        kc[:64, 0::2] = k
        kc[64:, 1::2] = k
        self.wc = torch.from_numpy((std[64:, None] * kc).T.copy())[..., None, None]
        self.bc = torch.from_numpy(mean[64:] @ kc)
        self.ycc = torch.from_numpy(YCC_TO_RGB.copy())

    def pixels(self, y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
        """Student inputs (NCHW ``[b, 64, H, W]``, ``[b, 128, H/2, W/2]``) -> the teacher's
        normalized RGB ``[b, 3, 8H, 8W]`` float32."""
        luma = depth_to_space(F.conv2d(y, self.wy, self.by), 8)
        chroma = depth_to_space(F.conv2d(cbcr, self.wc, self.bc), 8)
        chroma = F.interpolate(chroma, scale_factor=2, mode="nearest")
        ycc = torch.cat([luma, chroma], 1)
        rgb = torch.einsum("rc,bchw->brhw", self.ycc, ycc).clamp(0.0, 255.0)
        return ((rgb - 127.0) / 128.0).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def __call__(self, inputs: dict[str, np.ndarray], pixels: np.ndarray | None = None) -> list[np.ndarray]:
        """Teacher outputs for a student batch.

        Args:
            inputs: ``{"y": [b, H, W, 64], "cbcr": [b, H/2, W/2, 128]}`` float32 (NHWC).
            pixels: instead of the exact inverse, the teacher's own view ``[b, 8H, 8W, 3]``
                float32 (``(rgb - 127) / 128``).

        Returns:
            ``[cut tensor [b, h, w, C] float32, (logits [b, 1000] float32)]``.
        """
        x = nchw(pixels) if pixels is not None else self.pixels(nchw(inputs["y"]), nchw(inputs["cbcr"]))
        out = self.graph({"image": x})
        return [out[0].permute(0, 2, 3, 1).numpy()] + [o.numpy() for o in out[1:]]
