"""Samplers: integrate from noise (t = 1) to data (t = 0) given a denoiser returning (x0_hat, eps_hat).

- ``ddpm``: ancestral sampling (DDIM with eta = 1: the posterior q(x_s | x_t, x0_hat)).
- ``ddim``: DDIM with ``eta`` (0 = deterministic ODE, identical to Euler in the EDM frame).
- ``dpm++2m``: DPM-Solver++(2M), multistep second order in log-SNR with data prediction.
- ``euler`` / ``heun``: the probability-flow ODE in the path's natural frame (t for rectified flow,
  sigma/alpha for VP) -- first and second order. Heun does its last step with Euler (EDM).

Deterministic samplers (ddim with eta = 0, dpm++2m, euler, heun) are ODE solvers; ``invert`` runs
ddim/euler/heun backwards from data to noise. Each sampler is one entry of ``registry.REGISTRY``.
"""

from .core import DenoiseFn, NoiseSource, Step
from .loops import invert, run_sampler
from .registry import REGISTRY, SamplerSpec, get_sampler, invertible_samplers, nfe

SAMPLERS = tuple(REGISTRY)
ODE_SAMPLERS = tuple(n for n, s in REGISTRY.items() if s.ode)
INVERTIBLE_SAMPLERS = invertible_samplers()

__all__ = ["DenoiseFn", "INVERTIBLE_SAMPLERS", "NoiseSource", "ODE_SAMPLERS", "REGISTRY", "SAMPLERS", "SamplerSpec",
           "Step", "get_sampler", "invert", "nfe", "run_sampler"]
