"""Exact ground truths: the mixture's closed forms and the empirical optimal denoiser."""

import math

import pytest
import torch

from diffeval.audits.score_error.empirical import EmpiricalDenoiser, memorisation_table, nearest_two
from diffeval.audits.score_error.gmm import MixtureTruth, gmm2d, gmm64, mixture
from diffeval.data import GaussianMixture


@pytest.mark.parametrize("make", [gmm2d, gmm64])
@pytest.mark.parametrize("alpha,sigma", [(1.0, 0.05), (0.8, 0.6), (0.1, 0.995), (0.5, 0.5), (0.999, 0.001)])
def test_score_matches_autograd_of_log_density(make, alpha, sigma):
    truth = make()
    x = truth.sample_noised(64, alpha, sigma, seed=3).requires_grad_(True)
    (grad,) = torch.autograd.grad(truth.log_prob(x, alpha, sigma).sum(), x)
    score = truth.score(x.detach(), alpha, sigma)
    assert (grad - score).abs().max().item() < 1e-6 * max(1.0, score.abs().max().item())
    p = truth.posterior(x.detach(), alpha, sigma)
    assert torch.allclose(p.score, score, atol=1e-9, rtol=1e-9)
    # the two estimates are consistent: x = alpha E[x0|x] + sigma E[eps|x]
    assert torch.allclose(alpha * p.x0 + sigma * p.eps, x.detach(), atol=1e-10)


def test_per_sample_coefficients_match_scalar_calls():
    truth = gmm2d()
    x = torch.randn(5, 2, dtype=torch.float64)
    alpha = torch.tensor([1.0, 0.9, 0.5, 0.2, 0.0], dtype=torch.float64)
    sigma = torch.tensor([0.1, 0.3, 0.7, 0.9, 1.0], dtype=torch.float64)
    batched = truth.posterior(x, alpha, sigma)
    for i in range(5):
        one = truth.posterior(x[i : i + 1], float(alpha[i]), float(sigma[i]))
        assert torch.allclose(batched.x0[i], one.x0[0], atol=1e-12)
        assert torch.allclose(batched.eps[i], one.eps[0], atol=1e-12)


def test_log_density_agrees_with_the_data_mixture_and_limits_are_finite():
    truth = gmm64()
    x = truth.sample(32, seed=1)
    assert torch.allclose(truth.log_prob(x), truth.mixture.log_prob(x), atol=1e-9)
    # pure noise: E[x0|x] is the mixture mean, E[eps|x] = x
    noise = torch.randn(8, 64, dtype=torch.float64)
    p = truth.posterior(noise, 0.0, 1.0)
    assert torch.allclose(p.x0, (truth.weights @ truth.means).expand(8, -1), atol=1e-12)
    assert torch.allclose(p.eps, noise, atol=1e-12)
    # nearly clean data: E[x0|x] -> x / alpha, finite everywhere
    p = truth.posterior(x, 1.0, 1e-6)
    assert torch.isfinite(p.eps).all() and torch.allclose(p.x0, x, atol=1e-6)


def test_mixture_names_and_layout():
    assert mixture("gmm2d").shape == (2, 1, 1) and mixture("gmm64").shape == (1, 8, 8)
    with pytest.raises(ValueError, match="unknown mixture"):
        mixture("gmm3")
    with pytest.raises(ValueError, match="does not hold"):
        MixtureTruth(gmm2d().mixture, shape=(3, 1, 1))


def _delta_mixture(points: torch.Tensor) -> MixtureTruth:
    m, d = points.shape
    return MixtureTruth(GaussianMixture(torch.full((m,), 1.0 / m, dtype=torch.float64), points,
                                        torch.zeros(m, d, d, dtype=torch.float64)))


@pytest.mark.parametrize("alpha,sigma", [(0.9, 0.4), (0.995, 0.02), (0.1, 1.0)])
def test_empirical_denoiser_is_the_zero_covariance_mixture(alpha, sigma):
    g = torch.Generator().manual_seed(0)
    points = torch.randn(40, 3, generator=g, dtype=torch.float64)
    x = torch.randn(16, 3, generator=g, dtype=torch.float64)
    exact = _delta_mixture(points).posterior(x, alpha, sigma)
    for chunk in (1, 7, 100):  # chunking of the running log-sum-exp changes nothing
        p = EmpiricalDenoiser(points, chunk=chunk).posterior(x, alpha, sigma)
        assert torch.allclose(p.x0, exact.x0, atol=1e-12) and torch.allclose(p.eps, exact.eps, atol=1e-10)


def test_empirical_denoiser_snaps_to_the_nearest_point_at_small_noise():
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[0.9, 0.1], [0.1, 0.2]], dtype=torch.float64)
    p = EmpiricalDenoiser(points).posterior(x, 1.0, 0.01)
    assert torch.allclose(p.x0, points[[1, 0]], atol=1e-12)
    with pytest.raises(ValueError, match="sigma > 0"):
        EmpiricalDenoiser(points).posterior(x, 1.0, 0.0)


def test_nearest_two_and_memorisation_rule():
    g = torch.Generator().manual_seed(1)
    points = torch.randn(300, 1, 4, 4, generator=g)
    samples = torch.randn(20, 1, 4, 4, generator=g)
    d1, d2, idx = nearest_two(samples, points, chunk=37)
    full = torch.cdist(samples.reshape(20, -1).double(), points.reshape(300, -1).double())
    vals, ids = full.topk(2, largest=False)
    assert torch.allclose(d1, vals[:, 0], atol=1e-9) and torch.allclose(d2, vals[:, 1], atol=1e-9)
    assert torch.equal(idx, ids[:, 0])
    copies = points[:10] + 1e-3 * torch.randn(10, 1, 4, 4, generator=g)
    table = memorisation_table(torch.cat([copies, samples]), points, "mixed")
    assert table["memorised"].iloc[:10].all()
    assert (table["nearest"].iloc[:10].to_numpy() == list(range(10))).all()
    assert not table["memorised"].iloc[10:].any()  # fresh Gaussian draws in 16-D are far from every point
    assert math.isclose(table["ratio"].iloc[0], table["d1"].iloc[0] / table["d2"].iloc[0])
