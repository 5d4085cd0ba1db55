"""Robustness of the JPEG decoder against corrupt, hostile and unsupported input.

Three parts:

* a mutation test: thousands of corrupted variants of the shared corpus,
  decoded in forked child processes so that a crash or a hang fails the test
  with the variant's recipe instead of killing pytest;
* typed-error tests: every way to fail raises the documented exception;
* a leak check: thousands of decodes in-process keep the RSS flat.

A failing variant reproduces with
``.venv/bin/python tests/test_robustness.py INDEX OUT.jpg`` (writes variant INDEX).
"""

from __future__ import annotations

import io
import multiprocessing
import os
import random
import subprocess
import sys
import textwrap
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np
import pytest

from edge_dct import read_dct, read_header
from edge_dct.errors import (
    EdgeDctError,
    EdgeDctWarning,
    ImageTooLargeError,
    InvalidJpegError,
    UnsupportedJpegError,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CONFORMANCE = CORPUS / "conformance"
MOZILLA = CONFORMANCE / "image-rs-reftest" / "mozilla"

MUTATION_SEED = 20240613
NUM_VARIANTS = 10000
MIN_VARIANTS = 5000
BATCH_SIZE = 200
BATCH_TIMEOUT_S = 120.0
MAX_WORKERS = 2

SOS = 0xDA
# Markers standing alone (no length field): TEM, RST0-7, SOI, EOI.
STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xDA)])
# Markers worth injecting: SOFn, DHT, DAC, DQT, DRI, DNL, SOS, APP0/1/14, COM, RSTn, EOI.
INJECTED_MARKERS = (0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC9, 0xCA, 0xCC, 0xDB, 0xDD, 0xDC,
                    0xDA, 0xE0, 0xE1, 0xEE, 0xFE, 0xD0, 0xD7, 0xD9)

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no shared corpus at {CORPUS}")


# ---- corpus and marker helpers -------------------------------------------------


def corpus_files() -> list[Path]:
    """Every JPEG of the shared corpus, sorted (the mutation test's seeds)."""
    return sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))


def skip_entropy_data(data: bytes, pos: int) -> int:
    """Offset of the first marker (other than RSTn) at or after ``pos`` in scan data."""
    while pos + 1 < len(data):
        if data[pos] == 0xFF and data[pos + 1] not in (0x00, 0xFF, *range(0xD0, 0xD8)):
            return pos
        pos += 1
    return len(data)


def segments(data: bytes, whole: bool = False) -> list[tuple[int, int]]:
    """Marker segments with a length field, in file order.

    Args:
        data: A JPEG datastream.
        whole: Walk the whole file (skipping entropy-coded data) instead of
            stopping at the first SOS.

    Returns:
        ``(start, end)`` of each segment, ``start`` at its 0xFF and ``end``
        one past its last byte.
    """
    found = []
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF or marker in STANDALONE_MARKERS:
            pos += 1 if marker == 0xFF else 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        found.append((pos, min(end, len(data))))
        if marker == SOS and not whole:
            break
        pos = skip_entropy_data(data, end) if marker == SOS else end
    return found


def scan_data_start(data: bytes) -> int:
    """Offset of the first byte of entropy-coded data (after the first SOS header)."""
    sos = [end for start, end in segments(data) if data[start + 1] == SOS]
    assert sos, "no SOS marker"
    return sos[0]


