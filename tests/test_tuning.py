"""Re-coding for a model: what prepare reads (region_read, keep), tables tuned for a model
(masking, scoring, search, resume), the CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

import edge_dct
from edge_dct import tuning
from edge_dct.bundle import ModelBundle
from edge_dct.cli import main as cli
from edge_dct.prepare import Region, region_read
from edge_dct.tables import QuantTables, fitted, recoding_for_photo, standard_tables
from tests import oracle
from tests.conftest import clothing_photos, corpus_jpegs, synthetic_image
from tests.test_header import exif_app1, with_segment


def tables_for_photo(data: bytes, tables: QuantTables | None = None) -> QuantTables:
    return recoding_for_photo(data, tables=tables).tables


def same_input(spec, a: bytes, b: bytes) -> bool:
    x, y = edge_dct.prepare(a, spec), edge_dct.prepare(b, spec)
    return all(np.array_equal(x[n], y[n]) for n in x)


@pytest.fixture(scope="module")
def spec():
    return ModelBundle.load().spec


@pytest.fixture(scope="module")
def evaluator(corpus_available):
    ev = tuning.Evaluator(clothing_photos()[:6], workers=2)
    yield ev
    ev.close()


@pytest.mark.parametrize("size, expect", [((3000, 4000), 1), ((1200, 1600), 2), ((400, 533), 6),
                                          ((150, 200), 8)])
def test_frequencies_read_follow_the_scale(spec, size: tuple[int, int], expect: int) -> None:
    """A photo far larger than the grid needs only its DC terms; one smaller than it all 64."""
    data = oracle.encode(synthetic_image(*size), quality=90, sampling=(2, 2))
    k = region_read(data, spec).frequencies
    assert len(k) == 3 and k[0] == expect


@pytest.mark.parametrize("size", [(2400, 3200), (600, 800), (300, 400), (200, 260)])
def test_frequencies_not_read_are_dropped_without_changing_the_model_input(spec, size) -> None:
    """At every scale (k = 1 .. 8) the re-code for the model gives prepare bit-identical
    tensors from fewer bytes, and keeps no term beyond the k x k corner."""
    data = oracle.encode(synthetic_image(*size, seed=3), quality=95, sampling=(2, 2))
    t = standard_tables(80)
    plain, small = edge_dct.transcode(data, tables=tables_for_photo(data, tables=t)), \
        edge_dct.transcode_for_model(data, tables=t)
    assert same_input(spec, plain, small) and len(small) < len(plain)
    k = region_read(data, spec).frequencies
    for c, plane in enumerate(edge_dct.read_dct(small, dequantize=False).planes):
        blocks = plane.reshape(plane.shape[0], plane.shape[1], 8, 8)
        assert not blocks[:, :, k[c]:, :].any() and not blocks[:, :, :, k[c]:].any()


@pytest.mark.parametrize("size, orientation", [((600, 800), 1), ((800, 600), 1), ((600, 800), 6),
                                               ((600, 800), 3), ((375, 500), 8), ((1200, 1600), 5)])
def test_region_read_is_the_crop_in_the_files_own_blocks(spec, size, orientation: int) -> None:
    """The centre crop of a landscape photo leaves out columns; turned by EXIF, rows of the
    file; the range stays inside the image and covers the crop."""
    h, w = size
    data = oracle.encode(synthetic_image(h, w, seed=2), quality=90, sampling=(2, 2))
    if orientation != 1:
        data = with_segment(data, exif_app1(orientation))
    r = region_read(data, spec)
    info = edge_dct.read_header(data)
    wide = (w > h) != (orientation >= 5)  # wider than tall once oriented
    for c, (hb, wb) in enumerate([(-(-h // 8), -(-w // 8))] + [(-(-h // 16), -(-w // 16))] * 2):
        (r0, r1), (c0, c1) = r.rows[c], r.cols[c]
        assert 0 <= r0 < r1 <= hb and 0 <= c0 < c1 <= wb
        left_out = (c1 - c0) / wb if (w > h) else (r1 - r0) / hb
        assert left_out < 0.9, (c, r)  # the crop drops ~1/4 of the long side
        assert r.blocks_read(c) < hb * wb
    assert info.width == w and wide == (orientation < 5 and w > h or orientation >= 5 and h > w)
    plain, kept = edge_dct.transcode(data, tables=tables_for_photo(data)), edge_dct.transcode_for_model(data)
    assert same_input(spec, plain, kept) and len(kept) < len(plain)


@pytest.mark.filterwarnings("ignore::edge_dct.EdgeDctWarning")
def test_keep_leaves_the_model_input_unchanged_on_the_corpus(spec, corpus_available) -> None:
    """Keeping only the region prepare reads changes nothing prepare sees, on every corpus
    file prepare takes (orientations, subsamplings, progressive, restarts): bit-identical
    tensors from a smaller file that decodes everywhere; the fused and libjpeg paths write
    the same bytes."""
    from edge_dct import _jpeg
    from tests.test_codec import decodes_everywhere

    t, n, saved, progressive_inputs = standard_tables(80), 0, 0, 0
    for path in corpus_jpegs():
        data = path.read_bytes()
        try:
            region = region_read(data, spec)
            plain = edge_dct.transcode(data, tables=t, strict=False)
        except edge_dct.EdgeDctError:
            continue
        # progressive inputs: the built-in writer codes libjpeg's arrays, compared with libjpeg
        progressive_inputs += edge_dct.read_header(data).progressive
        for progressive in (False, True):
            kept = edge_dct.transcode(data, tables=t, keep=region, strict=False, progressive=progressive)
            assert same_input(spec, plain, kept), path
            libjpeg = _jpeg.transcode(data, "x", 0, t.array(), True, progressive, 0, True, False,
                                      0, 0, False, keep=(region.frequencies, region.rows, region.cols))[0]
            assert kept == libjpeg, path
        assert len(kept) <= len(edge_dct.transcode(data, tables=t, strict=False, progressive=True)) + 64
        info = edge_dct.read_header(data)
        decodes_everywhere(kept, (info.height, info.width))
        n, saved = n + 1, saved + (len(plain) > len(edge_dct.transcode(data, tables=t, keep=region, strict=False)))
    assert n >= 60 and saved >= n // 2 and progressive_inputs >= 3, (n, saved, progressive_inputs)


@pytest.mark.parametrize("progressive", [False, True])
def test_keep_zeroes_every_coefficient_it_does_not_keep(progressive: bool) -> None:
    """Outside the region's blocks everything is 0, inside them everything beyond the k x k
    corner; the rest is the requantized coefficients, exactly."""
    data = oracle.encode(synthetic_image(480, 960, seed=5), quality=95, sampling=(2, 2),
                         progressive=progressive)
    region = Region((2, 1, 1), ((5, 50), (3, 25), (3, 25)), ((20, 100), (10, 50), (10, 50)))
    t = standard_tables(60)
    full = edge_dct.read_dct(edge_dct.transcode(data, tables=t), dequantize=False).planes
    kept = edge_dct.read_dct(edge_dct.transcode(data, tables=t, keep=region), dequantize=False).planes
    for c, (a, b) in enumerate(zip(full, kept)):
        a, b = (x.reshape(x.shape[0], x.shape[1], 8, 8) for x in (a, b))  # [by, bx, v, u]
        k, (r0, r1), (c0, c1) = region.frequencies[c], region.rows[c], region.cols[c]
        inside = np.zeros(a.shape, bool)
        inside[r0:r1, c0:c1, :k, :k] = True
        assert np.array_equal(b[inside], a[inside]) and not b[~inside].any(), c
        assert a[~inside].any()


def test_progressive_for_model_reads_only_the_scans_it_needs(spec) -> None:
    """A camera-size progressive photo needs only its DC terms: the AC scans are not decoded,
    so garbage in them does not matter (the docs say so), and the result equals that of the
    intact file."""
    data = bytearray(oracle.encode(synthetic_image(2400, 3200, seed=6), quality=90, sampling=(2, 2),
                                   progressive=True))
    region = region_read(bytes(data), spec)
    assert region.frequencies == (1, 1, 1)
    intact = bytes(data)
    good = edge_dct.transcode_for_model(intact)
    sos = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
    ac = sos[1]  # libjpeg's script: the DC scan first, then Y AC 1-5
    for i in range(ac + 20, ac + 400):
        data[i] = 0x5A
    with pytest.raises(edge_dct.InvalidJpegError):
        edge_dct.transcode(bytes(data), quality=50)
    assert edge_dct.transcode_for_model(bytes(data)) == good
    # fill bytes before a marker between scans (after a DHT, before an SOS) do not stop the
    # AC scans from being skipped
    dht = [i for i in range(ac + 400, len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xC4]
    assert dht, "libjpeg's progressive files define tables between scans"
    end = dht[0] + 2 + (data[dht[0] + 2] << 8 | data[dht[0] + 3])
    filled = bytearray(intact)
    filled[end:end] = b"\xff\xff\xff"
    assert edge_dct.transcode(bytes(filled), quality=50)  # valid: libjpeg skips fill bytes
    data[end:end] = b"\xff\xff\xff"
    assert edge_dct.transcode_for_model(bytes(data)) == good
    assert same_input(spec, good, edge_dct.transcode(intact, tables=tables_for_photo(intact)))


def test_transcode_for_model_is_much_smaller_than_the_tables_alone(spec, corpus_available) -> None:
    """On phone photos (portrait, ~400x600) the crop drops a third of the rows: files at
    least 10% smaller on average than with the fitted tables alone, the same model input."""
    plain = kept = 0
    for path in clothing_photos()[:10]:
        data = path.read_bytes()
        a, b = edge_dct.transcode(data, tables=tables_for_photo(data)), edge_dct.transcode_for_model(data)
        assert same_input(spec, a, b)
        plain, kept = plain + len(a), kept + len(b)
    assert kept < 0.9 * plain, (kept, plain)


@pytest.mark.parametrize("keep, words", [
    ("all", "edge_dct.prepare.Region"),
    (Region((9, 1, 1), ((0, 1),) * 3, ((0, 1),) * 3), "frequencies"),
    (Region((1, 1), ((0, 1),) * 3, ((0, 1),) * 3), "one each per component"),
    (Region((1, 1, 1), ((2, 1),) * 3, ((0, 1),) * 3), "ranges"),
    (Region((1,) * 5, ((0, 1),) * 5, ((0, 1),) * 5), "at most 4"),
    (Region((1, 1, 1), ((0, 1, 2),) * 3, ((0, 1),) * 3), "ranges of ints"),
    (Region((1, 1, 1), (5, 6, 7), ((0, 1),) * 3), "ranges of ints"),
    (Region((1, 1, 1), ((0, 1.5),) * 3, ((0, 1),) * 3), "ranges of ints"),
    (Region((1,), ((0, 1),), ((0, 1),)), "1 components given, the file has 3"),
])
def test_bad_keep_names_the_argument(keep, words: str) -> None:
    data = oracle.encode(synthetic_image(32, 32), quality=90, sampling=(2, 2))
    with pytest.raises(edge_dct.InvalidArgumentError, match=words):
        edge_dct.transcode(data, keep=keep)


def test_fitted_tables_are_never_finer_than_the_photos_own(spec) -> None:
    """Re-coding for the model never spends bytes on steps finer than the file already has:
    tuned steps below the file's are raised to them, which keeps those coefficients exactly."""
    data = oracle.encode(synthetic_image(240, 320, seed=4), quality=60, sampling=(2, 2))
    own = edge_dct.file_tables(data)
    fine = standard_tables(95)  # finer than quality 60 everywhere
    fit = tables_for_photo(data, tables=fine)
    assert fit == fitted(fine, own)
    assert (fit.luma >= own.luma).all() and (fit.chroma >= own.chroma).all()
    out = edge_dct.transcode(data, tables=fit)
    a, b = edge_dct.read_dct(data, dequantize=False), edge_dct.read_dct(out, dequantize=False)
    assert all(np.array_equal(x, y) for x, y in zip(a.planes, b.planes))
    assert len(edge_dct.transcode(data, tables=fine)) > len(out)


