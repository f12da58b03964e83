"""`completion`: the shell completion script for bash, zsh or fish."""
from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from .group import cli
from .options import EXIT_CODES_HELP

COMPLETE_VAR = "_RECONCILER_COMPLETE"  # click's protocol: the script calls `reconciler` with it set

INSTALL = """
\b
Install (once):
  bash  echo 'eval "$(reconciler completion bash)"' >> ~/.bashrc
  zsh   echo 'eval "$(reconciler completion zsh)"' >> ~/.zshrc
  fish  reconciler completion fish > ~/.config/fish/completions/reconciler.fish
""" + EXIT_CODES_HELP


@cli.command(epilog=INSTALL)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script for SHELL (commands, options, choices, files)."""
    cls = get_completion_class(shell)
    click.echo(cls(cli, {}, "reconciler", COMPLETE_VAR).source())
