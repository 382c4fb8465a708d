"""The ``raysweep`` command: a click group and its error policy.

Error policy, the same for every command (scripts and Slurm jobs test exit codes):

* exit 2, one line ``error: ...`` on stderr: bad input, fixable before anything
  runs (bad CLI usage, a bad sweep file, an experiment that already exists or
  does not exist, a resume whose space, metric or mode changed);
* exit 1, one line: the run started and could not finish (too many failed
  trials, an infeasible space, any other :class:`RaysweepError`, an OS error);
* exit 130: interrupted, with how to resume;
* a traceback only for an unexpected exception (a bug), or for any error when
  ``RAYSWEEP_DEBUG=1``.
"""

from __future__ import annotations

import errno
import logging
import os
import shlex
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from raysweep import __version__
from raysweep.cli._format import display_path, format_config, format_value, shell_path
from raysweep.cli.dashboard import dashboard_command
from raysweep.cli.export import export_command
from raysweep.cli.ls import ls_command
from raysweep.cli.report import report_command
from raysweep.cli.slurm import slurm_command
from raysweep.cli.status import status_command
from raysweep.cli.submit import submit_command
from raysweep.errors import (
    ExperimentExistsError,
    ExperimentMismatchError,
    ExperimentNotFoundError,
    MissingExtraError,
    RaysweepError,
    SpecError,
    StoreError,
    StoreWriteError,
    TooManyFailuresError,
)
from raysweep.trial import TrialState

if TYPE_CHECKING:
    from raysweep.sweep.result import Result

__all__ = ["Interrupted", "RunFailed", "cli", "main"]

#: Errors about the input: nothing ran, the user fixes the command or the file.
_INPUT_ERRORS = (
    SpecError,
    MissingExtraError,  # found before anything ran, like a missing searcher library
    StoreError,
    ExperimentExistsError,
    ExperimentNotFoundError,
    ExperimentMismatchError,
)
EXIT_INPUT = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class RunFailed(Exception):
    """The run ended but did not do its job (no trial completed): exit 1."""


class Interrupted(Exception):
    """Ctrl-C during a command; the message says what is stored and how to go on."""


def _one_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return "; ".join(lines)


