"""Reproducible training of everything bundled with the package.

    python -m diffeval.bundle judge            # the Fashion-MNIST judge -> diffeval/assets/judge
    python -m diffeval.bundle autoencoder      # the latent presets' autoencoder -> generators/bundled/autoencoder
    python -m diffeval.bundle ddpm sd1 ...     # presets -> generators/bundled/<name>
    python -m diffeval.bundle all              # judge, autoencoder, then every preset in order
    python -m diffeval.bundle dit --continue --steps 3000   # train the bundled dit further
    python -m diffeval.bundle shoe-skewed shoe-even   # the bias audit's planted-bias twins -> audits/bias/assets
    python -m diffeval.bundle ddpm --max-wall-s 330 --batch-size 128 --out runs/   # a wall-clock budget (GPU)

Seeds, budgets and wall times are written into each checkpoint's config.json ("training").
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from diffeval.checks import require_ints
from diffeval.generators import BUNDLED_DIR, load_checkpoint
from diffeval.generators.autoencoder import AUTOENCODER_DIR, Autoencoder, AutoencoderConfig, load_autoencoder
from diffeval.generators.checkpoints import read_config
from diffeval.generators.devices import pick_device
from diffeval.generators.model import DiffusionModel
from diffeval.generators.presets import PRESET_NAMES, build_presets
from diffeval.generators.samplers import NoiseSource
from diffeval.generators.tokenizer import WordTokenizer
from diffeval.generators.training import TrainingData, train
from diffeval.generators.training.autoencoder import AutoencoderTrainConfig, train_autoencoder
from diffeval.io import atomic_torch_save

from .data import caption_corpus, captions_per_class, load_fashion_mnist
from .judge import JUDGE_DIR
from .judge.train import train_judge


def text_vocab() -> list[str]:
    """The vocabulary of the bundled text presets: every word of the caption set and evaluation prompts."""
    return WordTokenizer.from_texts(caption_corpus()).vocab


def all_presets() -> dict:
    """The generator presets and the bias audit's planted-bias twins, by name."""
    from diffeval.audits.bias.planted import twin_presets

    vocab = text_vocab()
    return {**build_presets(vocab), **twin_presets(vocab)}


def preset_home(preset) -> Path:
    """Where a preset is bundled: generators/bundled/<name>, or the preset's own ``extra["out_dir"]``."""
    return Path(preset.extra["out_dir"]) if "out_dir" in preset.extra else BUNDLED_DIR / preset.name


def fashion_training_data(data_dir: str | Path | None = None, skew: dict | None = None,
                          autoencoder: Autoencoder | None = None) -> TrainingData:
    """Fashion-MNIST train with its captions; with ``autoencoder``, encoded to the model-space latents a latent
    model trains on (the posterior mean, scaled; encoded once, in float32)."""
    images, labels = load_fashion_mnist("train", data_dir)
    if autoencoder is not None:
        images = autoencoder.encode_batched(images)
    return TrainingData(images=images, labels=labels, captions=captions_per_class(skew=skew),
                        model_space=autoencoder is not None)


def train_bundled_autoencoder(out_dir: str | Path | None = None, steps: int | None = None, device: str = "auto",
                              data_dir: str | Path | None = None, resume: bool = True, progress: bool = True,
                              ) -> pd.DataFrame:
    """Train the latent presets' autoencoder on Fashion-MNIST train into ``out_dir`` (default: the bundled
    folder, generators/bundled/autoencoder). Returns its loss log."""
    if steps is not None:
        require_ints({"steps": (steps, 1)})
    cfg = AutoencoderTrainConfig(device=device)
    if steps is not None:
        cfg.steps = steps
    images, _ = load_fashion_mnist("train", data_dir)
    provenance = {"data": "Fashion-MNIST train (60,000)", "command": " ".join(sys.argv)}
    return train_autoencoder(images, AutoencoderConfig(), cfg, out_dir or AUTOENCODER_DIR, provenance, resume,
                             progress)


