"""Diffusers pipeline folders as generators (tiny random-weight pipelines saved by the tests): loading, sampling,
the pickle and size checks, and benchmark rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffeval.benchmark import BenchmarkConfig, GridSpec, run_benchmark
from diffeval.benchmark.sources import GeneratorSource, resolve_source
from diffeval.generators.diffusers_pipeline import DiffusersGenerator

diffusers = pytest.importorskip("diffusers")  # in the test extra; optional for users


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    path = tmp_path_factory.mktemp("pipe") / "tiny-ddpm"
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=100)).save_pretrained(path)
    return path


def test_wrapped_pipeline_info_and_sampling(pipeline_dir):
    assert isinstance(resolve_source(str(pipeline_dir)), GeneratorSource)
    g = DiffusersGenerator(pipeline_dir)
    assert g.info.family == "diffusers" and g.info.conditioning == "none" and g.info.channels == 1
    x = g.sample(6, steps=3, sampler="ddim", seed=1)
    assert x.shape == (6, 1, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    # sample i depends only on (seed, i): batching and sharding do not change it
    parts = torch.cat([g.sample(2, steps=3, sampler="ddim", seed=1, first_index=i) for i in (0, 2, 4)])
    torch.testing.assert_close(parts, x, atol=1e-5, rtol=0)
    assert not torch.allclose(g.sample(6, steps=3, sampler="ddim", seed=2), x)
    with pytest.raises(ValueError, match="unconditional"):
        g.sample(2, steps=3, guidance=3.0)


def test_pipeline_directory_in_the_benchmark(pipeline_dir, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ref.npz", images=(rng.random((60, 8, 8, 1)) * 255).astype(np.uint8))
    config = BenchmarkConfig(
        [GridSpec([str(pipeline_dir)], samplers=["ddim", "ddpm"], steps=[2])],
        out=str(tmp_path / "o"),
        n=16,
        batch_size=8,
        reference=str(tmp_path / "ref.npz"),
        fid_resamples=0,
        device="cpu",
        progress=False,
    )
    table = run_benchmark(config)
    assert list(table["sampler"]) == ["ddim", "ddpm"] and table["error"].isna().all()
    assert (table["family"] == "diffusers").all() and np.isfinite(table["fid"]).all()


def test_pickled_pipeline_weights_are_refused_without_trust(pipeline_dir, tmp_path):
    """A pipeline saved with pickled (.bin) weights is refused like every other pickle, unless trusted."""
    import shutil

    unsafe = tmp_path / "pickled"
    shutil.copytree(pipeline_dir, unsafe)
    pipe = diffusers.DDPMPipeline.from_pretrained(str(unsafe))
    shutil.rmtree(unsafe)
    pipe.save_pretrained(unsafe, safe_serialization=False)
    assert list(unsafe.rglob("*.bin")) and not list(unsafe.rglob("*.safetensors"))
    with pytest.raises(ValueError, match=r"diffusion_pytorch_model\.bin: pickled weights .* refused"):
        DiffusersGenerator(unsafe)
    with pytest.raises(ValueError, match="pickled weights"):
        GeneratorSource(str(unsafe)).load("cpu")
    g = DiffusersGenerator(unsafe, trust_pickle=True)
    torch.testing.assert_close(g.sample(2, steps=2, sampler="ddim", seed=0),
                               DiffusersGenerator(pipeline_dir).sample(2, steps=2, sampler="ddim", seed=0))


def test_pipeline_parameters_are_counted_before_diffusers_builds_them(pipeline_dir, tmp_path, monkeypatch):
    """The meta-device count equals the built model's, for a diffusers and a transformers component; a UNet
    config edited to 3 G parameters is refused before diffusers allocates it."""
    import json
    import shutil

    import transformers

    from diffeval.generators.pipeline_size import check_pipeline_size, pipeline_parameters

    path = tmp_path / "pipe"
    shutil.copytree(pipeline_dir, path)
    text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=8))
    text.save_pretrained(path / "text_encoder")
    index = json.loads((path / "model_index.json").read_text())
    (path / "model_index.json").write_text(json.dumps({**index, "text_encoder": ["transformers", "CLIPTextModel"]}))
    unet = diffusers.UNet2DModel.from_pretrained(str(pipeline_dir / "unet"))
    assert pipeline_parameters(path) == {"unet": sum(p.numel() for p in unet.parameters()),
                                         "text_encoder": sum(p.numel() for p in text.parameters())}
    config = json.loads((path / "unet" / "config.json").read_text())
    config["block_out_channels"] = [8, 20000]
    config["norm_num_groups"] = 4
    (path / "unet" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"pipeline would have [\d,]+ parameters \(unet .* over the limit of "
                                         r"2,000,000,000; set DIFFEVAL_MAX_PARAMS"):
        DiffusersGenerator(path)
    monkeypatch.setenv("DIFFEVAL_MAX_PARAMS", "100")
    with pytest.raises(ValueError, match="over the limit of 100"):
        check_pipeline_size(pipeline_dir)


@pytest.fixture(scope="module")
def text_and_class_pipelines(tmp_path_factory):
    from ..pipelines import save_tiny_dit, save_tiny_sd

    root = tmp_path_factory.mktemp("pipelines")
    return save_tiny_sd(root / "tiny-sd"), save_tiny_dit(root / "tiny-dit")


def test_load_generator_takes_text_and_class_pipeline_folders(text_and_class_pipelines):
    """``load_generator`` (what every -g goes through) reads both folders; each image is seeded by its index, so
    batching does not change it; the fingerprint follows the weights."""
    from diffeval.generators import load_generator

    sd, dit = (load_generator(p, "cpu") for p in text_and_class_pipelines)
    assert (sd.info.conditioning, dit.info.conditioning) == ("text", "class")
    assert sd.image_shape == dit.image_shape == (3, 16, 16)
    x = sd.sample(3, prompts=["a shoe", "a bag", "a coat"], steps=2, guidance=2.0, seed=1)
    parts = torch.cat([sd.sample(1, prompts=[p], steps=2, guidance=2.0, seed=1, first_index=i)
                       for i, p in enumerate(["a shoe", "a bag", "a coat"])])
    torch.testing.assert_close(parts, x, atol=1e-5, rtol=0)
    y = dit.sample(2, labels=torch.tensor([1, 2]), steps=2, guidance=2.0, seed=1)
    assert y.shape == (2, 3, 16, 16) and 0 <= y.min() and y.max() <= 1
    assert len({sd.fingerprint(), dit.fingerprint()}) == 2 and sd.fingerprint() == load_generator(
        text_and_class_pipelines[0]).fingerprint()


def test_sample_and_benchmark_rows_for_text_and_class_pipelines(text_and_class_pipelines, tmp_path):
    """``diffeval sample`` on each folder, and a benchmark with a row per pipeline at its own scheduler (the
    default; it used to fail: the resolved scheduler name was refused when passed back) and at ``ddim``."""
    from click.testing import CliRunner

    from diffeval.cli import main

    sd, dit = map(str, text_and_class_pipelines)
    for args in (["-g", sd, "--prompt", "a shoe"], ["-g", dit, "--label", "3"]):
        r = CliRunner().invoke(main, ["sample", *args, "--n", "2", "--steps", "2", "--out", str(tmp_path / "g.png")],
                               obj={})
        assert r.exit_code == 0 and "2 images from" in r.output, r.output
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ref.npz", images=(rng.random((40, 16, 16, 3)) * 255).astype(np.uint8))
    config = BenchmarkConfig([GridSpec([sd, dit], samplers=[None, "ddim"], steps=[2])], out=str(tmp_path / "o"), n=8,
                             batch_size=4, reference=str(tmp_path / "ref.npz"), fid_resamples=0, device="cpu",
                             progress=False)
    table = run_benchmark(config)
    assert table["error"].isna().all(), table["error"].tolist()
    assert list(table["sampler"]) == ["DDIMScheduler", "ddim", "DDIMScheduler", "ddim"]
    assert list(table["nfe"]) == [4, 4, 4, 4] and np.isfinite(table["fid"]).all()


def test_v_prediction_text_pipeline_samples(tmp_path):
    """The SD 2.x kind (v-prediction scheduler) loads, reports its parameterization and samples."""
    from diffeval.generators import load_generator

    from ..pipelines import save_tiny_sd

    g = load_generator(save_tiny_sd(tmp_path / "tiny-sd2", prediction_type="v_prediction"), "cpu")
    assert g.info.parameterization == "v_prediction" and g.info.conditioning == "text"
    x = g.sample(2, prompts="a shoe", steps=2, guidance=2.0, seed=0)
    assert x.shape == (2, 3, 16, 16) and torch.isfinite(x).all()


def test_broken_pipeline_folders_give_one_line_errors(text_and_class_pipelines, tmp_path):
    """A missing component and a pipeline class diffusers does not have: one line each, nothing written."""
    import json
    import shutil

    from click.testing import CliRunner

    from diffeval.cli import main

    missing, unknown = tmp_path / "missing", tmp_path / "unknown"
    shutil.copytree(text_and_class_pipelines[0], missing)
    shutil.rmtree(missing / "unet")
    shutil.copytree(text_and_class_pipelines[0], unknown)
    index = json.loads((unknown / "model_index.json").read_text())
    (unknown / "model_index.json").write_text(json.dumps({**index, "_class_name": "NoSuchPipeline"}))
    for folder, says in ((missing, "component 'unet' (UNet2DConditionModel) named in model_index.json is missing"),
                         (unknown, "pipeline class 'NoSuchPipeline' is not one of diffusers")):
        out = tmp_path / f"{folder.name}.png"
        r = CliRunner().invoke(main, ["sample", "-g", str(folder), "--prompt", "a shoe", "--n", "1", "--steps", "1",
                                      "--out", str(out)], obj={})
        lines = [line for line in r.output.splitlines() if not line.startswith("warning:")]
        assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], r.output
        assert not out.exists()
