"""The KL autoencoder and latent generators: shapes, checkpoints carrying their autoencoder, encode/decode around
the denoiser (sample decodes, invert encodes, regenerate works in the latent), training over latents."""

from __future__ import annotations

import json

import pytest
import torch

from diffeval.generators.autoencoder import (
    Autoencoder,
    AutoencoderConfig,
    kl_divergence,
    load_autoencoder,
    save_autoencoder,
)
from diffeval.generators.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from diffeval.generators.config import SamplingDefaults
from diffeval.generators.model import DiffusionModel
from diffeval.generators.presets import build_presets
from diffeval.generators.training.autoencoder import AutoencoderTrainConfig, latent_statistics, train_autoencoder
from diffeval.io import ModelDirError

VOCAB = ["<pad>", "<unk>", "<bos>", "<eos>", "a", "photo", "of", "shirt"]


def tiny_autoencoder(seed: int = 0, **kw) -> Autoencoder:
    torch.manual_seed(seed)
    return Autoencoder(AutoencoderConfig(base_channels=8, **kw)).eval()


def latent_checkpoint(tmp_path, preset: str = "dit", ae: Autoencoder | None = None, seed: int = 0):
    """A randomly initialised latent checkpoint of ``preset``'s design (backbone shrunk) over a tiny autoencoder."""
    ae = ae or tiny_autoencoder(seed)
    p = build_presets(VOCAB)[preset]
    p.model.autoencoder = ae.config.to_dict()
    bb = p.model.backbone_config
    if p.model.backbone == "unet":
        bb["base_channels"] = 16
    else:
        bb.update(dim=32, depth=1, heads=2)
    torch.manual_seed(seed)
    model = DiffusionModel(p.model)
    path = tmp_path / f"{preset}-latent"
    save_checkpoint(path, model, preset, p.family, p.sampling, autoencoder=ae)
    return path


def test_autoencoder_shapes_and_config_checks():
    ae = tiny_autoencoder()
    assert ae.latent_shape == (3, 14, 14)
    x = torch.rand(2, 1, 28, 28)
    z = ae.encode(x)
    assert tuple(z.shape) == (2, 3, 14, 14)
    y = ae.decode(z)
    assert tuple(y.shape) == (2, 1, 28, 28) and float(y.min()) >= 0 and float(y.max()) <= 1
    assert Autoencoder(AutoencoderConfig(base_channels=8, channel_mult=(1, 1, 2))).latent_shape == (3, 7, 7)
    with pytest.raises(ValueError, match="not divisible"):
        AutoencoderConfig(image_size=30, channel_mult=(1, 2, 2))
    with pytest.raises(ValueError, match="unknown fields"):
        AutoencoderConfig.from_dict({"latent_dim": 3})


def test_scaled_latents_invert_the_shift_and_scale():
    """encode = (mean - shift) * scale and decode undoes it before the decoder (SD3's convention)."""
    ae = tiny_autoencoder(shift_factor=0.3, scaling_factor=2.5)
    x = torch.rand(3, 1, 28, 28)
    mean, _ = ae.moments(x * 2 - 1)
    assert torch.allclose(ae.encode(x), (mean - 0.3) * 2.5, atol=1e-6)
    z = torch.randn(3, 3, 14, 14)
    assert torch.allclose(ae.decode(z), ((ae.decode_raw(z / 2.5 + 0.3) + 1) / 2).clamp(0, 1), atol=1e-6)


def test_kl_divergence_matches_the_closed_form():
    mean, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.4]])
    expected = sum(0.5 * (m * m + torch.exp(lv) - 1 - lv) for m, lv in zip(mean[0], logvar[0]))
    assert torch.allclose(kl_divergence(mean, logvar), expected)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    assert torch.allclose(kl_divergence(mean, logvar), torch.distributions.kl_divergence(q, p).sum())


def test_autoencoder_save_load_roundtrip_and_missing_dir(tmp_path):
    ae = tiny_autoencoder(shift_factor=0.1, scaling_factor=1.7)
    save_autoencoder(tmp_path / "ae", ae, {"note": "test"})
    back = load_autoencoder(tmp_path / "ae")
    assert back.config == ae.config and not any(p.requires_grad for p in back.parameters())
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(back.encode(x), ae.encode(x))
    u8 = (x * 255).round().to(torch.uint8)
    # float32 convolutions differ by ~1e-6 between batch sizes
    assert torch.allclose(back.encode_batched(u8, batch_size=1), back.encode(u8.float() / 255), atol=1e-5)
    with pytest.raises(ModelDirError, match="config.json is missing"):
        load_autoencoder(tmp_path / "nothing")
    cfg = json.loads((tmp_path / "ae" / "config.json").read_text())
    cfg["autoencoder"]["latent_channels"] = 4
    (tmp_path / "ae" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelDirError, match="do not match"):
        load_autoencoder(tmp_path / "ae")


