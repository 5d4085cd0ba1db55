"""LiteRT backends and accelerators: runs a bundle's .tflite with named inputs.

Backend order: ``ai_edge_litert`` (maintained LiteRT) -> ``tflite_runtime`` -> ``tensorflow.lite``.
TensorFlow is only imported when nothing else is installed.

Accelerators:

* ``"cpu"``: the interpreter with XNNPACK and ``num_threads``;
* ``"gpu"``: LiteRT's GPU accelerator (CompiledModel API), or a GPU delegate library when
  ``delegate_path`` is given; use the fp16 bundle;
* ``"edgetpu"``: the ``libedgetpu.so.1`` delegate (or ``delegate_path``);
* ``"auto"``: Edge TPU for Edge-TPU-compiled models, else GPU when one answers, else CPU;
  the choice is reported (``Runner.accelerator``).

LiteRT's native log lines (XNNPACK creation, accelerator probing and destruction) are kept off
stderr around every call that writes them (``edge_dct.native_log``; ``EDGE_DCT_VERBOSE=1``
shows them).
"""

from __future__ import annotations

import ctypes
import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edge_dct.bundle import ModelBundle
from edge_dct.errors import (  # Accelerator/RuntimeUnavailableError: re-exported (old home)
    AcceleratorUnavailableError,
    InvalidArgumentError,
    ModelError,
    RuntimeUnavailableError,
)
from edge_dct.native_log import runtime_logs
from edge_dct.options import ACCELERATORS

EDGETPU_LIBRARY = "libedgetpu.so.1"
LOGITS_OUTPUT = "logits"
"""Name of the class scores in a bundle's signatures."""
EMBED_SIGNATURE = "embed"
"""The second signature of bundles with embeddings: outputs ``embedding`` and ``logits``."""
EMBEDDING_OUTPUT = "embedding"
"""Name of the pooled backbone features (1280-d for EfficientNet-Lite0) in ``embed``."""


@dataclass(frozen=True)
class Backend:
    """An importable interpreter implementation."""

    name: str
    version: str
    interpreter: Callable[..., Any]
    load_delegate: Callable[..., Any]
    compiled_model: Any  # ai_edge_litert.compiled_model module, or None


@dataclass(frozen=True)
class RuntimeInfo:
    """What ``runtime_info()`` reports.

    Attributes:
        backend: ``"ai_edge_litert"``, ``"tflite_runtime"`` or ``"tensorflow.lite"``.
        version: The backend package's version.
        notes: Why earlier backends in the order were skipped, if they were.
    """

    backend: str
    version: str
    notes: tuple[str, ...]


def _version(module_name: str) -> str:
    try:
        from importlib.metadata import version

        return version(module_name.replace("_", "-").split(".")[0])
    except Exception:  # noqa: BLE001 - a version string is informational
        return "unknown"


@lru_cache(maxsize=1)
def _backend() -> tuple[Backend, tuple[str, ...]]:
    notes: list[str] = []
    try:
        from ai_edge_litert import interpreter as lite
        try:
            from ai_edge_litert import compiled_model
        except ImportError:
            compiled_model = None
        return Backend("ai_edge_litert", _version("ai-edge-litert"), lite.Interpreter,
                       lite.load_delegate, compiled_model), tuple(notes)
    except ImportError as e:
        notes.append(f"ai_edge_litert: {e}")
    try:
        from tflite_runtime import interpreter as lite  # type: ignore[import-not-found]

        return Backend("tflite_runtime", _version("tflite-runtime"), lite.Interpreter,
                       lite.load_delegate, None), tuple(notes)
    except ModuleNotFoundError as e:
        notes.append(f"tflite_runtime: not installed ({e.name})")
    except (ImportError, AttributeError) as e:  # installed but broken
        why = f"built against numpy 1.x, cannot run under numpy {np.__version__}" \
            if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else "import failed"
        notes.append(f"tflite_runtime: {why} ({type(e).__name__}: {e})")
    try:
        tf = importlib.import_module("tensorflow")
        return Backend("tensorflow.lite", tf.__version__, tf.lite.Interpreter,
                       tf.lite.experimental.load_delegate, None), tuple(notes)
    except ImportError as e:
        notes.append(f"tensorflow: {e}")
    raise RuntimeUnavailableError("no LiteRT backend: pip install ai-edge-litert (" +
                                  "; ".join(notes) + ")")


