"""Options several command groups share."""

from __future__ import annotations

import click

trust_pickle = click.option(
    "--trust-pickle", is_flag=True,
    help="Allow pickled checkpoints and pipeline weights (they can run code when loaded: only from a source you "
         "trust; even then read with weights_only).",
)
