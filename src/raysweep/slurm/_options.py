"""The options of a Slurm job, checked before a script is written.

A job that waits a day in the queue and then dies on ``--time=1:5o:00`` costs
the day, so every option is checked here with the rules ``sbatch`` applies, and
a bad one is one line naming it: ``"time: expected ... , got '1:5o:00' (str)"``.
Values are kept in the form written into ``#SBATCH`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from raysweep._checks import describe, expect_bool, expect_int, is_int, is_number
from raysweep.errors import SpecError

__all__ = ["JobOptions"]

#: Every form of ``--time`` that sbatch accepts: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME = re.compile(
    r"^(?:(?P<m>\d+)(?::(?P<ms>\d+))?"
    r"|(?P<h>\d+):(?P<hm>\d+):(?P<hs>\d+)"
    r"|(?P<d>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?)$"
)
#: ``--mem``: a size with an optional unit (sbatch's default unit is megabytes).
_MEM = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
#: Names Slurm gives partitions and accounts (a partition may be a list: "gpu,cpu").
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+(?:,[A-Za-z0-9_.+-]+)*$")
#: A job name: shown by squeue, and put in an #SBATCH line, so no blanks or quotes.
_JOB_NAME = re.compile(r"^[A-Za-z0-9_.+:@=-]{1,200}$")
#: ``--gpus-per-node``: a count, or ``type:count``.
_GPUS = re.compile(r"^(?:(?P<type>[A-Za-z0-9_.-]+):)?(?P<count>\d+)$")
#: sbatch options the script sets itself (long and short names), refused as extras.
_OWN = {
    "--nodes": "nodes",
    "-N": "nodes",
    "--ntasks-per-node": "(always 1: one Ray node per Slurm node)",
    "--ntasks": "(one Ray node per Slurm node)",
    "-n": "(one Ray node per Slurm node)",
    "--cpus-per-task": "cpus_per_node",
    "-c": "cpus_per_node",
    "--gpus-per-node": "gpus_per_node",
    "--time": "time",
    "-t": "time",
    "--partition": "partition",
    "-p": "partition",
    "--account": "account",
    "-A": "account",
    "--mem": "mem",
    "--requeue": "requeue",
    "--output": "(the log goes next to the experiment)",
    "-o": "(the log goes next to the experiment)",
    "--job-name": "job_name",
    "-J": "job_name",
}


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Checked job options, in the form written to ``#SBATCH`` lines (``None``: unset)."""

    nodes: int
    cpus_per_node: int | None
    gpus_per_node: str | None
    gpu_count: int | None
    time: str | None
    partition: str | None
    account: str | None
    mem: str | None
    requeue: bool
    job_name: str | None
    setup: tuple[str, ...]
    sbatch_options: tuple[str, ...]
    python: str
    ready_timeout_s: float

    @classmethod
    def build(
        cls,
        *,
        nodes: Any,
        cpus_per_node: Any,
        gpus_per_node: Any,
        time: Any,
        partition: Any,
        account: Any,
        mem: Any,
        requeue: Any,
        job_name: Any,
        setup: Any,
        sbatch_options: Any,
        python: Any,
        ready_timeout_s: Any,
    ) -> JobOptions:
        """Check every option; the first bad one raises.

        Raises:
            SpecError: ``"<option>: expected <what>, got <value>"``.
        """
        gpus, gpu_count = _gpus(gpus_per_node)
        return cls(
            nodes=_count("nodes", nodes),
            cpus_per_node=None if cpus_per_node is None else _count("cpus_per_node", cpus_per_node),
            gpus_per_node=gpus,
            gpu_count=gpu_count,
            time=None if time is None else _time(time),
            partition=_name("partition", partition),
            account=_name("account", account),
            mem=None if mem is None else _mem(mem),
            requeue=_flag("requeue", requeue),
            job_name=_job_name(job_name),
            setup=_lines("setup", setup),
            sbatch_options=_extras(sbatch_options),
            python=_python(python),
            ready_timeout_s=_seconds("ready_timeout_s", ready_timeout_s),
        )


def _count(key: str, value: Any) -> int:
    try:
        return expect_int(value, minimum=1)
    except SpecError as exc:
        raise SpecError(f"{key}: {exc}") from None


