"""The ``diffeval detect`` commands as jobs: each takes its options as a config and returns what the CLI
prints, writing its files into the output folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from diffeval.checks import require_ints, require_range, require_seeds


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


@dataclass(frozen=True)
class TrainJob:
    """``diffeval detect train``: see its --help for each option."""

    train_generators: str = "ddpm,sd1,sd2"
    n_per_generator: int = 2000
    branches: str = "both"
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    stem_stride: int = 1
    pretrained: str | None = None
    local_block: int = 4
    no_augment: bool = False
    dark_p: float = 0.0
    seed: int = 0
    cache_dir: str = "detector_cache"
    device: str = "cpu"
    out_dir: str = "detector"
    real_dir: str | None = None
    fake_dir: str | None = None
    crop: int | None = None
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        require_seeds(seed=self.seed)
        require_range("dark_p", self.dark_p, 0, 1)
        self.train_config()  # every other range, before any work

    def train_config(self):
        """The DetectorTrainConfig these options describe."""
        from .model import DetectorConfig
        from .perturb import AugmentConfig
        from .train import DetectorTrainConfig

        off = {"blur_p": 0, "blur_max": 0, "jpeg_p": 0, "jpeg_min": 0, "resize_p": 0, "resize_min": 0}
        aug = AugmentConfig(**off, dark_p=self.dark_p) if self.no_augment else AugmentConfig(dark_p=self.dark_p)
        detector = DetectorConfig(branches=self.branches, stem_stride=self.stem_stride, pretrained=self.pretrained,
                                  local_block=self.local_block)
        return DetectorTrainConfig(_comma_list(self.train_generators), self.n_per_generator, self.steps,
                                   self.batch_size, self.lr, seed=self.seed, augment=aug, detector=detector,
                                   real_dir=self.real_dir, fake_dir=self.fake_dir, crop=self.crop)


def run_train(job: TrainJob) -> str:
    """Train and save the detector into OUT; returns the final loss and validation metrics."""
    from .train import train_detector

    _, log = train_detector(job.train_config(), job.cache_dir, job.out_dir, job.device, trust_pickle=job.trust_pickle)
    val = json.loads((Path(job.out_dir) / "config.json").read_text())["info"]["validation"]
    return f"final loss {log['loss'].iloc[-1]:.4f}; validation " + ", ".join(f"{k} {v:.4f}" for k, v in val.items())


@dataclass(frozen=True)
class EvalJob:
    """``diffeval detect eval``: see its --help for each option."""

    detector_dir: str
    generators: str = "ddpm,sd1,sd2,dit,sd3,sd3-reflow"
    n: int = 1000
    perturbations: str = "none,jpeg95,jpeg75,jpeg50,blur1,blur2,resize0.5"
    seed: int = 1
    cache_dir: str = "detector_cache"
    device: str = "cpu"
    out_dir: str = "detector_eval"
    real_dir: str | None = None
    fake_dir: str | None = None
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        from .perturb import check_perturbation

        require_ints({"n": (self.n, 1)})
        require_seeds(seed=self.seed)
        if not _comma_list(self.perturbations):
            raise ValueError("--perturbations: name at least one (none for the images as they are)")
        for name in _comma_list(self.perturbations):
            check_perturbation(name)


def run_eval(job: EvalJob) -> str:
    """eval.csv/.md/.json in OUT (one row per generator, sampler, steps and perturbation); returns the table."""
    from diffeval.io import write_table

    from .data import GeneratedSpec
    from .evaluate import evaluate_detector
    from .model import load_detector

    specs = [GeneratedSpec.parse(g, job.seed) for g in _comma_list(job.generators)]
    if not specs and not job.fake_dir:
        raise ValueError("--generators: name at least one generator (or give --fake)")
    model = load_detector(job.detector_dir, job.device, job.trust_pickle)
    table = evaluate_detector(model, specs, job.n, job.cache_dir, _comma_list(job.perturbations), job.device,
                              trust_pickle=job.trust_pickle, real_dir=job.real_dir, fake_dir=job.fake_dir)
    write_table(table, job.out_dir, "eval", asdict(job), floatfmt=".4f")
    return table.to_string(index=False)


@dataclass(frozen=True)
class PredictJob:
    """``diffeval detect predict``: P(generated) of each image file."""

    images: tuple[str, ...]
    detector_dir: str
    out_csv: str | None = None
    trust_pickle: bool = False


def run_predict(job: PredictJob) -> str:
    """The rows (also written to ``out_csv`` when given) as text."""
    from diffeval.io import atomic_write_text

    from .evaluate import predict_files
    from .model import load_detector

    rows = predict_files(load_detector(job.detector_dir, trust_pickle=job.trust_pickle), job.images)
    if job.out_csv:
        atomic_write_text(job.out_csv, rows.to_csv(index=False))
    return rows.to_string(index=False)
