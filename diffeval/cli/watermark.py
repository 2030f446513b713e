"""CLI group ``diffeval watermark``: keygen, embed, calibrate, detect, robustness, forgery."""

from __future__ import annotations

import click

from .options import trust_pickle

PATTERN_CHOICE = click.Choice(["rings", "rand", "zeros"])
DETECT_OPTIONS = ("inv_steps", "fixed_point", "alpha", "sigma", "test", "gs_statistic")
SCHEME_CHOICE = click.Choice(["tree-ring", "gaussian-shading"])
CALIBRATE_ATTACKS_HELP = ("Also calibrate on the images under these attacks (a list like --attacks of robustness, "
                          "or a preset such as paper-scaled): the p-value is the largest over clean and each "
                          "attacked reference, so the false-positive rate holds under each of them.")
SUBKEYS_HELP = ("Members per key: > 1 makes a key set, each marked image carrying one of that many independent "
                "patterns (one key's images no longer share one pattern; detection takes the best member).")


def _detect_options(f):
    """The inversion and decision options shared by ``detect`` and ``robustness``."""
    for opt in reversed([
        click.option("--inv-steps", type=int, default=50, show_default=True,
                     help="Inversion steps (null condition, guidance 1)."),
        click.option("--fixed-point", type=int, default=2, show_default=True,
                     help="Fixed-point iterations per inversion step (0 = plain DDIM inversion)."),
        click.option("--alpha", type=float, default=0.01, show_default=True,
                     help="False-positive rate of the decision."),
        click.option("--sigma", type=click.Choice(["unit", "outside", "mask"]), default="unit", show_default=True,
                     help="Noise scale of the ncx2 test."),
        click.option("--test", type=click.Choice(["cosine", "ncx2", "paper"]), default="cosine", show_default=True,
                     help="Score and p-value: cosine (matched filter), ncx2 (the paper's distance, calibrated) or "
                          "paper (Wen et al.'s p-value exactly, for comparison)."),
        click.option("--gs-statistic", type=click.Choice(["votes", "raw"]), default="votes", show_default=True,
                     help="Gaussian Shading keys: votes (the paper's majority over each bit's copies) or raw (every "
                          "coordinate's sign)."),
    ]):
        f = opt(f)
    return f


def _with_detect_settings(options: dict) -> dict:
    """``options`` with the detect options replaced by one DetectSettings under ``detect``."""
    from diffeval.watermark.detect import DetectSettings

    d = {k: options.pop(k) for k in DETECT_OPTIONS}
    extra = {"null_method": options.pop("null_method")} if "null_method" in options else {}
    return {**options, "detect": DetectSettings(steps=d["inv_steps"], fixed_point=d["fixed_point"],
                                                alpha=d["alpha"], sigma=d["sigma"], test=d["test"],
                                                gs_statistic=d["gs_statistic"], **extra)}


@click.group()
def watermark() -> None:
    """Tree-Ring watermarks: make keys, generate marked images, detect them, measure robustness."""


@watermark.command()
@click.option("--generator", "-g", "generator", required=True,
              help="Bundled name, checkpoint dir or diffusers pipeline dir (fixes the noise/latent shape).")
@click.option("--scheme", type=SCHEME_CHOICE, default="tree-ring", show_default=True,
              help="tree-ring (a Fourier-space pattern; --pattern, --radius, --channel apply) or gaussian-shading "
                   "(a secret and a message; the marked latent stays exactly N(0, I)).")
@click.option("--pattern", type=PATTERN_CHOICE, default="rand", show_default=True)
@click.option("--radius", type=float, default=None,
              help="Key disc radius in frequency units (default: 4 for the pixel ddpm; for latent models, bundled or "
                   "pipelines, the paper's 10 at 64x64 latents scaled to the latent's side: 2.19 on 14x14).")
@click.option("--inner-radius", type=float, default=0.0, show_default=True,
              help="Leave |f| < this to the noise (an annulus key).")
@click.option("--channel", "channels", type=int, multiple=True,
              help="Keyed channel(s) (repeat; default: 0 for the pixel ddpm; for latent models the paper's 3, or the "
                   "last channel where there are fewer).")
@click.option("--seed", type=int, default=None,
              help="Secret seed (default: drawn from the OS; recorded in the key file).")
@click.option("--count", type=int, default=1, show_default=True,
              help="Make this many keys (OUT gets -1, -2, ... suffixes).")
@click.option("--layout", type=click.Choice(["centred", "paper"]), default="centred", show_default=True,
              help="paper: Wen et al.'s off-centre disc and complex ring values (reproduces their numbers; use "
                   "--test paper with it).")
@click.option("--subkeys", type=int, default=1, show_default=True, help=SUBKEYS_HELP)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Key file (.safetensors). Keep it private.")
@trust_pickle
def keygen(**options) -> None:
    """Make Tree-Ring or Gaussian Shading key file(s) for a generator's initial-noise shape."""
    from diffeval.watermark.jobs import KeygenJob, run_keygen

    click.echo(run_keygen(KeygenJob(**options)))


