"""The `kinema` command line: each command parses options and calls one function of the package."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

import kinema

app = typer.Typer(
    name="kinema",
    help="Kinema: generate, train and evaluate video models.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
console = Console()


def _version(value: bool) -> None:
    if value:
        console.print(f"kinema {kinema.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Kinema: generate, train and evaluate video models."""


@app.command()
def train(
    config: Path = typer.Argument(..., help="YAML config, e.g. configs/diffusion/tiny.yaml."),
    set_: List[str] = typer.Option([], "--set", help="Override a config value: key.sub=value (repeatable)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="'auto' (latest checkpoint in the run folder) or a checkpoint path."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (default: runs/<config name>)."),
    until_step: Optional[int] = typer.Option(None, "--until-step", help="Stop with a checkpoint at this step; the schedule stays that of train.max_steps."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop with a checkpoint after this many minutes."),
) -> None:
    """Train or fine-tune a model from a config.

    Example: `kinema train configs/diffusion/tiny.yaml --set train.max_steps=20 --out runs/tiny`
    """
    from kinema.training import train as run_training

    run_training(config, overrides=set_, resume=resume, out=out, until_step=until_step, time_limit=time_limit)


if __name__ == "__main__":
    app()
