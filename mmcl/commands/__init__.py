"""CLI command groups; each module defines ``register(app)``. Add new modules to ``COMMAND_MODULES``."""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES: tuple[str, ...] = (
    "mmcl.commands.train_cmd",
    "mmcl.commands.extract_cmd",
    "mmcl.commands.monitor_cmd",
    "mmcl.commands.profile_cmd",
    "mmcl.commands.serve_cmd",
    "mmcl.commands.train_default_cmd",
    "mmcl.commands.export_cmd",
    "mmcl.commands.bench_cmd",
    "mmcl.commands.calibrate_cmd",
)


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