def frame_header(data: bytes) -> int | None:
    """Offset of the first frame header (SOFn) marker, None if there is none."""
    for start, end in segments(data):
        marker = data[start + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and end - start >= 9:
            return start
    return None


def with_frame_size(data: bytes, width: int, height: int) -> bytes:
    """Returns ``data`` with the frame header (SOFn) declaring ``width x height``."""
    start = frame_header(data)
    assert start is not None, "no SOF marker"
    out = bytearray(data)
    out[start + 5:start + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(out)


# ---- mutations -------------------------------------------------------------------


def _bit_flips(rng: random.Random, data: bytearray) -> str:
    header_end = min(len(data), (segments(bytes(data)) or [(0, len(data))])[-1][1])
    flips = []
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(header_end) if rng.random() < 0.5 else rng.randrange(len(data))
        bit = rng.randrange(8)
        data[pos] ^= 1 << bit
        flips.append(f"{pos}:{bit}")
    return "flip bits " + ",".join(flips)


def _byte_overwrites(rng: random.Random, data: bytearray) -> str:
    writes = []
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(data))
        if rng.random() < 0.25 and pos + 1 < len(data):
            data[pos:pos + 2] = bytes([0xFF, rng.choice(INJECTED_MARKERS)])
        else:
            data[pos] = rng.choice((0x00, 0xFF, rng.randrange(256)))
        writes.append(f"{pos}={data[pos]:02x}")
    return "overwrite " + ",".join(writes)


def _truncation(rng: random.Random, data: bytearray) -> str:
    cut = rng.randrange(1, len(data))
    del data[cut:]
    return f"truncate at {cut}"


def _duplicate_segment(rng: random.Random, data: bytearray) -> str:
    segs = segments(bytes(data))
    if not segs:
        return _bit_flips(rng, data)
    start, end = rng.choice(segs)
    at = rng.choice([s for s, _ in segs] + [2])
    data[at:at] = data[start:end]
    return f"copy segment {start}:{end} to {at}"


def _insert_segment(rng: random.Random, data: bytearray) -> str:
    marker = rng.choice(INJECTED_MARKERS)
    payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 70)))
    length = len(payload) + 2 if rng.random() < 0.7 else rng.randrange(0x10000)
    segs = segments(bytes(data))
    at = rng.choice([s for s, _ in segs] + [2, rng.randrange(len(data))])
    data[at:at] = bytes([0xFF, marker]) + length.to_bytes(2, "big") + payload
    return f"insert ff{marker:02x} len={length} payload={len(payload)} at {at}"


def _bad_length(rng: random.Random, data: bytearray) -> str:
    segs = segments(bytes(data))
    if not segs:
        return _truncation(rng, data)
    start, _ = rng.choice(segs)
    length = rng.choice((0, 0, 0, 1, 2, 0xFFFF))
    data[start + 2:start + 4] = length.to_bytes(2, "big")
    return f"length of ff{data[start + 1]:02x} at {start} := {length}"


def _frame_size(rng: random.Random, data: bytearray) -> str:
    if frame_header(bytes(data)) is None:
        return _truncation(rng, data)
    if rng.random() < 0.5:  # small enough to decode quickly, often odd
        width, height = rng.randrange(0, 1025), rng.randrange(0, 1025)
    else:  # far beyond the default max_pixels
        width, height = rng.randrange(20000, 0x10000), rng.randrange(20000, 0x10000)
    data[:] = with_frame_size(bytes(data), width, height)
    return f"frame size := {width}x{height}"


MUTATIONS = {
    "bitflip": _bit_flips,
    "overwrite": _byte_overwrites,
    "truncate": _truncation,
    "dup-segment": _duplicate_segment,
    "insert-segment": _insert_segment,
    "bad-length": _bad_length,
    "frame-size": _frame_size,
}


def make_variant(index: int, files: list[Path], blobs: list[bytes]) -> tuple[bytes, str]:
    """Builds mutation variant ``index`` deterministically.

    Args:
        index: Variant number; with MUTATION_SEED it fixes every random choice.
        files: The corpus files (for the recipe's names).
        blobs: Their contents, same order.

    Returns:
        ``(variant bytes, recipe)``; the recipe says how the bytes were made.
    """
    rng = random.Random(f"{MUTATION_SEED}:{index}")
    first = rng.randrange(len(files))
    name = files[first].relative_to(CORPUS)
    kind = rng.choice([*MUTATIONS, "splice"])
    if kind == "splice":
        second = rng.randrange(len(files))
        a, b = blobs[first], blobs[second]
        i, j = rng.randrange(len(a)), rng.randrange(len(b))
        return a[:i] + b[j:], (f"variant {index}: splice {name}[:{i}] + "
                                f"{files[second].relative_to(CORPUS)}[{j}:]")
    data = bytearray(blobs[first])
    how = MUTATIONS[kind](rng, data)
    return bytes(data), f"variant {index}: {kind} {name}: {how}"


# ---- child-process decoding ------------------------------------------------------


