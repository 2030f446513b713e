"""Training a detector: Fashion-MNIST train images (label 0) against generated images (label 1) from
the chosen generators, balanced batches, augmentation, AdamW, a seeded validation split.

The generated images come from ``data.generated_images`` (cached, seed ``gen_seed``); evaluation
uses another seed, so test images are never training images.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from diffeval.checks import require_ints, require_range
from diffeval.data import load_fashion_mnist
from diffeval.io import atomic_write_text

from .data import GeneratedSpec, generated_images
from .metrics import detection_metrics
from .model import Detector, DetectorConfig, save_detector
from .perturb import AugmentConfig, augment


@dataclass
class DetectorTrainConfig:
    """steps of ``batch_size`` images (half real, half generated); n_per_generator generated images per
    training generator and as many real images in total (capped at the 60,000 of the train split).
    ``real_dir`` replaces Fashion-MNIST as the real class (every image in it); ``fake_dir`` adds its images to the
    generated class (``generators`` may then be empty). With either, every image enters through
    ``folders.InputPolicy`` (centre crop to ``crop`` or the smallest side, never resized)."""

    generators: list[str] = field(default_factory=lambda: ["ddpm", "sd1", "sd2"])  # NAME[@SAMPLER[:STEPS]]
    n_per_generator: int = 2000
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    seed: int = 0
    gen_seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    real_dir: str | None = None
    fake_dir: str | None = None
    crop: int | None = None

    def __post_init__(self) -> None:
        require_ints({"n_per_generator": (self.n_per_generator, 1), "steps": (self.steps, 1),
                      "batch_size": (self.batch_size, 2)})  # half real, half generated: two at least
        require_range("lr", self.lr, 0, open_lo=True)
        if self.crop is not None:
            require_ints({"crop": (self.crop, 8)})
        if not self.generators and not self.fake_dir:
            raise ValueError("--train-generators: name at least one generator (or give --fake)")


def train_config_from_dict(d: dict) -> DetectorTrainConfig:
    """A DetectorTrainConfig from its ``asdict`` form (as saved in a detector's config.json); fields the saved
    dict predates take their defaults, except the local spectrum (``DetectorConfig.from_dict``)."""
    rest = {k: v for k, v in d.items() if k not in ("augment", "detector")}
    return DetectorTrainConfig(**rest, augment=AugmentConfig(**d.get("augment", {})),
                               detector=DetectorConfig.from_dict(d.get("detector", {})))


def _split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = int(round(n * fraction))
    return perm[k:], perm[:k]


def training_sets(cfg: DetectorTrainConfig, cache_dir: str | Path, device: str = "cpu", data_dir=None,
                  progress: bool = False, trust_pickle: bool = False) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """(real uint8 (R, C, S, S), generated uint8 (G, C, S, S), manifest entries of the generated parts): 1x28x28
    Fashion-MNIST and bundled samples, or any sources under ``folders.InputPolicy`` when folders are given."""
    from .folders import apply_policy, choose_policy, read_folder

    fakes, entries = [], []
    for item in cfg.generators:
        x, entry = generated_images(GeneratedSpec.parse(item, cfg.gen_seed), cfg.n_per_generator, cache_dir,
                                    device, progress=progress, trust_pickle=trust_pickle)
        fakes.append(x)
        entries.append(entry)
    fake_files = read_folder(cfg.fake_dir)[0] if cfg.fake_dir else []
    if cfg.real_dir:
        real_src = read_folder(cfg.real_dir)[0]
    else:
        real_all, _ = load_fashion_mnist("train", data_dir)
        count = sum(len(f) for f in fakes) + len(fake_files)
        pick = torch.randperm(len(real_all), generator=torch.Generator().manual_seed(cfg.seed))[
            : min(count, len(real_all))
        ]
        real_src = real_all[pick]  # uint8 already
        if real_src.dtype != torch.uint8:
            raise TypeError(f"expected uint8 Fashion-MNIST images, got {real_src.dtype}")
    sources = [real_src, *fakes, *([fake_files] if fake_files else [])]
    plain = not (cfg.real_dir or cfg.fake_dir or cfg.crop)
    if plain and all(f.shape[1:] == real_src.shape[1:] for f in fakes):  # Fashion-MNIST against bundled samples
        return real_src, torch.cat(fakes), entries
    policy = choose_policy(sources, cfg.crop, cfg.detector.local_block)
    real = apply_policy(real_src, policy)[0]
    parts = [apply_policy(f, policy)[0] for f in sources[1:]]
    if fake_files:
        entries.append({"file": None, "generator": f"files:{Path(cfg.fake_dir).name}", "family": "files",
                        "backbone": "", "sampler": "", "steps": None, "guidance": None, "n": len(parts[-1])})
    fake = torch.cat(parts)
    if not len(real) or not len(fake):
        raise ValueError(f"no {'real' if not len(real) else 'generated'} image is at least {policy.size} px on "
                         "each side (--crop)")
    return real, fake, entries


def train_detector(cfg: DetectorTrainConfig, cache_dir: str | Path, out_dir: str | Path | None = None,
                   device: str = "cpu", data_dir=None, progress: bool = True,
                   sets: tuple[torch.Tensor, torch.Tensor, list[dict]] | None = None,
                   trust_pickle: bool = False) -> tuple[Detector, pd.DataFrame]:
    """Train, validate and (if ``out_dir``) save a detector. Returns it and its log (step, loss, elapsed_s)."""
    torch.manual_seed(cfg.seed)
    real, fake, entries = sets or training_sets(cfg, cache_dir, device, data_dir, progress, trust_pickle)
    if (real.shape[1], real.shape[-1]) != (cfg.detector.channels, cfg.detector.image_size):  # the input policy's
        cfg = replace(cfg, detector=replace(cfg.detector, channels=int(real.shape[1]), image_size=int(real.shape[-1])))
    r_tr, r_va = _split(len(real), cfg.val_fraction, cfg.seed)
    f_tr, f_va = _split(len(fake), cfg.val_fraction, cfg.seed + 1)
    model = Detector(cfg.detector).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    half = cfg.batch_size // 2
    log, t0 = [], time.time()
    for step in tqdm(range(cfg.steps), desc="train detector", disable=not progress):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        ri = r_tr[torch.randint(len(r_tr), (half,), generator=g)]
        fi = f_tr[torch.randint(len(f_tr), (half,), generator=g)]
        x = torch.cat([real[ri], fake[fi]]).float() / 255
        x = augment(x, cfg.augment, cfg.seed, step * cfg.batch_size)
        y = torch.cat([torch.zeros(half), torch.ones(half)])
        loss = F.binary_cross_entropy_with_logits(model(x.to(device)), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 50 == 0 or step + 1 == cfg.steps:
            log.append({"step": step + 1, "loss": loss.item(), "elapsed_s": round(time.time() - t0, 1)})
    model.eval()
    xv = torch.cat([real[r_va], fake[f_va]]).float() / 255
    yv = torch.cat([torch.zeros(len(r_va)), torch.ones(len(f_va))])
    val = detection_metrics(yv.numpy(), model.predict_proba(xv).numpy()) if len(r_va) and len(f_va) else {}
    if out_dir is not None:
        info = {"train_config": asdict(cfg), "generated": entries, "n_real": len(real), "n_generated": len(fake),
                "validation": val, "train_wall_s": round(time.time() - t0, 1), "torch": torch.__version__}
        save_detector(model, out_dir, info)
        atomic_write_text(Path(out_dir) / "train_log.csv", pd.DataFrame(log).to_csv(index=False))
    return model, pd.DataFrame(log)
