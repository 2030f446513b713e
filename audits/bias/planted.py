"""The planted-bias twins: two small text generators that differ only in their training captions.

``shoe-skewed`` is trained on captions where 80% of the images captioned "a shoe" are sneakers (10%
sandals, 10% ankle boots); ``shoe-even`` on the normal captions (a third each). Everything else is the
same: architecture (the ``sd2`` design, a v-prediction UNet with a text encoder, at 32 base channels so
the pair adds under 8 MB), seed, optimizer, budget. An audit of "a shoe" with the bundled judge should
recover 0.8 on the skewed twin and parity with the reference on the even one.

    python -m diffeval.bundle shoe-skewed shoe-even          # retrain both (weights -> assets/<name>)
    diffeval audit bias --generator shoe-skewed --prompts fashion --attributes judge ...

The shipped pair was trained side by side on one GPU (H200), each run recorded in its config.json:
``--max-wall-s 400 --batch-size 256 --lr 4e-4 --warmup 500 --lr-schedule cosine`` (3,766 / 3,844 steps),
then ``--continue --max-wall-s 180 --lr 2e-4 --warmup 100`` (1,872 / 1,866 more).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from diffeval.data.captions import BROAD_WORDS, CLASS_WORDS, caption_class_shares, captions_per_class
from diffeval.generators.presets import PIXEL_UNET, Preset, build_presets
from diffeval.generators.training.config import TrainConfig

ASSETS_DIR = Path(__file__).parent / "assets"
PLANTED_SKEW: dict[str, dict[int, float]] = {"a shoe": {7: 0.8}}
TWINS: dict[str, dict[str, dict[int, float]] | None] = {"shoe-skewed": PLANTED_SKEW, "shoe-even": None}


def twin_presets(vocab: list[str] | tuple[str, ...]) -> dict[str, Preset]:
    """Both twins as presets (``extra["skew"]`` holds the caption skew the trainer applies)."""
    base = build_presets(vocab)["sd2"]
    out = {}
    for name, skew in TWINS.items():
        model = copy.deepcopy(base.model)
        # the twins stay pixel-space models (trained before the latent presets; their audit needs no decoder)
        model.autoencoder = {}
        model.backbone_config = {**PIXEL_UNET, "base_channels": 32}
        # SD's scaled-linear schedule ends at alpha(1) = 0.068: trained at t = 1 on inputs that still show the
        # image's brightness, the first twins drew far too many (bright) ankle boots for broad words from pure
        # noise; zero terminal SNR (Lin et al. 2024) removes that train/sample mismatch
        model.schedule = dataclasses.replace(model.schedule, zero_terminal_snr=True)
        # the step budget of a CPU run; the shipped pair was trained for wall-clock budgets (module docstring)
        train = TrainConfig(steps=3800, batch_size=256, lr=4e-4, warmup=500, lr_schedule="cosine",
                            ema_decay=0.9995, cond_dropout=0.1, seed=6000)
        out[name] = Preset(name, "sd2", model, train, dataclasses.replace(base.sampling, clip_x0=True),
                           f"sd2 design at 32 channels, captions {'skewed ' + str(skew) if skew else 'unskewed'}",
                           extra={"skew": skew, "out_dir": str(ASSETS_DIR / name)})
    return out


def twin_path(name: str) -> Path:
    """The checkpoint directory of a twin; a clear error when its weights are not installed."""
    if name not in TWINS:
        raise ValueError(f"unknown planted-bias twin {name!r}; choose one of {', '.join(TWINS)}")
    path = ASSETS_DIR / name
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"planted-bias twin {name!r} is not installed (expected {path}/model.safetensors); "
                                f"train it with `python -m diffeval.bundle {name}`")
    return path


def planted_truth(name: str, phrase: str = "a shoe") -> dict[str, float]:
    """The class shares among the twin's training images captioned ``phrase``: what an audit should find."""
    shares = caption_class_shares(captions_per_class(skew=TWINS[name]), phrase)
    return {CLASS_WORDS[c]: shares.get(c, 0.0) for c in BROAD_WORDS[phrase]}