def classify(data: bytes, strict: bool, dequantize: bool) -> str:
    """Decodes ``data`` and names the outcome.

    Returns:
        ``"ok"``, ``"invalid"``, ``"unsupported"``, ``"too large"``, ``"other
        EdgeDctError"``, or ``"BAD ..."`` for an outcome the API forbids (another
        exception type, planes that do not match the header).
    """
    try:
        image = read_dct(data, strict=strict, dequantize=dequantize)
    except InvalidJpegError:
        return "invalid"
    except UnsupportedJpegError:
        return "unsupported"
    except ImageTooLargeError:
        return "too large"
    except EdgeDctError:
        return "other EdgeDctError"
    except Exception as e:  # noqa: BLE001 - any other type is the failure we look for
        return f"BAD {type(e).__name__}: {e}"
    shapes = [p.shape for p in image.planes]
    expected = [(h, w, 64) for h, w in image.info.blocks]
    if shapes != expected or any(p.dtype != np.int16 for p in image.planes):
        return f"BAD planes {shapes} for blocks {expected}"
    return "ok"


def decode_batch(indices: range, files: list[Path], blobs: list[bytes], conn: Connection) -> None:
    """Child process body: decodes each variant strictly and leniently.

    Sends ``(index, strict outcome, lenient outcome)`` after each variant, so
    the parent knows which variant was running if the child dies.
    """
    warnings.simplefilter("ignore", EdgeDctWarning)
    for index in indices:
        data, _ = make_variant(index, files, blobs)
        dequantize = index % 2 == 0
        conn.send((index, classify(data, True, dequantize), classify(data, False, not dequantize)))
    conn.close()


@dataclass
class Batch:
    """A child process decoding a range of variants."""

    indices: range
    process: multiprocessing.process.BaseProcess
    conn: Connection
    deadline: float
    outcomes: dict[int, tuple[str, str]] = field(default_factory=dict)

    def first_missing(self) -> int:
        """The variant the child was working on when it stopped."""
        return next(i for i in self.indices if i not in self.outcomes)


def start_batch(ctx: multiprocessing.context.BaseContext, indices: range, files: list[Path],
                blobs: list[bytes]) -> Batch:
    """Forks a child decoding ``indices``."""
    recv, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=decode_batch, args=(indices, files, blobs, send), daemon=True)
    process.start()
    send.close()
    return Batch(indices, process, recv, time.monotonic() + BATCH_TIMEOUT_S)


def drain(batch: Batch) -> bool:
    """Reads what the child sent; returns True once its pipe is closed."""
    try:
        while batch.conn.poll():
            index, strict, lenient = batch.conn.recv()
            batch.outcomes[index] = (strict, lenient)
    except EOFError:
        return True
    return False


def batch_failure(batch: Batch, hung: bool, files: list[Path], blobs: list[bytes],
                  out_dir: Path) -> str | None:
    """Describes a child that crashed, hung or stopped early, saving the culprit variant.

    Returns:
        The description with the recipe and a reproducer, or None when the
        child decoded its whole batch and exited cleanly.
    """
    code = batch.process.exitcode
    if not hung and code == 0 and len(batch.outcomes) == len(batch.indices):
        return None
    if hung:
        how = f"hung for {BATCH_TIMEOUT_S:.0f} s"
    else:
        how = f"died with signal {-code}" if code < 0 else f"exited with status {code}"
    index = batch.first_missing()
    data, recipe = make_variant(index, files, blobs)
    path = out_dir / f"variant-{index}.jpg"
    path.write_bytes(data)
    dequantize = index % 2 == 0
    return (f"worker {how} on {recipe}\n  decoded with strict=True, dequantize={dequantize}, "
            f"then strict=False, dequantize={not dequantize}\n  saved to {path}; "
            f"rebuild it with: .venv/bin/python tests/test_robustness.py {index} OUT.jpg")


def finish_batch(batch: Batch, files: list[Path], blobs: list[bytes], out_dir: Path) -> str | None:
    """Reaps a child whose pipe closed or whose deadline passed; returns its failure."""
    hung = batch.process.is_alive() and time.monotonic() > batch.deadline
    if hung:
        batch.process.kill()
    batch.process.join()
    batch.conn.close()
    return batch_failure(batch, hung, files, blobs, out_dir)


