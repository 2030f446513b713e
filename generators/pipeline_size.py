"""A diffusers pipeline folder checked before diffusers builds it: its index (a pipeline class diffusers has,
every component's folder present) and its parameter count, for which each component
that is a network (a diffusers ``ModelMixin`` or a transformers ``PreTrainedModel``, as ``model_index.json``
names it) is built from its ``config.json`` on PyTorch's meta device, where no memory is allocated.

diffusers without ``accelerate`` builds every component at full size before it reads the weights, so an
edited config (a UNet with 20,000 channels) would otherwise take all the memory it asks for.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .footprint import MAX_PARAMS_ENV, max_params


def _component_class(library: str, name: str):
    """The class ``model_index.json`` names, if it is a network class of diffusers or transformers."""
    try:
        if library == "diffusers":
            import diffusers

            cls = getattr(diffusers, name, None)
            return cls if isinstance(cls, type) and issubclass(cls, diffusers.ModelMixin) else None
        if library == "transformers":
            import transformers

            cls = getattr(transformers, name, None)
            return cls if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel) else None
    except ImportError:
        return None
    return None  # schedulers, tokenizers, feature extractors: no parameters


def _meta_parameters(cls, folder: Path) -> int:
    import diffusers

    with torch.device("meta"):
        if issubclass(cls, diffusers.ModelMixin):
            model = cls.from_config(cls.load_config(str(folder)))
        else:
            model = cls(cls.config_class.from_pretrained(str(folder), local_files_only=True))
    return sum(p.numel() for p in model.parameters())


def read_pipeline_index(path: str | Path) -> dict[str, tuple[str, str]]:
    """The components ``model_index.json`` names, {component: (library, class)}; a ValueError naming what is
    wrong when the index cannot be read, names a pipeline class this diffusers does not have (a custom
    pipeline's code is never run) or a component whose folder is missing."""
    import diffusers

    path = Path(path)
    try:
        index = json.loads((path / "model_index.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path / 'model_index.json'}: cannot read the pipeline index ({e})") from None
    name = index.get("_class_name")
    if not isinstance(name, str) or not isinstance(getattr(diffusers, name, None), type):
        raise ValueError(f"{path / 'model_index.json'}: pipeline class {name!r} is not one of diffusers "
                         f"{diffusers.__version__} (custom pipeline code is never run)")
    components = {}
    for component, spec in index.items():
        if component.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or None in spec:
            continue
        if not (path / component).is_dir():
            raise ValueError(f"{path}: component {component!r} ({spec[-1]}) named in model_index.json is missing "
                             f"(expected the folder {path / component})")
        components[component] = (spec[0], spec[1])
    return components


def pipeline_parameters(path: str | Path) -> dict[str, int]:
    """Parameters per network component of the pipeline folder (``read_pipeline_index``'s checks first),
    counted on the meta device."""
    path = Path(path)
    counts = {}
    for component, spec in read_pipeline_index(path).items():
        cls = _component_class(*spec)
        if cls is None or not (path / component / "config.json").is_file():
            continue
        try:
            counts[component] = _meta_parameters(cls, path / component)
        except Exception as e:  # noqa: BLE001 - a config the class cannot be built from, whatever the library raises
            raise ValueError(f"{path / component / 'config.json'}: cannot build {spec[1]} from it "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return counts


def check_pipeline_size(path: str | Path) -> int:
    """The pipeline's total parameters; ValueError when over ``$DIFFEVAL_MAX_PARAMS`` (default 2e9)."""
    counts = pipeline_parameters(path)
    total, limit = sum(counts.values()), max_params()
    if total > limit:
        parts = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        raise ValueError(f"{path}: the pipeline would have {total:,} parameters ({parts}), over the limit of "
                         f"{limit:,}; set {MAX_PARAMS_ENV} to allow more")
    return total