def _classify(exc: BaseException) -> tuple[int, str] | None:
    """Exit code and message for an expected error; ``None`` for a bug."""
    if isinstance(exc, click.UsageError):
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        return EXIT_INPUT, f"error: {_one_line(exc.format_message())}{hint}"
    if isinstance(exc, click.ClickException):
        return exc.exit_code, f"error: {_one_line(exc.format_message())}"
    if isinstance(exc, RunFailed):
        return EXIT_FAILED, f"error: {exc}"
    if isinstance(exc, Interrupted):
        return EXIT_INTERRUPTED, f"interrupted: {exc}"
    if isinstance(exc, click.Abort | KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(exc, _INPUT_ERRORS) and not isinstance(exc, StoreWriteError):
        return EXIT_INPUT, f"error: {_one_line(str(exc))}"
    if isinstance(exc, RaysweepError | OSError):
        return EXIT_FAILED, f"error: {_one_line(str(exc))}"
    return None


class _Group(click.Group):
    """A group that applies the module's error policy in :meth:`main`, so the
    console script and click's test runner behave the same."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except SystemExit:
            raise
        except BaseException as exc:
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                # `raysweep export ... | head`: the reader left; say nothing more, and
                # keep the interpreter from complaining when it flushes stdout at exit.
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - must outlive this frame
                code = EXIT_FAILED
            else:
                outcome = _classify(exc)
                if outcome is None or os.environ.get("RAYSWEEP_DEBUG") == "1":
                    traceback.print_exception(exc, file=sys.stderr)
                if outcome is None:
                    code = EXIT_FAILED
                else:
                    code, message = outcome
                    click.echo(message, err=True)
        if not isinstance(code, int):
            code = 0
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="raysweep")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Parallel hyperparameter and black-box search on Ray, stored crash-safe in SQLite.

    \b
    raysweep run sweep.yaml          run the sweep described in sweep.yaml
    raysweep status runs/NAME        what an experiment is doing or did
    raysweep export runs/NAME        its trials as JSON or CSV
    raysweep ls [runs]               the experiments under a storage folder
    raysweep report runs/NAME        an HTML report (-o report.html), opens offline
    raysweep dashboard runs/NAME     a live web page of it on 127.0.0.1:8765
    raysweep slurm sweep.yaml -N 4   a Slurm batch script (--submit queues it)
    raysweep submit sweep.yaml ...   run it on a Ray cluster through its Jobs API

    \b
    Exit codes, for scripts and Slurm job arrays:
      0    done (some trial completed)
      1    the run failed: no trial completed, too many failures, a lost store
      2    bad input, found before anything ran or was written
      130  interrupted (continue with --resume)
    """
    _configure_logging(
        logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    )


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time, so log lines go through the
    live display (which swaps ``sys.stderr`` while it runs) instead of tearing it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging must never take the run down
            self.handleError(record)


def _configure_logging(level: int) -> None:
    logger = logging.getLogger("raysweep")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


def _override_flags(command: Callable[..., None]) -> Callable[..., None]:
    """One ``--option`` per sweep option that declares a flag; the type comes from
    the option's check, the value goes through the same check as the file's."""
    from raysweep.sweep import _config_checks as checks
    from raysweep.sweep.config import SweepConfig

    types: dict[Any, Any] = {
        checks.positive_int: click.IntRange(min=1),
        checks.seed: int,
        checks.seconds: float,
    }
    for key, opt in reversed(SweepConfig.options().items()):
        if opt.flag is None:
            continue
        flag = f"--{key.replace('_', '-')}"
        if opt.check is checks.flag:
            command = click.option(flag, key, is_flag=True, default=None, help=opt.flag)(command)
        elif opt.check is checks.resume:  # --resume, or --resume auto
            command = click.option(
                flag,
                key,
                is_flag=False,
                flag_value="yes",
                default=None,
                type=click.Choice(["yes", "auto"]),
                callback=lambda ctx, param, value: {"yes": True}.get(value, value),
                help=opt.flag,
            )(command)
        else:
            kind = types.get(opt.check, str)
            command = click.option(flag, key, type=kind, default=None, help=opt.flag)(command)
    return command


@cli.command("run")
@click.argument("config", type=click.Path(path_type=Path))
@_override_flags
def run_command(config: Path, **overrides: Any) -> None:
    """Run the sweep described in CONFIG (a YAML file), with live progress.

    The experiment is stored in STORAGE/NAME/experiment.db as it runs; Ctrl-C
    stops it, and --resume continues it. Options given here override the file's.
    """
    from raysweep.sweep.progress import ProgressCallback
    from raysweep.sweep.sweepfile import load_sweep_file

    if overrides.get("force") and not overrides.get("resume"):
        raise click.UsageError(
            "--force only applies with --resume (it accepts a changed space, metric or mode); "
            "to start afresh, choose another --name or remove the experiment folder"
        )
    console = Console(highlight=False)
    progress = ProgressCallback(console)
    sweep = load_sweep_file(config).replace(**overrides, callbacks=[progress])
    directory = sweep.directory
    resume_cmd = _resume_command(config, overrides)

    from raysweep.sweep.api import execute

    location = sweep.location

    try:
        result = execute(sweep)
    except KeyboardInterrupt:
        progress.close()
        if location.exists():
            raise Interrupted(
                f"the experiment is stored in {display_path(directory)}; "
                f"continue it with: {resume_cmd}"
            ) from None
        raise Interrupted("stopped before the experiment was created; nothing is stored") from None
    except TooManyFailuresError as exc:
        raise TooManyFailuresError(
            f"{_one_line(str(exc))} (stored in {display_path(directory)}; see the errors with "
            f"'raysweep status {shell_path(directory)}', continue with '{resume_cmd}')",
            exc.result,
        ) from exc
    finally:
        progress.close()
    _print_summary(console, result)
    if result.count(TrialState.COMPLETED) == 0:
        raise RunFailed(_no_completion(result))


def _no_completion(result: Result) -> str:
    """One line for a run in which no trial completed: counts and the last error."""
    counts = [f"{result.count(s)} {s.value.lower()}" for s in TrialState if result.count(s)]
    failed = [t for t in result.trials if t.state is TrialState.FAILED]
    last = ""
    if failed:
        trial = max(failed, key=lambda t: (t.ended_at or 0.0, t.trial_id))
        lines = [line.strip() for line in (trial.error or "").splitlines() if line.strip()]
        last = f"; last error (trial {trial.trial_id}): {lines[-1] if lines else 'unknown'}"
    where = shell_path(result.directory)
    return (
        f"no trial completed ({', '.join(counts) or 'no trials'}; {result.stop_reason}){last}; "
        f"see 'raysweep status {where}'"
    )


def _resume_command(config: Path, overrides: Mapping[str, Any]) -> str:
    """The command that continues this experiment (same name, storage and cluster)."""
    parts = ["raysweep", "run", str(config), "--resume"]
    for key in ("name", "storage", "address"):
        if overrides.get(key) is not None:
            parts += [f"--{key}", str(overrides[key])]
    return shlex.join(parts)


#: Pareto-front trials listed after a multi-objective run; status lists all.
_FRONT_LINES = 10


def _print_summary(console: Console, result: Result) -> None:
    """The best trial and where the experiment is, after a run."""
    out = console.print
    best = result.best
    objectives = result.objectives
    if best is None:
        out("no trial completed", markup=False)
    elif objectives.multi:
        front = objectives.ranked(result.pareto_front(), metric=objectives.metrics[0].name)
        out(f"pareto front: {len(front)} trial(s), by {objectives.metrics[0].name}", markup=False)
        for trial in front[:_FRONT_LINES]:
            values = format_config({n: trial.metrics.get(n) for n in objectives.names})
            out(f"  trial {trial.trial_id}: {values}  {format_config(trial.config)}", markup=False)
        if len(front) > _FRONT_LINES:
            out(f"  ... {len(front) - _FRONT_LINES} more (raysweep status)", markup=False)
    else:
        value = format_value(best.metrics.get(result.metric))
        out(f"best trial {best.trial_id}: {result.metric}={value}", markup=False)
        for key, item in best.config.items():
            out(f"  {key} = {format_value(item)}", markup=False)
        others = {k: v for k, v in best.metrics.items() if k != result.metric}
        if others:
            out(f"  (also {format_config(others)})", markup=False)
    where = shell_path(result.directory)
    out(f"stored in {display_path(result.directory)} ({result.stop_reason})", markup=False)
    out(
        f"see it with: raysweep status {where}   export: raysweep export {where} --format csv",
        markup=False,
        soft_wrap=True,
    )
    out(f"plots: raysweep report {where} -o report.html", markup=False, soft_wrap=True)


cli.add_command(status_command)
cli.add_command(export_command)
cli.add_command(ls_command)
cli.add_command(report_command)
cli.add_command(dashboard_command)
cli.add_command(slurm_command)
cli.add_command(submit_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``raysweep``)."""
    cli.main(args=argv, prog_name="raysweep")
