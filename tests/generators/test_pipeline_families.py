"""Every diffusers family behind the Generator interface, on tiny random-weight pipelines built by the tests:
seeding, supplied latents, diffeval's scheduler loop against the pipeline's own ``__call__``, latent inversion,
SDEdit, dtypes, sizes and long prompts."""

from __future__ import annotations

import warnings

import pytest
import torch

from diffeval.generators import load_generator
from diffeval.generators.diffusers_pipeline import per_sample_seed

pytest.importorskip("diffusers")

FAMILIES = ("sd", "sd-v", "sdxl", "sd3", "pixart", "dit", "ldm", "ddpm")


def _conditions(g, n: int) -> dict:
    if g.info.conditioning == "text":
        return {"prompts": [f"a photo of item {i}" for i in range(n)]}
    if g.info.conditioning == "class":
        return {"labels": torch.arange(n) % 10}
    return {}


@pytest.fixture(scope="module")
def generators(tiny_pipelines):
    return {name: load_generator(tiny_pipelines[name], "cpu") for name in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_family_samples_seeded_by_index_and_takes_latents(generators, family):
    """Images are seeded by (seed, index) whatever the batching; ``noise=`` the generator's own initial noise gives
    the same images (so ``latents=`` is passed through unchanged), other noise other images."""
    g = generators[family]
    guidance = 1.0 if g.info.conditioning == "none" else 2.0
    cond = _conditions(g, 3)
    x = g.sample(3, steps=3, guidance=guidance, seed=4, **cond)
    assert x.shape == (3, *g.image_shape) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    one = {k: v[2:] for k, v in cond.items()}
    torch.testing.assert_close(g.sample(1, steps=3, guidance=guidance, seed=4, first_index=2, **one), x[2:],
                               atol=1e-5, rtol=0)
    z = g.initial_noise(3, seed=4)
    assert z.shape == (3, *g.noise_shape)
    # (the seed still drives stochastic steps, as DDPM's)
    torch.testing.assert_close(g.sample(3, steps=3, guidance=guidance, seed=4, noise=z, **cond), x, atol=1e-5, rtol=0)
    assert (g.sample(3, steps=3, guidance=guidance, seed=4, noise=-z, **cond) - x).abs().max() > 1e-3
    with pytest.raises(ValueError, match="noise must have shape"):
        g.sample(3, steps=3, guidance=guidance, noise=z[:, :1], **cond)


@pytest.mark.parametrize("family", ["dit", "ldm", "ddpm"])
def test_own_loop_equals_the_pipeline_call(generators, family):
    """DiT, LDM and DDPM pipelines take no ``latents=``, so diffeval runs their scheduler loop itself; from the
    same per-image torch generators it makes the pipeline's own images (DDPM: stochastic steps included)."""
    g = generators[family]
    guidance = 3.0 if family == "dit" else 1.0
    sampler = "ddpm" if family == "ddpm" else None
    ours = g.sample(2, steps=4, sampler=sampler, guidance=guidance, seed=7, **_conditions(g, 2))
    gens = [torch.Generator().manual_seed(per_sample_seed(7, i)) for i in range(2)]  # fresh, as the pipeline gets
    kwargs = {"generator": gens, "num_inference_steps": 4, "output_type": "np"}
    if family == "dit":
        kwargs.update(class_labels=[0, 1], guidance_scale=guidance)
    else:
        kwargs["batch_size"] = 2
    g.pipe.scheduler = g._scheduler(sampler or g.info.schedule)
    theirs = torch.from_numpy(g.pipe(**kwargs).images).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_latent_inversion_recovers_the_initial_latents(generators, family):
    """invert_latents(sample(z)) ~ z along the deterministic chain (null condition, guidance 1); fixed-point
    refinement makes it exact up to float error. The DDPM pipeline's scheduler clips x0 to [-1, 1] (as google's
    DDPM configs do), which no inversion can undo, so only its plain error is bounded."""
    g = generators[family]
    z = g.initial_noise(2, seed=1)
    final = g.sample(2, steps=8, sampler=g.ode_sampler, guidance=1.0, noise=z, output="latent")
    assert final.shape == z.shape
    errors = [float((g.invert_latents(final, steps=8, fixed_point=k) - z).norm() / z.norm()) for k in (0, 6)]
    if family == "ddpm":
        assert all(e < 2 for e in errors)
        return
    assert errors[1] < 1e-2 and errors[1] < errors[0] / 10, errors
    # through images: encode then invert; shape and finiteness only (a random VAE does not invert its decodings)
    images = g.sample(2, steps=8, sampler=g.ode_sampler, guidance=1.0, noise=z)
    back = g.invert(images, steps=8)
    assert back.shape == z.shape and torch.isfinite(back).all()


def test_codec_scaling_round_trip(tiny_sd_invertible, tiny_pipelines):
    """``encode`` and ``decode`` apply the scaling (and SD3's shift) factor as the pipelines do: with a VAE that
    inverts its decodings, encode(decode(z)) ~ z on N(0, 1) latents; decode matches the pipeline's own decode."""
    g = load_generator(tiny_sd_invertible, "cpu")
    z = torch.randn(8, *g.noise_shape, generator=torch.Generator().manual_seed(0))
    rel = float((g.encode(g.decode(z)) - z).norm() / z.norm())
    assert rel < 0.7, rel
    sd3 = load_generator(tiny_pipelines["sd3"], "cpu")
    vae = sd3.pipe.vae
    assert vae.config.shift_factor and vae.config.scaling_factor != 1
    theirs = ((vae.decode(z / vae.config.scaling_factor + vae.config.shift_factor).sample + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(sd3.decode(z), theirs.detach(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["sd", "sd3", "ldm"])
def test_regenerate_is_seeded_and_bounded(generators, family):
    g = generators[family]
    x = g.sample(2, steps=3, guidance=1.0, seed=0)
    a, b = g.regenerate(x, 0.5, steps=3, seed=1), g.regenerate(x, 0.5, steps=3, seed=1)
    assert a.shape == x.shape and torch.equal(a, b) and 0 <= a.min() and a.max() <= 1
    assert not torch.equal(a, g.regenerate(x, 0.5, steps=3, seed=2))
    with pytest.raises(ValueError, match=r"t must lie in \(0, 1\]"):
        g.regenerate(x, 0.0)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_pipelines_sample_close_to_float32(tiny_pipelines, dtype):
    """Same seeds, same images up to the rounding of the dtype (the noise is drawn in float32 first)."""
    full = load_generator(tiny_pipelines["sd"], "cpu").sample(2, prompts="a shoe", steps=3, guidance=2.0, seed=0)
    half = load_generator(tiny_pipelines["sd"], "cpu", dtype=dtype)
    assert half.pipe.unet.dtype == getattr(torch, dtype)
    x = half.sample(2, prompts="a shoe", steps=3, guidance=2.0, seed=0)
    assert x.dtype == torch.float32 and float((x - full).abs().mean()) < 0.02


def test_height_width_and_their_limits(generators):
    sd, dit = generators["sd"], generators["dit"]
    x = sd.sample(1, prompts="a shoe", steps=2, height=24, width=16)
    assert x.shape == (1, 3, 24, 16)
    with pytest.raises(ValueError, match="multiples of 2"):
        sd.sample(1, prompts="a shoe", steps=2, height=15)
    with pytest.raises(ValueError, match="makes 16px images only"):
        dit.sample(1, labels=[0], steps=2, height=32)


def test_over_long_prompt_warns_once_and_is_truncated(generators):
    """A prompt over CLIP's 77 tokens: one warning from diffeval (diffusers' own logging is silenced), and the
    image is that of the truncated prompt."""
    g = generators["sd"]
    long = "a shoe " * 60
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = g.sample(1, prompts=long, steps=2, guidance=2.0)
    texts = [str(w.message) for w in caught if "tokenizer" in str(w.message)]
    assert len(texts) == 1 and "exceed the tokenizer's 77 tokens and are truncated" in texts[0]
    ids = g.pipe.tokenizer(long, truncation=True, max_length=77).input_ids
    cut = g.pipe.tokenizer.decode(ids[1:-1])
    torch.testing.assert_close(x, g.sample(1, prompts=cut, steps=2, guidance=2.0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_chain_walks_what_the_scheduler_walks(tiny_pipelines, tmp_path, spacing):
    """The VP chain run forwards equals the pipeline's own DDIM sampling for each timestep spacing diffusers has
    (with linspace and trailing the steps are not T / N apart, and DDIM still steps to t - T / N: so does the
    chain), and its inversion recovers the latents."""
    import json
    import shutil

    folder = tmp_path / "sd"
    shutil.copytree(tiny_pipelines["sd"], folder)
    cfg_path = folder / "scheduler" / "scheduler_config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "timestep_spacing": spacing}))
    g = load_generator(folder, "cpu")
    z = g.initial_noise(2, seed=3)
    final = g.sample(2, steps=7, sampler="ddim", guidance=1.0, noise=z, output="latent")
    cond, null = g.family.encode(2)
    ours = g.chain(7).run(g._model_fn(cond, null, 1.0), z.clone())
    torch.testing.assert_close(ours.cpu(), final, atol=1e-4, rtol=1e-4)
    back = g.invert_latents(final, steps=7, fixed_point=6)
    assert float((back - z).norm() / z.norm()) < 1e-2