def test_training_measures_unit_variance_latents_and_resumes(tmp_path):
    """A few steps on stripes: the saved scale and shift give encoded training latents of mean 0 and std 1;
    an interrupted run resumes from its state to the same weights as an uninterrupted one."""
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(64, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    config = AutoencoderConfig(base_channels=8)
    cfg = AutoencoderTrainConfig(steps=4, batch_size=8, checkpoint_every=2, device="cpu")
    log = train_autoencoder(images, config, cfg, tmp_path / "full", progress=False)
    assert list(log.columns) == ["step", "loss", "l1", "mse", "kl", "elapsed_s"] and int(log["step"].iloc[-1]) == 4
    ae = load_autoencoder(tmp_path / "full")
    z = ae.encode(images.float() / 255)
    assert abs(float(z.mean())) < 1e-4 and abs(float(z.std()) - 1) < 1e-3
    shift, scale = latent_statistics(ae, images)  # of the raw latents: what was saved, to its 6 digits
    assert (shift, scale) == (pytest.approx(ae.config.shift_factor, abs=1e-6),
                              pytest.approx(ae.config.scaling_factor, rel=1e-5))
    assert not (tmp_path / "full" / "train_state.pt").exists()

    class Stop(Exception):
        pass

    import diffeval.generators.training.autoencoder as mod

    real_save = mod.atomic_torch_save

    def save_then_stop(path, value):
        real_save(path, value)
        raise Stop

    mod.atomic_torch_save = save_then_stop
    try:
        with pytest.raises(Stop):
            train_autoencoder(images, AutoencoderConfig(base_channels=8), cfg, tmp_path / "cut", progress=False)
    finally:
        mod.atomic_torch_save = real_save
    assert (tmp_path / "cut" / "train_state.pt").is_file()
    train_autoencoder(images, AutoencoderConfig(base_channels=8), cfg, tmp_path / "cut", progress=False)
    resumed = load_autoencoder(tmp_path / "cut")
    for k, v in ae.state_dict().items():
        assert torch.allclose(resumed.state_dict()[k], v, atol=1e-6), k


@pytest.mark.parametrize("preset", ["sd1", "sd2", "dit", "sd3", "sd3-reflow"])
def test_latent_generator_decodes_samples_and_encodes_for_inversion(tmp_path, preset):
    g = load_checkpoint(latent_checkpoint(tmp_path, preset))
    assert g.info.space == "latent" and g.noise_shape == (3, 14, 14) and g.image_shape == (1, 28, 28)
    assert g.autoencoder is not None
    cond = {"labels": [1, 2]} if g.info.conditioning == "class" else {"prompts": ["a photo of a shirt"] * 2}
    x = g.sample(2, steps=2, seed=3, **cond)
    assert tuple(x.shape) == (2, 1, 28, 28) and float(x.min()) >= 0 and float(x.max()) <= 1
    z = g.sample(2, steps=2, seed=3, output="latent", **cond)
    assert tuple(z.shape) == (2, 3, 14, 14)
    assert torch.equal(g.decode(z), x)  # sample = decode(latent sample)
    noise = g.initial_noise(2, seed=3)
    assert torch.equal(g.sample(2, steps=2, noise=noise, output="latent", **cond), z)
    assert torch.allclose(g.encode(x), g.autoencoder.encode(x))
    inv = g.invert(x, steps=2)
    assert tuple(inv.shape) == (2, 3, 14, 14)
    assert tuple(g.regenerate(x, 0.5, steps=2).shape) == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="images must have shape"):
        g.invert(torch.rand(1, 3, 14, 14))


