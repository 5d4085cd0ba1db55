"""J4D's gradient route (converters/train/j4d.py): soft requantization, rate proxy, twin, training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from .conftest import clothing_photos

torch = pytest.importorskip("torch")
pytest.importorskip("keras")  # converters.zoo.dct_frontend (the IDCT kernel, the colour matrix)

from PIL import Image  # noqa: E402

from converters.train import j4d  # noqa: E402
from edge_dct.spec import dct_spec  # noqa: E402


@pytest.fixture(scope="module")
def photos(corpus_available, tmp_path_factory) -> list[j4d.Photo]:
    cache = tmp_path_factory.mktemp("j4d_cache")
    return [j4d.load_photo(p, cache) for p in clothing_photos()[:2]]


def _float(photo: j4d.Photo) -> list[torch.Tensor]:
    return [p.float() for p in photo.planes]


def test_requantize_is_identity_for_the_files_own_tables(photos):
    for photo in photos:
        for plane, t in zip(_float(photo), j4d.COMPONENT_TABLE):
            assert torch.equal(j4d.requantize(plane, photo.tables[t]), plane)


def test_requantize_gradient_in_q_is_finite_and_nonzero(photos):
    photo = photos[0]
    planes = _float(photo)
    q = (photo.tables * 2.6).requires_grad_(True)
    soft = [j4d.requantize(p, q[t]) for p, t in zip(planes, j4d.COMPONENT_TABLE)]
    loss = (j4d.pixels(soft, photo.width, photo.height) - j4d.pixels(planes, photo.width, photo.height)).square().mean()
    loss.backward()
    assert torch.isfinite(q.grad).all()
    assert (q.grad[0] != 0).any() and (q.grad[1] != 0).any()
    # the forward value is the hard requantization
    hard = q.detach()[0] * torch.round(planes[0] / q.detach()[0])
    assert torch.equal(soft[0].detach(), hard)


def test_rate_proxy_decreases_as_q_grows(photos):
    photo = photos[0]
    bits = [float(j4d.rate_bits(photo.planes, photo.tables * s)) for s in (1, 2, 4, 8)]
    assert all(a > b for a, b in zip(bits, bits[1:]))
    q = photo.tables.clone().requires_grad_(True)
    j4d.rate_bits(photo.planes, q).backward()
    assert (q.grad <= 0).all()
    assert (q.grad[0, :10] < 0).all() and (q.grad[1, :3] < 0).all()  # 0 only where every c is 0


def test_rate_terms_per_band_and_their_weights(photos):
    photo = photos[0]
    terms = j4d.rate_terms(photo.planes, photo.tables)
    assert terms.shape == (2 * len(j4d.BANDS),)
    assert float(terms.sum()) == pytest.approx(float(j4d.rate_bits(photo.planes, photo.tables)), rel=1e-5)
    coarse = photo.tables.clone()
    coarse[0, 0] *= 4  # luma DC only: band 0 shrinks, nothing else moves
    moved = j4d.rate_terms(photo.planes, coarse)
    assert moved[0] < terms[0] and torch.equal(moved[1:], terms[1:])
    w = torch.arange(1.0, 11.0)
    assert float(j4d.rate_bits(photo.planes, photo.tables, w)) == pytest.approx(float(terms @ w), rel=1e-5)


def test_rate_weights_and_correlation_follow_the_transcoded_size(photos):
    base = photos[0].tables.double().numpy() * 2
    w = j4d.fit_rate_weights(photos[:1], base)
    assert w.shape == (2 * len(j4d.BANDS),) and (w >= 0).all() and np.isfinite(w).all()
    assert (w[:3] > 0.2).all()  # luma DC and low AC: the size moves with the proxy
    r = j4d.rate_correlation(photos[:1], [np.clip(base * s, 1, 255) for s in (0.5, 1, 2)])
    assert r["spearman"] == pytest.approx(1.0) and r["pearson"] > 0.9 and len(r["points"]) == 3


def test_pixels_match_the_libjpeg_decode(photos):
    photo = photos[0]
    rgb = j4d.pixels(_float(photo), photo.width, photo.height).numpy()
    assert rgb.shape == (3, photo.height, photo.width)
    with Image.open(photo.path) as im:
        im.draft("YCbCr", im.size)  # libjpeg's output before colour conversion
        y_ref = np.asarray(im, np.float32)[..., 0]
        rgb_ref = np.asarray(Image.open(photo.path).convert("RGB"), np.float32).transpose(2, 0, 1)
    y = np.clip(j4d._samples(photo.planes[0].float()).numpy()[:photo.height, :photo.width] + 128, 0, 255)
    assert np.abs(y - y_ref).max() <= 1.0  # float IDCT vs libjpeg's integer one
    diff = np.abs(rgb - rgb_ref)  # + nearest vs libjpeg's fancy chroma upsampling (at edges)
    assert diff.mean() < 1.5 and np.median(diff) < 1.0


def test_model_view_is_the_centre_crop_of_the_evaluation_geometry():
    rgb = torch.zeros(3, 300, 400)
    rgb[:, :, 200:] = 255.0  # right half white
    x = j4d.model_view(rgb, dct_spec((28, 28)))
    assert x.shape == (3, 224, 224)
    # 400x300 -> 341x256, crop from column 59: the edge (column 170.5) lands at 111.5
    assert float(x[0, 100, 110]) == pytest.approx(-127 / 128, abs=1e-3)
    assert float(x[0, 100, 113]) == pytest.approx(1.0, abs=1e-3)


def _tiny_twin() -> j4d.Twin:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 8, stride=8), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))
    for p in net.parameters():
        p.requires_grad_(False)
    return j4d.Twin(dct_spec((28, 28)), net)


def test_a_training_step_changes_q_and_resumes(photos, tmp_path):
    twin = _tiny_twin()
    reference = j4d.reference_logits(twin, photos)
    assert reference.shape == (2, 10)
    init = photos[0].tables.double().numpy() * 3
    cfg = j4d.TrainConfig(lam=0.1, epochs=1, batch=2)
    ckpt = tmp_path / "lambda.pt"
    out = j4d.train_tables(twin, photos, reference, init, cfg, ckpt)
    assert ckpt.is_file() and len(out["history"]) == 1
    assert all(math.isfinite(v) for v in out["history"][0].values())
    assert not np.allclose(out["tables"], init)
    assert ((out["tables"] >= 1) & (out["tables"] <= 255)).all()
    again = j4d.train_tables(twin, photos, reference, init, cfg, ckpt)  # finished: nothing to train
    np.testing.assert_allclose(again["tables"], out["tables"], rtol=1e-6)
    luma, chroma = j4d.integer_tables(out["tables"])
    assert np.array(luma).shape == (8, 8) and all(1 <= v <= 255 for row in chroma for v in row)


def test_spearman_ranks():
    assert j4d.spearman([1, 2, 3], [10, 30, 20]) == pytest.approx(0.5)
    assert j4d.spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)
