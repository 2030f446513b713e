"""Files, written safely: atomic outputs with an explicit mode, the one table writer, digests, and model
directories (``config.json`` + ``model.safetensors``, pickles refused unless trusted).

The bottom layer: it imports nothing else of diffeval, and torch, safetensors and pandas only inside the
functions that need them, so that importing it (as the CLI does for ``--help``) stays cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch

FILE_MODE = 0o644  # outputs are readable by others, like any file the user writes; keys pass 0o600
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")


class ModelDirError(ValueError):
    """A model directory that cannot be loaded; the message says why and what to do."""


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: int = FILE_MODE) -> Iterator[Path]:
    """A temporary file beside ``path`` (its folder is created) for the block to write; when the block ends
    it gets ``mode`` and replaces ``path`` in one step, so readers see the old or the new file, never a
    partial one. On an error the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_writable(folder: str | Path) -> Path:
    """Create ``folder`` and prove a file can be written there, before a long run whose results would
    otherwise be lost at the end; a ValueError naming the folder otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"--out: cannot write to {folder} ({e.strerror or e})") from None
    return folder


LOCK_NAME = ".diffeval.lock"


class FolderBusyError(ValueError):
    """Another diffeval run holds the folder's lock."""


@contextlib.contextmanager
def folders_locked(*folders: str | Path | None, command: str = "diffeval") -> Iterator[None]:
    """Hold an exclusive lock on each folder (created if needed; None is skipped) for the block, so that a
    second run on the same ``--out`` or cache is refused at once with FolderBusyError naming the holder,
    instead of the two interleaving their caches. The lock is ``flock`` on ``<folder>/.diffeval.lock``: the
    kernel drops it when the holder exits, killed or not, so a crash leaves no stale lock. Where ``fcntl``
    is missing (Windows) the block runs unlocked. A folder the lock created and the block left empty is removed
    again, so a run refused early leaves nothing behind."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield
        return
    unique = dict.fromkeys(Path(f).resolve() for f in folders if f is not None)
    with contextlib.ExitStack() as stack:
        for folder in unique:
            if not folder.exists():
                stack.callback(_remove_if_only_lock, folder)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
            except OSError as e:
                raise ValueError(f"cannot write to {folder} ({e.strerror or e})") from None
            stack.callback(os.close, fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                raise FolderBusyError(f"{folder} is in use by another diffeval run ({holder}); wait for it to "
                                      f"finish or choose another folder") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, {command}".encode(), 0)
        yield


def _remove_if_only_lock(folder: Path) -> None:
    try:
        if [p.name for p in folder.iterdir()] == [LOCK_NAME]:
            (folder / LOCK_NAME).unlink()
            folder.rmdir()
    except OSError:
        pass


def atomic_write_text(path: str | Path, text: str, mode: int = FILE_MODE) -> Path:
    """Write a text file atomically (see ``atomic_output``); returns its path."""
    with atomic_output(path, mode) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes, mode: int = FILE_MODE) -> Path:
    """Write a binary file atomically (see ``atomic_output``); returns its path."""
    with atomic_output(path, mode) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_savez(path: str | Path, arrays: Mapping[str, np.ndarray], compressed: bool = False) -> Path:
    """``np.savez`` (or ``savez_compressed``) of ``arrays`` to ``path``, atomically and fsynced."""
    import numpy as np

    save = np.savez_compressed if compressed else np.savez
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        save(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def atomic_torch_save(path: str | Path, value: Any) -> Path:
    """``torch.save`` to ``path`` atomically (read back with ``torch.load(weights_only=True)``)."""
    import torch

    with atomic_output(path) as tmp:
        torch.save(value, tmp)
    return Path(path)


def digest(obj: Any, length: int = 12) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``obj`` as canonical JSON (sorted keys; what JSON
    cannot hold is written with ``str``): the key of a cache entry that depends on exactly ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


SLUG_MAX = 120  # characters of a name component; longer names keep a prefix and a digest of the whole


def slug(text: str) -> str:
    """``text`` as one safe file-name component: runs of characters other than ASCII letters, digits and
    ``_.+-`` become ``_``, leading dots are dropped (so no separators, no ``..``, no hidden files, no NUL),
    and a name over SLUG_MAX characters is cut to a prefix plus 12 hex digits of its digest (stays unique)."""
    out = re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(text)).lstrip(".") or "_"
    if len(out) > SLUG_MAX:
        out = f"{out[:SLUG_MAX - 13]}-{digest(str(text), 12)}"
    return out


def safe_path(folder: str | Path, *names: str, suffix: str = "") -> Path:
    """``folder / slug(name) / ... + suffix``, proven to resolve inside ``folder``: every file name that comes
    from a config, a prompt, a key, an image name or another user string is made here, so no such string
    can place a file outside the output folder. Raises ValueError if the result would escape."""
    root = Path(folder).resolve()
    path = root.joinpath(*(slug(n) for n in names))
    path = path.with_name(path.name + suffix) if suffix else path
    if not path.resolve().is_relative_to(root):
        raise ValueError(f"{path}: a derived file name would leave the output folder {root}")
    return Path(folder).joinpath(path.relative_to(root))


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_table(
    table: pd.DataFrame, folder: str | Path, stem: str, settings: Mapping[str, Any] | None = None,
    markdown: str | None = None, floatfmt: str = ".4g",
) -> dict[str, Path]:
    """``{stem}.csv`` (every column), ``{stem}.md`` (``markdown`` if given, else the whole table) and
    ``{stem}.json`` (``{"settings": ..., "rows": [one object per row]}``) in ``folder``, each atomic;
    returns the paths by suffix."""
    folder = Path(folder)
    md = markdown if markdown is not None else table.to_markdown(index=False, floatfmt=floatfmt)
    rows = json.loads(table.to_json(orient="records"))
    doc = {"settings": dict(settings or {}), "rows": rows}
    return {
        "csv": atomic_write_text(folder / f"{stem}.csv", table.to_csv(index=False)),
        "md": atomic_write_text(folder / f"{stem}.md", md.rstrip("\n") + "\n"),
        "json": atomic_write_text(folder / f"{stem}.json", json.dumps(doc, indent=1, default=str) + "\n"),
    }


def save_model_dir(directory: str | Path, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (tensors as contiguous float32 on the CPU unless they
    are integer buffers) into ``directory``, each atomically; returns the directory."""
    from safetensors.torch import save_file

    directory = Path(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    with atomic_output(directory / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    atomic_write_text(directory / "config.json", json.dumps(dict(config), indent=2) + "\n")
    return directory


def read_model_config(directory: str | Path, fmt: str, versions: tuple[int, ...], what: str) -> dict[str, Any]:
    """``directory/config.json`` checked to be of format ``fmt`` (``diffeval-generator``, ...) at one of
    ``versions``; ``what`` names the kind of directory in errors (a ``ModelDirError`` that says what is wrong)."""
    path = Path(directory) / "config.json"
    if not Path(directory).is_dir():
        raise ModelDirError(f"{directory}: not a directory")
    if not path.is_file():
        raise ModelDirError(f"{directory}: no config.json; a {what} directory holds config.json + model.safetensors")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelDirError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(config, dict) or config.get("format") != fmt:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ModelDirError(f"{path}: not a {fmt.replace('-', ' ')} config (format {got!r})")
    if config.get("version") not in versions:
        expected = " or ".join(map(str, versions))
        raise ModelDirError(f"{path}: config version {config.get('version')} is not supported (expected {expected})")
    return config


def read_model_weights(directory: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """``directory/model.safetensors``; without it a pickled state dict (``*.pt`` ...) only when
    ``trust_pickle``, and even then read with ``torch.load(weights_only=True)``."""
    from safetensors.torch import load_file

    directory = Path(directory)
    st = directory / "model.safetensors"
    if st.is_file():
        try:
            return load_file(str(st))
        except Exception as e:  # safetensors raises several types for damaged files
            raise ModelDirError(f"{st}: unreadable safetensors file ({e})") from e
    pickles = sorted(p for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not pickles:
        raise ModelDirError(f"{directory}: no model.safetensors")
    if not trust_pickle:
        raise ModelDirError(
            f"{pickles[0]}: pickled checkpoints can run code when loaded and are refused; "
            "convert it to model.safetensors, or pass --trust-pickle (trust_pickle=True) if you trust its source"
        )
    return _read_pickled_state(pickles[0])


def _read_pickled_state(path: Path) -> dict[str, torch.Tensor]:
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # torch's message is many lines, suggesting to allow-list the globals
        found = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", str(e), re.IGNORECASE)
        raise ModelDirError(f"{path}: the pickle holds objects other than tensors"
                            f"{f' ({found.group(1)})' if found else ''}, refused even with --trust-pickle (it may be "
                            "malicious)") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelDirError(f"{path}: does not hold a flat state dict of tensors")
    return state