def test_latent_inversion_round_trip_through_the_ode(tmp_path):
    """invert(latent samples) recovers the initial latents: the chain sample -> invert in the latent is the
    bundled DDIM/Euler inversion (checked with the autoencoder left out by inverting the latents directly)."""
    g = load_checkpoint(latent_checkpoint(tmp_path, "sd3"))
    noise = g.initial_noise(3, seed=1)
    z = g.sample(3, steps=8, noise=noise, guidance=1.0, output="latent")
    from diffeval.generators.samplers import invert

    cond = g.conditioning(3)
    with torch.no_grad():
        back = invert(g._denoiser(cond, 1.0, False), g.schedule, z, g.schedule.sampling_times(8, "uniform"),
                      "euler", fixed_point=3)
    assert float((back - noise).norm() / noise.norm()) < 1e-3


def test_checkpoints_carry_their_autoencoder(tmp_path):
    path = latent_checkpoint(tmp_path, "dit")
    from safetensors.torch import load_file, save_file

    state = load_file(str(path / "model.safetensors"))
    assert any(k.startswith("autoencoder.encoder.") for k in state)
    g1 = load_checkpoint(path)
    other = latent_checkpoint(tmp_path / "b", "dit", ae=tiny_autoencoder(seed=5))
    assert load_checkpoint(other).fingerprint() != g1.fingerprint()  # same denoiser seed, other decoder
    # weights without the autoencoder: a clear error
    save_file({k: v for k, v in state.items() if not k.startswith("autoencoder.")}, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="autoencoder weights do not match"):
        load_checkpoint(path)
    # autoencoder weights for a pixel config: refused
    save_file(state, str(path / "model.safetensors"))
    cfg = json.loads((path / "config.json").read_text())
    del cfg["model"]["autoencoder"]
    cfg["model"]["backbone_config"]["patch"] = 4
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="config.json names no autoencoder"):
        load_checkpoint(path)


def test_pixel_configs_read_as_before():
    """A pixel model's config has no autoencoder field, so old checkpoints and new ones read alike."""
    ddpm = build_presets(VOCAB)["ddpm"]
    assert "autoencoder" not in ddpm.model.to_dict() and ddpm.model.model_shape == (1, 28, 28)
    with pytest.raises(ValueError, match="needs its autoencoder"):
        save_checkpoint("/nonexistent", DiffusionModel(build_presets(VOCAB)["dit"].model), "dit", "dit",
                        SamplingDefaults())


def test_reflow_pairs_of_a_latent_base_are_latents_and_train(tmp_path):
    """A latent teacher's reflow pairs are (latent noise, latent sample) in model space, and a student trains on
    them and saves the teacher's autoencoder with it."""
    from diffeval.bundle import reflow_pairs
    from diffeval.generators.training import TrainConfig, TrainingData, train

    base = load_checkpoint(latent_checkpoint(tmp_path, "sd3"))
    data = TrainingData(images=torch.zeros(10, 1, 28, 28), labels=torch.arange(10),
                        captions=[["a photo of a shirt"]] * 10)
    pairs = reflow_pairs(base, 4, 2, 3.0, 0, data)
    assert pairs.model_space and tuple(pairs.images.shape) == (4, 3, 14, 14)
    assert tuple(pairs.noise.shape) == (4, 3, 14, 14)
    assert torch.equal(base.decode(pairs.images), base.sample(4, prompts=pairs.prompts, steps=2, sampler="euler",
                                                              guidance=3.0, noise=pairs.noise))
    student = DiffusionModel(base.config)
    train(student, pairs, TrainConfig(steps=1, batch_size=2, device="cpu"), tmp_path / "student", "s", "sd3",
          base.defaults, progress=False, autoencoder=base.autoencoder)
    assert load_checkpoint(tmp_path / "student").autoencoder.config == base.autoencoder.config
    with pytest.raises(ValueError, match="encoded latents"):
        train(DiffusionModel(base.config), data, TrainConfig(steps=1, batch_size=2, device="cpu"), tmp_path / "x",
              "s", "sd3", base.defaults, progress=False, autoencoder=base.autoencoder)


def test_a_pickled_autoencoder_is_refused_without_trust(tmp_path):
    ae = tiny_autoencoder()
    save_autoencoder(tmp_path / "ae", ae)
    (tmp_path / "ae" / "model.safetensors").unlink()
    torch.save(ae.state_dict(), tmp_path / "ae" / "model.pt")
    with pytest.raises(ModelDirError, match="refused"):
        load_autoencoder(tmp_path / "ae")
    back = load_autoencoder(tmp_path / "ae", trust_pickle=True)
    assert torch.equal(back.encode(torch.ones(1, 1, 28, 28)), ae.encode(torch.ones(1, 1, 28, 28)))