def remainder(batch: Batch) -> range:
    """The variants after the one a failed child stopped on (empty if it finished)."""
    if len(batch.outcomes) == len(batch.indices):
        return range(0)
    return range(batch.first_missing() + 1, batch.indices.stop)


def run_variants(files: list[Path], blobs: list[bytes], out_dir: Path) -> tuple[dict, list[str]]:
    """Decodes every variant in forked children, at most MAX_WORKERS at a time.

    A child that crashes or hangs is recorded and replaced by one that resumes
    after the culprit, so every failing variant of a run is reported.

    Returns:
        ``(outcomes by variant index, failure descriptions)``.
    """
    ctx = multiprocessing.get_context("fork")
    pending = [range(i, min(i + BATCH_SIZE, NUM_VARIANTS))
               for i in range(0, NUM_VARIANTS, BATCH_SIZE)]
    running: list[Batch] = []
    outcomes: dict[int, tuple[str, str]] = {}
    failures: list[str] = []
    while pending or running:
        while pending and len(running) < MAX_WORKERS:
            running.append(start_batch(ctx, pending.pop(0), files, blobs))
        wait([b.conn for b in running], timeout=1.0)
        for batch in list(running):
            closed = drain(batch)
            if closed or time.monotonic() > batch.deadline:
                failure = finish_batch(batch, files, blobs, out_dir)
                if failure:
                    failures.append(failure)
                    if remainder(batch):
                        pending.insert(0, remainder(batch))
                outcomes.update(batch.outcomes)
                running.remove(batch)
    return outcomes, failures


