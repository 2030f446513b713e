"""Training step time and sampling throughput of every preset, per sampler, at fixed steps.

    python benchmarks/bench_generators.py [--device cpu] [--n 64] [--steps 20]

Writes benchmarks/results/generators.csv and .md. Columns: preset, backbone, space (latent: the
denoiser works on the bundled autoencoder's 3x14x14 latent and sampling includes the decode; pixel),
params_m (denoiser only), device, threads, train_step_s (denoiser, batch 64, mean of 5 after 2 warm-up),
sampler, steps, guidance, nfe, images_per_s (n images, batch = n). Bundled weights are used where present,
else the untrained architecture (the timing does not depend on the weights).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.bundle import text_vocab  # noqa: E402
from diffeval.generators import bundled_names, load_generator  # noqa: E402
from diffeval.generators.interface import Generator  # noqa: E402
from diffeval.generators.model import Conditioning, DiffusionModel  # noqa: E402
from diffeval.generators.presets import build_presets  # noqa: E402
from diffeval.generators.samplers import SAMPLERS  # noqa: E402
from diffeval.generators.schedules import NoiseSchedule  # noqa: E402
from diffeval.generators.tokenizer import WordTokenizer  # noqa: E402
from diffeval.generators.training.loop import training_loss  # noqa: E402
from diffeval.quality import nfe  # noqa: E402


def train_step_seconds(model: DiffusionModel, device: torch.device, batch: int = 64) -> float:
    cfg = model.config
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sched = NoiseSchedule(cfg.schedule)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(batch, *cfg.model_shape, generator=g).to(device) * 2 - 1
    cond = Conditioning()
    if cfg.conditioning == "class":
        cond = Conditioning(labels=torch.randint(0, cfg.num_classes, (batch,), generator=g))
    elif cfg.conditioning == "text":
        ids, mask = WordTokenizer(cfg.vocab, cfg.text_encoder["max_len"]).encode(["a photo of a sneaker"] * batch)
        cond = Conditioning(ids=ids, mask=mask)
    cond = cond.to(device)
    times = []
    for i in range(7):
        t = sched.sample_training_times(batch, g)
        eps = torch.randn(x0.shape, generator=g).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = training_loss(model, sched, x0, eps, t, cond)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return sum(times) / len(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "generators"))
    args = ap.parse_args()
    device = torch.device(args.device)
    presets = build_presets(text_vocab())
    bundled = set(bundled_names())
    rows = []
    for name, preset in presets.items():
        g = (
            load_generator(name, device)
            if name in bundled
            else Generator(DiffusionModel(preset.model), name, preset.family, preset.sampling, device)
        )
        params = sum(p.numel() for p in g.model.parameters()) / 1e6
        step_s = train_step_seconds(DiffusionModel(preset.model), device)
        kind = g.info.conditioning
        cond = {"labels": 7} if kind == "class" else {"prompts": "a photo of a sneaker"} if kind == "text" else {}
        for sampler in SAMPLERS:
            t0 = time.perf_counter()
            g.sample(args.n, steps=args.steps, sampler=sampler, batch_size=args.n, **cond)
            dt = time.perf_counter() - t0
            rows.append(
                {
                    "preset": name,
                    "backbone": g.info.backbone,
                    "space": "pixel" if g.autoencoder is None else "latent",
                    "params_m": round(params, 3),
                    "device": str(device),
                    "threads": torch.get_num_threads(),
                    "train_step_s": round(step_s, 4),
                    "sampler": sampler,
                    "steps": args.steps,
                    "guidance": g.defaults.guidance,
                    "nfe": nfe(sampler, args.steps, g.defaults.guidance, kind != "none"),
                    "images_per_s": round(args.n / dt, 2),
                }
            )
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".md").write_text(df.to_markdown(index=False) + "\n")


if __name__ == "__main__":
    main()
