"""CLI group ``diffeval watermark``: keygen, embed, detect, robustness (Tree-Ring)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from diffeval.io import atomic_write_text

PATTERN_CHOICE = click.Choice(["rings", "rand", "zeros"])


def _detect_options(f):
    for opt in reversed(
        [
            click.option(
                "--inv-steps",
                type=int,
                default=50,
                show_default=True,
                help="Inversion steps (null condition, guidance 1).",
            ),
            click.option(
                "--fixed-point",
                type=int,
                default=2,
                show_default=True,
                help="Fixed-point iterations per inversion step (0 = plain DDIM inversion).",
            ),
            click.option(
                "--alpha", type=float, default=0.01, show_default=True, help="False-positive rate of the decision."
            ),
            click.option(
                "--sigma",
                type=click.Choice(["unit", "outside", "mask"]),
                default="unit",
                show_default=True,
                help="Noise scale of the ncx2 test.",
            ),
            click.option(
                "--test",
                type=click.Choice(["cosine", "ncx2"]),
                default="cosine",
                show_default=True,
                help="Score and p-value: cosine (matched filter) or ncx2 (the paper's distance).",
            ),
        ]
    ):
        f = opt(f)
    return f


def _detect_settings(inv_steps, fixed_point, alpha, sigma, test):
    from diffeval.watermark.detect import DetectSettings

    return DetectSettings(steps=inv_steps, fixed_point=fixed_point, alpha=alpha, sigma=sigma, test=test)


@click.group()
def watermark() -> None:
    """Tree-Ring watermarks: make keys, generate marked images, detect them, measure robustness."""


@watermark.command()
@click.option(
    "--generator", "-g", "gname", required=True, help="Bundled name or checkpoint dir (fixes the image shape)."
)
@click.option("--pattern", type=PATTERN_CHOICE, default="rand", show_default=True)
@click.option("--radius", type=float, default=4, show_default=True, help="Key disc radius in frequency units.")
@click.option(
    "--inner-radius", type=float, default=0.0, show_default=True, help="Leave |f| < this to the noise (an annulus key)."
)
@click.option(
    "--channel", "channels", type=int, multiple=True, default=(0,), show_default=True, help="Keyed channel(s) (repeat)."
)
@click.option(
    "--seed", type=int, default=None, help="Secret seed (default: drawn from the OS; recorded in the key file)."
)
@click.option(
    "--count", type=int, default=1, show_default=True, help="Make this many keys (OUT gets -1, -2, ... suffixes)."
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Key file (.safetensors). Keep it private.",
)
def keygen(gname, pattern, radius, inner_radius, channels, seed, count, out_path) -> None:
    """Make Tree-Ring key file(s) for a generator's image shape."""
    from diffeval.generators import load_generator
    from diffeval.watermark.keys import make_key, save_key

    g = load_generator(gname)
    shape = g.image_shape
    out = Path(out_path)
    for i in range(count):
        path = out if count == 1 else out.with_name(f"{out.stem}-{i + 1}{out.suffix or '.safetensors'}")
        key = make_key(shape, pattern, radius, channels, None if seed is None else seed + i, name=path.stem,
                       inner_radius=inner_radius)
        save_key(key, path)
        click.echo(
            f"{path}: {pattern} key, radius {radius:g}, channels {list(channels)}, shape {shape}, "
            f"fingerprint {key.fingerprint}"
        )


