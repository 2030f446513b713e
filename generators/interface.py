"""The Generator interface every diffeval module consumes.

Images at this boundary are float32 (N, C, H, W) in [0, 1] on CPU. Inside, the network works in "model
space": x = 2 * image - 1 in [-1, 1] for pixel models, the autoencoder's scaled latents (unit variance on the
training set) for latent models (``info.space``); ``denoise``, ``invert`` and the initial noise live there.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .config import ModelConfig, SamplingDefaults
from .devices import pick_device
from .model import Conditioning, DiffusionModel
from .parameterization import Prediction, to_prediction
from .samplers import INVERTIBLE_SAMPLERS, NoiseSource, get_sampler, invert, run_sampler
from .schedules import NoiseSchedule
from .tokenizer import WordTokenizer


@dataclass(frozen=True)
class GeneratorInfo:
    """What a generator is. ``conditioning``: "none" | "class" | "text"; resolution in pixels."""

    name: str
    family: str
    parameterization: str
    resolution: int
    channels: int
    conditioning: str
    backbone: str
    schedule: str
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    default_sampler: str = "ddim"
    default_steps: int = 50
    default_guidance: float = 1.0
    invertible: bool = True
    space: str = "pixel"  # where the network denoises: "pixel" or "latent" (decoded by ``autoencoder``)


def checked_settings(steps, guidance, eta) -> tuple[int, float, float | None]:
    """(steps, guidance, eta) as int/float, refused with a ValueError naming the option when out of range:
    steps an integer >= 1, guidance a finite number >= 0 (1 = no guidance), eta finite in [0, 1] (or None)."""
    if isinstance(steps, bool) or int(steps) != steps or int(steps) < 1:
        raise ValueError(f"--steps: must be an integer >= 1, got {steps!r}")
    guidance = float(guidance)
    if not math.isfinite(guidance) or guidance < 0:
        raise ValueError(f"--guidance: must be a finite number >= 0 (1 = no guidance), got {guidance!r}")
    if eta is not None:
        eta = float(eta)
        if not (math.isfinite(eta) and 0 <= eta <= 1):
            raise ValueError(f"--eta: must lie in [0, 1] (0 = deterministic DDIM), got {eta!r}")
    return int(steps), guidance, eta


def class_conditions(info: GeneratorInfo, classes: torch.Tensor, prompt: Callable[[int], str]) -> dict:
    """``sample`` keyword arguments that ask a generator described by ``info`` for ``classes`` (int64 (N,)):
    the labels for a class model, ``prompt(c)`` per image for a text model, nothing for an unconditional one."""
    if info.conditioning == "class":
        return {"labels": classes}
    if info.conditioning == "text":
        return {"prompts": [prompt(int(c)) for c in classes]}
    return {}


def normalised_conditions(info: GeneratorInfo, n: int, prompts: Sequence[str] | str | None = None, labels=None,
                          what: str = "generator") -> tuple[list[str] | None, torch.Tensor | None]:
    """(texts, labels) for n samples of the model ``info`` describes (``what`` names it in errors), checked.

    texts: n prompts for a text model (None is the empty prompt; one prompt is repeated), else None. labels:
    int64 (n,) for a class model, -1 for the null class (None: all null; one label is repeated), else None. A
    ValueError names a condition the model does not take, a wrong count, or a class outside 0..num_classes - 1."""
    kind = info.conditioning
    if kind == "none" and (prompts is not None or labels is not None):
        raise ValueError(f"{what} {info.name!r} is unconditional: it takes no prompts or labels")
    if kind == "class" and prompts is not None:
        raise ValueError(f"{what} {info.name!r} is class-conditional: pass labels, not prompts")
    if kind == "text" and labels is not None:
        raise ValueError(f"{what} {info.name!r} is text-conditional: pass prompts, not labels")
    if kind == "text":
        texts = [""] if prompts is None else [prompts] if isinstance(prompts, str) else list(prompts)
        texts = texts * n if len(texts) == 1 else texts
        if len(texts) != n:
            raise ValueError(f"got {len(texts)} prompts for {n} samples")
        return texts, None
    if kind == "class":
        if labels is None:
            return None, torch.full((n,), -1, dtype=torch.long)
        lab = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        lab = lab.expand(n).clone() if lab.numel() == 1 else lab.clone()
        if lab.numel() != n:
            raise ValueError(f"got {lab.numel()} labels for {n} samples")
        if info.num_classes and ((lab < -1) | (lab >= info.num_classes)).any():
            raise ValueError(f"labels must lie in 0..{info.num_classes - 1} (or -1 for none)")
        return None, lab
    return None, None


class Generator:
    """A trained diffusion model with its schedule, tokenizer and sampling defaults."""

    def __init__(
        self,
        model: DiffusionModel,
        name: str,
        family: str,
        defaults: SamplingDefaults | None = None,
        device: str | torch.device | None = None,
        autoencoder=None,
    ) -> None:
        self.config: ModelConfig = model.config
        if bool(self.config.autoencoder) != (autoencoder is not None):
            raise ValueError("a latent model needs its autoencoder, and a pixel model takes none")
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self._autoencoder = None if autoencoder is None else autoencoder.to(self.device).eval().requires_grad_(False)
        self.schedule = NoiseSchedule(self.config.schedule)
        self.defaults = defaults or SamplingDefaults()
        self.tokenizer = (
            WordTokenizer(self.config.vocab, self.config.text_encoder.get("max_len", 16))
            if self.config.conditioning == "text"
            else None
        )
        c = self.config
        self.info = GeneratorInfo(
            name=name,
            family=family,
            parameterization=c.parameterization,
            resolution=c.image_size,
            channels=c.channels,
            conditioning=c.conditioning,
            backbone=c.backbone,
            schedule=c.schedule.kind,
            num_classes=c.num_classes if c.conditioning == "class" else 0,
            class_names=tuple(c.class_names),
            default_sampler=self.defaults.sampler,
            default_steps=self.defaults.steps,
            default_guidance=self.defaults.guidance,
            space="latent" if autoencoder is not None else "pixel",
        )

    def fingerprint(self) -> str:
        """16 hex digits hashing the name and the weights (cache keys change when the weights do)."""
        h = hashlib.sha256(self.info.name.encode())
        tensors = dict(self.model.state_dict())
        if self._autoencoder is not None:
            tensors.update(self._autoencoder.fingerprint_tensors())
        for k, v in sorted(tensors.items()):
            h.update(k.encode())
            h.update(v.detach().float().cpu().numpy().tobytes())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ conditioning
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images this generator makes."""
        return self.config.image_shape

    @property
    def noise_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the initial noise ``sample(noise=...)`` takes (where Tree-Ring keys live): the latent
        shape for latent models, the image shape for pixel ones."""
        return self.config.model_shape

    @property
    def autoencoder(self):
        """The frozen ``generators.autoencoder.Autoencoder`` of a latent model, None for pixel models."""
        return self._autoencoder

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] -> model-space points (N, *noise_shape) float32 on CPU: the
        autoencoder's scaled posterior mean for latent models, 2 x - 1 for pixel models."""
        shape = self.image_shape
        if images.ndim != 4 or tuple(images.shape[1:]) != shape:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, shape))}), got {tuple(images.shape)}")
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(self.device, torch.float32)
            out.append((x * 2 - 1 if self._autoencoder is None else self._autoencoder.encode(x)).float().cpu())
        return torch.cat(out) if out else torch.empty(0, *self.noise_shape)

    @torch.no_grad()
    def decode(self, x: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
        """Model-space points (N, *noise_shape) -> images (N, C, H, W) float32 in [0, 1] on CPU."""
        out = []
        for start in range(0, x.shape[0], batch_size):
            z = x[start : start + batch_size].to(self.device, torch.float32)
            img = (z + 1) / 2 if self._autoencoder is None else self._autoencoder.decode(z)
            out.append(img.float().cpu().clamp(0, 1))
        return torch.cat(out) if out else torch.empty(0, *self.image_shape)

    def initial_noise(self, n: int, seed: int, first_index: int = 0) -> torch.Tensor:
        """(n, *noise_shape) float32 N(0, 1), on CPU: the noise ``sample`` draws for (seed, first_index + i)."""
        return NoiseSource(seed, range(first_index, first_index + n), self.noise_shape).draw()

    def class_conditions(self, classes: torch.Tensor, prompt: Callable[[int], str]) -> dict:
        """``sample`` keyword arguments asking for ``classes``; ``prompt`` turns a class into a text prompt
        (see the module-level ``class_conditions``)."""
        return class_conditions(self.info, classes, prompt)

    def conditioning(self, n: int, prompts: Sequence[str] | str | None = None, labels=None) -> Conditioning:
        """Build network conditions for n samples. ``None`` (or "" / -1) means the null condition."""
        texts, lab = normalised_conditions(self.info, n, prompts, labels)
        if lab is not None:
            lab[lab == -1] = self.config.num_classes  # the null class's row
            return Conditioning(labels=lab)
        if texts is not None:
            return self._text_conditioning(texts)
        return Conditioning()

    def _text_conditioning(self, prompts: list[str]) -> Conditioning:
        unknown = self.tokenizer.unknown_words(prompts)
        if unknown:
            warnings.warn(
                f"words outside {self.info.name!r}'s vocabulary are read as <unk>: {', '.join(unknown)}", stacklevel=4
            )
        ids, mask = self.tokenizer.encode(prompts)
        return Conditioning(ids=ids, mask=mask)

    def null_conditioning(self, n: int) -> Conditioning:
        return self.conditioning(n) if self.config.conditioning != "none" else Conditioning()

    # ------------------------------------------------------------------ the denoiser
    def _coefficients(self, t: torch.Tensor):
        t_eval = t.clamp(min=self.schedule.t_min_train)
        alpha, sigma = self.schedule.alpha_sigma(t_eval)
        d_alpha, d_sigma = self.schedule.d_alpha_sigma(t_eval)
        return t_eval, alpha, sigma, d_alpha, d_sigma

    @torch.no_grad()
    def denoise(self, x_t: torch.Tensor, t, prompts=None, labels=None, guidance: float = 1.0) -> Prediction:
        """Model estimate at (x_t, t) in model space: a Prediction with x0, eps, score, v.

        x_t: (N, *noise_shape) float in model space ([-1, 1] pixels, or the scaled latents of a latent model:
        ``info.space`` says which); t: float or (N,) in [0, 1]
        (clamped below to the smallest trained time); conditions as in ``sample``.
        """
        x_t = x_t.to(self.device, torch.float32)
        n = x_t.shape[0]
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(n).clone()
        cond = self.conditioning(n, prompts, labels).to(self.device)
        return self._predict(x_t, t, cond, guidance)

    def _predict(
        self, x: torch.Tensor, t: torch.Tensor, cond: Conditioning, guidance: float, clip_x0: bool = False
    ) -> Prediction:
        t_eval, alpha, sigma, d_alpha, d_sigma = self._coefficients(t)
        t_net = t_eval.float().to(self.device)
        if guidance != 1.0 and self.config.conditioning != "none":
            both = Conditioning.cat([cond, self.null_conditioning(x.shape[0]).to(self.device)])
            out_c, out_u = self.model(torch.cat([x, x]), torch.cat([t_net, t_net]), both).chunk(2)
            out = out_u + guidance * (out_c - out_u)
        else:
            out = self.model(x, t_net, cond)
        dev = lambda v: v.to(self.device, torch.float32)  # noqa: E731
        pred = to_prediction(
            out.float(), x, dev(alpha), dev(sigma), self.config.parameterization, dev(d_alpha), dev(d_sigma)
        )
        if clip_x0:
            a, s = dev(alpha)[:, None, None, None], dev(sigma)[:, None, None, None]
            x0 = pred.x0.clamp(-1.0, 1.0)
            eps = torch.where(s > 0, (x - a * x0) / s.clamp(min=1e-12), pred.eps)
            pred = Prediction(x=x, x0=x0, eps=eps, alpha=pred.alpha, sigma=pred.sigma)
        return pred

    def _denoiser(self, cond: Conditioning, guidance: float, clip_x0: bool):
        """The (x, t) -> (x0_hat, eps_hat) function the samplers integrate, for a fixed batch of conditions."""

        def denoise(x: torch.Tensor, t: float):
            p = self._predict(x, torch.full((x.shape[0],), t, dtype=torch.float64), cond, guidance, clip_x0)
            return p.x0, p.eps

        return denoise

    # ------------------------------------------------------------------ sampling
    def resolve_settings(self, steps=None, sampler=None, guidance=None, eta=None, spacing=None):
        """(steps, sampler, guidance, eta, spacing) with None replaced by this generator's defaults; checked."""
        d = self.defaults
        sampler = sampler or d.sampler
        get_sampler(sampler)  # a clear error for an unknown name
        steps, guidance, eta = checked_settings(d.steps if steps is None else steps,
                                                d.guidance if guidance is None else guidance,
                                                d.eta if eta is None else eta)
        if self.config.conditioning == "none" and guidance != 1.0:
            raise ValueError(f"generator {self.info.name!r} is unconditional: guidance must be 1")
        return steps, sampler, guidance, eta, spacing or d.spacing

    @torch.no_grad()
    def sample(
        self,
        n: int,
        prompts: Sequence[str] | str | None = None,
        labels=None,
        steps: int | None = None,
        sampler: str | None = None,
        guidance: float | None = None,
        seed: int = 0,
        eta: float | None = None,
        spacing: str | None = None,
        noise: torch.Tensor | None = None,
        clip_x0: bool | None = None,
        batch_size: int = 250,
        progress: bool = False,
        first_index: int = 0,
        output: str = "image",
    ) -> torch.Tensor:
        """n images, float32 (n, C, H, W) in [0, 1] on CPU (latent models decode their samples); with
        ``output="latent"`` the model-space samples (n, *noise_shape) before decoding.

        Sample i depends only on (seed, first_index + i) and the settings, not on batch_size, so a
        large run can be made in shards (``first_index`` = the shard's offset). ``noise``: optional
        initial noise (n, *noise_shape) at t = 1 in model space (the watermark embeds its key there).
        ``clip_x0``: clamp each x0 estimate to [-1, 1] (default: the generator's setting).
        """
        steps, sampler, guidance, eta, spacing = self.resolve_settings(steps, sampler, guidance, eta, spacing)
        if output not in ("image", "latent"):
            raise ValueError(f"output must be 'image' or 'latent', got {output!r}")
        clip = self.defaults.clip_x0 if clip_x0 is None else clip_x0
        cond = self.conditioning(n, prompts, labels)
        shape = self.noise_shape
        if noise is not None and tuple(noise.shape) != (n, *shape):
            raise ValueError(f"noise must have shape {(n, *shape)}, got {tuple(noise.shape)}")
        times = self.schedule.sampling_times(steps, spacing)
        nfe = 2 * steps - 1 if sampler == "heun" else steps
        bar = tqdm(
            total=nfe * ((n + batch_size - 1) // batch_size), desc=f"sample {self.info.name}", disable=not progress
        )
        out = []
        for start in range(0, n, batch_size):
            idx = list(range(start, min(n, start + batch_size)))
            source = NoiseSource(seed, [first_index + i for i in idx], shape, self.device)
            x = source.draw() if noise is None else noise[idx].to(self.device, torch.float32)
            c = cond[start : start + len(idx)].to(self.device)

            x = run_sampler(
                self._denoiser(c, guidance, clip), self.schedule, x, times, sampler, source, eta, bar.update
            )
            out.append(self.decode(x) if output == "image" else x.float().cpu())
        bar.close()
        return torch.cat(out) if out else torch.empty(0, *(self.image_shape if output == "image" else shape))

    @property
    def ode_sampler(self) -> str:
        """The invertible deterministic sampler for this path: euler for rectified flow, ddim (eta 0) for VP."""
        return "euler" if self.schedule.is_flow else "ddim"

    @torch.no_grad()
    def regenerate(
        self,
        images: torch.Tensor,
        t: float,
        steps: int = 20,
        seed: int = 0,
        first_index: int = 0,
        batch_size: int = 250,
    ) -> torch.Tensor:
        """SDEdit-style re-generation: noise images (N, C, H, W) in [0, 1] to time ``t`` in (0, 1] of
        the forward process (image i's noise from (seed, first_index + i)), then run the deterministic
        sampler (ddim, or euler on flow paths) back to 0 over ``steps`` steps with the null condition
        and guidance 1. Returns (N, C, H, W) in [0, 1]; larger t removes more of the original. Latent models
        encode, re-generate the latent and decode."""
        if not 0 < t <= 1:
            raise ValueError(f"t must lie in (0, 1], got {t}")
        latents = self.encode(images)
        shape = self.noise_shape
        sampler = self.ode_sampler
        times = torch.linspace(float(t), 0.0, max(1, int(steps)) + 1, dtype=torch.float64)
        if self.schedule.discrete:
            n_disc = self.config.schedule.discrete_steps
            times = torch.unique_consecutive(torch.round(times * n_disc) / n_disc)
        alpha, sigma = self.schedule.alpha_sigma(times[:1])
        out = []
        for start in range(0, latents.shape[0], batch_size):
            x = latents[start : start + batch_size].to(self.device, torch.float32)
            idx = range(first_index + start, first_index + start + x.shape[0])
            eps = NoiseSource(seed, idx, shape, self.device).draw()
            x = float(alpha) * x + float(sigma) * eps
            cond = self.null_conditioning(x.shape[0]).to(self.device)
            x = run_sampler(self._denoiser(cond, 1.0, self.defaults.clip_x0), self.schedule, x, times, sampler)
            out.append(self.decode(x))
        return torch.cat(out) if out else torch.empty(0, *self.image_shape)

    @torch.no_grad()
    def invert(
        self,
        images: torch.Tensor,
        steps: int = 50,
        sampler: str | None = None,
        prompts=None,
        labels=None,
        guidance: float = 1.0,
        clip_x0: bool | None = None,
        batch_size: int = 250,
        progress: bool = False,
        fixed_point: int = 0,
    ) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] -> the initial noise (N, *noise_shape) at t = 1 (model space, float32,
        CPU) that the deterministic sampler maps to them (latent models encode first, as Tree-Ring does in
        SD). Default: the null condition, guidance 1, and the same x0 clipping as ``sample``.
        ``fixed_point``: iterations per step that solve each ddim/euler step exactly for its
        input (see ``generators.samplers.invert``)."""
        if not self.info.invertible:
            raise ValueError(f"generator {self.info.name!r} cannot invert images to noise")
        clip = self.defaults.clip_x0 if clip_x0 is None else clip_x0
        sampler = sampler or self.ode_sampler
        if not get_sampler(sampler).invertible:
            raise ValueError(f"invert supports {', '.join(INVERTIBLE_SAMPLERS)}, not {sampler!r}")
        latents = self.encode(images)
        n = latents.shape[0]
        cond = self.conditioning(n, prompts, labels)
        times = self.schedule.sampling_times(steps, "uniform")
        out = []
        bar = tqdm(total=n, desc=f"invert {self.info.name}", disable=not progress)
        for start in range(0, n, batch_size):
            x = latents[start : start + batch_size].to(self.device, torch.float32)
            c = cond[start : start + x.shape[0]].to(self.device)

            denoiser = self._denoiser(c, guidance, clip)
            out.append(invert(denoiser, self.schedule, x, times, sampler, fixed_point=fixed_point).float().cpu())
            bar.update(x.shape[0])
        bar.close()
        return torch.cat(out)
