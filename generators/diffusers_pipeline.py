"""A diffusers pipeline directory (``model_index.json``) behind the Generator interface.

Optional extra: ``pip install 'diffeval[diffusers]'``. Works for unconditional pipelines (DDPM/DDIM),
class-conditional ones (``class_labels``, e.g. DiT) and text pipelines (``prompt``, e.g. Stable
Diffusion). Samplers map to diffusers schedulers built from the pipeline's scheduler config:
ddpm -> DDPMScheduler, ddim -> DDIMScheduler, dpm++2m -> DPMSolverMultistepScheduler, euler ->
EulerDiscreteScheduler, heun -> HeunDiscreteScheduler; ``None`` keeps the pipeline's own scheduler.
Sample i draws its noise from a torch.Generator seeded by (seed, first_index + i), as the bundled
generators do, so results do not depend on batching or sharding.
"""

from __future__ import annotations

import contextlib
import inspect
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from diffeval.io import PICKLE_SUFFIXES

from .devices import pick_device
from .interface import GeneratorInfo, checked_settings, class_conditions
from .pipeline_size import check_pipeline_size

SCHEDULERS = {
    "ddpm": "DDPMScheduler",
    "ddim": "DDIMScheduler",
    "dpm++2m": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "heun": "HeunDiscreteScheduler",
}


def is_diffusers_dir(path: str | Path) -> bool:
    return (Path(path) / "model_index.json").is_file()


def per_sample_seed(seed: int, index: int) -> int:
    """The 64-bit seed of sample ``index`` (same derivation as the bundled generators' NoiseSource)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])


def refuse_pickled_weights(path: str | Path, trust_pickle: bool) -> None:
    """A pipeline folder whose weights are pickles (``*.bin``, ``*.pt``, ...) is refused unless ``trust_pickle``,
    as diffeval refuses pickled checkpoints everywhere (a pickle can run code when loaded)."""
    pickles = sorted(p for p in Path(path).rglob("*") if p.suffix in PICKLE_SUFFIXES and p.is_file())
    if pickles and not trust_pickle:
        raise ValueError(f"{pickles[0]}: pickled weights in a diffusers pipeline are refused (they can run code "
                         "when loaded); convert them to safetensors, or pass --trust-pickle if you trust the source")


@contextlib.contextmanager
def _quiet_libraries():
    """diffusers' and transformers' loading bars and advice (``accelerate`` missing) off while loading: the
    CLI's own output stays one line per event."""
    import diffusers

    loggers = [diffusers.utils.logging]
    try:
        import transformers

        loggers.append(transformers.utils.logging)
    except ImportError:
        pass
    levels = [log.get_verbosity() for log in loggers]
    for log in loggers:
        log.set_verbosity_error()
        log.disable_progress_bar()
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.set_verbosity(level)
            log.enable_progress_bar()