def test_sorted_random_tables_grow_along_the_zigzag() -> None:
    rng = random.Random(5)
    for _ in range(20):
        t = tuning.sorted_random_tables(rng)
        for table in (t.luma, t.chroma):
            z = table.reshape(64)[tuning.ZIGZAG]
            assert (np.diff(z.astype(int)) >= 0).all() and 1 <= z.min() and z.max() <= 255
    a = tuning.sorted_random_tables(random.Random(1))
    assert a == tuning.sorted_random_tables(random.Random(1))


def test_scaled_moves_one_band() -> None:
    t = standard_tables(50)
    up = tuning.scaled(t, 0, (1, 3), 1.5)
    changed = np.flatnonzero(up.luma.reshape(64) != t.luma.reshape(64))
    assert set(changed) == set(tuning.ZIGZAG[1:3]) and up.chroma.tolist() == t.chroma.tolist()
    assert tuning.scaled(QuantTables(np.ones((8, 8), np.uint16), np.ones((8, 8), np.uint16)), 1, (0, 1), 0.5) \
        .chroma[0, 0] == 1  # clipped at 1


def test_pareto_front_and_interpolation() -> None:
    pts = [(10.0, 0.5), (20.0, 0.8), (15.0, 0.4), (30.0, 0.8), (40.0, 0.9)]
    assert tuning.pareto_front(pts) == [0, 1, 4]
    curve = [tuning.Score(b, a, acc, 10) for b, a, acc in [(10, 0.5, 0.6), (20, 0.7, 0.7), (40, 0.9, 0.8)]]
    assert tuning.interpolate_bytes(curve, 0.8) == pytest.approx(30.0)
    assert tuning.interpolate_bytes(curve, 0.95) == float("inf")
    assert tuning.interpolate_accuracy(curve, 30) == pytest.approx(0.75)
    assert tuning.interpolate_accuracy(curve, 5) == 0.6


