"""Quality measurement: Wilson interval, NFE counting, rows for conditional and unconditional generators."""

from __future__ import annotations

import json

import pytest
import torch
from scipy import stats

from diffeval.generators.config import ModelConfig, SamplingDefaults
from diffeval.generators.interface import Generator
from diffeval.generators.model import DiffusionModel
from diffeval.generators.schedules import ScheduleConfig
from diffeval.judge import Judge, JudgeNet
from diffeval.quality import COLUMNS, nfe, quality_row, quality_table, wilson_interval


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (812, 1000), (1000, 1000)])
def test_wilson_matches_scipy(k, n):
    lo, hi = wilson_interval(k, n)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)


def test_nfe_counts():
    assert nfe("euler", 28, 3.0, True) == 56
    assert nfe("heun", 10, 1.0, True) == 19
    assert nfe("ddpm", 100, 1.0, False) == 100


def _generator(conditioning: str) -> Generator:
    torch.manual_seed(0)
    cfg = ModelConfig("dit", "eps", ScheduleConfig("linear", 1000), conditioning, image_size=28,
                      backbone_config={"patch": 7, "dim": 16, "depth": 1, "heads": 2})
    return Generator(
        DiffusionModel(cfg), "toy", "dit", SamplingDefaults("ddim", 2, 2.0 if conditioning == "class" else 1.0), "cpu"
    )


class _ConstantJudge(Judge):
    """Says class 3 for every image."""

    def __init__(self):
        super().__init__(JudgeNet())

    def predict(self, images):
        return torch.full((len(images),), 3, dtype=torch.long)


def test_quality_rows():
    judge = _ConstantJudge()
    row, images = quality_row(_generator("class"), judge, n=20)
    assert images.shape == (20, 1, 28, 28)
    assert row["cond_accuracy"] == pytest.approx(0.1)  # classes 0..9 asked twice each; judge says 3
    assert row["nfe"] == 4 and row["guidance"] == 2.0
    row, _ = quality_row(_generator("none"), judge, n=30)
    assert json.loads(row["class_hist"])[3] == 30
    assert row["chi2"] == pytest.approx(270.0) and row["chi2_p"] < 1e-10
    assert list(quality_table([row]).columns) == COLUMNS