def runtime_info() -> RuntimeInfo:
    """Which LiteRT backend edge_dct uses, and why others were skipped."""
    backend, notes = _backend()
    return RuntimeInfo(backend.name, backend.version, notes)


def open_interpreter(content: bytes, num_threads: int | None = None,
                     delegates: Sequence[Any] | None = None,
                     signature: str | None = None) -> tuple[Any, Any]:
    """A LiteRT interpreter on a .tflite model, its tensors allocated (delegates applied).

    LiteRT's log lines of this (XNNPACK's creation) are kept off stderr (``runtime_logs``).

    Args:
        content: The .tflite bytes.
        num_threads: CPU threads (None: LiteRT's default).
        delegates: Delegates from the backend's ``load_delegate``.
        signature: The signature to run; None: the model's first (``serving_default``,
            the logits, in every edge_dct bundle; bundles with embeddings also have
            :data:`EMBED_SIGNATURE`).

    Returns:
        (interpreter, the signature's runner).

    Raises:
        ValueError, RuntimeError: LiteRT cannot load the model.
        KeyError: The model has no signature of that name.
    """
    backend, _ = _backend()
    with runtime_logs():
        interp = backend.interpreter(model_content=content, num_threads=num_threads,
                                     experimental_delegates=delegates)
        interp.allocate_tensors()
        keys = list(interp.get_signature_list())
        if signature is not None and signature not in keys:
            raise KeyError(f"no signature {signature!r} (the model has {keys})")
        return interp, interp.get_signature_runner(signature or (keys[0] if keys else None))


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output: shape, dtype and quantization (scale 0 = float)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int