class DiffusersGenerator:
    """``load(path)`` -> an object with ``info``, ``resolve_settings`` and ``sample`` like Generator."""

    def __init__(self, path: str | Path, device: str | torch.device | None = None, trust_pickle: bool = False) -> None:
        refuse_pickled_weights(path, trust_pickle)
        try:
            import diffusers
        except ImportError:
            raise ImportError(
                f"{path} is a diffusers pipeline; install the extra: pip install 'diffeval[diffusers]'"
            ) from None
        check_pipeline_size(path)  # the index and the size, before diffusers builds anything
        self._diffusers = diffusers
        self.device = pick_device(device)
        # trust_remote_code is never passed: a pipeline folder cannot make diffusers run its own code
        with _quiet_libraries():
            self.pipe = diffusers.DiffusionPipeline.from_pretrained(str(path), local_files_only=True,
                                                                    use_safetensors=not trust_pickle).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self._base_scheduler = self.pipe.scheduler
        params = inspect.signature(self.pipe.__call__).parameters
        conditioning = "text" if "prompt" in params else "class" if "class_labels" in params else "none"
        denoiser = getattr(self.pipe, "unet", None) or getattr(self.pipe, "transformer", None)
        cfg = denoiser.config
        size = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
        vae = getattr(self.pipe, "vae", None)
        scale = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1  # VAE downsamplings
        default_steps = params["num_inference_steps"].default if "num_inference_steps" in params else 50
        default_guidance = params["guidance_scale"].default if "guidance_scale" in params else 1.0
        num_classes = int(getattr(cfg, "num_class_embeds", None) or getattr(cfg, "num_embeds_ada_norm", None) or 0)
        self.info = GeneratorInfo(
            name=Path(path).name,
            family="diffusers",
            parameterization=self._base_scheduler.config.get("prediction_type", "epsilon"),
            resolution=size * scale,
            channels=3 if hasattr(self.pipe, "vae") else cfg.in_channels,
            conditioning=conditioning,
            backbone=type(denoiser).__name__,
            schedule=type(self._base_scheduler).__name__,
            num_classes=num_classes,
            default_sampler=None,
            default_steps=int(default_steps),
            default_guidance=float(default_guidance if conditioning != "none" else 1.0),
            invertible=False,
        )

    def fingerprint(self) -> str:
        """16 hex digits hashing the name and every network component's weights (as ``Generator.fingerprint``)."""
        import hashlib

        h = hashlib.sha256(self.info.name.encode())
        for name, component in sorted(self.pipe.components.items()):
            if isinstance(component, torch.nn.Module):
                for k, v in sorted(component.state_dict().items()):
                    h.update(f"{name}.{k}".encode())
                    h.update(v.detach().float().cpu().numpy().tobytes())
        return h.hexdigest()[:16]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images this pipeline makes."""
        return (self.info.channels, self.info.resolution, self.info.resolution)

    def class_conditions(self, classes: torch.Tensor, prompt) -> dict:
        """``sample`` keyword arguments asking for ``classes`` (see ``Generator.class_conditions``)."""
        return class_conditions(self.info, classes, prompt)

    def resolve_settings(self, steps=None, sampler=None, guidance=None, eta=None, spacing=None):
        """(steps, sampler, guidance, eta, spacing); sampler None, or the name of the pipeline's own scheduler
        class (what None resolves to, so a resolved setting can be passed back), keeps that scheduler."""
        if sampler is not None and sampler not in SCHEDULERS and sampler != self.info.schedule:
            raise ValueError(f"unknown sampler {sampler!r} for a diffusers pipeline; choose one of "
                             f"{', '.join(SCHEDULERS)} (or {self.info.schedule}, the pipeline's own)")
        steps, guidance, eta = checked_settings(self.info.default_steps if steps is None else steps,
                                                self.info.default_guidance if guidance is None else guidance, eta)
        if self.info.conditioning == "none" and guidance != 1.0:
            raise ValueError(f"pipeline {self.info.name!r} is unconditional: guidance must be 1")
        return steps, sampler or self.info.schedule, guidance, eta, spacing

    @torch.no_grad()
    def sample(self, n: int, prompts: Sequence[str] | str | None = None, labels=None, steps: int | None = None,
               sampler: str | None = None, guidance: float | None = None, seed: int = 0, first_index: int = 0,
               batch_size: int = 250, progress: bool = False, **_: object) -> torch.Tensor:
        """n images, float32 (n, C, H, W) in [0, 1] on CPU; sample i seeded by (seed, first_index + i)."""
        steps, sampler, guidance, _, _ = self.resolve_settings(steps, sampler, guidance)
        name = SCHEDULERS.get(sampler)
        self.pipe.scheduler = (getattr(self._diffusers, name).from_config(self._base_scheduler.config) if name
                               else self._base_scheduler)
        out = []
        for start in range(0, n, batch_size):
            idx = range(start, min(n, start + batch_size))
            gens = [torch.Generator("cpu").manual_seed(per_sample_seed(seed, first_index + i)) for i in idx]
            kwargs = {"generator": gens, "num_inference_steps": steps, "output_type": "np"}
            if self.info.conditioning == "text":
                texts = [prompts] * n if isinstance(prompts, str) else list(prompts or [""] * n)
                kwargs.update(prompt=texts[start : start + len(idx)], guidance_scale=guidance)
            elif self.info.conditioning == "class":
                kwargs.update(class_labels=[int(c) for c in torch.as_tensor(labels)[start : start + len(idx)]],
                              guidance_scale=guidance)
            else:
                kwargs["batch_size"] = len(idx)
            images = np.asarray(self.pipe(**kwargs).images, dtype=np.float32)  # (b, H, W, C) in [0, 1]
            if images.ndim == 3:
                images = images[..., None]
            out.append(torch.from_numpy(images).permute(0, 3, 1, 2).clamp(0, 1))
        return torch.cat(out)
