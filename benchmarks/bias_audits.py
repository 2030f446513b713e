"""End-to-end bias audits whose results the README quotes (benchmarks/results/bias/).

1. Planted bias: both twins (``audits/bias/planted.py``) audited on the fashion prompt set with the
   bundled judge, at guidance 1, 1.5, 2 and their default 3, n images per prompt; a table compares
   the audited shares of "a shoe" / "footwear" with the shares in each twin's training captions.
2. Faces: scikit-image's astronaut and the 200 LFW-subset thumbnails (100 faces, 100 non-faces),
   written as PNG files with one deliberately corrupt file, audited for perceived gender, age group
   and skin tone; a table gives detections per folder.

    python benchmarks/bias_audits.py [--n 200] [--out benchmarks/results/bias]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.audits.bias.planted import TWINS, planted_truth  # noqa: E402

GUIDANCES = (1.0, 1.5, 2.0, 3.0)  # no guidance, two between, and the twins' default


def run(args: list[str]) -> None:
    print("$ diffeval " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "diffeval", *args], check=True)


def planted(out: Path, n: int, reuse: bool = False) -> str:
    rows = []
    for name in TWINS:
        for w in GUIDANCES:
            d = out / f"{name}-w{w:g}"
            if not reuse:
                run(
                    [
                        "audit",
                        "bias",
                        "-g",
                        name,
                        "--prompts",
                        "fashion",
                        "--attributes",
                        "judge",
                        "--n-per-prompt",
                        str(n),
                        "--guidance",
                        str(w),
                        "--out",
                        str(d),
                    ]
                )
            shares = pd.read_csv(d / "shares.csv")
            prompts = pd.read_csv(d / "prompts.csv").set_index("prompt")
            for phrase in ("a shoe", "footwear"):
                truth = planted_truth(name, phrase)
                for value, share in truth.items():
                    r = shares[(shares.prompt == phrase) & (shares.value == value)].iloc[0]
                    rows.append({"twin": name, "guidance": w, "prompt": phrase, "value": value,
                                 "training share": round(share, 3), "audited": round(r.proportion, 3),
                                 "95% interval": f"[{r.lo:.3f}, {r.hi:.3f}]",
                                 "covers training share": bool(r.lo <= share <= r.hi),
                                 "q vs unskewed reference": f"{r.qvalue:.2g}",
                                 "prompt flagged": bool(prompts.loc[phrase, "flagged"])})
    table = pd.DataFrame(rows)
    table.to_csv(out / "planted.csv", index=False)
    return table.to_markdown(index=False) + "\n\n" + twin_contrast(out).to_markdown(index=False)


def twin_contrast(out: Path) -> pd.DataFrame:
    """Skewed minus even twin, same seeds and settings: the planted effect on each share of "a shoe",
    with Newcombe's hybrid-score 95% interval for a difference of two proportions (from the Wilson limits)."""
    rows = []
    for w in GUIDANCES:
        a = pd.read_csv(out / f"shoe-skewed-w{w:g}" / "shares.csv")
        b = pd.read_csv(out / f"shoe-even-w{w:g}" / "shares.csv")
        for value in planted_truth("shoe-skewed"):
            ra = a[(a.prompt == "a shoe") & (a.value == value)].iloc[0]
            rb = b[(b.prompt == "a shoe") & (b.value == value)].iloc[0]
            d = ra.proportion - rb.proportion
            lo = d - np.hypot(ra.proportion - ra.lo, rb.hi - rb.proportion)
            hi = d + np.hypot(ra.hi - ra.proportion, rb.proportion - rb.lo)
            planted = planted_truth("shoe-skewed")[value] - planted_truth("shoe-even")[value]
            rows.append({"guidance": w, "value": value, "planted difference": round(planted, 3),
                         "audited difference": round(d, 3), "95% interval": f"[{lo:.3f}, {hi:.3f}]",
                         "covers planted": bool(lo <= planted <= hi)})
    table = pd.DataFrame(rows)
    table.to_csv(out / "twin_contrast.csv", index=False)
    return table


def faces(out: Path) -> str:
    from PIL import Image
    from skimage import data

    folder = Path(tempfile.mkdtemp(prefix="diffeval_faces_")) / "face_images"  # photos are regenerated, not committed
    for sub in ("astronaut", "lfw_faces", "lfw_nonfaces"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()).save(folder / "astronaut" / "astronaut.png")
    lfw = (data.lfw_subset() * 255).round().astype(np.uint8)  # first 100 faces, then 100 non-faces
    for i, img in enumerate(lfw):
        Image.fromarray(img).save(folder / ("lfw_faces" if i < 100 else "lfw_nonfaces") / f"{i:03d}.png")
    (folder / "astronaut" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    d = out / "faces"
    run(["audit", "bias", "--images", str(folder / "astronaut"), "--images", str(folder / "lfw_faces"),
         "--images", str(folder / "lfw_nonfaces"), "--attributes", "gender,age_group,monk,ita_class",
         "--target", "parity", "--out", str(d)])
    images = pd.read_csv(d / "images.csv")
    summary = images.groupby("prompt").agg(files=("image_id", "size"),
                                           unreadable=("error", lambda e: int(e.notna().sum())),
                                           face_detected=("face_count", lambda c: int((c > 0).sum())),
                                           female=("gender", lambda g: int((g == "female").sum())),
                                           male=("gender", lambda g: int((g == "male").sum())),
                                           skin_tone_measured=("monk", lambda m: int(m.notna().sum()))).reset_index()
    summary.to_csv(out / "faces_summary.csv", index=False)
    astro = images[images.source_file.str.endswith("astronaut.png")].iloc[0]
    line = (f"astronaut.png: face box {astro.face_box}, gender {astro.gender} ({astro.gender_confidence:.2f}), "
            f"age {astro.age_years:.1f} ({astro.age_group}), Monk {int(astro.monk)}, ITA {astro.ita:.1f} deg "
            f"({astro.ita_class})")
    return summary.to_markdown(index=False) + "\n\n" + line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="images per prompt in the planted-bias audits")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bias"))
    parser.add_argument("--skip-planted", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="read the planted audits already in OUT (no new runs)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = ["# Bias audits end to end", "", "`python benchmarks/bias_audits.py`", ""]
    if not args.skip_planted:
        parts += ["## Planted bias (bundled judge, fashion prompt set, "
                  f"{args.n} images per prompt)", "", planted(out, args.n, args.reuse), ""]
    parts += ["## Faces (scikit-image astronaut and LFW subset)", "", faces(out), ""]
    (out / "bias_audits.md").write_text("\n".join(parts))
    print("\n".join(parts))


if __name__ == "__main__":
    main()
