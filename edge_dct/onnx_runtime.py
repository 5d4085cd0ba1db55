"""ONNX Runtime backend: runs an edge_dct ``.onnx`` bundle on CPU, CUDA or TensorRT.

Installed with ``pip install edge-dct[onnx]`` (CPU) or ``edge-dct[onnx-gpu]``
(``onnxruntime-gpu``; on Jetson, NVIDIA's JetPack wheel). Accelerators:

* ``"cpu"``: the CPU execution provider with ``num_threads`` intra-op threads;
* ``"cuda"``: the CUDA execution provider (CPU for what it does not place);
* ``"tensorrt"``: the TensorRT execution provider, then CUDA, then CPU for the rest;
* ``"auto"``: TensorRT, else CUDA, else CPU; the choice is reported (``accelerator``).

A provider that is not compiled into the installed onnxruntime, or whose libraries (CUDA,
cuDNN, TensorRT) do not load, raises :class:`~edge_dct.errors.AcceleratorUnavailableError`
naming what is missing. Inputs are the InputSpec's tensors with a batch axis; the batch is
dynamic, so :meth:`OnnxRunner.run_batch` runs N images in one call.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edge_dct.bundle import ModelBundle
from edge_dct.errors import AcceleratorUnavailableError, InvalidArgumentError, ModelError, RuntimeUnavailableError
from edge_dct.paths import cache_dir
from edge_dct.runtime import EMBED_SIGNATURE, EMBEDDING_OUTPUT, TensorInfo

ONNX_ACCELERATORS = ("cpu", "cuda", "tensorrt", "auto")
_PROVIDERS = {
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "cpu": ["CPUExecutionProvider"],
}
_LOGITS = "logits"


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise RuntimeUnavailableError(
            "ONNX bundles need ONNX Runtime: pip install edge-dct[onnx] (CPU) or edge-dct[onnx-gpu] "
            f"({e})") from e
    return onnxruntime


def _writable(folder: Path) -> bool:
    """Whether ``folder`` exists or can be made, and takes files (a read-only home: no cache)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.access(folder, os.W_OK)
    except OSError:
        return False


def providers(wanted: list[str], available: set[str]) -> list[str | tuple[str, dict[str, str]]]:
    """The execution providers to ask for, in order, with their options.

    TensorRT builds an engine for the model the first time a session starts, which takes
    minutes on a Jetson; its engines are cached under :func:`edge_dct.paths.cache_dir`
    (``tensorrt``), so later starts load them in seconds.
    """
    out: list[str | tuple[str, dict[str, str]]] = []
    for p in wanted:
        if p not in available:
            continue
        engines = cache_dir("tensorrt") if p == "TensorrtExecutionProvider" else None
        if engines is not None and _writable(engines):
            out.append((p, {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(engines)}))
        else:
            out.append(p)
    return out


def session(content: bytes, name: str, accelerator: str = "cpu",
            num_threads: int | None = None) -> tuple[Any, str]:
    """An ONNX Runtime session on ``accelerator`` (``"auto"``: TensorRT, CUDA, then CPU).

    Returns:
        (session, the accelerator chosen).

    Raises:
        InvalidArgumentError: An accelerator ONNX Runtime does not have.
        AcceleratorUnavailableError: Its provider is missing or its libraries do not load
            (every reason tried, named).
        ModelError: The CPU provider cannot load the model.
        RuntimeUnavailableError: onnxruntime is not installed.
    """
    if accelerator not in ONNX_ACCELERATORS:
        raise InvalidArgumentError(f"ONNX bundles run on one of {ONNX_ACCELERATORS}, not {accelerator!r} "
                                   "(gpu and edgetpu are LiteRT's: use a .tflite bundle)")
    ort = _ort()
    available = set(ort.get_available_providers())
    reasons = []
    for choice in ["tensorrt", "cuda", "cpu"] if accelerator == "auto" else [accelerator]:
        wanted = _PROVIDERS[choice]
        if wanted[0] not in available:
            reasons.append(f"{choice}: {wanted[0]} is not in this onnxruntime build "
                           f"(has {', '.join(sorted(available))}; install onnxruntime-gpu)")
            continue
        opts = ort.SessionOptions()
        if num_threads is not None:
            opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        try:
            sess = ort.InferenceSession(content, sess_options=opts, providers=providers(wanted, available))
        except Exception as e:  # onnxruntime raises its own types (Fail, InvalidProtobuf, ...)
            if choice == "cpu":
                raise ModelError(f"ONNX Runtime cannot load the model: {e}", name) from e
            reasons.append(f"{choice}: {type(e).__name__}: {e}")
            continue
        if wanted[0] not in sess.get_providers():  # its libraries did not load: fell back
            reasons.append(f"{choice}: {wanted[0]} did not load (CUDA/cuDNN/TensorRT libraries?)")
            continue
        return sess, choice
    raise AcceleratorUnavailableError("; ".join(reasons), name)


