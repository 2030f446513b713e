"""Spectral features are exact on known patterns; a tiny detector learns a planted spectral peak; save/load."""

from __future__ import annotations

import math

import pytest
import torch

from diffeval.detectors.model import Detector, DetectorConfig, load_detector, save_detector
from diffeval.detectors.spectrum import (
    block_dct,
    dct_matrix,
    local_log_spectrum,
    log_spectrum,
    radial_profile,
    ring_index,
    spectral_features,
)


def _cosine(h: int, w: int, u: int, v: int, amp: float = 1.0) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return amp * torch.cos(2 * math.pi * (u * x / w + v * y / h))


def test_log_spectrum_puts_a_cosine_at_its_two_exact_peaks():
    h = w = 28
    img = _cosine(h, w, 5, 3, amp=0.5)[None, None]
    spec = log_spectrum(img, eps=1e-12)
    mag = spec.double().exp()[0, 0]
    expected = 0.5 * h * w / 2  # |FFT| of amp cos at each of its two frequencies (unnormalised FFT)
    assert mag[h // 2 + 3, w // 2 + 5] == pytest.approx(expected, rel=1e-6)
    assert mag[h // 2 - 3, w // 2 - 5] == pytest.approx(expected, rel=1e-6)
    mask = torch.ones_like(mag, dtype=torch.bool)
    mask[h // 2 + 3, w // 2 + 5] = mask[h // 2 - 3, w // 2 - 5] = False
    assert mag[mask].max() < 1e-6 * expected  # nothing else
    const = torch.full((1, 1, h, w), 0.25, dtype=torch.float64)
    assert log_spectrum(const)[0, 0, h // 2, w // 2].item() == pytest.approx(math.log(0.25 * h * w), rel=1e-6)


def test_radial_profile_is_the_ring_mean_and_peaks_at_the_artefact_radius():
    rings, n = ring_index(28, 28)
    assert n == 15 and rings[14, 14] == 0 and rings[14, 14 + 7] == 7 and rings[0, 0] == -1
    spec = torch.randn(2, 3, 28, 28)
    prof = radial_profile(spec)
    for r in (0, 4, 14):
        assert prof[1, 2, r].item() == pytest.approx(spec[1, 2][rings == r].mean().item(), rel=1e-5, abs=1e-6)
    # a periodic artefact with period 4 px along x (frequency 7 of 28) lifts exactly ring 7
    base = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.1
    art = base + _cosine(28, 28, 7, 0, amp=0.3)[None, None]
    diff = radial_profile(log_spectrum(art)) - radial_profile(log_spectrum(base))
    assert int(diff[0, 0].argmax()) == 7
    spec_f, prof_f = spectral_features(torch.rand(4, 1, 28, 28))
    assert spec_f.shape == (4, 1, 28, 28) and prof_f.shape == (4, 1, 15)


def test_block_dct_is_orthonormal_and_exact_on_a_tiled_basis_pattern():
    d = dct_matrix(4)
    assert torch.allclose(d @ d.T, torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert d[0, 0].item() == pytest.approx(0.5) and d[1, 0].item() == pytest.approx(
        math.sqrt(0.5) * math.cos(math.pi / 8)
    )
    # every 4x4 block holds 0.3 * (basis (1, 2)) plus its own flat level: exactly two coefficients per block
    basis = torch.outer(d[1], d[2])
    levels = torch.rand(2, 3, 7, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    img = 0.3 * basis.repeat(7, 7)[None, None].expand(2, 3, 28, 28) + levels.repeat_interleave(4, 2).repeat_interleave(
        4, 3
    )
    coef = block_dct(img)
    assert coef.shape == (2, 3 * 16, 7, 7)
    c = coef.reshape(2, 3, 16, 7, 7)
    assert torch.allclose(c[:, :, 1 * 4 + 2], torch.full((2, 3, 7, 7), 0.3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(c[:, :, 0], 4 * levels, atol=1e-12)  # DC of an orthonormal 4x4 DCT = 4 x block mean
    others = [k for k in range(16) if k not in (0, 6)]
    assert c[:, :, others].abs().max() < 1e-12
    # Parseval per block, on random images
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    blocks = x.reshape(3, 1, 7, 4, 7, 4).pow(2).sum((3, 5))
    assert torch.allclose(block_dct(x).pow(2).sum(1, keepdim=True), blocks, atol=1e-12)
    with pytest.raises(ValueError, match="multiple"):
        block_dct(torch.zeros(1, 1, 30, 30))


def test_local_log_spectrum_tells_an_exactly_flat_background_from_one_level_noise():
    """A black block gives log(eps) in all 16 coefficients; +-1 level of noise lifts every AC coefficient."""
    black = torch.zeros(1, 1, 28, 28)
    noisy = (torch.randint(0, 2, (1, 1, 28, 28), generator=torch.Generator().manual_seed(0)) / 255.0)
    lb, ln = local_log_spectrum(black), local_log_spectrum(noisy)
    assert lb.shape == (1, 16, 7, 7)
    assert torch.allclose(lb, torch.full_like(lb, math.log(1e-3)))
    assert (ln.mean((2, 3)) > math.log(1e-3) + 0.5).all()
    assert (ln[:, 1:] > math.log(1e-3)).float().mean() > 0.9  # nearly every AC coefficient of every block


def _planted(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random 'real' images; 'generated' ones carry a faint checkerboard-like periodic peak."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 1, 7, 7, generator=g)
    x = torch.nn.functional.interpolate(low, size=28, mode="bilinear", align_corners=False)
    y = (torch.arange(n) % 2).float()
    peak = _cosine(28, 28, 7, 7, amp=0.04).float()
    x = (x + y[:, None, None, None] * peak).clamp(0, 1)
    return x, y


def test_tiny_detector_learns_a_planted_spectral_peak():
    torch.manual_seed(0)
    model = Detector(DetectorConfig(branches="frequency", spec_channels=8, hidden=16))
    x, y = _planted(256, 0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(150):
        idx = torch.randint(0, len(x), (64,), generator=torch.Generator().manual_seed(step))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, yt = _planted(200, 1)
    p = model.predict_proba(xt)
    acc = ((p > 0.5).float() == yt).float().mean().item()
    assert acc >= 0.95, acc


def test_save_load_gives_identical_predictions_and_refuses_pickles(tmp_path):
    torch.manual_seed(0)
    model = Detector(DetectorConfig(branches="both", spec_channels=8, hidden=16))
    x, _ = _planted(16, 2)
    model.train()
    model(x)  # move the batch-norm running statistics away from their defaults
    before = model.predict_proba(x)
    save_detector(model, tmp_path / "det", {"note": "test"})
    loaded = load_detector(tmp_path / "det")
    assert torch.equal(before, loaded.predict_proba(x))
    for cfg in ({"branches": "pixel"}, {"branches": "frequency"}):
        assert Detector(DetectorConfig(**cfg, spec_channels=8, hidden=16))(x).shape == (16,)
    (tmp_path / "det" / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "det" / "model.pt")
    with pytest.raises(ValueError, match="pickle"):
        load_detector(tmp_path / "det")
    assert torch.equal(before, load_detector(tmp_path / "det", trust_pickle=True).predict_proba(x))
    with pytest.raises(ValueError, match="branches"):
        DetectorConfig(branches="spectrum")
    with pytest.raises(ValueError, match="local_block"):
        DetectorConfig(local_block=5)
    with pytest.raises(ValueError, match="detector takes"):
        model(torch.rand(2, 1, 32, 32))


def test_version_1_detectors_without_a_local_spectrum_still_load(tmp_path):
    """Detectors saved before the local spectrum existed (config version 1, no local_block) load as local_block=0."""
    import json

    torch.manual_seed(0)
    model = Detector(DetectorConfig(branches="frequency", local_block=0, spec_channels=8, hidden=16)).eval()
    x, _ = _planted(8, 3)
    save_detector(model, tmp_path / "old")
    cfg_path = tmp_path / "old" / "config.json"
    raw = json.loads(cfg_path.read_text())
    raw["version"] = 1
    del raw["model"]["local_block"]
    cfg_path.write_text(json.dumps(raw))
    loaded = load_detector(tmp_path / "old")
    assert loaded.config.local_block == 0
    assert torch.equal(model.predict_proba(x), loaded.predict_proba(x))
