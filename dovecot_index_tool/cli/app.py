"""The command group and the one place that turns errors into messages and exit
statuses: a ``ToolError`` is one line and its own status, click's usage errors 16,
Ctrl-C 32, and anything else an internal error (128) with the traceback in a file."""

from __future__ import annotations

import datetime
import importlib
import os
import sys
import tempfile
import traceback

import click
from rich.console import Console
from rich.markup import escape

from dovecot_index_tool import __version__
from dovecot_index_tool.errors import ToolError
from dovecot_index_tool.exitcodes import Exit

# Each command's module, imported only when the command runs (or --help lists them): a
# scan that imported every command would spend a tenth of a small run on imports.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "check": ("check_cmd",),
    "dump": ("dump_cmd",),
    "incident": ("incident_cmd",),
    "queue": ("queue_cmd",),
    "repair": ("repair_cmd",),
    "report": ("report_cmd", "webhooks_cmd"),
    "rules": ("rules_cmd",),
    "scan": ("scan_cmd",),
    "serve": ("serve_cmd",),
}


class ToolGroup(click.Group):
    """Runs a command under the error model (also under click's test runner), and
    loads each command's module when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module in COMMAND_MODULES.get(cmd_name, ()):
            importlib.import_module(f"dovecot_index_tool.cli.{module}")
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except ToolError as err:
            error_line(err.message())
            ctx.exit(err.exit_status)
        except BrokenPipeError:  # the reader stopped reading (| head): no message to give
            _silence_stdout()
            ctx.exit(Exit.OPERATIONAL_ERROR)
        except Exception as err:  # a bug: say so, keep the evidence, never exit "success"
            if (known := _operational(err)) is not None:
                error_line(known)
                ctx.exit(Exit.OPERATIONAL_ERROR)
            error_line(f"internal error: {type(err).__name__}: {err} (traceback in "
                       f"{_save_traceback()}); please report it")
            ctx.exit(Exit.INTERNAL)


def _operational(err: Exception) -> str | None:
    """What an error from outside the tool means in one line, when it is not a bug: a
    ledger that cannot be reached or is damaged, a port in use, a file system error."""
    import sqlite3

    if isinstance(err, sqlite3.Error):
        return f"ledger: {err} (a damaged SQLite ledger can be moved aside; the next scan "\
            "starts a new one)"
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(err, psycopg.Error):
        return "ledger: " + " ".join(str(err).split())
    if isinstance(err, OSError):
        return str(err)
    return None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush fails no more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _reader_gone(_console: Console) -> None:
    """Rich's answer to a closed pipe is exit 1, which here means "repaired": say 8."""
    _silence_stdout()
    raise SystemExit(Exit.OPERATIONAL_ERROR)


Console.on_broken_pipe = _reader_gone  # type: ignore[method-assign]


def error_line(text: str) -> None:
    """One line on stderr, never folded (cron mail and log readers grep for it)."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(text)}")


def _save_traceback() -> str:
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    fd, path = tempfile.mkstemp(prefix=f"dovecot-index-tool-crash-{stamp}-", suffix=".txt")
    with os.fdopen(fd, "w") as out:
        out.write(" ".join(sys.argv) + "\n\n" + traceback.format_exc())
    return path


@click.group(cls=ToolGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dovecot-index-tool")
def main() -> None:
    """Read-only integrity checks of Dovecot index files across mailstores."""


def run() -> None:
    """The console entry point: click's usage errors exit 16 (e2fsck's bit), Ctrl-C 32."""
    try:
        status = main(standalone_mode=False)
    except click.UsageError as err:
        err.show()
        sys.exit(Exit.USAGE)
    except click.ClickException as err:
        err.show()
        sys.exit(Exit.OPERATIONAL_ERROR)
    except (click.Abort, KeyboardInterrupt):
        Console(stderr=True).print("cancelled")
        sys.exit(Exit.CANCELLED)
    sys.exit(status if isinstance(status, int) else Exit.OK)
