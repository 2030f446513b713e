"""A diffusers pipeline directory (``model_index.json``) behind the Generator interface.

Optional extra: ``pip install 'diffeval[diffusers]'``. Families (``pipeline_families``): unconditional DDPM/LDM,
class-conditional DiT, text UNets (SD 1.x eps, SD 2.x v, SDXL) and text transformers (SD3 flow, PixArt-alpha).
Samplers map to diffusers schedulers built from the pipeline's scheduler config: ddpm -> DDPMScheduler, ddim ->
DDIMScheduler, dpm++2m -> DPMSolverMultistepScheduler, euler -> EulerDiscreteScheduler, heun ->
HeunDiscreteScheduler (VP pipelines; flow pipelines keep their FlowMatchEulerDiscreteScheduler); ``None`` keeps the
pipeline's own scheduler.

Sample i draws its initial latents (float32, CPU) from a torch.Generator seeded by (seed, first_index + i), exactly
as the pipeline would from that generator, so results do not depend on batching, sharding or dtype (beyond
rounding). Pipelines whose ``__call__`` takes ``latents=`` (SD, SDXL, SD3, PixArt) sample through it; DiT, LDM and
DDPM pipelines, which do not, run the same scheduler loop here (tested equal to their ``__call__``). ``invert``
encodes with the VAE (latent mean x scaling factor, less the shift factor) and walks the deterministic chain back
(``pipeline_chain``).
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
from .interface import GeneratorInfo, checked_settings, class_conditions, normalised_conditions
from .pipeline_chain import Chain, flow_chain, vp_chain
from .pipeline_families import Family, family_of
from .pipeline_size import check_pipeline_size

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
FLOW_SCHEDULER = "FlowMatchEulerDiscreteScheduler"

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


def _null_components(path: str | Path) -> list[str]:
    """Components ``model_index.json`` lists as [null, null] (an SD3 folder saved without T5): passed to diffusers
    as None, as its docs do by hand (``text_encoder_3=None``); diffusers otherwise refuses the folder."""
    import json

    index = json.loads((Path(path) / "model_index.json").read_text())
    return [k for k, v in index.items() if not k.startswith("_") and v == [None, None]]


def check_dtype(dtype: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise ValueError(f"--dtype: choose one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


class DiffusersGenerator:
    """A loaded pipeline with the Generator interface: ``info``, ``noise_shape``, ``sample``, ``invert``,
    ``regenerate``, ``encode``/``decode``, ``fingerprint``. ``dtype``: float32, float16 or bfloat16 weights."""

    def __init__(self, path: str | Path, device: str | torch.device | None = None, trust_pickle: bool = False,
                 dtype: str = "float32") -> None:
        refuse_pickled_weights(path, trust_pickle)
        torch_dtype = check_dtype(dtype)
        try:
            import diffusers
        except ImportError:
            raise ImportError(
                f"{path} is a diffusers pipeline; install the extra: pip install 'diffeval[diffusers]'"
            ) from None
        check_pipeline_size(path)  # the index and the size, before diffusers builds anything
        self._diffusers = diffusers
        self.device = pick_device(device)
        self.dtype = torch_dtype
        # trust_remote_code is never passed: a pipeline folder cannot make diffusers run its own code
        with _quiet_libraries():
            self.pipe = diffusers.DiffusionPipeline.from_pretrained(
                str(path), local_files_only=True, use_safetensors=not trust_pickle, dtype=torch_dtype,
                **{name: None for name in _null_components(path)},
            ).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self._base_scheduler = self.pipe.scheduler
        self._params = inspect.signature(self.pipe.__call__).parameters
        params = self._params
        self.denoiser = getattr(self.pipe, "unet", None) or getattr(self.pipe, "transformer", None)
        cfg = self.denoiser.config
        self.vae = getattr(self.pipe, "vae", None) or getattr(self.pipe, "vqvae", None)
        self.vae_scale = 2 ** (len(self.vae.config.block_out_channels) - 1) if self.vae is not None else 1
        latent = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
        self._latent_channels = int(cfg.in_channels)
        self.family: Family = family_of(self.pipe, latent * self.vae_scale, latent * self.vae_scale)
        conditioning = self.family.conditioning
        self.is_flow = type(self._base_scheduler).__name__ == FLOW_SCHEDULER
        default_steps = params["num_inference_steps"].default if "num_inference_steps" in params else 50
        default_guidance = params["guidance_scale"].default if "guidance_scale" in params else 1.0
        num_classes = 0
        if conditioning == "class":
            num_classes = len(getattr(self.pipe, "labels", {}) or {}) or int(getattr(cfg, "num_embeds_ada_norm", 0))
        self.info = GeneratorInfo(
            name=Path(path).name,
            family="diffusers",
            parameterization="flow" if self.is_flow else self._base_scheduler.config.get("prediction_type", "epsilon"),
            resolution=latent * self.vae_scale,
            channels=3 if self.vae is not None else self._latent_channels,
            conditioning=conditioning,
            backbone=type(self.denoiser).__name__,
            schedule=type(self._base_scheduler).__name__,
            num_classes=num_classes,
            class_names=tuple(self._class_names(num_classes)),
            default_sampler=None,
            default_steps=int(default_steps),
            default_guidance=float(default_guidance if conditioning != "none" else 1.0),
            invertible=True,
        )

    def _class_names(self, num_classes: int) -> list[str]:
        """Class names by id (DiT's id2label names some ids; the others are "class <i>")."""
        labels = getattr(self.pipe, "labels", None) or {}
        by_id = {int(v): k for k, v in labels.items()} if labels else {}
        return [by_id.get(i, f"class {i}") for i in range(num_classes)] if by_id else []

    # ------------------------------------------------------------------ shapes and identity
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images this pipeline makes at its default size."""
        return (self.info.channels, self.info.resolution, self.info.resolution)

    @property
    def noise_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of the initial latents (where Tree-Ring keys live) at the default size."""
        return self._noise_shape(self.info.resolution, self.info.resolution)

    def _noise_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return (self._latent_channels, height // self.vae_scale, width // self.vae_scale)

    @property
    def autoencoder(self):
        """The pipeline's VAE (AutoencoderKL or VQModel), None for pixel-space pipelines."""
        return self.vae

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

    def class_conditions(self, classes: torch.Tensor, prompt) -> dict:
        """``sample`` keyword arguments asking for ``classes`` (see ``Generator.class_conditions``)."""
        return class_conditions(self.info, classes, prompt)

    # ------------------------------------------------------------------ settings
    @property
    def samplers(self) -> tuple[str, ...]:
        """Sampler names this pipeline accepts (its own scheduler's class name always)."""
        return (self.info.schedule,) if self.is_flow else (*SCHEDULERS, self.info.schedule)

    @property
    def ode_sampler(self) -> str:
        """The deterministic sampler ``invert`` runs backwards: ddim for VP pipelines, the flow Euler scheduler."""
        return FLOW_SCHEDULER if self.is_flow else "ddim"

    def resolve_settings(self, steps=None, sampler=None, guidance=None, eta=None, spacing=None):
        """(steps, sampler, guidance, eta, spacing); sampler None, or the name of the pipeline's own scheduler
        class (what None resolves to, so a resolved setting can be passed back), keeps that scheduler."""
        if sampler is not None and sampler not in self.samplers:
            raise ValueError(f"unknown sampler {sampler!r} for this diffusers pipeline; choose one of "
                             f"{', '.join(self.samplers)} ({self.info.schedule} is the pipeline's own)")
        steps, guidance, eta = checked_settings(self.info.default_steps if steps is None else steps,
                                                self.info.default_guidance if guidance is None else guidance, eta)
        if self.info.conditioning == "none" and guidance != 1.0:
            raise ValueError(f"pipeline {self.info.name!r} is unconditional: guidance must be 1")
        if self.info.conditioning != "none" and guidance < 1.0:
            raise ValueError(f"--guidance: diffusers pipelines guide only above 1 (1 = none), got {guidance}")
        return steps, sampler or self.info.schedule, guidance, eta, spacing

    def _scheduler(self, sampler: str):
        """A fresh scheduler for ``sampler`` from the pipeline's scheduler config. A latent pipeline whose config
        does not say (an Euler or PNDM config) gets ``clip_sample=False``: DDIM and DDPM would otherwise clip the
        latent x0 estimate to [-1, 1], which is only right for pixels."""
        config = self._base_scheduler.config
        name = SCHEDULERS.get(sampler) if not self.is_flow else None
        if not name:
            return self._base_scheduler.__class__.from_config(config)
        extra = {"clip_sample": False} if self.vae is not None and "clip_sample" not in config else {}
        return getattr(self._diffusers, name).from_config(config, **extra)

    def _size(self, height: int | None, width: int | None) -> tuple[int, int]:
        h, w = height or self.info.resolution, width or self.info.resolution
        if (h, w) != (self.info.resolution,) * 2:
            if "height" not in self._params:
                raise ValueError(f"--height/--width: {type(self.pipe).__name__} makes {self.info.resolution}px "
                                 "images only")
            step = self.vae_scale * int(getattr(self.denoiser.config, "patch_size", None) or 1)
            if h < step or w < step or h % step or w % step:
                raise ValueError(f"--height/--width: must be positive multiples of {step} for this pipeline, "
                                 f"got {h}x{w}")
        return h, w

    def _conditions(self, n: int, prompts, labels) -> tuple[list | None, torch.Tensor | None]:
        texts, lab = normalised_conditions(self.info, n, prompts, labels, what="pipeline")
        if texts is not None:
            self._warn_truncation(texts)
        return texts, lab

    def _warn_truncation(self, texts: list[str]) -> None:
        """One warning naming the prompts longer than the (first) tokenizer takes; they are truncated, as CLIP
        truncates them (diffusers' own notice is silenced with its logging)."""
        tok = getattr(self.pipe, "tokenizer", None)
        if tok is None:
            return
        limit = int(tok.model_max_length)
        long = [t for t in dict.fromkeys(texts) if len(tok(t, verbose=False).input_ids) > limit]
        if long:
            import warnings

            warnings.warn(f"{len(long)} prompt(s) exceed the tokenizer's {limit} tokens and are truncated "
                          f"(first: {long[0][:60]!r})", stacklevel=5)

    # ------------------------------------------------------------------ the codec
    def _vae_factors(self) -> tuple[float, float]:
        """(shift, scale): latent = (VAE latent - shift) * scale (SD3's VAE has a shift, most have 0)."""
        cfg = self.vae.config
        return float(cfg.get("shift_factor", None) or 0.0), float(cfg.get("scaling_factor", 1.0) or 1.0)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] -> latents (N, c, h, w) float32 on CPU: the VAE's latent mean (before
        quantisation for a VQ model), less the shift factor, times the scaling factor; 2x - 1 for pixel models."""
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(self.device, self.dtype) * 2 - 1
            if self.vae is None:
                out.append(x.float().cpu())
                continue
            enc = self.vae.encode(x)
            z = enc.latent_dist.mean if hasattr(enc, "latent_dist") else enc.latents
            shift, scale = self._vae_factors()
            out.append(((z.float() - shift) * scale).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
        """Latents (N, c, h, w) -> images (N, C, H, W) float32 in [0, 1] on CPU (inverse of ``encode``)."""
        out = []
        for start in range(0, latents.shape[0], batch_size):
            z = latents[start : start + batch_size].to(self.device, torch.float32)
            if self.vae is not None:
                shift, scale = self._vae_factors()
                z = (z / scale + shift).to(self.dtype)
                z = self.vae.decode(z).sample
            out.append(((z.float().cpu() + 1) / 2).clamp(0, 1))
        return torch.cat(out)

    # ------------------------------------------------------------------ sampling
    def draw_noise(self, n: int, seed: int, first_index: int = 0, shape: tuple[int, int, int] | None = None):
        """(generators, noise): per-sample CPU torch.Generators seeded by (seed, first_index + i), and the
        (n, c, h, w) float32 latents each draws first, as ``diffusers.utils.torch_utils.randn_tensor`` would."""
        shape = shape or self.noise_shape
        gens = [torch.Generator("cpu").manual_seed(per_sample_seed(seed, first_index + i)) for i in range(n)]
        noise = torch.cat([torch.randn((1, *shape), generator=g, dtype=torch.float32) for g in gens]) if n else \
            torch.empty(0, *shape)
        return gens, noise

    def initial_noise(self, n: int, seed: int, first_index: int = 0) -> torch.Tensor:
        """(n, *noise_shape) float32 N(0, 1) on CPU: the latents ``sample`` draws for (seed, first_index + i)."""
        return self.draw_noise(n, seed, first_index)[1]

    @torch.no_grad()
    def sample(self, n: int, prompts: Sequence[str] | str | None = None, labels=None, steps: int | None = None,
               sampler: str | None = None, guidance: float | None = None, seed: int = 0, first_index: int = 0,
               batch_size: int = 250, progress: bool = False, noise: torch.Tensor | None = None,
               eta: float | None = None, height: int | None = None, width: int | None = None,
               output: str = "image", **_: object) -> torch.Tensor:
        """n images, float32 (n, C, H, W) in [0, 1] on CPU (``output="latent"``: the final latents instead).

        Sample i is seeded by (seed, first_index + i). ``noise``: the initial latents (n, c, h, w) at the first
        noise level, unit variance (the watermark writes its key there), passed to the pipeline as ``latents=``.
        """
        steps, sampler, guidance, eta, _ = self.resolve_settings(steps, sampler, guidance, eta)
        h, w = self._size(height, width)
        shape = self._noise_shape(h, w)
        texts, lab = self._conditions(n, prompts, labels)
        if noise is not None and tuple(noise.shape) != (n, *shape):
            raise ValueError(f"noise must have shape {(n, *shape)}, got {tuple(noise.shape)}")
        out = []
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"sample {self.info.name}", disable=not progress)
        for start in range(0, n, batch_size):
            idx = slice(start, min(n, start + batch_size))
            m = idx.stop - idx.start
            gens, z = self.draw_noise(m, seed, first_index + start, shape)
            if noise is not None:
                z = noise[idx].float()
            part = dict(texts=texts[idx] if texts else None, labels=lab[idx] if lab is not None else None)
            if "latents" in self._params:
                x = self._pipeline_call(m, z, gens, steps, sampler, guidance, eta, h, w, output, **part)
            else:
                x = self._loop(m, z, gens, steps, sampler, guidance, eta, **part)
                x = self.decode(x) if output == "image" else x.float().cpu()
            out.append(x)
            bar.update(m)
        bar.close()
        return torch.cat(out) if out else torch.empty(0, *(self.image_shape if output == "image" else shape))

    def _pipeline_call(self, m, z, gens, steps, sampler, guidance, eta, h, w, output, texts=None, labels=None):
        """One batch through the pipeline's own ``__call__`` with ``latents=z``."""
        self.pipe.scheduler = self._scheduler(sampler)
        kw = {"latents": z.to(self.device, self.dtype), "generator": gens, "num_inference_steps": steps,
              "output_type": "latent" if output == "latent" else "np"}
        if "height" in self._params:
            kw.update(height=h, width=w)
        if "use_resolution_binning" in self._params:  # PixArt: sample at the size asked for, not a nearby bin
            kw["use_resolution_binning"] = False
        if "clean_caption" in self._params:  # PixArt's caption cleaning needs bs4 and ftfy; prompts are kept as given
            kw["clean_caption"] = False
        if eta is not None and "eta" in self._params:
            kw["eta"] = eta
        if self.info.conditioning == "text":
            kw.update(prompt=texts, guidance_scale=guidance)
        elif self.info.conditioning == "class":
            kw.update(class_labels=[int(c) for c in labels], guidance_scale=guidance)
        else:
            kw["batch_size"] = m
        with _quiet_libraries():  # diffeval warns about truncated prompts itself, once
            images = self.pipe(**kw).images
        if output == "latent":
            return images.float().cpu()
        images = np.asarray(images, dtype=np.float32)  # (b, H, W, C) in [0, 1]
        if images.ndim == 3:
            images = images[..., None]
        return torch.from_numpy(images).permute(0, 3, 1, 2).clamp(0, 1)

    def _loop(self, m, z, gens, steps, sampler, guidance, eta, texts=None, labels=None) -> torch.Tensor:
        """One batch through the scheduler loop the pipelines without ``latents=`` run (DiT, LDM, DDPM):
        final latents (m, c, h, w) on the device."""
        sched = self._scheduler(sampler)
        sched.set_timesteps(steps)
        with _quiet_libraries():
            cond, null = self.family.encode(m, texts, labels)
        step_params = inspect.signature(sched.step).parameters
        extra = {}
        if "generator" in step_params:
            extra["generator"] = gens
        if "eta" in step_params:
            extra["eta"] = 0.0 if eta is None else eta
        x = z.to(self.device, torch.float32) * sched.init_noise_sigma
        for t in sched.timesteps:
            inp = sched.scale_model_input(x, t)
            out = self.family.model_output(inp, t, cond, null, guidance)
            x = sched.step(out, t, x, **extra).prev_sample.float()
        return x

    # ------------------------------------------------------------------ inversion and SDEdit
    def chain(self, steps: int) -> Chain:
        """The deterministic chain of ``steps`` steps that ``sample(sampler=self.ode_sampler)`` walks."""
        if self.is_flow:
            sched = self._scheduler(self.info.schedule)
            mu = None
            if sched.config.get("use_dynamic_shifting", False):
                from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3 import calculate_shift

                c, h, w = self.noise_shape
                p = int(getattr(self.denoiser.config, "patch_size", 1) or 1)
                cfg = sched.config
                mu = calculate_shift((h // p) * (w // p), cfg.get("base_image_seq_len", 256),
                                     cfg.get("max_image_seq_len", 4096), cfg.get("base_shift", 0.5),
                                     cfg.get("max_shift", 1.16))
            return flow_chain(sched, steps, mu)
        return vp_chain(self._scheduler("ddim"), steps)

    def _model_fn(self, cond, null, guidance):
        return lambda x, t: self.family.model_output(x, t, cond, null, guidance)

    @torch.no_grad()
    def invert_latents(self, latents: torch.Tensor, steps: int = 50, prompts=None, labels=None,
                       guidance: float = 1.0, fixed_point: int = 0, batch_size: int = 250,
                       progress: bool = False) -> torch.Tensor:
        """Final latents (N, c, h, w) -> the initial latents (float32, CPU) that the deterministic chain
        (``ode_sampler``, ``steps`` steps) maps to them; null condition and guidance 1 by default."""
        from tqdm.auto import tqdm

        if fixed_point < 0:
            raise ValueError(f"fixed_point must be >= 0, got {fixed_point}")
        n = latents.shape[0]
        texts, lab = self._conditions(n, prompts, labels)
        chain = self.chain(steps)
        out = []
        bar = tqdm(total=n, desc=f"invert {self.info.name}", disable=not progress)
        for start in range(0, n, batch_size):
            idx = slice(start, min(n, start + batch_size))
            with _quiet_libraries():
                cond, null = self.family.encode(idx.stop - idx.start, texts[idx] if texts else None,
                                                lab[idx] if lab is not None else None)
            x = latents[idx].to(self.device, torch.float32)
            out.append(chain.invert(self._model_fn(cond, null, guidance), x, fixed_point).float().cpu())
            bar.update(x.shape[0])
        bar.close()
        return torch.cat(out) if out else torch.empty(0, *latents.shape[1:])

    @torch.no_grad()
    def invert(self, images: torch.Tensor, steps: int = 50, sampler: str | None = None, prompts=None, labels=None,
               guidance: float = 1.0, batch_size: int = 250, progress: bool = False, fixed_point: int = 0,
               **_: object) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] -> the initial latents (N, c, h, w) float32 on CPU: ``encode``, then the
        deterministic chain backwards (DDIM inversion for eps/v, Euler inversion of the flow ODE), with
        ``fixed_point`` refinement iterations per step. Null condition and guidance 1 by default (Tree-Ring)."""
        if sampler is not None and sampler != self.ode_sampler:
            raise ValueError(f"invert walks {self.ode_sampler} for this pipeline, not {sampler!r}")
        shape = self.image_shape
        if images.ndim != 4 or tuple(images.shape[1:]) != shape:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, shape))}), got {tuple(images.shape)}")
        return self.invert_latents(self.encode(images, batch_size), steps, prompts, labels, guidance, fixed_point,
                                   batch_size, progress)

    @torch.no_grad()
    def regenerate(self, images: torch.Tensor, t: float, steps: int = 20, seed: int = 0, first_index: int = 0,
                   batch_size: int = 250) -> torch.Tensor:
        """SDEdit in the latent: encode images (N, C, H, W) in [0, 1], noise them to level t in (0, 1] (the
        chain step nearest t of timestep / num_train_timesteps, or sigma for flow), run the deterministic chain
        to the end over about ``steps`` steps with the null condition, decode. Image i's noise from
        (seed, first_index + i)."""
        if not 0 < t <= 1:
            raise ValueError(f"t must lie in (0, 1], got {t}")
        chain = self.chain(max(1, int(round(max(1, int(steps)) / t))))
        where = (chain.start if self.is_flow else
                 chain.timesteps.double() / self._base_scheduler.config.num_train_timesteps)
        reached = torch.nonzero(where <= t + 1e-9)
        tail = chain.tail(int(reached[0]) if len(reached) else len(chain) - 1)
        out = []
        for s in range(0, images.shape[0], batch_size):
            x0 = self.encode(images[s : s + batch_size]).to(self.device)
            _, eps = self.draw_noise(x0.shape[0], seed, first_index + s, tuple(x0.shape[1:]))
            x = tail.noise_to(x0, eps.to(self.device), 0)
            null = self.family.null(x.shape[0])
            x = tail.run(self._model_fn(null, null, 1.0), x)
            out.append(self.decode(x))
        return torch.cat(out)
