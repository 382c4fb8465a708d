"""A sweep file run as a Ray job: ``raysweep run`` on the cluster, through the Jobs API.

A job's driver runs on the cluster's head, so the sweep goes on when the
machine that submitted it sleeps or loses its connection. The sweep file's
folder becomes the job's ``working_dir`` (the objective module and space files
next to the file travel with it), the file's ``runtime_env`` applies to the job's
driver as well as to its trials, and the job runs
``raysweep run <file> --name NAME --storage STORAGE``.

The store must outlive the job: a relative ``storage`` would be read against the
job's working_dir, a temporary copy Ray deletes, so :func:`plan_job` refuses one
unless an absolute ``storage`` (a folder every node writes to, on a shared
disk, or a ``file:///`` URL) is given. Everything :func:`raysweep.run` would
refuse is refused here first, before anything is uploaded.

:func:`open_client` reaches the dashboard in bounded time (``--connect-timeout-s``,
``RAYSWEEP_CONNECT_TIMEOUT_S``, else 30 s); Ray's own client would wait without
limit for a host that accepts connections and never answers.

Example:
    >>> plan = plan_job("sweeps/mnist.yaml", storage="/shared/runs")  # doctest: +SKIP
    >>> client = open_client("http://head:8265")  # doctest: +SKIP
    >>> job_id = submit(client, plan)  # doctest: +SKIP
    >>> follow(client, job_id, print)  # doctest: +SKIP
    ('SUCCEEDED', 'Job finished successfully.')
"""

from __future__ import annotations

import asyncio
import importlib
import json
import shlex
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from raysweep.errors import RayConnectError, RaysweepError, SpecError

__all__ = ["JobPlan", "dashboard_url", "follow", "open_client", "plan_job", "submit"]

#: The Jobs API's default port on the head (the dashboard's).
DASHBOARD_PORT = 8265
#: Set for the job's driver where the sweep has a runtime_env: its ``ray.init``
#: passes that runtime_env again, which Ray otherwise refuses as a conflict with
#: the job's own (any key given twice, even with the same value).
_OVERRIDE = "RAY_OVERRIDE_JOB_RUNTIME_ENV=1"
#: Pause between two status checks of a job whose log stream ended early.
_POLL_S = 1.0
#: The least time the HTTP check of the dashboard gets, however long the TCP wait took.
_HTTP_S = 5.0


@dataclass(frozen=True, slots=True)
class JobPlan:
    """What will be submitted for one sweep file (checked; nothing sent yet).

    Attributes:
        file: the sweep file.
        name: the experiment's name.
        storage: the absolute folder (or store URL) holding the experiment on the cluster.
        entrypoint: the shell command the job runs, in the file's folder.
        runtime_env: the job's runtime environment (``working_dir``: the file's folder).
        submission_id: the job's id, ``raysweep-<name>-<8 hex digits>``.
    """

    file: Path
    name: str
    storage: str
    entrypoint: str
    runtime_env: dict[str, Any]
    submission_id: str
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def experiment(self) -> str:
        """Where the experiment is stored on the cluster."""
        if "://" in self.storage:
            return f"{self.storage.rstrip('/')}/{self.name}"
        return str(PurePosixPath(self.storage) / self.name)