def summarize(outcomes: dict[int, tuple[str, str]]) -> str:
    """One line per mode: how many variants ended in each outcome."""
    lines = []
    for mode, name in ((0, "strict"), (1, "lenient")):
        counts = Counter("BAD" if pair[mode].startswith("BAD") else pair[mode]
                         for pair in outcomes.values())
        lines.append(f"{name:8s} " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return "\n".join(lines)


def test_mutated_corpus_never_crashes(tmp_path: Path) -> None:
    """Corrupt variants of the corpus decode or raise an EdgeDctError, in both modes."""
    files = corpus_files()
    blobs = [f.read_bytes() for f in files]
    started = time.monotonic()
    outcomes, failures = run_variants(files, blobs, tmp_path)
    elapsed = time.monotonic() - started
    print(f"\nmutation test: {len(outcomes)} variants of {len(files)} files "
          f"in {elapsed:.1f} s\n{summarize(outcomes)}")
    bad = [f"{make_variant(i, files, blobs)[1]}: {pair}"
           for i, pair in sorted(outcomes.items()) if any(o.startswith("BAD") for o in pair)]
    assert not failures, "\n".join(failures)
    assert not bad, "\n".join(bad[:20])
    assert len(outcomes) >= MIN_VARIANTS
    lenient_ok = sum(pair[1] == "ok" for pair in outcomes.values())
    assert lenient_ok > len(outcomes) // 4, "suspiciously few variants decode leniently"


# ---- typed errors ------------------------------------------------------------------


SMALL_BASELINE = CONFORMANCE / "libjpeg-turbo" / "testorig.jpg"
SMALL_PROGRESSIVE = MOZILLA / "jpg-progressive.jpg"
TWELVE_BIT = [CONFORMANCE / "libjpeg-turbo" / "monkey12.jpg",
              CONFORMANCE / "t83" / "p4" / "E1.JPG", CONFORMANCE / "t83" / "p4" / "E2.JPG"]
LOSSLESS = sorted((CONFORMANCE / "image-rs-reftest" / "lossless").rglob("*.jpg")) + [
    CONFORMANCE / "t83" / "p14" / "O1.JPG", CONFORMANCE / "t83" / "p14" / "O2.JPG"]
B2_255_COMPONENTS = CONFORMANCE / "t83" / "p1" / "B2.JPG"


def test_empty_input() -> None:
    """Zero bytes: InvalidJpegError naming the source."""
    with pytest.raises(InvalidJpegError, match="<bytes>"):
        read_dct(b"")
    with pytest.raises(InvalidJpegError):
        read_header(b"")


def test_png_bytes_are_not_a_jpeg() -> None:
    """A PNG signature is refused as invalid, at offset 0-2."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    with pytest.raises(InvalidJpegError, match="<bytes>") as info:
        read_dct(png)
    assert info.value.offset is not None and info.value.offset <= 2


@pytest.mark.parametrize("path", [SMALL_BASELINE, SMALL_PROGRESSIVE], ids=lambda p: p.name)
def test_truncated_strict_raises_with_offset(path: Path) -> None:
    """Every 7th truncation raises InvalidJpegError naming the source and an offset."""
    data = path.read_bytes()
    for cut in range(1, len(data), 7):
        with pytest.raises(InvalidJpegError, match="<bytes>") as info:
            read_dct(data[:cut])
        assert info.value.offset is not None and 0 <= info.value.offset <= cut, cut


def test_truncated_file_error_names_the_path(tmp_path: Path) -> None:
    """Reading a truncated file by path puts the path in the message."""
    path = tmp_path / "cut.jpg"
    path.write_bytes(SMALL_BASELINE.read_bytes()[:2000])
    with pytest.raises(InvalidJpegError, match=str(path)) as info:
        read_dct(path)
    assert info.value.source == str(path) and info.value.offset is not None


@pytest.mark.parametrize("path", [SMALL_BASELINE, SMALL_PROGRESSIVE], ids=lambda p: p.name)
def test_truncated_lenient_returns_planes_and_warns(path: Path) -> None:
    """Cut inside scan data, strict=False returns full planes and warns.

    A cut inside a later marker segment (a progressive file's DHT or SOS
    header) leaves libjpeg nothing to parse: InvalidJpegError is allowed there.
    """
    data = path.read_bytes()
    header = read_header(data)
    first_scan = scan_data_start(data)
    inside_marker = {cut for start, end in segments(data, whole=True) if start >= first_scan
                     for cut in range(start + 1, end)}
    returned = 0
    for cut in range(first_scan, len(data), 7):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                image = read_dct(data[:cut], strict=False)
            except InvalidJpegError:
                assert cut in inside_marker, f"lenient decode failed for a cut at {cut}"
                continue
        assert image.warnings, cut
        assert any(issubclass(w.category, EdgeDctWarning) and "<bytes>" in str(w.message)
                   for w in caught), cut
        assert [p.shape[:2] for p in image.planes] == list(header.blocks)
        returned += 1
    assert returned > (len(data) - first_scan) // 14


@pytest.mark.parametrize("path", [SMALL_BASELINE, SMALL_PROGRESSIVE], ids=lambda p: p.name)
def test_truncated_header_raises_even_when_lenient(path: Path) -> None:
    """Without a complete header there is nothing to return: InvalidJpegError."""
    data = path.read_bytes()
    for cut in range(1, scan_data_start(data) - 2, 7):
        with pytest.raises(InvalidJpegError):
            read_dct(data[:cut], strict=False)


MISSING_SCANS_SCRIPT = textwrap.dedent("""
    import sys, warnings
    from edge_dct import read_dct
    warnings.simplefilter("ignore")
    strict = sys.argv[1] == "strict"
    image = read_dct(sys.stdin.buffer.read(), strict=strict, dequantize=False)
    print(len(image.warnings), *(int(p.any()) for p in image.planes))
""")
MULTI_SCAN_FILES = [CONFORMANCE / "t83" / "p2" / "C2.JPG",
                    CONFORMANCE / "image-rs-reftest" / "progressive3.jpg"]


def decode_in_child(data: bytes, mode: str) -> list[int]:
    """Runs MISSING_SCANS_SCRIPT on ``data``; returns its numbers, failing on a crash."""
    run = subprocess.run([sys.executable, "-c", MISSING_SCANS_SCRIPT, mode], input=data,
                         capture_output=True, timeout=60)
    how = f"killed by signal {-run.returncode}" if run.returncode < 0 else "failed"
    assert run.returncode == 0, f"decoding child {how}: {run.stderr.decode()[-2000:]}"
    return [int(n) for n in run.stdout.split()]


@pytest.mark.parametrize("path", MULTI_SCAN_FILES, ids=lambda p: p.name)
def test_lenient_multiscan_cut_before_a_component_scan(path: Path) -> None:
    """Cut inside the first scan of a multi-scan file, later components have no data.

    Lenient decoding returns them as zero planes (as libjpeg's
    jpeg_read_coefficients does) with a warning.  Runs in a child process
    because this used to crash the interpreter (NULL quantization table).
    """
    data = path.read_bytes()
    scans = [end for start, end in segments(data, whole=True) if data[start + 1] == SOS]
    num_warnings, first_nonzero, *later_nonzero = decode_in_child(
        data[:(scans[0] + scans[1]) // 2], "lenient")
    assert num_warnings >= 1 and first_nonzero == 1
    assert later_nonzero == [0] * len(later_nonzero)


@pytest.mark.parametrize("path", MULTI_SCAN_FILES, ids=lambda p: p.name)
def test_strict_multiscan_with_only_the_first_scan(path: Path) -> None:
    """A well-formed file whose later scans were dropped (EOI kept) decodes strictly.

    Components that no scan covers come back as zero planes.
    """
    data = path.read_bytes()
    second_sos = [start for start, _ in segments(data, whole=True) if data[start + 1] == SOS][1]
    _, first_nonzero, *later_nonzero = decode_in_child(data[:second_sos] + b"\xff\xd9", "strict")
    assert first_nonzero == 1
    assert later_nonzero == [0] * len(later_nonzero)


@pytest.mark.parametrize("path", TWELVE_BIT + LOSSLESS, ids=lambda p: p.name)
def test_out_of_scope_precision_and_process(path: Path) -> None:
    """12-bit and lossless files are unsupported, in both modes and for headers."""
    for strict in (True, False):
        with pytest.raises(UnsupportedJpegError, match=path.name):
            read_dct(path, strict=strict)
    with pytest.raises(UnsupportedJpegError):
        read_header(path)


def test_255_component_stream_is_unsupported() -> None:
    """T.83 B2 (255 components, 255 scans) is rejected cleanly, in both modes."""
    for strict in (True, False):
        with pytest.raises(UnsupportedJpegError, match="255"):
            read_dct(B2_255_COMPONENTS, strict=strict)
    with pytest.raises(UnsupportedJpegError):
        read_header(B2_255_COMPONENTS)


def test_max_pixels_exceeded() -> None:
    """A real file over a small limit raises ImageTooLargeError naming max_pixels."""
    with pytest.raises(ImageTooLargeError, match="max_pixels"):
        read_dct(SMALL_BASELINE, max_pixels=1000)
    with pytest.raises(ImageTooLargeError):
        read_header(SMALL_BASELINE, max_pixels=1000)


def with_oversubscribed_ac_table(data: bytes) -> bytes:
    """The file with four codes of its first AC Huffman table (a DHT segment of its own)
    moved to length 1: four 1-bit codes, not a prefix code.  The segment keeps its size, so
    the header parses."""
    at = 2
    while data[at + 1] != 0xC4 or data[at + 4] >> 4 != 1:  # DHT segment, AC class
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    counts = bytearray(data[at + 5:at + 21])
    longest = max(i for i, c in enumerate(counts) if c >= 4)
    counts[longest] -= 4
    counts[0] += 4
    return data[:at + 5] + bytes(counts) + data[at + 21:]


def test_oversubscribed_huffman_table_is_refused() -> None:
    """Found by the fuzzer: edge_dct's built-in Huffman decoder builds its tables before
    libjpeg checks them, and once wrote past its lookup table for such a code set (clang's
    UBSan flags it).  Both decoders now refuse it with libjpeg's error."""
    bad = with_oversubscribed_ac_table(SMALL_BASELINE.read_bytes())
    assert read_header(bad).width > 0
    for strict in (True, False):
        with pytest.raises(InvalidJpegError, match="Bogus Huffman table"):
            read_dct(bad, strict=strict)


PEAK_MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, tracemalloc
    from edge_dct import read_dct
    from edge_dct.errors import ImageTooLargeError
    data = sys.stdin.buffer.read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        read_dct(data, strict=False)
    except ImageTooLargeError as e:
        print("raised", e, file=sys.stderr)
    traced_peak = tracemalloc.get_traced_memory()[1]
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, traced_peak // 1024)
""")


def test_bomb_header_refused_before_allocation() -> None:
    """A 60000x60000 header raises ImageTooLargeError with < 50 MB of peak memory growth.

    Runs in a fresh interpreter, whose peak RSS is not inflated by other tests.
    Python-side allocations are also traced, since untouched pages of a huge
    numpy array would not show in the RSS.
    """
    bomb = with_frame_size(SMALL_BASELINE.read_bytes(), 60000, 60000)
    run = subprocess.run([sys.executable, "-c", PEAK_MEMORY_SCRIPT], input=bomb,
                         capture_output=True, timeout=60, check=True)
    assert b"raised" in run.stderr and b"max_pixels" in run.stderr, run.stderr
    rss_kb, traced_kb = map(int, run.stdout.split())
    print(f"\n60000x60000 header refused; peak RSS +{rss_kb} kB, traced peak {traced_kb} kB")
    assert rss_kb < 50 * 1024
    assert traced_kb < 50 * 1024


def test_max_scans_exceeded() -> None:
    """A progressive file with more scans than max_scans is refused."""
    with pytest.raises(InvalidJpegError, match="max_scans"):
        read_dct(SMALL_PROGRESSIVE, max_scans=2)
    assert read_dct(SMALL_PROGRESSIVE, max_scans=0).planes


def test_missing_path_names_the_path(tmp_path: Path) -> None:
    """A nonexistent path raises EdgeDctError with the path in the message."""
    missing = tmp_path / "no-such-file.jpg"
    with pytest.raises(EdgeDctError, match="no-such-file.jpg") as info:
        read_dct(missing)
    assert info.value.source == str(missing)


@pytest.mark.parametrize("src", [123, 4.5, None, ["a.jpg"], io.StringIO("text")],
                         ids=["int", "float", "None", "list", "text-stream"])
def test_wrong_source_type(src: object) -> None:
    """Sources that are neither paths, bytes nor binary streams raise TypeError."""
    with pytest.raises(TypeError):
        read_dct(src)


# ---- leaks ---------------------------------------------------------------------------


def current_rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def leak_inputs() -> list[bytes]:
    """Valid small files plus corrupt variants exercising every failure path."""
    photo = min((CORPUS / "photos").rglob("*.jpg"))
    valid = [SMALL_BASELINE.read_bytes(), SMALL_PROGRESSIVE.read_bytes(), photo.read_bytes(),
             (MOZILLA / "jpg-cmyk-1.jpg").read_bytes(), (MOZILLA / "jpg-gray.jpg").read_bytes()]
    base = valid[0]
    corrupt = [
        base[:len(base) // 2],                  # truncated scan data
        base[:300],                             # truncated header
        base[:2000] + bytes(range(256)) * 4,    # garbage scan data
        with_frame_size(base, 60000, 60000),    # bomb header
        b"\x89PNG\r\n\x1a\n" + bytes(32),      # not a JPEG
        TWELVE_BIT[0].read_bytes()[:4096],      # unsupported
        valid[1][:len(valid[1]) * 2 // 3],      # truncated progressive
    ]
    return valid + corrupt


def decode_all_modes(data: bytes) -> None:
    """Decodes ``data`` strictly and leniently, ignoring the expected errors."""
    for strict in (True, False):
        try:
            read_dct(data, strict=strict, dequantize=strict)
        except EdgeDctError:
            pass


def test_no_leak_over_thousands_of_decodes() -> None:
    """3,000+ decodes of valid and corrupt input keep RSS within 20 MB after warm-up."""
    inputs = leak_inputs()
    rounds = 3000 // (2 * len(inputs)) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeDctWarning)
        for _ in range(20):
            for data in inputs:
                decode_all_modes(data)
        before = current_rss()
        for _ in range(rounds):
            for data in inputs:
                decode_all_modes(data)
        growth = current_rss() - before
    print(f"\nleak check: {rounds * len(inputs) * 2} decodes, RSS grew {growth / 2**20:.1f} MB")
    assert growth < 20 * 2**20


def main(argv: list[str]) -> int:
    """Writes mutation variant ``argv[1]`` to ``argv[2]`` and prints its recipe."""
    if len(argv) != 3:
        print(f"usage: {argv[0]} VARIANT_INDEX OUT.jpg", file=sys.stderr)
        return 2
    files = corpus_files()
    data, recipe = make_variant(int(argv[1]), files, [f.read_bytes() for f in files])
    Path(argv[2]).write_bytes(data)
    print(recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
