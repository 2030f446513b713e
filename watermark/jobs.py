"""The ``diffeval watermark`` commands as jobs: each takes its options as a config and returns what the CLI
prints, writing its files into its output."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from diffeval.checks import require_ints, require_seeds
from diffeval.io import atomic_write_text, ensure_writable

from .calibrate import CALIBRATION_SEED
from .detect import DetectSettings


@dataclass(frozen=True)
class KeygenJob:
    """``diffeval watermark keygen``: ``count`` keys for ``generator``'s initial-noise shape (the latent of a latent
    pipeline). ``radius`` None / ``channels`` () take ``keys.default_geometry``."""

    generator: str
    out_path: str
    scheme: str = "tree-ring"
    pattern: str = "rand"
    radius: float | None = None
    inner_radius: float = 0.0
    channels: tuple[int, ...] = ()
    seed: int | None = None
    count: int = 1
    layout: str = "centred"
    subkeys: int = 1
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        require_ints({"count": (self.count, 1), "subkeys": (self.subkeys, 1)})
        if self.subkeys > 1 and self.layout != "centred":
            raise ValueError("--subkeys: key sets have the centred layout")
        if self.scheme not in ("tree-ring", "gaussian-shading"):
            raise ValueError(f"--scheme: tree-ring or gaussian-shading, not {self.scheme!r}")
        if self.seed is not None:  # key i is drawn from seed + i
            require_seeds(seed=self.seed, last_key_seed=self.seed + self.count - 1)


def run_keygen(job: KeygenJob) -> str:
    """Write the key file(s) (mode 0600); one line per key."""
    from diffeval.generators import load_generator

    from .gaussian_shading import ShadingKey, save_shading_key
    from .keys import key_geometry, save_key
    from .keyset import KeySet, make_any_key, save_keyset

    g = load_generator(job.generator, trust_pickle=job.trust_pickle)
    shape = g.noise_shape
    radius, channels = key_geometry(g, job.radius, job.channels)
    out, lines = Path(job.out_path), []
    for i in range(job.count):
        path = out if job.count == 1 else out.with_name(f"{out.stem}-{i + 1}{out.suffix or '.safetensors'}")
        pattern = "gaussian-shading" if job.scheme == "gaussian-shading" else job.pattern
        key = make_any_key(shape, pattern, None if job.seed is None else job.seed + i, path.stem, radius, channels,
                           job.inner_radius, job.layout, job.subkeys)
        if isinstance(key, KeySet):
            save_keyset(key, path)
            lines.append(f"{path}: key set of {key.size} {key.pattern} members, shape {shape}, fingerprint "
                         f"{key.fingerprint}")
        elif isinstance(key, ShadingKey):
            save_shading_key(key, path)
            lines.append(f"{path}: Gaussian Shading key, {key.bits} message bits x {key.copies} copies, shape "
                         f"{shape}, fingerprint {key.fingerprint}")
        else:
            save_key(key, path)
            lines.append(f"{path}: {job.pattern} key ({job.layout}), radius {radius:g}, channels {list(channels)}, "
                         f"shape {shape}, fingerprint {key.fingerprint}")
    return "\n".join(lines)


@dataclass(frozen=True)
class EmbedJob:
    """``diffeval watermark embed``: ``n`` images carrying the key, optionally with their unmarked twins."""

    generator: str
    key_path: str
    out_dir: str
    n: int = 16
    prompts: tuple[str, ...] = ()
    labels: tuple[int, ...] = ()
    steps: int | None = None
    guidance: float | None = None
    seed: int = 0
    unmarked: bool = False
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        require_ints({"n": (self.n, 1)})
        require_seeds(seed=self.seed)


def run_embed(job: EmbedJob) -> str:
    """PNGs and a grid in OUT (and OUT/unmarked), embed.json with the settings; returns a summary line."""
    import torch

    from diffeval.generators import load_generator
    from diffeval.images import save_grid, save_pngs, to_uint8

    from .embed import EmbedSettings, generate
    from .keyfiles import load_any_key

    g = load_generator(job.generator, trust_pickle=job.trust_pickle)
    key = load_any_key(job.key_path)
    key.check_shape(g.noise_shape)
    n, cond = job.n, None
    if job.prompts:
        cond = {"prompts": [job.prompts[i % len(job.prompts)] for i in range(n)]}
    elif job.labels:
        cond = {"labels": torch.tensor([job.labels[i % len(job.labels)] for i in range(n)])}
    settings = EmbedSettings(steps=job.steps, guidance=job.guidance, seed=job.seed)
    out = Path(job.out_dir)
    for sub, k in [("", key), *([("unmarked", None)] if job.unmarked else [])]:
        images = generate(g, k, n, settings, conditions=cond, progress=True)
        save_pngs(to_uint8(images), out / sub)
        save_grid(images, out / sub / "grid.png")
    info = {"generator": g.info.name, "key": key.label, "fingerprint": key.fingerprint, "n": n, **asdict(settings)}
    atomic_write_text(out / "embed.json", json.dumps(info, indent=1) + "\n")
    return f"{n} marked images in {out}" + (f" (unmarked twins in {out / 'unmarked'})" if job.unmarked else "")


@dataclass(frozen=True)
class DetectJob:
    """``diffeval watermark detect``: score image files (or folders of them) against the key(s)."""

    images: tuple[str, ...]
    generator: str
    key_paths: tuple[str, ...]
    detect: DetectSettings = field(default_factory=DetectSettings)
    out_path: str | None = None
    null_path: str | None = None
    trust_pickle: bool = False


def image_files_of(items: tuple[str, ...]) -> list[Path]:
    """Files as given and the image files below given folders (their grid.png left out), each once, in order."""
    from diffeval.images import image_files

    files: list[Path] = []
    for item in items:
        p = Path(item)
        found = [q for q in image_files(p) if q.name != "grid.png"] if p.is_dir() else [p]
        files.extend(q for q in found if q not in files)
    if not files:
        raise ValueError("no image files given")
    return files


def run_detect(job: DetectJob) -> str:
    """One row per image (written as OUT.csv/.md/.json when ``out_path`` is given); returns the rows and a count."""
    from diffeval.generators import load_generator
    from diffeval.io import write_table

    from .detect import detect_files
    from .keyfiles import load_any_key
    from .null import load_null

    files = image_files_of(job.images)
    if job.out_path:
        ensure_writable(Path(job.out_path).parent)  # before the inversion work, not after it
    g = load_generator(job.generator, trust_pickle=job.trust_pickle)
    keys = [load_any_key(k) for k in job.key_paths]
    null = load_null(job.null_path) if job.null_path else None  # detect_files checks it before reading images
    table = detect_files(g, files, keys, job.detect, progress=True, null=null)
    if job.out_path:
        out = Path(job.out_path)
        write_table(table, out.parent, out.stem, {"generator": job.generator, "keys": list(job.key_paths),
                                                  "null": job.null_path, **asdict(job.detect)})
    bad = int((table["error"] != "").sum())
    return (table.to_string(index=False) + f"\n{int(table['detected'].sum())} of {len(table) - bad} readable images "
            f"carry a key at alpha={job.detect.alpha:g}"
            + (f"; {bad} could not be checked (see the error column)" if bad else ""))


@dataclass(frozen=True)
class CalibrateJob:
    """``diffeval watermark calibrate``: the null of a key geometry for ``generator`` from ``n`` unmarked images
    (drawn from ``seed``, which must not be an evaluation seed), inverted with ``detect``'s settings. The geometry
    comes from ``key_path`` when given (its values do not matter), else from radius / inner_radius / channels
    (``keys.default_geometry`` where not given)."""

    generator: str
    out_path: str
    key_path: str | None = None
    radius: float | None = None
    inner_radius: float = 0.0
    channels: tuple[int, ...] = ()
    n: int = 1000
    seed: int = CALIBRATION_SEED
    attacks: str = ""
    steps: int | None = None
    guidance: float | None = None
    detect: DetectSettings = field(default_factory=DetectSettings)
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        require_ints({"n": (self.n, 2)})
        require_seeds(seed=self.seed)


def run_calibrate(job: CalibrateJob) -> str:
    """Write the null file; returns a summary line with the coordinates' largest deviations from white noise."""
    from diffeval.generators import load_generator

    from .calibrate import calibrate_null
    from .embed import EmbedSettings
    from .keyfiles import load_any_key
    from .keys import WatermarkKey, key_geometry, make_key
    from .keyset import region_key
    from .null import save_null

    ensure_writable(Path(job.out_path).parent)
    g = load_generator(job.generator, trust_pickle=job.trust_pickle)
    if job.key_path:
        key = load_any_key(job.key_path)
        key = region_key(key)  # a key set's members share the geometry
        if not isinstance(key, WatermarkKey):
            raise ValueError(f"{job.key_path} is a Gaussian Shading key: its binomial test needs no calibrated null")
        key.check_shape(g.noise_shape)
    else:
        radius, channels = key_geometry(g, job.radius, job.channels)
        key = make_key(g.noise_shape, "rings", radius, channels, seed=0, inner_radius=job.inner_radius)
    dim = int(key.mask.sum()) * len(key.channels)
    if job.n < dim + 2:  # before the generation and inversion work
        raise ValueError(f"the key region has {dim} coordinates: calibrate with --n >= {dim + 2} (1,000 or more "
                         "for a p-value rule at alpha = 0.01)")
    from .calibrate import calibration_attacks
    from .robustness import attack_tools

    attacks = calibration_attacks(job.attacks)
    embed = EmbedSettings(steps=job.steps, guidance=job.guidance, seed=job.seed)
    null = calibrate_null(g, key, job.n, embed, job.detect, progress=True, attacks=attacks, tools=attack_tools(g))
    path = save_null(null, job.out_path)
    sd = null.coords.std(0)
    return (f"{path}: null of {null.dim} coordinates (radius {key.radius:g}, channels {list(key.channels)}) from "
            f"{null.n} unmarked images of {job.generator}; |mean| <= {float(null.mean.abs().max()):.3f}, "
            f"std {float(sd.min()):.3f}-{float(sd.max()):.3f} (white noise: 0 and 1)")