def reflow_pairs(base, n: int, steps: int, guidance: float, seed: int, data: TrainingData) -> TrainingData:
    """(noise, sample) pairs from ``base``'s deterministic sampler with captions drawn like training (in model
    space: latents for a latent base)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    prompts = [
        data.captions[lab][int(torch.randint(len(data.captions[lab]), (1,), generator=g))] for lab in labels.tolist()
    ]
    noise = NoiseSource(seed, range(n), base.noise_shape).draw()
    latent = base.autoencoder is not None
    images = base.sample(n, prompts=prompts, steps=steps, sampler="euler", guidance=guidance, noise=noise,
                         progress=True, output="latent" if latent else "image")
    return TrainingData(images=images, labels=labels, prompts=prompts, noise=noise, model_space=latent)


def train_preset(
    name: str,
    out_dir: str | Path | None = None,
    steps: int | None = None,
    device: str = "auto",
    data_dir: str | Path | None = None,
    base_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    init_from: str | Path | None = None,
    overrides: dict | None = None,
    trust_pickle: bool = False,
    autoencoder_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Train preset ``name`` on Fashion-MNIST into ``out_dir`` (default: the bundled folder).

    ``init_from``: a checkpoint directory of the same architecture whose weights start the run (to
    continue training an exported model with a fresh optimizer); ignored when resuming from
    ``out_dir/train_state.pt``. ``overrides``: TrainConfig fields to replace (lr, lr_schedule, ...).
    A latent preset trains over the autoencoder in ``autoencoder_dir`` (default: the bundled one), which its
    checkpoint then carries.
    """
    if steps is not None:
        require_ints({"steps": (steps, 1)})
    presets = all_presets()
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(presets)}")
    preset = presets[name]
    out = Path(out_dir) if out_dir else preset_home(preset)
    cfg = _train_config(preset, device, steps, overrides)
    skew = preset.extra.get("skew")
    autoencoder = None
    if preset.model.autoencoder and not preset.base:  # a reflow student takes its base's autoencoder
        autoencoder = load_autoencoder(autoencoder_dir, pick_device(device), trust_pickle)
        preset.model.autoencoder = autoencoder.config.to_dict()  # its measured scale and shift
    data = fashion_training_data(data_dir, skew=skew, autoencoder=autoencoder)
    model = DiffusionModel(preset.model)
    provenance = {"preset": name, "data": "Fashion-MNIST train (60,000)", "command": " ".join(sys.argv)}
    if autoencoder is not None:
        provenance["autoencoder"] = str(autoencoder_dir or AUTOENCODER_DIR)
    if skew:
        provenance["caption_skew"] = {phrase: {str(c): v for c, v in shares.items()} for phrase, shares in skew.items()}
    if init_from:
        provenance["init_from"] = _start_from(model, cfg, init_from, trust_pickle)
    if preset.base:
        data, autoencoder = _reflow_start(preset, model, cfg, data, out, base_dir, device, provenance, trust_pickle)
    log = train(model, data, cfg, out, name, preset.family, preset.sampling, provenance, resume, progress,
                autoencoder=autoencoder)
    for leftover in ("train_state.pt", "reflow_pairs.pt"):
        if out_dir is None and (out / leftover).exists():
            (out / leftover).unlink()  # keep the bundled folder to config + weights + loss log
    return log


def _train_config(preset, device: str, steps: int | None, overrides: dict | None):
    """The preset's TrainConfig on ``device`` with the step budget and the given fields replaced."""
    cfg = preset.train
    cfg.device = device
    if steps is not None:
        cfg.steps = steps
    for key, value in (overrides or {}).items():
        if not hasattr(cfg, key):
            raise ValueError(f"unknown training setting {key!r}")
        setattr(cfg, key, value)
    return cfg


def _start_from(model: DiffusionModel, cfg, init_from: str | Path, trust_pickle: bool = False) -> dict:
    """Load ``init_from``'s weights into ``model`` and move the batch seed past its steps; returns provenance."""
    start = load_checkpoint(init_from, "cpu", trust_pickle)
    model.load_state_dict(start.model.state_dict())
    done = read_config(init_from).get("training", {})
    cfg.seed += int(done.get("steps_done") or 0)  # fresh batches, not a replay of the first run's
    return {"path": str(init_from), "steps_done": done.get("steps_done"), "train_wall_s": done.get("train_wall_s"),
            "init_from": done.get("init_from")}


