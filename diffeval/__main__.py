"""``python -m diffeval`` (also under torchrun) runs the CLI."""

from .cli import run

run()