@watermark.command()
@click.option("--generator", "-g", "generator", required=True)
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False))
@click.option("--n", type=int, default=16, show_default=True)
@click.option("--prompt", "prompts", multiple=True,
              help="Prompt(s) for text generators (default: class captions in turn).")
@click.option("--label", "labels", type=int, multiple=True,
              help="Class label(s) for class generators (default: 0..9 in turn).")
@click.option("--steps", type=int, default=None, help="Sampling steps (default: the generator's).")
@click.option("--guidance", type=float, default=None, help="Guidance scale (default: the generator's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--unmarked", is_flag=True, help="Also write the unmarked twins (same seeds) to OUT/unmarked.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@trust_pickle
def embed(**options) -> None:
    """Generate N images carrying KEY with the generator's deterministic sampler; PNGs + grid."""
    from diffeval.watermark.jobs import EmbedJob, run_embed

    click.echo(run_embed(EmbedJob(**options)))


@watermark.command()
@click.option("--generator", "-g", "generator", required=True)
@click.option("--key", "key_path", default=None, type=click.Path(dir_okay=False),
              help="Take the key geometry (shape, channels, disc) from this key file; its values do not matter.")
@click.option("--radius", type=float, default=None,
              help="Without --key: the disc radius (default: the generator's default geometry).")
@click.option("--inner-radius", type=float, default=0.0, show_default=True)
@click.option("--channel", "channels", type=int, multiple=True, help="Without --key: keyed channel(s).")
@click.option("--n", type=int, default=1000, show_default=True, help="Unmarked calibration images.")
@click.option("--seed", type=int, default=7_919, show_default=True,
              help="Embed seed of the calibration images (not one you evaluate with).")
@click.option("--steps", type=int, default=None, help="Sampling steps (default: the generator's).")
@click.option("--guidance", type=float, default=None, help="Guidance scale (default: the generator's).")
@click.option("--inv-steps", type=int, default=50, show_default=True,
              help="Inversion steps (detect with the same).")
@click.option("--fixed-point", type=int, default=2, show_default=True,
              help="Fixed-point iterations per inversion step (detect with the same).")
@click.option("--attacks", default="", help=CALIBRATE_ATTACKS_HELP)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Null file (.safetensors).")
@trust_pickle
def calibrate(inv_steps: int, fixed_point: int, **options) -> None:
    """Calibrate the detection null of a generator: invert N unmarked images and keep the key region's coordinates,
    so that `detect --null` has the false-positive rate it states for every key of that geometry."""
    from diffeval.watermark.detect import DetectSettings
    from diffeval.watermark.jobs import CalibrateJob, run_calibrate

    detect = DetectSettings(steps=inv_steps, fixed_point=fixed_point)
    click.echo(run_calibrate(CalibrateJob(**options, detect=detect)))


@watermark.command()
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--generator", "-g", "generator", required=True, help="The generator the images are checked against.")
@click.option("--key", "key_paths", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="Key file(s) (repeat to identify which key marked an image).")
@_detect_options
@click.option("--null", "null_path", default=None, type=click.Path(dir_okay=False),
              help="Calibrated null of this generator and key geometry (`watermark calibrate`): the p-value holds "
                   "for every key, not only on average.")
@click.option("--null-method", type=click.Choice(["empirical", "gaussian"]), default="empirical", show_default=True,
              help="With --null: the rank among the calibration images (valid for every key; p >= 1/(n+1)) or the "
                   "Beta tail of the whitened cosine (any alpha; assumes a Gaussian null).")
@click.option("--out", "out_path", default=None, type=click.Path(dir_okay=False),
              help="CSV of the rows (also .md and .json beside it).")
@trust_pickle
def detect(**options) -> None:
    """Detect KEY(s) in IMAGES (files or folders): one row per image with score, distance, p-value, decision."""
    from diffeval.watermark.jobs import DetectJob, run_detect

    click.echo(run_detect(DetectJob(**_with_detect_settings(options))))


@watermark.command()
@click.option("--generator", "-g", "generators", multiple=True, default=("sd3",), show_default=True,
              help="Generator(s) (repeat).")
@click.option("--scheme", "schemes", type=SCHEME_CHOICE, multiple=True, default=("tree-ring",), show_default=True,
              help="Watermark scheme(s) (repeat): tree-ring (each --pattern) and/or gaussian-shading, on the same "
                   "unmarked images and attacks.")
@click.option("--pattern", "patterns", type=PATTERN_CHOICE, multiple=True, default=("rings", "rand"),
              show_default=True)
@click.option("--radius", type=float, default=None,
              help="Key radius (default: 4 for the pixel ddpm; for latent models the paper's 10/64 of the latent "
                   "side: 2.19 on 14x14).")
@click.option("--inner-radius", type=float, default=0.0, show_default=True,
              help="Annulus keys: leave |f| < this to the noise.")
@click.option("--channel", "channels", type=int, multiple=True,
              help="Keyed channel(s) (repeat; default: 0 for the pixel ddpm; 3 for latent models, or the last).")
@click.option("--layout", type=click.Choice(["centred", "paper"]), default="centred", show_default=True,
              help="Key layout (paper: Wen et al.'s; use with --test paper).")
@click.option("--keys", type=int, default=20, show_default=True,
              help="Independent keys per pattern (seeds --key-seed ..): every figure is reported over them.")
@click.option("--key-seed", type=int, default=0, show_default=True, help="Seed of the first evaluation key.")
@click.option("--subkeys", type=int, default=1, show_default=True, help=SUBKEYS_HELP)
@click.option("--identify", default="", show_default=True,
              help="Comma list of candidate counts, e.g. 2,16,256: identification among m keys per key (its own and "
                   "m - 1 others of its pattern: the evaluation keys, then decoy keys of the seeds after them).")
@click.option("--calibrate", type=int, default=0, show_default=True,
              help="Calibrate the test on this many unmarked images of their own seed (0: the plain test; 1000 holds "
                   "the false-positive rate for every key).")
@click.option("--null-method", type=click.Choice(["empirical", "gaussian"]), default="empirical", show_default=True,
              help="With --calibrate: the conformal rank among the calibration images or the Beta tail.")
@click.option("--calibrate-attacks", default="", help="With --calibrate: " + CALIBRATE_ATTACKS_HELP)
@click.option("--n", type=int, default=50, show_default=True, help="Marked images per generator, pattern and key.")
@click.option("--n-unmarked", type=int, default=None,
              help="Unmarked images per generator, shared by every key (default: KEYS * N, so every marked image "
                   "has its unmarked twin).")
@click.option("--attacks", default="paper", show_default=True,
              help="paper, sweep, all, clean, or a list like 'jpeg:50,rotation:15+jpeg:50'.")
@click.option("--steps", type=int, default=None, help="Sampling steps (default: each generator's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--regen-generator", default="auto", show_default=True,
              help="Generator of the regeneration attack: auto (the bundled ddpm for bundled models, the generator "
                   "itself for pipelines), self, or a name/dir.")
@click.option("--no-quality", is_flag=True, help="Skip the FID/KID cost of the watermark.")
@click.option("--baselines", default="",
              help="Comma list of dwtDct, dwtDctSvd, rivaGan (or 'all'): invisible-watermark baselines on the same "
                   "images and attacks (extra 'baselines').")
@_detect_options
@click.option("--out", "out_dir", default="results/watermark", show_default=True, type=click.Path(file_okay=False))
@click.option("--no-progress", is_flag=True)
@trust_pickle
def robustness(out_dir: str, no_progress: bool, **options) -> None:
    """Detection under attacks: AUC, TPR at 1% and 0.1% FPR, accuracy and measured FPR of the p-value rule."""
    from diffeval.io import folders_locked
    from diffeval.watermark.jobs import robustness_config, run_robustness_job

    config = robustness_config(**_with_detect_settings(options))
    with folders_locked(out_dir, command="watermark robustness"):
        click.echo(run_robustness_job(config, out_dir, progress=not no_progress))


@watermark.command()
@click.option("--generator", "-g", "generator", default="sd3", show_default=True, help="The victim's generator.")
@click.option("--scheme", "schemes", type=SCHEME_CHOICE, multiple=True, default=("tree-ring", "gaussian-shading"),
              show_default=True, help="Scheme(s) attacked (repeat).")
@click.option("--pattern", type=PATTERN_CHOICE, default="rand", show_default=True, help="Tree-Ring key pattern.")
@click.option("--radius", type=float, default=None, help="Tree-Ring key radius (default: keys.default_geometry).")
@click.option("--inner-radius", type=float, default=0.0, show_default=True)
@click.option("--channel", "channels", type=int, multiple=True, help="Tree-Ring keyed channel(s) (repeat).")
@click.option("--keys", type=int, default=5, show_default=True, help="Victim keys per scheme (seeds --key-seed ..).")
@click.option("--key-seed", type=int, default=0, show_default=True)
@click.option("--subkeys", type=int, default=1, show_default=True, help=SUBKEYS_HELP)
@click.option("--known", default="1,4,16", show_default=True,
              help="Comma list of N, the number of marked images the attacker holds.")
@click.option("--targets", type=int, default=50, show_default=True, help="Forged images per attack, N and key.")
@click.option("--attack", "attacks", type=click.Choice(["latent-average", "latent-sign", "pixel-average"]),
              multiple=True, default=("latent-average", "latent-sign", "pixel-average"), show_default=True,
              help="Forgery attack(s) (repeat).")
@click.option("--steps", type=int, default=None, help="Sampling steps (default: the generator's).")
@click.option("--seed", type=int, default=0, show_default=True, help="The victim's embedding seed.")
@_detect_options
@click.option("--out", "out_dir", default="results/watermark_forgery", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--no-progress", is_flag=True)
@trust_pickle
def forgery(out_dir: str, no_progress: bool, **options) -> None:
    """Forgery: estimate a key from N marked images and put it on new ones; how often the victim's detector accepts
    the forgeries, by N, over keys."""
    from diffeval.io import folders_locked
    from diffeval.watermark.jobs import forgery_config, run_forgery_job

    config = forgery_config(**_with_detect_settings(options))
    with folders_locked(out_dir, command="watermark forgery"):
        click.echo(run_forgery_job(config, out_dir, progress=not no_progress))