def _reflow_start(preset, model: DiffusionModel, cfg, data: TrainingData, out: Path, base_dir, device: str,
                  provenance: dict, trust_pickle: bool = False) -> tuple[TrainingData, Autoencoder | None]:
    """Start a reflow student from its base's weights; its training data are (noise, sample) pairs of the
    base, made once and kept in OUT/reflow_pairs.pt until training ends. Returns the pairs and the base's
    autoencoder (the student's, too)."""
    base_path = Path(base_dir) if base_dir else BUNDLED_DIR / preset.base
    base = load_checkpoint(base_path, device, trust_pickle)
    model.load_state_dict(base.model.state_dict())
    model.config.autoencoder = base.config.autoencoder
    pairs_path = out / "reflow_pairs.pt"
    if pairs_path.is_file():
        saved = torch.load(pairs_path, weights_only=True)
        data = TrainingData(images=saved["images"], labels=saved["labels"], prompts=saved["prompts"],
                            noise=saved["noise"], model_space=base.autoencoder is not None)
    else:
        t0 = time.time()
        extra = preset.extra
        data = reflow_pairs(base, extra["pairs"], extra["pair_steps"], extra["pair_guidance"], cfg.seed, data)
        atomic_torch_save(pairs_path, {"images": data.images, "labels": data.labels, "prompts": data.prompts,
                                       "noise": data.noise})
        provenance["pair_wall_s"] = round(time.time() - t0, 1)
    provenance.update(base=str(base_path), data=f"{len(data)} reflow pairs from {preset.base}", **preset.extra)
    return data, base.autoencoder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="+", help="judge, preset names, or all")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=None, help="override every preset's step budget")
    parser.add_argument("--continue", dest="cont", action="store_true",
                        help="start each preset from its current bundled weights (fresh optimizer)")
    parser.add_argument("--lr", type=float, default=None, help="override the preset's AdamW learning rate")
    parser.add_argument("--lr-schedule", choices=["constant", "cosine"], default=None)
    parser.add_argument("--ema-decay", type=float, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-wall-s", type=float, default=None,
                        help="stop after this many seconds; the cosine decay follows the elapsed fraction")
    parser.add_argument("--out", default=None, help="write each model to OUT/<name> instead of its bundled folder")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {"lr": args.lr, "lr_schedule": args.lr_schedule, "ema_decay": args.ema_decay,
                                   "warmup": args.warmup, "batch_size": args.batch_size,
                                   "max_wall_s": args.max_wall_s}.items() if v is not None}
    todo = ["judge", "autoencoder", *PRESET_NAMES] if args.what == ["all"] else args.what
    presets = all_presets()
    for item in todo:
        t0 = time.time()
        if item == "judge":
            meta = train_judge(
                load_fashion_mnist("train", args.data_dir), load_fashion_mnist("test", args.data_dir), JUDGE_DIR
            )
            print(f"judge: test accuracy {meta['test_accuracy']:.4f}", flush=True)
        elif item == "autoencoder":
            log = train_bundled_autoencoder(Path(args.out) / item if args.out else None, args.steps, args.device,
                                            args.data_dir)
            print(f"autoencoder: final loss {log['loss'].iloc[-1]:.4f}", flush=True)
        else:
            init = None
            if item not in presets:
                raise ValueError(f"unknown preset {item!r}; choose judge or one of {', '.join(presets)}")
            home = preset_home(presets[item])
            if args.cont and (home / "model.safetensors").is_file():
                init = home / "_start"
                shutil.rmtree(init, ignore_errors=True)
                shutil.copytree(home, init)
            out = Path(args.out) / item if args.out else None
            own_ae = Path(args.out) / "autoencoder" if args.out else None  # one trained in the same --out run
            log = train_preset(item, out_dir=out, steps=args.steps, device=args.device, data_dir=args.data_dir,
                               init_from=init, overrides=overrides,
                               autoencoder_dir=own_ae if own_ae and (own_ae / "config.json").is_file() else None)
            if init is not None:
                shutil.rmtree(init)
            print(f"{item}: final loss {log['loss'].iloc[-1]:.4f}", flush=True)
        print(f"{item}: {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