class OnnxRunner:
    """One ONNX bundle in one ONNX Runtime session (same interface as the LiteRT ``Runner``).

    Attributes:
        accelerator: What runs the model: ``"cpu"``, ``"cuda"`` or ``"tensorrt"``.
        providers: The session's execution providers, in order.
        input_dtype: float32 (quantized ONNX bundles keep float inputs, QDQ inside).
        quantization: None (no input quantization for prepare).
        signature: None (``logits``) or ``"embed"`` (``embedding`` and ``logits``, for
            :class:`~edge_dct.ImageEmbedder`; bundles exported with an ``embedding`` output).
        outputs: name -> TensorInfo of what :meth:`run_all` returns (batch 1, float32).
    """

    input_dtype = np.dtype(np.float32)
    quantization = None

    def __init__(self, bundle: ModelBundle, *, num_threads: int | None = None,
                 accelerator: str = "cpu", delegate_path: str | None = None,
                 signature: str | None = None):
        if delegate_path is not None:
            raise InvalidArgumentError("delegate_path applies to LiteRT bundles, not ONNX ones")
        if signature not in (None, EMBED_SIGNATURE):
            raise ModelError(f"ONNX bundles have the logits and, exported with one, the {EMBED_SIGNATURE!r} "
                             f"outputs, not a signature {signature!r}", bundle.name)
        self.bundle = bundle
        self.signature = signature
        self._session, self.accelerator = session(bundle.content, bundle.name, accelerator, num_threads)
        self.providers = self._session.get_providers()
        self._stream: Any = None
        self._stream_lock = threading.Lock()
        self._check_against_spec()
        names = [o.name for o in self._session.get_outputs()]
        if signature == EMBED_SIGNATURE and EMBEDDING_OUTPUT not in names:
            raise ModelError(f"no {EMBEDDING_OUTPUT!r} output (outputs {names}): export the bundle again "
                             "(python -m converters export MODEL OUT.onnx --format onnx adds it)", bundle.name)
        wanted = [EMBEDDING_OUTPUT, _LOGITS] if signature == EMBED_SIGNATURE else [_LOGITS]
        self.outputs = {o.name: TensorInfo(o.name, (1, *[d if isinstance(d, int) else -1 for d in o.shape[1:]]),
                                           np.dtype(np.float32), 0.0, 0)
                        for o in self._session.get_outputs() if o.name in wanted}

    def _check_against_spec(self) -> None:
        spec = self.bundle.spec
        ins = {i.name: i for i in self._session.get_inputs()}
        outs = [o.name for o in self._session.get_outputs()]
        want = {t.name: t.shape[1:] for t in spec.tensors}
        have = {n: tuple(i.shape[1:]) for n, i in ins.items()}
        if want != have:
            raise ModelError(f"inputs {have} disagree with the InputSpec's {want}", self.bundle.name)
        for n, i in ins.items():
            if i.type != "tensor(float)":
                raise ModelError(f"input {n!r}: {i.type}, expected float32", self.bundle.name)
        if _LOGITS not in outs:
            raise ModelError(f"no {_LOGITS!r} output (outputs {outs})", self.bundle.name)
        classes = self._session.get_outputs()[outs.index(_LOGITS)].shape[-1]
        if isinstance(classes, int) and classes != len(spec.labels or ()):
            raise ModelError(f"{classes} outputs but {len(spec.labels or ())} labels", self.bundle.name)

    def run(self, tensors: Mapping[str, np.ndarray]) -> np.ndarray:
        """Runs one image (batch-1 tensors); returns float32 logits, shape (num_classes,)."""
        return self.run_batch(tensors)[0]

    def run_batch(self, tensors: Mapping[str, np.ndarray]) -> np.ndarray:
        """Runs N images (tensors with a leading batch axis N); returns (N, num_classes) float32."""
        return np.asarray(self._session.run([_LOGITS], dict(tensors))[0], np.float32)

    def run_all(self, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs one image; returns every output of the signature: name -> float32 (size,)
        (``embed``: ``embedding`` and ``logits`` from one run)."""
        names = list(self.outputs)
        return {n: np.asarray(v, np.float32).reshape(-1)
                for n, v in zip(names, self._session.run(names, dict(tensors)))}

    @property
    def streams_schedule(self) -> bool:
        """Whether throughput mode should run parallel streams (the network is on the CPU
        cores) rather than overlap CPU preparation with an accelerator."""
        return self.accelerator == "cpu"

    def run_stream(self, tensors: Mapping[str, np.ndarray]) -> np.ndarray:
        """:meth:`run_batch` on a session with one intra-op thread, safe to call from several
        threads at once: throughput mode's streams (``edge_dct.batching``). The session is
        made on first use and kept."""
        with self._stream_lock:
            if self._stream is None:
                self._stream = session(self.bundle.content, self.bundle.name, "cpu", 1)[0]
            sess = self._stream
        return np.asarray(sess.run([_LOGITS], dict(tensors))[0], np.float32)

    def close(self) -> None:
        """Releases the sessions; safe twice."""
        self._session = self._stream = None


__all__ = ["ONNX_ACCELERATORS", "OnnxRunner", "providers", "session"]
