"""Training lowers the loss, resumes exactly, and exports loadable checkpoints."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from diffeval.data import load_digits_images
from diffeval.generators.checkpoints import load_checkpoint
from diffeval.generators.config import SamplingDefaults
from diffeval.generators.model import DiffusionModel
from diffeval.generators.training import TrainConfig, TrainingData, train
from diffeval.generators.training.loop import LOG_FILE, STATE_FILE

from ..helpers import TINY_TEXTS, tiny_config


def _digits_data() -> TrainingData:
    x, y = load_digits_images(8)
    captions = [[TINY_TEXTS[c % len(TINY_TEXTS)]] for c in range(10)]
    return TrainingData(images=x, labels=y, captions=captions)


def _cfg(steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=32, lr=2e-3, warmup=5, log_every=10, checkpoint_every=10, device="cpu")


@pytest.mark.parametrize("kind", ["ddpm", "sd2", "dit", "sd3"])
def test_training_lowers_loss(kind, tmp_path):
    torch.manual_seed(0)
    model = DiffusionModel(tiny_config(kind))
    log = train(model, _digits_data(), _cfg(80), tmp_path, "tiny", kind, SamplingDefaults(), progress=False)
    assert list(log.columns) == ["step", "loss", "lr", "elapsed_s"]
    assert log["loss"].iloc[-2:].mean() < 0.8 * log["loss"].iloc[0]
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.safetensors").is_file()
    saved = pd.read_csv(tmp_path / LOG_FILE)
    assert len(saved) == len(log)


def test_resume_matches_uninterrupted(tmp_path):
    data = _digits_data()
    torch.manual_seed(0)
    full = DiffusionModel(tiny_config("dit"))
    train(full, data, _cfg(20), tmp_path / "full", "a", "dit", SamplingDefaults(), progress=False)

    torch.manual_seed(0)
    part = DiffusionModel(tiny_config("dit"))
    train(part, data, _cfg(10), tmp_path / "part", "a", "dit", SamplingDefaults(), progress=False)
    assert (tmp_path / "part" / STATE_FILE).is_file()
    torch.manual_seed(123)  # a fresh process: different global RNG, new model object
    resumed = DiffusionModel(tiny_config("dit"))
    log = train(resumed, data, _cfg(20), tmp_path / "part", "a", "dit", SamplingDefaults(), progress=False)
    assert int(log["step"].iloc[-1]) == 20 and len(log) == 2
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k


def test_saved_checkpoint_reproduces_samples_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    model = DiffusionModel(tiny_config("sd1"))
    train(
        model,
        _digits_data(),
        _cfg(10),
        tmp_path,
        "tiny-sd1",
        "sd1",
        SamplingDefaults("dpm++2m", 5, 2.0),
        progress=False,
    )
    a = load_checkpoint(tmp_path, "cpu")
    b = load_checkpoint(tmp_path, "cpu")
    xa = a.sample(6, prompts="a shoe", seed=3)
    xb = b.sample(6, prompts="a shoe", seed=3)
    assert torch.equal(xa, xb)
    assert a.defaults == SamplingDefaults("dpm++2m", 5, 2.0)


def test_learning_rate_schedules():
    from diffeval.generators.training.config import TrainConfig

    const = TrainConfig(steps=1000, lr=1e-3, warmup=100)
    assert const.lr_at(0) == pytest.approx(1e-5) and const.lr_at(99) == 1e-3 and const.lr_at(999) == 1e-3
    cos = TrainConfig(steps=1100, lr=1e-3, warmup=100, lr_schedule="cosine", min_lr=1e-4)
    assert cos.lr_at(100) == pytest.approx(1e-3) and cos.lr_at(600) == pytest.approx(5.5e-4)
    assert cos.lr_at(1100) == pytest.approx(1e-4) and cos.lr_at(1099) < cos.lr_at(1000) < cos.lr_at(500)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step").lr_at(0)


def test_wall_clock_budget_stops_training_and_decays_by_time(tmp_path, monkeypatch):
    """The loop's clock is replaced by one that advances 0.02 s per reading, so the run (a 1 s budget)
    stops after the same number of steps however loaded the machine is."""
    from types import SimpleNamespace

    import diffeval.generators.training.loop as loop
    from diffeval.generators.training.config import TrainConfig

    ticks = iter(range(10**9))
    monkeypatch.setattr(loop, "time", SimpleNamespace(time=lambda: 0.02 * next(ticks)))

    timed = TrainConfig(steps=10**6, lr=1e-3, warmup=10, lr_schedule="cosine", max_wall_s=100.0)
    assert timed.lr_at(500, elapsed_s=50.0) == pytest.approx(5e-4)  # half the budget: half the cosine
    assert timed.lr_at(20, elapsed_s=100.0) == pytest.approx(0.0) and timed.lr_at(5, 0.0) == pytest.approx(6e-4)
    torch.manual_seed(0)
    model = DiffusionModel(tiny_config("ddpm"))
    cfg = _cfg(10**6)
    cfg.max_wall_s, cfg.lr_schedule = 1.0, "cosine"
    log = train(model, _digits_data(), cfg, tmp_path, "tiny", "ddpm", SamplingDefaults("ddim", 5), progress=False)
    import json

    info = json.loads((tmp_path / "config.json").read_text())["training"]
    assert 0 < info["steps_done"] < 10**6 and info["train_wall_s"] >= 1.0
    assert log["step"].iloc[-1] == info["steps_done"] and log["lr"].iloc[-1] < 0.2 * cfg.lr


def test_ema_state_loads_onto_the_averages_device():
    """A resumed run reads train_state.pt on the CPU; the average must land where the model is (CUDA on a
    GPU run: there it crashed). The meta device stands in for CUDA here."""
    from diffeval.generators.training.ema import EMA

    model = torch.nn.Linear(3, 2).to("meta")
    ema = EMA(model, 0.9)
    saved = {k: torch.ones_like(v, device="cpu") for k, v in ema.state_dict().items()}
    ema.load_state_dict(saved)
    assert all(v.device.type == "meta" for v in ema.state_dict().values())
    cpu_ema = EMA(torch.nn.Linear(3, 2), 0.9)
    cpu_ema.load_state_dict(saved)
    assert all(torch.equal(v, saved[k]) and v is not saved[k] for k, v in cpu_ema.state_dict().items())
