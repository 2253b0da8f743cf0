"""``mmcl`` entry point. Commands live in ``mmcl.commands``; errors of the project's own hierarchy are
printed as one actionable message (exit status 2), everything else keeps its traceback."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from mmcl.commands import register_all
from mmcl.logging_setup import setup_logging, stderr_console
from model.errors import MmclError

app = typer.Typer(
    name="mmcl",
    help="mmcl-live: real-time multimodal sentiment monitor (Improved MMCL).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
) -> None:
    setup_logging(verbose=verbose, quiet=quiet)


register_all(app)


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=True)
    except MmclError as exc:
        stderr_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        stderr_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
