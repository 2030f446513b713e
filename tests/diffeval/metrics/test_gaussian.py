"""GaussianStats: batch-size independence, exact shard merging, state dicts and pytorch-fid npz files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from diffeval.metrics import GaussianStats, load_stats_npz


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Max abs difference relative to the max abs reference value."""
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def feats() -> np.ndarray:
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(12, 12))
    return rng.normal(size=(203, 12)) @ mix + 3.0  # correlated, with a common offset


def _fed(x: np.ndarray, batch: int, **kw) -> GaussianStats:
    s = GaussianStats(x.shape[1], **kw)
    for i in range(0, len(x), batch):
        s.update(x[i : i + batch])
    return s


@pytest.mark.parametrize("batch", [1, 7, 203])
def test_batch_size_independent_and_equals_numpy(feats: np.ndarray, batch: int) -> None:
    s = _fed(feats, batch)
    assert s.n == len(feats)
    assert s.mean.dtype == np.float64 and s.mean.shape == (12,)
    assert s.cov.shape == (12, 12)
    assert _rel(s.mean, feats.mean(axis=0)) < 1e-12
    assert _rel(s.cov, np.cov(feats, rowvar=False)) < 1e-12
    full = _fed(feats, len(feats))
    assert _rel(s.mean, full.mean) < 1e-12 and _rel(s.cov, full.cov) < 1e-12
    np.testing.assert_array_equal(s.cov, s.cov.T)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_torch_input_any_float_dtype(feats: np.ndarray, dtype: torch.dtype) -> None:
    t = torch.from_numpy(feats).to(dtype)
    ref = t.to(torch.float64).numpy()
    s = GaussianStats(12).update(t)
    assert _rel(s.mean, ref.mean(axis=0)) < 1e-12
    assert _rel(s.cov, np.cov(ref, rowvar=False)) < 1e-12
    s32 = GaussianStats(12).update(feats.astype(np.float32))
    assert _rel(s32.cov, np.cov(feats.astype(np.float32).astype(np.float64), rowvar=False)) < 1e-12


def test_merge_is_exact_for_shards_with_different_shifts(feats: np.ndarray) -> None:
    a = _fed(feats[:50], 9)
    b = _fed(feats[50:120], 4, shift=feats[60])
    c = _fed(feats[120:], 200, shift=np.full(12, -5.0))
    merged = a.merge(b).merge(c)
    assert merged is a and merged.n == len(feats)
    assert _rel(merged.mean, feats.mean(axis=0)) < 1e-12
    assert _rel(merged.cov, np.cov(feats, rowvar=False)) < 1e-12


def test_add_does_not_mutate_and_sum_works(feats: np.ndarray) -> None:
    a, b = _fed(feats[:100], 100), _fed(feats[100:], 100)
    total = a + b
    assert a.n == 100 and b.n == 103 and total.n == 203
    assert _rel(total.cov, np.cov(feats, rowvar=False)) < 1e-12
    assert sum([a, b]).n == 203


def test_state_dict_roundtrip_and_simulated_all_reduce(feats: np.ndarray) -> None:
    shards = [_fed(feats[i::3], 5) for i in range(3)]
    dicts = [s.state_dict() for s in shards]
    assert set(dicts[0]) == {"n", "sum", "sum_outer", "shift"}
    assert all(v.dtype in (np.float64, np.int64) for v in dicts[0].values())
    reduced = {
        k: torch.from_numpy(np.asarray(sum(d[k] for d in dicts))) for k in dicts[0]
    }  # what all_reduce(SUM) yields
    total = GaussianStats.from_state_dict(reduced)
    assert total.n == len(feats)
    assert _rel(total.cov, np.cov(feats, rowvar=False)) < 1e-12
    again = GaussianStats.from_state_dict(shards[0].state_dict())
    np.testing.assert_array_equal(again.cov, shards[0].cov)
    np.testing.assert_array_equal(again.mean, shards[0].mean)


def test_rank_and_small_n_errors() -> None:
    rng = np.random.default_rng(1)
    s = GaussianStats(20)
    with pytest.raises(ValueError):
        _ = s.mean
    s.update(rng.normal(size=(1, 20)))
    with pytest.raises(ValueError, match="at least 2"):
        _ = s.cov
    s.update(rng.normal(size=(9, 20)))
    assert s.rank() == 9  # n - 1 for n < dim
    full = GaussianStats(5).update(rng.normal(size=(50, 5)))
    assert full.rank() == 5


def test_update_validates_input() -> None:
    s = GaussianStats(4)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        s.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        s.update(np.full((3, 4), np.nan))
    with pytest.raises(ValueError):
        GaussianStats(0)
    s.update(np.zeros((0, 4)))
    assert s.n == 0


def test_save_npz_is_pytorch_fid_format(tmp_path, feats: np.ndarray) -> None:
    from pytorch_fid.fid_score import compute_statistics_of_path

    s = GaussianStats(12).update(feats)
    out = s.save_npz(tmp_path / "ref.npz", dataset="fashion", image_size=28)
    assert sorted(os.listdir(tmp_path)) == ["ref.npz"]  # no temp file left behind
    with np.load(out, allow_pickle=False) as f:
        assert {"mu", "sigma", "n", "dataset", "image_size"} == set(f.files)
        assert f["n"].shape == () and int(f["n"]) == 203
        assert str(f["dataset"]) == "fashion" and int(f["image_size"]) == 28
    mu, sigma = load_stats_npz(out)
    np.testing.assert_array_equal(mu, s.mean)
    np.testing.assert_array_equal(sigma, s.cov)
    m2, s2 = compute_statistics_of_path(str(out), None, 1, 12, "cpu")
    np.testing.assert_array_equal(m2, mu)
    np.testing.assert_array_equal(s2, sigma)
    s.save_npz(out)  # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["ref.npz"]
    with pytest.raises(ValueError, match="reserved"):
        s.save_npz(tmp_path / "x.npz", mu=1)
    with pytest.raises(ValueError, match="scalar"):
        s.save_npz(tmp_path / "x.npz", info={"a": 1})


def test_load_stats_npz_names_file_on_bad_input(tmp_path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, mean=np.zeros(3))
    with pytest.raises(ValueError, match=r"bad\.npz.*missing keys \['mu', 'sigma'\]"):
        load_stats_npz(bad)
    npy = tmp_path / "plain.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match=r"plain\.npy"):
        load_stats_npz(npy)
    shape = tmp_path / "shape.npz"
    np.savez(shape, mu=np.zeros(3), sigma=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"shape\.npz"):
        load_stats_npz(shape)
