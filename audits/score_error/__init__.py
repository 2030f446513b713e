"""Score-error analysis against exact ground truth (``diffeval audit score-error``).

- ``gmm``: Gaussian mixtures under the VP and rectified-flow paths: exact score, E[x0|x], E[eps|x].
- ``empirical``: the empirical optimal denoiser of a finite training set; nearest-neighbour distances
  and the d1/d2 < 1/3 memorisation rule.
- ``models``: a Generator, or an exact truth, seen as a float64 denoiser.
- ``error``: score error per log-SNR level in score, eps, x0 and v space with bootstrap intervals.
- ``discretisation``: sampler error against a high-accuracy ODE solution; fitted orders; model vs
  discretisation error.
- ``toys``: small generators trained on the mixtures (every parameterization and backbone).
- ``run`` / ``report``: the CLI's runner (cached, resumable) and its CSV/Markdown/JSON/PNG output.
"""

from .discretisation import exact_discretisation_table, fit_orders, model_discretisation_table
from .empirical import EmpiricalDenoiser, memorisation_table, nearest_two
from .error import score_error_table
from .gmm import MixtureTruth, gmm2d, gmm64, mixture
from .models import ExactModel, GeneratorModel

__all__ = [
    "EmpiricalDenoiser",
    "ExactModel",
    "GeneratorModel",
    "MixtureTruth",
    "exact_discretisation_table",
    "fit_orders",
    "gmm2d",
    "gmm64",
    "memorisation_table",
    "mixture",
    "model_discretisation_table",
    "nearest_two",
    "score_error_table",
]
