"""Fourier coordinates and keys: exact N(0, 1) coordinates, Hermitian keys, injection, key files."""

from __future__ import annotations

import pytest
import torch

from diffeval.watermark.fourier import (
    circle_mask,
    coordinates,
    half_plane,
    inverse_spectrum,
    is_hermitian_symmetric,
    spectrum,
)
from diffeval.watermark.keys import PATTERNS, load_key, make_key, ring_index, save_key
from diffeval.watermark.statistics import inject

SHAPE = (1, 28, 28)


@pytest.mark.parametrize("size", [(28, 28), (27, 27), (16, 20)])
def test_coordinates_of_white_noise_are_standard_normal(size):
    h, w = size
    mask = circle_mask(h, w, 5)
    assert is_hermitian_symmetric(mask)
    x = torch.randn(4000, h, w, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = coordinates(spectrum(x), mask)
    assert y.shape == (4000, int(mask.sum()))  # as many real degrees of freedom as pixels in the disc
    assert abs(y.mean().item()) < 0.01
    assert torch.allclose(y.var(dim=0), torch.ones(y.shape[1], dtype=torch.float64), atol=0.08)
    c = torch.corrcoef(y.T)
    assert (c - torch.eye(len(c), dtype=torch.float64)).abs().max() < 0.08  # independent coordinates


def test_half_plane_covers_each_conjugate_pair_once():
    for h, w in [(28, 28), (7, 9), (8, 5)]:
        pair, self_conj = half_plane(h, w)
        assert int(self_conj.sum()) == (2 if h % 2 == 0 else 1) * (2 if w % 2 == 0 else 1)
        assert 2 * int(pair.sum()) + int(self_conj.sum()) == h * w


def test_spectrum_round_trip_and_dc_position():
    x = torch.randn(3, 28, 28, dtype=torch.float64)
    assert torch.allclose(inverse_spectrum(spectrum(x)), x, atol=1e-12)
    f = spectrum(torch.ones(28, 28))
    assert abs(f[14, 14].real.item() - 28.0) < 1e-9 and f.abs().sum().item() == pytest.approx(28.0)


def test_ring_assignment_follows_the_paper():
    r = ring_index(28, 28)
    assert r[14, 14] == 1 and r[14, 15] == 1 and r[14, 16] == 2 and r[15, 15] == 2 and r[14, 18] == 4


@pytest.mark.parametrize("pattern", PATTERNS)
def test_injected_key_is_in_the_noise_spectrum(pattern):
    key = make_key(SHAPE, pattern, radius=4, seed=11)
    assert is_hermitian_symmetric(key.mask) and int(key.mask.sum()) == 49
    z = torch.randn(8, *SHAPE, generator=torch.Generator().manual_seed(1))
    zw = inject(z, key)
    f = spectrum(zw[:, 0].double())
    assert (f[:, key.mask] - key.values[0][key.mask]).abs().max() < 1e-5  # survives the real part
    assert torch.allclose(f[:, ~key.mask], spectrum(z[:, 0].double())[:, ~key.mask], atol=1e-5)  # rest untouched
    if pattern == "rings":  # one real constant per ring
        vals = key.values[0]
        rings = ring_index(28, 28)
        for k in range(1, 5):
            ring = vals[(rings == k) & key.mask]
            assert torch.allclose(ring, ring[0].expand_as(ring)) and ring.imag.abs().max() == 0


def test_keys_are_seeded_and_distinct():
    a, b = make_key(SHAPE, "rand", 4, seed=1), make_key(SHAPE, "rand", 4, seed=1)
    c = make_key(SHAPE, "rand", 4, seed=2)
    assert torch.equal(a.values, b.values) and not torch.equal(a.values, c.values)
    assert make_key(SHAPE, "rand", 4).seed != make_key(SHAPE, "rand", 4).seed  # fresh secrets


def test_key_file_round_trip(tmp_path):
    key = make_key((3, 16, 16), "rings", 3, channels=(0, 2), seed=5, name="mine")
    path = save_key(key, tmp_path / "k.safetensors")
    back = load_key(path)
    assert (back.pattern, back.radius, back.channels, back.shape, back.seed) == ("rings", 3.0, (0, 2), (3, 16, 16), 5)
    assert torch.equal(back.values, key.values) and torch.equal(back.mask, key.mask)
    assert back.fingerprint == key.fingerprint
    assert (path.stat().st_mode & 0o077) == 0  # a secret: readable by its owner only


def test_annulus_keys_leave_the_lowest_frequencies_to_the_noise(tmp_path):
    key = make_key(SHAPE, "rings", 4, seed=2, inner_radius=2)
    assert int(key.mask.sum()) == 49 - 9 and not key.mask[14, 14] and not key.mask[15, 15] and key.mask[14, 16]
    z = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(0))
    f, f0 = spectrum(inject(z, key)[:, 0].double()), spectrum(z[:, 0].double())
    assert torch.allclose(f[:, 14, 14], f0[:, 14, 14], atol=1e-5)  # DC untouched
    assert load_key(save_key(key, tmp_path / "a.safetensors")).inner_radius == 2.0
    with pytest.raises(ValueError, match="inner_radius"):
        make_key(SHAPE, "rings", 4, inner_radius=4)


def test_bad_keys_and_key_files(tmp_path):
    with pytest.raises(ValueError, match="pattern"):
        make_key(SHAPE, "stars", 4)
    with pytest.raises(ValueError, match="channels"):
        make_key(SHAPE, "rand", 4, channels=(1,))
    with pytest.raises(ValueError, match="radius"):
        make_key(SHAPE, "rand", 14)
    (tmp_path / "junk.safetensors").write_bytes(b"not a key")
    with pytest.raises(ValueError, match="not a diffeval watermark key"):
        load_key(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        load_key(tmp_path / "missing.safetensors")
    key = make_key(SHAPE, "rand", 4, seed=0)
    with pytest.raises(ValueError, match=r"made for images of shape \(1, 28, 28\)"):
        inject(torch.randn(2, 3, 32, 32), key)
