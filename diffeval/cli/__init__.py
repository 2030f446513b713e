"""The ``diffeval`` command line, one module per command group. Every command is thin: its options become a
config, a ``run_*`` function of the layer below does the work and writes the files, the command prints what
it returns. Heavy libraries are imported inside the commands, so ``diffeval --help`` needs no torch.

Errors print one line ("error: ...") and exit with status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
import warnings

import click

from .audit import audit
from .detect import detect
from .generate import sample, train
from .metrics import benchmark, quality, stats
from .watermark import watermark


class DiffevalGroup(click.Group):
    """Turns exceptions into one-line errors unless --debug was given."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:  # a bad option value or a missing argument: one line too
            if ctx.obj and ctx.obj.get("debug"):
                raise
            hint = f" (see {e.ctx.command_path} --help)" if e.ctx else ""
            click.echo(f"error: {e.format_message()}{hint}", err=True)
            ctx.exit(2)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as e:  # the CLI's promise: one clear line, non-zero exit
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {e}", err=True)
            ctx.exit(1)


@click.group(cls=DiffevalGroup)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """diffeval: evaluation, watermarking, detection and audits of image diffusion generators."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"


for _command in (train, sample, quality, benchmark, stats, watermark, detect, audit):
    main.add_command(_command)


def run() -> None:
    """Console-script entry point."""
    main(obj={})


if __name__ == "__main__":
    sys.exit(run())
