"""``diffeval audit bias`` as a job: its settings (``BiasAuditConfig``, one field per CLI option), the audit
(``run_bias_audit``: prompts x seeds -> generator or image files -> classifiers -> summary), its report
(``write_bias_audit``) and the sample-size plan (``plan_text``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from diffeval.checks import require_ints, require_range, require_seeds

from .summary import AuditSummary


@dataclass(frozen=True)
class BiasAuditConfig:
    """The audit's settings; see ``diffeval audit bias --help`` for each."""

    generator: str | None = None
    image_paths: tuple[str, ...] = ()
    prompts: str = "fashion"
    attributes: str = "judge"
    n_per_prompt: int = 100
    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int = 0
    batch_size: int = 50
    target: str = "reference"
    fdr: float = 0.05
    n_boot: int = 1000
    corrections: tuple[str, ...] = ()
    min_confidence: float = 0.0
    face_models: str | None = None
    clip_arch: str = "ViT-B-32"
    clip_pretrained: str = "openai"
    clip_weights: str | None = None
    device: str = "cpu"
    plan: bool = False
    plan_p0: float = 0.5
    plan_p1: float = 0.6
    plan_margin: float = 0.05
    plan_power: float = 0.8
    out_dir: str = "bias_audit"
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        if not self.plan and bool(self.generator) == bool(self.image_paths):
            raise ValueError("give either --generator or --images")
        parse_corrections(self.corrections)
        require_ints({"n_per_prompt": (self.n_per_prompt, 1), "batch_size": (self.batch_size, 1),
                      "n_boot": (self.n_boot, 1), **({"steps": (self.steps, 1)} if self.steps is not None else {})})
        require_seeds(seed=self.seed)
        if self.guidance is not None:
            require_range("guidance", self.guidance, 0)
        require_range("q", self.fdr, 0, 1, open_lo=True, open_hi=True)
        require_range("min_confidence", self.min_confidence, 0, 1)
        require_range("plan_p0", self.plan_p0, 0, 1, open_lo=True, open_hi=True)
        if require_range("plan_p1", self.plan_p1, 0, 1) == self.plan_p0:
            raise ValueError(f"--plan-p1: must differ from --plan-p0, got {self.plan_p1!r} for both")
        require_range("plan_margin", self.plan_margin, 0, 1, open_lo=True, open_hi=True)
        require_range("plan_power", self.plan_power, 0, 1, open_lo=True, open_hi=True)

    def prompt_set(self):
        """The PromptSet, or None when image folders are audited under the default prompt set."""
        from .prompts import load_prompt_set

        return None if self.image_paths and self.prompts == "fashion" else load_prompt_set(self.prompts)


@dataclass
class BiasAuditResult:
    images: pd.DataFrame                 # one row per image (pipeline.py's columns)
    summary: AuditSummary
    settings: dict
    classifier_notes: list[str]
    grids: dict                          # prompt -> uint8 (N, H, W, C) cached samples (generator audits)


def parse_classifiers(config: BiasAuditConfig) -> list:
    """--attributes: judge, gender, age_group, monk, ita_class, clip:NAME=label1|label2|..."""
    from .classifiers import ClipZeroShot, JudgeClassifier
    from .faces import FaceAttributes

    items = [a.strip() for a in config.attributes.split(",") if a.strip()]
    face = [a for a in items if a in FaceAttributes.ALL]
    out = []
    for item in items:
        if item == "judge":
            out.append(JudgeClassifier(config.min_confidence))
        elif item.startswith("clip:"):
            name, _, labels = item[5:].partition("=")
            if not name or "|" not in labels:
                raise ValueError(f"--attributes: {item!r}: write clip:ATTRIBUTE=label1|label2[|...]")
            out.append(ClipZeroShot(name, [v.strip() for v in labels.split("|") if v.strip()], arch=config.clip_arch,
                                    pretrained=config.clip_pretrained, weights=config.clip_weights,
                                    min_confidence=config.min_confidence, device=config.device))
        elif item not in face:
            raise ValueError(f"--attributes: unknown attribute {item!r}; use judge, {', '.join(FaceAttributes.ALL)} "
                             "or clip:NAME=a|b")
    if face:
        out.append(FaceAttributes(tuple(face), models_dir=config.face_models))
    if not out:
        raise ValueError("--attributes: name at least one attribute")
    return out


def parse_corrections(items: tuple[str, ...]) -> dict:
    """--correct ATTRIBUTE=VALUE:SENSITIVITY:SPECIFICITY items -> {(attribute, value): (sensitivity, specificity)}."""
    out = {}
    for item in items:
        try:
            attr, rest = item.split("=", 1)
            value, sens, spec = rest.rsplit(":", 2)
            out[(attr.strip(), value.strip())] = (float(sens), float(spec))
        except ValueError:
            raise ValueError(f"--correct: {item!r}: write ATTRIBUTE=VALUE:SENSITIVITY:SPECIFICITY") from None
        if not (0 <= float(sens) <= 1 and 0 <= float(spec) <= 1 and float(sens) + float(spec) > 1):
            raise ValueError(f"--correct: {item!r}: need sensitivity, specificity in [0, 1] with sum > 1")
    return out


