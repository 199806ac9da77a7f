"""What both CLIs share: lazy command loading and the one place errors become exit codes."""

from __future__ import annotations

import errno
import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from boss.core.errors import BossError
from boss.core.exits import report_error, report_internal


class Group(click.Group):
    """A click group whose commands load on demand and whose errors map to exit codes here."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attr = self.lazy[cmd_name].split(":")
            cmd = getattr(importlib.import_module(module), attr)
            if not isinstance(cmd, click.Command):  # pragma: no cover - a packaging mistake
                msg = f"{module}:{attr} is not a click command"
                raise TypeError(msg)
            return cmd
        return super().get_command(ctx, cmd_name)

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        extra["standalone_mode"] = False
        try:
            rv = super().main(args=args, prog_name=prog_name, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except click.UsageError as e:
            # SPEC section 10: the message starts with `Error:`; the hint to --help follows.
            click.echo(f"Error: {e.format_message()}", err=True)
            if e.ctx is not None:
                hint = f"{e.ctx.command_path} --help"
                click.echo(f"Try '{hint}' for help.", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except BossError as e:
            report_error(e)
            sys.exit(e.exit_code)
        except OSError as e:
            # The file system said no: a read-only folder (inside a sandbox), a full disk, a
            # permission. One line that names the file, not a traceback.
            where = f"{e.filename}: " if e.filename else ""
            hint = " (inside a sandbox, only the worktree is writable)" if e.errno == errno.EROFS else ""
            click.echo(f"Error: {where}{e.strerror or e}{hint}", err=True)
            sys.exit(1)
        except Exception as e:
            report_internal(e)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


plan_argument = click.argument("plan", required=False)
plan_option = click.option("--plan", "plan", default=None, help="The plan (default: the only plan).")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
