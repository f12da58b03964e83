"""The `reconciler` command group: which commands exist, in which module each lives, and its
one-line summary; a command's module is imported only when that command runs.

Every command, including the ones added later, gets `-q/--quiet`, `-v/--verbose` and
`--no-color` here, in one place (`Group.add_command`): they are accepted before the command
name (`reconciler -q plan`) and after it (`reconciler plan -q`).

Why lazy: a command pays for its own imports only (`verify` never loads sqlglot, `--help` loads
no command at all); each command module is a few lines over `app/`, so importing every one of
them at startup cost more than some commands' whole work.
"""
from __future__ import annotations

import importlib

import click

from .options import EXIT_CODES_HELP, output_options

# name -> (module under reconciler.cli that defines it with `@cli.command`, its one-line summary).
# The summary is the one `reconciler --help` and shell completion show (set as the command's
# short_help when it loads); the command's docstring is its full help. At most 64 characters:
# one line of an 80-column --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "apply": ("apply", "Carry out the plan with CREATE/DROP INDEX CONCURRENTLY."),
    "completion": ("completion", "Print the shell completion script (bash, zsh, fish)."),
    "drift": ("plan", "Report every difference on managed tables (for cron)."),
    "fmt": ("fmt", "Rewrite spec files in canonical layout (or --check them)."),
    "health": ("health", "Index health: unused, duplicate, bloated and missing indexes."),
    "import": ("importcmd", "Write the live indexes (or CREATE INDEX statements) as a spec."),
    "init": ("init", "Write indexes.yaml from the current indexes, to start."),
    "maintain": ("health", "Upkeep: REINDEX CONCURRENTLY of bloated indexes, ANALYZE."),
    "plan": ("plan", "Show what apply would change (read-only), and its query effects."),
    "schema": ("schema", "Print the JSON Schema of indexes.yaml (for editors)."),
    "show": ("show", "Show a plan saved by `plan --out`."),
    "validate": ("validate", "Check a spec: offline always, against a database with -d."),
    "verify": ("verify", "Explain every query of the spec: its indexes and budgets."),
}


class Group(click.Group):
    """A click group that loads a command's module on first use and gives every command it
    holds the shared output options."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        output_options(cmd)
        registered = COMMANDS.get(name or cmd.name or "")
        if registered and cmd.short_help is None:
            cmd.short_help = registered[1]
        super().add_command(cmd, name)

    def list_commands(self, ctx: click.Context | None) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            # the module's `@cli.command` decorator registers it through add_command
            importlib.import_module(f"{__package__}.{COMMANDS[cmd_name][0]}")
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of --help from COMMANDS, without importing any command module."""
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                if self.commands[name].hidden:
                    continue
                rows.append((name, self.commands[name].get_short_help_str(formatter.width)))
            else:
                rows.append((name, COMMANDS[name][1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str):
        """Command names (with their summaries) from COMMANDS, without importing the commands:
        the shell asks on every TAB."""
        from click.shell_completion import CompletionItem

        names = [n for n in self.list_commands(ctx) if n.startswith(incomplete)]
        items = [CompletionItem(n, help=COMMANDS[n][1] if n in COMMANDS else self.commands[n].get_short_help_str())
                 for n in names if not (n in self.commands and self.commands[n].hidden)]
        # the group's own options (`--version`, `-q` ...), as click.Command.shell_complete gives them
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def all_commands(self) -> dict[str, click.Command]:
        """Every command, loaded (docs and tests that walk them all)."""
        return {name: cmd for name in self.list_commands(None) if (cmd := self.get_command(None, name)) is not None}


@click.group(cls=Group, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reconciler")
def cli() -> None:
    """Declarative index-as-code for PostgreSQL.

    Write every index you want in indexes.yaml; `plan` compares it with the live catalog and
    `apply` carries it out with CREATE/DROP INDEX CONCURRENTLY.
    """


output_options(cli)