def test_own_tables_score_as_the_originals(evaluator) -> None:
    """Re-coding with each file's own tables keeps every coefficient: agreement 1, KL 0."""
    own = edge_dct.file_tables(evaluator.paths[0])
    assert all(edge_dct.file_tables(p) == own for p in evaluator.paths)
    s = evaluator.score(own, for_model=False)
    assert s.agreement == 1.0 and s.kl == pytest.approx(0.0, abs=1e-9)
    coarse = evaluator.standard(10)
    assert coarse.bytes < s.bytes and coarse.kl > 0
    assert evaluator.original().agreement == 1.0


def test_search_resumes_and_refuses_another_search(evaluator, tmp_path) -> None:
    state = tmp_path / "state.jsonl"
    config = tuning.SearchConfig(candidates=3, rounds=1, seed=2)
    calls = []
    real = evaluator.score
    evaluator.score = lambda t, for_model=True: calls.append(1) or real(t, for_model)
    try:
        trials, best, ref = tuning.search(evaluator, config, state)
        first = len(calls)
        again, best2, _ = tuning.search(evaluator, config, state)
        assert len(calls) == first  # resumed: nothing re-scored
        assert [t.score for t in again] == [t.score for t in trials] and best2 == best
        with pytest.raises(edge_dct.InvalidArgumentError, match="different search"):
            tuning.search(evaluator, tuning.SearchConfig(candidates=3, rounds=1, seed=3), state)
    finally:
        evaluator.score = real
    assert trials[0].kind == "standard" and sum(t.kind == "random" for t in trials) == 3
    assert trials[best].score["bytes"] <= trials[0].score["bytes"]
    assert best == 0 or tuning.feasible(trials[best], ref)