def plan_job(
    path: str | Path,
    *,
    storage: str | Path | None = None,
    name: str | None = None,
    resume: bool | str = "auto",
) -> JobPlan:
    """Check the sweep file as ``raysweep run`` would and plan its job.

    Args:
        path: the sweep YAML.
        storage: an absolute folder or store URL on the cluster; overrides the file's.
        name: the experiment name; overrides the file's (default: the file's name).
        resume: ``"auto"`` (the default): the job continues the stored experiment if
            there is one, else starts it, so submitting the same file again after
            a failed or stopped job goes on (``raysweep run --resume auto``);
            ``True``: it must exist; ``False``: it must not.

    Raises:
        SpecError: the file is invalid (one line naming the file and the field), or
            the storage would be relative to the job's temporary working_dir.
    """
    from raysweep.sweep._yaml import parse_yaml
    from raysweep.sweep.sweepfile import load_sweep_file

    file = Path(path)
    sweep = load_sweep_file(file)  # every check of `raysweep run`, before anything is sent
    if storage is not None:
        where = _absolute_storage(storage, "--storage")
    else:
        doc = parse_yaml(file.read_text(encoding="utf-8"), str(file))
        if "storage" in doc:
            where = _absolute_storage(doc["storage"], f"{file}: storage")
        else:
            where = _absolute_storage("runs", f"{file}: storage (not set, so 'runs' next to it)")
    local_storage = str(sweep.storage)  # the file's, read against its folder
    sweep = sweep.replace(storage=where, name=name)
    folder = file.resolve().parent
    runtime_env = {k: v for k, v in (sweep.runtime_env or {}).items() if k != "working_dir"}
    runtime_env["working_dir"] = str(folder)
    # Experiment folders next to the file (local runs, or the store itself on a
    # shared disk) are not the job's to upload.
    excludes = list(runtime_env.get("excludes") or [])
    for store in dict.fromkeys([where, local_storage]):
        inside = _relative_to(store, folder)
        if inside is not None:
            excludes.append(f"/{inside}/")
    if excludes:
        runtime_env["excludes"] = excludes
    command = ["raysweep", "run", file.name, "--name", sweep.name, "--storage", where]
    if resume == "auto":
        command += ["--resume", "auto"]
    elif resume:
        command.append("--resume")
    entrypoint = shlex.join(command)
    if sweep.runtime_env:
        entrypoint = f"{_OVERRIDE} {entrypoint}"
    return JobPlan(
        file=file,
        name=sweep.name,
        storage=where,
        entrypoint=entrypoint,
        runtime_env=runtime_env,
        submission_id=f"raysweep-{sweep.name}-{uuid.uuid4().hex[:8]}",
        metadata={"raysweep_experiment": sweep.name, "raysweep_storage": where},
    )


def _absolute_storage(value: Any, what: str) -> str:
    """``value`` as the job will use it, if it does not depend on the job's working_dir."""
    if not isinstance(value, str | Path):
        raise SpecError(f"{what}: expected a folder path or a store URL, got {value!r}")
    text = str(value)
    if "://" in text or Path(text).is_absolute():
        return text
    raise SpecError(
        f"{what}: {text!r} is relative, and a job reads it against its temporary "
        f"working_dir, which Ray deletes: the experiment would be lost with it; give an "
        f"absolute folder that the cluster's nodes share (raysweep submit --storage "
        f"/shared/runs) or a store URL (file:///shared/runs)"
    )


def _relative_to(storage: str, folder: Path) -> str | None:
    """The storage's path inside ``folder`` (POSIX, no leading slash), if it is inside."""
    path = urllib.parse.urlparse(storage).path if "://" in storage else storage
    try:
        inside = Path(path).resolve().relative_to(folder)
    except ValueError:
        return None
    return inside.as_posix() if inside.parts else None


def dashboard_url(address: str) -> str:
    """``http://host:port`` of the head's dashboard from what a user typed.

    ``host`` and ``host:port`` get ``http://``; without a port, ``http://`` means
    the dashboard's own (8265) and ``https://`` the HTTPS port of a proxy in front.

    Raises:
        SpecError: a Ray Client or GCS URL, a path, or no host.
    """
    scheme, sep, rest = address.strip().partition("://")
    if not sep:
        scheme, rest = "http", address.strip()
    hint = f"expected the head's dashboard (Jobs API), http://HEAD:{DASHBOARD_PORT}"
    bad = SpecError(f"address: {address!r} is not a dashboard address; {hint}")
    if scheme not in ("http", "https"):
        raise bad
    parsed = urllib.parse.urlparse(f"{scheme}://{rest.rstrip('/')}")
    try:
        port = parsed.port
    except ValueError:  # not a number, or out of range
        raise bad from None
    host = parsed.hostname
    if not host or parsed.path or parsed.query or parsed.netloc.endswith(":"):
        raise bad
    if port is None and scheme == "http":
        port = DASHBOARD_PORT
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}" + ("" if port is None else f":{port}")