class Runner:
    """One bundle in one LiteRT interpreter (not thread-safe; Classifier serializes calls).

    Attributes:
        accelerator: The accelerator actually used (``"cpu"``, ``"gpu"``, ``"edgetpu"``).
        signature: The signature run (None: the model's first, ``serving_default``).
        inputs: name -> TensorInfo of the signature's inputs.
        outputs: name -> TensorInfo of the signature's outputs.
        output: TensorInfo of the logits output.
    """

    def __init__(self, bundle: ModelBundle, *, num_threads: int | None = None,
                 accelerator: str = "cpu", delegate_path: str | None = None,
                 signature: str | None = None):
        if accelerator not in ACCELERATORS:
            raise InvalidArgumentError(f"accelerator must be one of {ACCELERATORS}, not {accelerator!r}")
        if accelerator in ("cuda", "tensorrt"):
            raise AcceleratorUnavailableError(
                f"{accelerator}: runs ONNX bundles (ONNX Runtime); LiteRT bundles run on cpu, gpu "
                "or edgetpu (export one with python -m converters export MODEL OUT.onnx --format onnx)",
                bundle.name)
        self.bundle = bundle
        self.signature = signature
        self.backend, _ = _backend()
        self._compiled = None
        self._runner = None
        if accelerator == "auto":
            accelerator = self._auto(num_threads, delegate_path)
        else:
            self._open(accelerator, num_threads, delegate_path)
        self.accelerator = accelerator
        self._check_against_spec()

    # -- opening ------------------------------------------------------------------------
    def _auto(self, num_threads: int | None, delegate_path: str | None) -> str:
        order = ["gpu", "cpu"]
        if b"edgetpu-custom-op" in self.bundle.content:
            order.insert(0, "edgetpu")
        for choice in order:
            try:
                self._open(choice, num_threads, delegate_path if choice != "cpu" else None)
                return choice
            except AcceleratorUnavailableError:
                continue
        raise AssertionError("unreachable: the CPU always opens")

    def _open(self, accelerator: str, num_threads: int | None, delegate_path: str | None) -> None:
        delegates = None
        if accelerator == "edgetpu" or (accelerator == "gpu" and delegate_path):
            delegates = [self._load_delegate(accelerator, delegate_path or EDGETPU_LIBRARY)]
        elif accelerator == "gpu":
            self._open_gpu()
            return
        try:
            self._interp, self._runner = open_interpreter(self.bundle.content, num_threads,
                                                          delegates, self.signature)
        except KeyError as e:
            raise ModelError(self._no_signature(), self.bundle.name) from e
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"LiteRT cannot load the model: {e}", self.bundle.name) from e

    def _no_signature(self) -> str:
        why = f"the model has no {self.signature!r} signature"
        if self.signature == EMBED_SIGNATURE:
            why += (" (no embedding output: bundles made before embeddings existed; add it "
                    "with edge_dct.heads.expose_embedding or python -m converters default-model)")
        return why

    def _load_delegate(self, accelerator: str, library: str) -> Any:
        reason = None
        try:
            ctypes.CDLL(library)  # fails fast and cleanly when the library is absent
            with runtime_logs(probe=True):
                try:
                    return self.backend.load_delegate(library)
                except (ValueError, OSError, RuntimeError) as e:
                    reason = str(e)  # the failed delegate is freed in the block, quietly
        except OSError as e:
            reason = str(e)
        raise AcceleratorUnavailableError(
            f"{accelerator}: cannot load delegate {library!r} ({reason})"
            + ("; install the Edge TPU runtime (libedgetpu1-std)"
               if accelerator == "edgetpu" else ""), self.bundle.name)

    def _open_gpu(self) -> None:
        cm = self.backend.compiled_model
        if cm is None:
            raise AcceleratorUnavailableError(
                f"gpu: the {self.backend.name} backend has no GPU accelerator; pass "
                "delegate_path=libtensorflowlite_gpu_delegate.so", self.bundle.name)
        with runtime_logs(probe=True):
            try:
                model = cm.CompiledModel.from_buffer(self.bundle.content,
                                                     hardware_accel=cm.HardwareAccelerator.GPU)
            except RuntimeError:
                model = None  # the exception, and the LiteRT environment it holds, die here
        if model is None:
            raise AcceleratorUnavailableError(
                "gpu: LiteRT found no usable GPU (WebGPU/OpenCL adapter)", self.bundle.name)
        self._compiled = model
        sig = model.get_signature_list()
        if self.signature is not None and self.signature not in sig:
            model.close()
            self._compiled = None
            raise ModelError(self._no_signature(), self.bundle.name)
        self._sig_key = self.signature or next(iter(sig))

    # -- metadata of tensors -------------------------------------------------------------
    def _details(self) -> tuple[dict[str, dict], dict[str, dict]]:
        if self._runner is not None:
            return self._runner.get_input_details(), self._runner.get_output_details()
        c = self._compiled
        return (c.get_input_tensor_details(self._sig_key),
                c.get_output_tensor_details(self._sig_key))

    @staticmethod
    def _info(name: str, d: Mapping[str, Any]) -> TensorInfo:
        q = d.get("quantization", (0.0, 0)) or (0.0, 0)
        return TensorInfo(name, tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]),
                          float(q[0]), int(q[1]))

    def _check_against_spec(self) -> None:
        ins, outs = self._details()
        self.inputs = {n: self._info(n, d) for n, d in ins.items()}
        self.outputs = {n: self._info(n, d) for n, d in outs.items()}
        if self.signature is None and len(outs) != 1:
            raise ModelError(f"expected one output (logits), found {sorted(outs)}", self.bundle.name)
        if self.signature is None:
            self.output = next(iter(self.outputs.values()))
        elif LOGITS_OUTPUT in self.outputs:
            self.output = self.outputs[LOGITS_OUTPUT]
        else:
            raise ModelError(f"signature {self.signature!r} has no {LOGITS_OUTPUT!r} output "
                             f"(outputs {sorted(outs)})", self.bundle.name)
        if self.signature == EMBED_SIGNATURE and EMBEDDING_OUTPUT not in self.outputs:
            raise ModelError(f"signature {EMBED_SIGNATURE!r} has no {EMBEDDING_OUTPUT!r} output "
                             f"(outputs {sorted(outs)})", self.bundle.name)
        spec = self.bundle.spec
        want = {t.name: t.shape for t in spec.tensors}
        have = {n: t.shape for n, t in self.inputs.items()}
        if want != have:
            raise ModelError(f"inputs {have} disagree with the InputSpec's {want}", self.bundle.name)
        if self.output.shape[-1] != len(spec.labels or ()):
            raise ModelError(f"{self.output.shape[-1]} outputs but {len(spec.labels or ())} labels",
                             self.bundle.name)
        for t in self.inputs.values():
            if t.dtype not in (np.float32, np.int8) or (t.dtype == np.int8 and t.scale <= 0):
                raise ModelError(f"input {t.name!r}: unsupported type {t.dtype}", self.bundle.name)

    # -- running -------------------------------------------------------------------------
    @property
    def input_dtype(self) -> np.dtype:
        return next(iter(self.inputs.values())).dtype

    @property
    def quantization(self) -> dict[str, tuple[float, int]] | None:
        """name -> (scale, zero_point) for int8 inputs, else None."""
        if self.input_dtype != np.int8:
            return None
        return {n: (t.scale, t.zero_point) for n, t in self.inputs.items()}

    def run(self, tensors: Mapping[str, np.ndarray]) -> np.ndarray:
        """Runs the model; returns float32 logits, shape (num_classes,)."""
        if self._runner is not None:
            raw = self._runner(**tensors)[self.output.name]
        else:
            raw = self._run_compiled(tensors, (self.output,))[self.output.name]
        return _dequantize(raw, self.output)

    def run_raw(self, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the model; returns every output of the signature as stored (int8 or float32),
        flattened: name -> (size,) array (a copy, safe to keep)."""
        if self._runner is not None:
            raw = self._runner(**tensors)
        else:
            raw = self._run_compiled(tensors, tuple(self.outputs.values()))
        return {n: np.array(v).reshape(-1) for n, v in raw.items()}

    def run_all(self, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the model; returns every output, dequantized: name -> float32 (size,)."""
        return {n: _dequantize(v, self.outputs[n]) for n, v in self.run_raw(tensors).items()}

    def _run_compiled(self, tensors: Mapping[str, np.ndarray],
                      wanted: Sequence[TensorInfo]) -> dict[str, np.ndarray]:
        c, key = self._compiled, self._sig_key
        ins = {n: c.create_input_buffer_by_name(key, n) for n in tensors}
        for n, buf in ins.items():
            buf.write(np.ascontiguousarray(tensors[n]))
        outs = {o.name: c.create_output_buffer_by_name(key, o.name) for o in self.outputs.values()}
        c.run_by_name(key, ins, outs)
        return {o.name: outs[o.name].read(int(np.prod(o.shape)), o.dtype) for o in wanted}

    def close(self) -> None:
        """Releases the interpreter (LiteRT's log lines of that kept off stderr); safe twice."""
        with runtime_logs():
            self._runner = None
            self._interp = None
            if self._compiled is not None:
                self._compiled.close()
                self._compiled = None


def _dequantize(raw: np.ndarray, info: TensorInfo) -> np.ndarray:
    """float32 (size,) values of an output tensor (int8: ``(q - zero_point) * scale``)."""
    out = np.asarray(raw).reshape(-1)
    if info.dtype != np.float32:
        return (out.astype(np.float32) - info.zero_point) * info.scale
    return out.astype(np.float32, copy=False)