def test_tune_tables_and_transcode_commands(tmp_path, capsys, corpus_available) -> None:
    photos = [str(p) for p in clothing_photos()[:8]]
    listing = tmp_path / "photos.txt"
    listing.write_text("\n".join(photos) + "\n")
    out = tmp_path / "mine.tables.json"
    assert cli(["tune-tables", f"@{listing}", "--out", str(out), "--candidates", "2", "--rounds", "0",
                "--no-progress", "--workers", "2"]) == 0
    record = json.loads(out.read_text())
    assert record["calibration"]["photos"] == 4 and record["validation"]["chosen"]["photos"] == 4
    assert [d["quality"] for d in record["validation"]["standard"]] == list(tuning.STANDARD_QUALITIES)
    for_model = record["validation"]["for_model"]  # the whole front of re-coding for the model
    assert [d["quality"] for d in for_model] == list(tuning.STANDARD_QUALITIES)
    assert all(f["bytes"] < s["bytes"] for f, s in zip(for_model, record["validation"]["standard"]))
    assert out.with_suffix(".png").stat().st_size > 10_000
    QuantTables.from_dict(record["tables"])
    assert "bytes" in capsys.readouterr().out

    dest = tmp_path / "out"
    assert cli(["transcode", *photos[:3], "--out", str(dest), "--tables", str(out), "--no-progress"]) == 0
    for p in photos[:3]:
        new = (dest / p.rsplit("/", 1)[1]).read_bytes()
        np.testing.assert_array_equal(edge_dct.read_header(new).quant_tables[0], record["tables"]["luma"])
    assert cli(["transcode", photos[0], "--out", str(dest), "--quality", "30", "--tables", str(out)]) == 2
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8junk")
    assert cli(["transcode", str(bad), "--out", str(dest), "--quality", "30"]) == 1
    assert not (dest / "bad.jpg").exists()  # nothing half-written
    assert "bad.jpg: error" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="cannot read the photo list"):
        cli(["transcode", f"@{tmp_path / 'missing.txt'}", "--out", str(dest), "--quality", "30"])


def test_transcode_for_model_errors(tmp_path) -> None:
    """The photo's limits apply to reading what the model reads too; a bundle without tuned
    tables says how to make them; a bad bundle is a ModelError naming it."""
    data = oracle.encode(synthetic_image(64, 96), quality=90, sampling=(2, 2))
    with pytest.raises(edge_dct.ImageTooLargeError):
        edge_dct.transcode_for_model(data, max_pixels=1000)
    assert edge_dct.transcode_for_model(data, max_pixels=0)
    bundle = tmp_path / "mine.tflite"
    bundle.write_bytes(ModelBundle.load().content)
    with pytest.raises(edge_dct.ModelError, match="tune-tables"):
        edge_dct.transcode_for_model(data, bundle)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model")
    with pytest.raises(edge_dct.ModelError, match="junk.tflite"):
        edge_dct.transcode_for_model(data, junk, tables=standard_tables(75))
    # the bundle's spec is read once per file version: a bundle replaced in place is read again
    assert edge_dct.transcode_for_model(data, bundle, tables=standard_tables(75))
    bundle.write_bytes(b"now broken")
    with pytest.raises(edge_dct.ModelError, match="mine.tflite"):
        edge_dct.transcode_for_model(data, bundle, tables=standard_tables(75))