def open_client(address: str, timeout_s: float | None = None) -> Any:
    """A ``JobSubmissionClient`` for the dashboard at ``address``, reached in bounded time.

    Raises:
        RayConnectError: nothing answered within ``timeout_s`` (see
            :func:`raysweep._ray.connect_timeout`), or what answered is not a Ray
            dashboard; one line naming the address.
        SpecError: not a dashboard address, or a bad time-out.
    """
    from raysweep._ray import _wait_for_port, connect_timeout

    url = dashboard_url(address)
    budget = connect_timeout(timeout_s)
    deadline = time.monotonic() + budget
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    _wait_for_port(parsed.hostname or "", port, budget, url)
    version = _ray_version(url, max(deadline - time.monotonic(), min(_HTTP_S, budget)))
    sdk: Any = importlib.import_module("ray.job_submission")  # Ray's SDK is untyped
    try:
        return sdk.JobSubmissionClient(url)
    except Exception as exc:  # the version check again, or Ray's auth refusing us
        raise RayConnectError(
            f"cannot use the Jobs API at {url} (Ray {version}): {_first_line(exc)}"
        ) from None


def _ray_version(url: str, timeout_s: float) -> str:
    """The Ray version the dashboard at ``url`` reports, within ``timeout_s``."""
    not_ray = (
        f"cannot reach the Jobs API at {url}: %s; expected the head's dashboard port "
        f"({DASHBOARD_PORT} by default, `ray start --head --dashboard-port`), which needs "
        f"ray[default] on the head"
    )
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=timeout_s) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        raise RayConnectError(not_ray % f"HTTP {exc.code} from /api/version") from None
    except (OSError, ValueError) as exc:  # time-outs, resets, not HTTP, not JSON
        raise RayConnectError(not_ray % f"no Ray answer within {timeout_s:.3g} s ({exc})") from None
    if not isinstance(body, dict) or "ray_version" not in body:
        raise RayConnectError(not_ray % "/api/version did not name a Ray version")
    return str(body["ray_version"])


def submit(client: Any, plan: JobPlan) -> str:
    """Submit ``plan`` (uploading the sweep file's folder); the job's id.

    Raises:
        RaysweepError: the Jobs API refused the job (one line, Ray's reason).
    """
    try:
        return str(
            client.submit_job(
                entrypoint=plan.entrypoint,
                submission_id=plan.submission_id,
                runtime_env=plan.runtime_env,
                metadata=plan.metadata,
            )
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise RaysweepError(f"the Jobs API refused the job: {_first_line(exc)}") from None


def follow(client: Any, job_id: str, write: Callable[[str], None]) -> tuple[str, str]:
    """Hand the job's output to ``write`` as it comes, until the job ends; its final
    status (``SUCCEEDED``, ``FAILED``, ``STOPPED``) and Ray's message about it."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            try:
                write(chunk)
            except Exception as exc:
                raise _WriteFailed(exc) from exc

    try:
        asyncio.run(tail())
    except _WriteFailed as failed:  # our side (a closed pipe): the caller's to handle
        raise failed.error from None
    except Exception:  # the stream broke (a dashboard restart): the status still tells the end
        pass
    while True:
        info = client.get_job_info(job_id)
        status = str(getattr(info.status, "value", info.status))
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status, str(info.message or "")
        time.sleep(_POLL_S)


class _WriteFailed(Exception):
    """``write`` raised ``error`` while the job's output streamed."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