def whole_numbers(option: str, text: str, example: str) -> tuple[int, ...]:
    """A comma list of integers ('2,16,256' -> (2, 16, 256); empty items skipped); a one-line ValueError naming
    ``option`` otherwise."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{option}: a comma list of whole numbers like {example}, not {text!r}") from None


def robustness_config(generators: tuple[str, ...], baselines: str, steps: int | None, seed: int,
                      no_quality: bool, detect: DetectSettings, schemes: tuple[str, ...] = ("tree-ring",),
                      **settings):
    """The RobustnessConfig of ``diffeval watermark robustness``'s options (attacks and baselines checked first)."""
    from .attacks import attacks_from
    from .baselines import BASELINES
    from .embed import EmbedSettings
    from .robustness import RobustnessConfig

    attacks_from(settings["attacks"])  # fail early on a bad attack list
    attacks_from(settings.get("calibrate_attacks", ""))
    methods = BASELINES if baselines == "all" else tuple(b for b in baselines.split(",") if b)
    unknown = [b for b in methods if b not in BASELINES]
    if unknown:
        raise ValueError(f"--baselines: unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    from .robustness import GAUSSIAN_SHADING

    settings["identify"] = whole_numbers("--identify", settings.pop("identify", ""), "2,16,256")
    patterns = tuple(settings.pop("patterns", ("rings", "rand")))
    patterns = patterns if "tree-ring" in schemes else ()
    patterns += (GAUSSIAN_SHADING,) if GAUSSIAN_SHADING in schemes else ()
    return RobustnessConfig(generators=tuple(generators), baselines=methods, quality=not no_quality, patterns=patterns,
                            embed=EmbedSettings(steps=steps, seed=seed), detect=detect, **settings)


def run_robustness_job(config, out_dir: str, progress: bool = True) -> str:
    """Run the evaluation, write its tables and plots into ``out_dir``; returns the main columns and paths."""
    from .report import over_keys, paper_average, write_robustness
    from .robustness import run_robustness

    ensure_writable(out_dir)
    table, scores, quality = run_robustness(config, out_dir, progress=progress)
    paths = write_robustness(table, scores, quality, out_dir, asdict(config))
    if table["key"].nunique() > 1:
        cols = ["generator", "pattern", "attack", "keys", "auc_median", "auc_p10", "auc_worst", "fpr_at_alpha_worst"]
        text = [over_keys(table)[cols].to_string(index=False)]
    else:
        cols = ["generator", "pattern", "attack", "auc", "tpr_at_1pct_fpr", "fpr_at_alpha"]
        text = [table[cols].to_string(index=False)]
    avg = paper_average(table)
    if len(avg):
        text.append(avg.to_string(index=False))
    return "\n".join([*text, "wrote " + ", ".join(str(p) for p in paths.values())])


def forgery_config(steps: int | None, seed: int, detect: DetectSettings, known: str, **settings):
    """The ForgeryConfig of ``diffeval watermark forgery``'s options (``known``: a comma list like '1,4,16')."""
    from .embed import EmbedSettings
    from .forgery import ForgeryConfig

    schemes, attacks = tuple(settings.pop("schemes")), tuple(settings.pop("attacks"))
    return ForgeryConfig(known=whole_numbers("--known", known, "1,4,16"), embed=EmbedSettings(steps=steps, seed=seed),
                         detect=detect, schemes=schemes, attacks=attacks, **settings)


def run_forgery_job(config, out_dir: str, progress: bool = True) -> str:
    """Run the forgery attacks, write forgery.{csv,md,json} and forged_acceptance.png into ``out_dir``; returns
    the summary over keys and the paths."""
    from .forgery import forgery_summary, run_forgery
    from .report import write_forgery

    ensure_writable(out_dir)
    table = run_forgery(config, out_dir, progress=progress)
    paths = write_forgery(table, out_dir, asdict(config))
    summary = forgery_summary(table)
    return "\n".join([summary.to_string(index=False, float_format=lambda v: f"{v:.3g}"),
                      "wrote " + ", ".join(str(p) for p in paths.values())])