@watermark.command()
@click.option("--generator", "-g", "gname", required=True)
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False))
@click.option("--n", type=int, default=16, show_default=True)
@click.option(
    "--prompt", "prompts", multiple=True, help="Prompt(s) for text generators (default: class captions in turn)."
)
@click.option(
    "--label", "labels", type=int, multiple=True, help="Class label(s) for class generators (default: 0..9 in turn)."
)
@click.option("--steps", type=int, default=None, help="Sampling steps (default: the generator's).")
@click.option("--guidance", type=float, default=None, help="Guidance scale (default: the generator's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--unmarked", is_flag=True, help="Also write the unmarked twins (same seeds) to OUT/unmarked.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def embed(gname, key_path, n, prompts, labels, steps, guidance, seed, unmarked, out_dir) -> None:
    """Generate N images carrying KEY with the generator's deterministic sampler; PNGs + grid."""
    import torch

    from diffeval.generators import load_generator
    from diffeval.watermark.embed import EmbedSettings, generate
    from diffeval.watermark.keys import load_key

    from ..images import save_grid, to_uint8

    g = load_generator(gname)
    key = load_key(key_path)
    key.check_shape(g.image_shape)
    cond = None
    if prompts:
        cond = {"prompts": [prompts[i % len(prompts)] for i in range(n)]}
    elif labels:
        cond = {"labels": torch.tensor([labels[i % len(labels)] for i in range(n)])}
    settings = EmbedSettings(steps=steps, guidance=guidance, seed=seed)
    out = Path(out_dir)
    for sub, k in [("", key), *([("unmarked", None)] if unmarked else [])]:
        images = generate(g, k, n, settings, conditions=cond, progress=True)
        folder = out / sub if sub else out
        _write_pngs(to_uint8(images), folder)
        save_grid(images, folder / "grid.png")
    atomic_write_text(
        out / "embed.json",
        json.dumps(
            {"generator": g.info.name, "key": key.label, "fingerprint": key.fingerprint, "n": n, **asdict(settings)},
            indent=1,
        )
        + "\n",
    )
    click.echo(f"{n} marked images in {out}" + (f" (unmarked twins in {out / 'unmarked'})" if unmarked else ""))


def _write_pngs(arrays, folder: Path) -> None:
    from PIL import Image

    from diffeval.io import atomic_output

    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        with atomic_output(folder / f"{i:05d}.png") as tmp:
            Image.fromarray(a[..., 0] if a.shape[2] == 1 else a).save(tmp, format="PNG")


@watermark.command()
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--generator", "-g", "gname", required=True, help="The generator the images are checked against.")
@click.option(
    "--key",
    "key_paths",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Key file(s) (repeat to identify which key marked an image).",
)
@_detect_options
@click.option(
    "--out",
    "out_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="CSV of the rows (also .md and .json beside it).",
)
def detect(images, gname, key_paths, inv_steps, fixed_point, alpha, sigma, test, out_path) -> None:
    """Detect KEY(s) in IMAGES (files or folders): one row per image with score, distance, p-value, decision."""
    from diffeval.generators import load_generator
    from diffeval.watermark.detect import detect_files
    from diffeval.watermark.keys import load_key

    from ..benchmark.sources import IMAGE_SUFFIXES, folder_files

    files: list[Path] = []
    for item in images:
        p = Path(item)
        found = (
            [q for q in folder_files(p) if q.suffix.lower() in IMAGE_SUFFIXES and q.name != "grid.png"]
            if p.is_dir()
            else [p]
        )
        files.extend(q for q in found if q not in files)
    if not files:
        raise click.ClickException("no image files given")
    g = load_generator(gname)
    keys = [load_key(k) for k in key_paths]
    table = detect_files(g, files, keys, _detect_settings(inv_steps, fixed_point, alpha, sigma, test), progress=True)
    if out_path:
        out = Path(out_path)
        atomic_write_text(out, table.to_csv(index=False))
        atomic_write_text(out.with_suffix(".md"), table.to_markdown(index=False, floatfmt=".4g") + "\n")
        atomic_write_text(out.with_suffix(".json"), table.to_json(orient="records", indent=1) + "\n")
    click.echo(table.to_string(index=False))
    bad = int((table["error"] != "").sum())
    click.echo(f"{int(table['detected'].sum())} of {len(table) - bad} readable images carry a key at alpha={alpha:g}"
               + (f"; {bad} could not be checked (see the error column)" if bad else ""))


@watermark.command()
@click.option(
    "--generator", "-g", "gnames", multiple=True, default=("sd3",), show_default=True, help="Generator(s) (repeat)."
)
@click.option("--pattern", "patterns", type=PATTERN_CHOICE, multiple=True, default=("rings", "rand"), show_default=True)
@click.option("--radius", type=float, default=4, show_default=True)
@click.option(
    "--inner-radius", type=float, default=0.0, show_default=True, help="Annulus keys: leave |f| < this to the noise."
)
@click.option("--n", type=int, default=100, show_default=True, help="Marked images per generator and pattern.")
@click.option("--n-unmarked", type=int, default=None, help="Unmarked images per generator (default: N).")
@click.option(
    "--attacks",
    default="paper",
    show_default=True,
    help="paper, sweep, all, clean, or a list like 'jpeg:50,rotation:15+jpeg:50'.",
)
@click.option("--steps", type=int, default=None, help="Sampling steps (default: each generator's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--regen-generator", default="ddpm", show_default=True, help="Bundled generator of the regeneration attack."
)
@click.option("--no-quality", is_flag=True, help="Skip the FID/KID cost of the watermark.")
@click.option(
    "--baselines",
    default="",
    help="Comma list of dwtDct, dwtDctSvd, rivaGan (or 'all'): invisible-watermark baselines on the same images "
    "and attacks (extra 'baselines').",
)
@_detect_options
@click.option("--out", "out_dir", default="results/watermark", show_default=True, type=click.Path(file_okay=False))
@click.option("--no-progress", is_flag=True)
def robustness(
    gnames,
    patterns,
    radius,
    inner_radius,
    n,
    n_unmarked,
    attacks,
    steps,
    seed,
    regen_generator,
    no_quality,
    baselines,
    inv_steps,
    fixed_point,
    alpha,
    sigma,
    test,
    out_dir,
    no_progress,
) -> None:
    """Detection under attacks: AUC, TPR at 1% and 0.1% FPR, accuracy and measured FPR of the p-value rule."""
    from diffeval.watermark.attacks import attacks_from
    from diffeval.watermark.baselines import BASELINES
    from diffeval.watermark.embed import EmbedSettings
    from diffeval.watermark.report import paper_average, write_robustness
    from diffeval.watermark.robustness import RobustnessConfig, run_robustness

    attacks_from(attacks)  # fail early on a bad attack list
    methods = BASELINES if baselines == "all" else tuple(b for b in baselines.split(",") if b)
    unknown = [b for b in methods if b not in BASELINES]
    if unknown:
        raise click.BadParameter(
            f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}", param_hint="--baselines"
        )
    cfg = RobustnessConfig(
        generators=tuple(gnames),
        patterns=tuple(patterns),
        radius=radius,
        inner_radius=inner_radius,
        n=n,
        n_unmarked=n_unmarked,
        attacks=attacks,
        regen_generator=regen_generator,
        quality=not no_quality,
        baselines=methods,
        embed=EmbedSettings(steps=steps, seed=seed),
        detect=_detect_settings(inv_steps, fixed_point, alpha, sigma, test),
    )
    table, scores, quality = run_robustness(cfg, out_dir, progress=not no_progress)
    paths = write_robustness(table, scores, quality, out_dir, asdict(cfg))
    click.echo(
        table[["generator", "pattern", "attack", "auc", "tpr_at_1pct_fpr", "fpr_at_alpha"]].to_string(index=False)
    )
    avg = paper_average(table)
    if len(avg):
        click.echo(avg.to_string(index=False))
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))