def _flag(key: str, value: Any) -> bool:
    try:
        return expect_bool(value)
    except SpecError as exc:
        raise SpecError(f"{key}: {exc}") from None


def _seconds(key: str, value: Any) -> float:
    if not is_number(value) or value <= 0:
        raise SpecError(f"{key}: expected a number of seconds > 0, got {describe(value)}")
    return float(value)


def _gpus(value: Any) -> tuple[str | None, int | None]:
    if value is None:
        return None, None
    text = str(value) if is_int(value) else value
    match = _GPUS.match(text) if isinstance(text, str) else None
    if match is None or int(match["count"]) < 1:
        raise SpecError(
            f"gpus_per_node: expected a positive integer or TYPE:COUNT such as 'a100:4' "
            f"(leave it out for no GPUs), got {describe(value)}"
        )
    return text, int(match["count"])


def _time(value: Any) -> str:
    """sbatch's ``--time``: an int is minutes; a string is one of sbatch's forms."""
    if is_int(value) and value >= 1:
        return str(value)
    what = (
        "a time limit in one of sbatch's forms: MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM "
        "or D-HH:MM:SS (e.g. '2:00:00', '1-12:00:00', 90)"
    )
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise SpecError(f"time: expected {what}, got {describe(value)}")
    fields = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    below_60 = [fields.get(k, 0) for k in ("ms", "hm", "hs", "dm", "ds")]
    if any(v >= 60 for v in below_60) or fields.get("dh", 0) >= 24:
        raise SpecError(
            f"time: minutes and seconds must be below 60 and hours after a day below 24, "
            f"got {describe(value)}"
        )
    if not any(fields.values()):
        raise SpecError(f"time: expected a time limit above zero, got {describe(value)}")
    return str(value).strip()


def _mem(value: Any) -> str:
    if is_int(value) and value >= 0:
        return str(value)
    if isinstance(value, str) and _MEM.match(value.strip()):
        return value.strip().upper()
    raise SpecError(
        f"mem: expected memory per node as sbatch takes it: megabytes, or a number with "
        f"K, M, G or T (e.g. '64G'; 0 for all of a node's memory), got {describe(value)}"
    )


def _name(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise SpecError(
            f"{key}: expected a Slurm {key} name (letters, digits, '_', '.', '-', '+'"
            f"{'; several separated by commas' if key == 'partition' else ''}), "
            f"got {describe(value)}"
        )
    return value


def _job_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _JOB_NAME.match(value):
        raise SpecError(
            f"job_name: expected at most 200 letters, digits or '_.+:@=-' (no blanks), "
            f"got {describe(value)}"
        )
    return value


def _lines(key: str, value: Any) -> tuple[str, ...]:
    """Setup commands: a string (several lines allowed) or a list of strings."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not all(isinstance(i, str) for i in items):
        raise SpecError(
            f"{key}: expected shell lines (a string or a list of strings), got {describe(value)}"
        )
    lines = tuple(line.rstrip() for item in items for line in item.splitlines())
    if any("\0" in line for line in lines):
        raise SpecError(f"{key}: a line contains a NUL character")
    return tuple(line for line in lines if line.strip())


def _extras(value: Any) -> tuple[str, ...]:
    """Further ``#SBATCH`` options (``--qos=high``), one per item."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    checked = []
    for item in items:
        if not isinstance(item, str) or not item.startswith("-") or len(item.splitlines()) != 1:
            raise SpecError(
                f"sbatch_options: expected options such as '--qos=high', one per item, "
                f"got {describe(item)}"
            )
        name = item.split("=", 1)[0].split()[0]
        if name in _OWN or (len(name) > 2 and name[:2] in _OWN and name[1] != "-"):
            use = _OWN.get(name, _OWN.get(name[:2], ""))
            hint = f"; use {use}" if not use.startswith("(") else f" {use}"
            raise SpecError(f"sbatch_options: {item!r} is set by the script itself{hint}")
        checked.append(item.strip())
    return tuple(checked)


def _python(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.splitlines()) != 1:
        raise SpecError(
            f"python: expected the path of the Python that runs raysweep in the job, "
            f"got {describe(value)}"
        )
    return value