def plan_text(config: BiasAuditConfig) -> str:
    """Images per prompt for an interval half-width, and for power with one prompt and under BH over all."""
    from .stats import SampleSizeTooLarge, images_per_prompt_for_margin, images_per_prompt_for_power

    def count(plan, *args) -> str:
        try:
            return f"{plan(*args):,}"
        except SampleSizeTooLarge as e:
            return f"too many: {e}"

    prompt_set = config.prompt_set()
    n_prompts = len(prompt_set) if prompt_set else 1
    p0, p1, q, power, margin = config.plan_p0, config.plan_p1, config.fdr, config.plan_power, config.plan_margin
    alpha = q / max(1, n_prompts)  # BH at level q rejects a lone true effect once p <= q/m: the worst case
    rows = [
        ("interval half-width", f"+-{margin:g} at p = {p0:g} (95% Wilson/normal)",
         count(images_per_prompt_for_margin, margin, p0)),
        ("power, one prompt", f"exact binomial, alpha = {q:g}, p0 = {p0:g} -> p1 = {p1:g}, power {power:g}",
         count(images_per_prompt_for_power, p0, p1, q, power)),
        (f"power, BH over {n_prompts} prompts", f"same at alpha = q/{n_prompts} = {alpha:.2g} (one true effect, "
         "worst case)", count(images_per_prompt_for_power, p0, p1, alpha, power)),
    ]
    return "\n".join(["goal | setting | images per prompt", *(f"{g} | {s} | {n}" for g, s, n in rows)])


def run_bias_audit(config: BiasAuditConfig) -> BiasAuditResult:
    """Classify the generator's samples (cached under OUT/cache) or the image files, and summarise them."""
    from .pipeline import attribute_names, audit_files
    from .summary import SummaryConfig, summarize

    prompt_set = config.prompt_set()
    classifiers = parse_classifiers(config)
    attribute_names(classifiers)
    settings = {"prompts": prompt_set.name if prompt_set else "image folders", "attributes": config.attributes,
                "target": config.target, "q": config.fdr, "n_boot": config.n_boot,
                "min_confidence": config.min_confidence, "corrections": list(config.corrections)}
    grids: dict = {}
    if config.generator:
        images, settings, grids = _audit_generator(config, prompt_set, classifiers, settings)
    else:
        images = audit_files(config.image_paths, classifiers)
        settings = {"images": [str(p) for p in config.image_paths], **settings}
    values = {a: v for c in classifiers for a, v in c.values.items()}
    summary_config = SummaryConfig(config.target, config.fdr, 0.95, config.n_boot, config.seed,
                                   parse_corrections(config.corrections))
    summary = summarize(images, values, prompt_set, summary_config)
    return BiasAuditResult(images, summary, settings, [c.describe() for c in classifiers], grids)


def _audit_generator(config: BiasAuditConfig, prompt_set, classifiers, settings: dict):
    """The generator's audited images, the settings with the resolved sampler, and the cached sample grids."""
    from diffeval.generators import load_generator

    from .pipeline import SamplingSettings, audit_generator, cached_images
    from .planted import TWINS, twin_path

    cache = Path(config.out_dir) / "cache"
    g = load_generator(twin_path(config.generator) if config.generator in TWINS else config.generator,
                       device=config.device, trust_pickle=config.trust_pickle)
    sampling = SamplingSettings(config.sampler, config.steps, config.guidance, config.seed, config.batch_size)
    images = audit_generator(g, prompt_set, classifiers, config.n_per_prompt, sampling, cache)
    steps, sampler, guidance, _, _ = g.resolve_settings(config.steps, config.sampler, config.guidance)
    settings = {"generator": config.generator, "fingerprint": g.fingerprint(), "sampler": sampler, "steps": steps,
                "guidance": guidance, "seed": config.seed, "n_per_prompt": config.n_per_prompt, **settings}
    grids = {}
    for i, p in enumerate(prompt_set.prompts):
        imgs = cached_images(images.attrs["cache"], i)
        if imgs is not None:
            grids[p] = imgs
    return images, settings, grids


def write_bias_audit(config: BiasAuditConfig, result: BiasAuditResult) -> str:
    """Write the report files into OUT; returns the lines the CLI prints."""
    from .report import write_report

    paths = write_report(config.out_dir, result.images, result.summary, result.settings, result.classifier_notes,
                         result.grids, config.fdr)
    flagged = result.summary.prompts[result.summary.prompts.flagged]
    unreadable = int((result.images.error.fillna("") != "").sum())
    return (f"{len(result.images)} images, {unreadable} unreadable; {len(flagged)} flagged (attribute, prompt) "
            f"pairs at q = {config.fdr}\nreport: {paths['html']}")


def bias_audit_job(config: BiasAuditConfig) -> str:
    """``diffeval audit bias``: the plan (no files), or the audit run holding the lock on OUT and its report
    written; returns the lines the CLI prints."""
    from diffeval.io import folders_locked

    if config.plan:
        return plan_text(config)
    with folders_locked(config.out_dir, command="audit bias"):
        return write_bias_audit(config, run_bias_audit(config))
