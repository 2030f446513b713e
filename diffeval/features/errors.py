"""Errors raised when a feature network's weights are not on this machine."""

from __future__ import annotations

from collections.abc import Sequence


class WeightsNotFoundError(FileNotFoundError):
    """A weight file is missing. The message is one line: the file, every place looked, where to put it.

    Construct with :meth:`missing` to get the standard message; the plain constructor takes the
    finished message (so the error pickles across processes like any ``OSError``).
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))

    @classmethod
    def missing(
        cls,
        what: str,
        filename: str,
        looked: Sequence[tuple[str, str]],
        put_at: str,
        source: str | None = None,
        env_var: str | None = None,
    ) -> WeightsNotFoundError:
        """Build the standard message.

        Args:
            what: what the weights are for, e.g. "FID Inception weights".
            filename: the missing file's name.
            looked: (place, outcome) pairs, e.g. ("weights= argument", "not given").
            put_at: the path (or instruction) where a copy of the file will be found.
            source: where the file normally comes from (a URL or hub id), if known.
            env_var: the environment variable that may name the file.
        """
        origin = f" (normally downloaded from {source})" if source else ""
        places = "; ".join(f"{place}: {outcome}" for place, outcome in looked)
        alternatives = "pass weights=PATH" + (f" or set {env_var}=PATH" if env_var else "")
        return cls(
            f"{what} {filename} not found{origin}. Looked at: {places}. "
            f"Copy the file to {put_at}, or {alternatives}."
        )
