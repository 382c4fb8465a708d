"""Joining or starting Ray, in bounded time: the one place both halves connect.

``ray.init(address=...)`` towards an address where no Ray listens does not fail:
Ray 2.60 retries the GCS 20 times, each try waiting up to about 40 s, while its
C++ client prints a warning every few seconds. A user who mistyped ``--address``
would wait a quarter of an hour for "Failed to connect". :func:`connect`
therefore first checks with a plain TCP connect that something listens at the
address, retrying while the connection is refused (a head node still starting,
as in a Slurm job that starts the head and the driver together), then that it
speaks gRPC (an HTTP/2 handshake: the dashboard's port, say, does not), and
gives up after ``timeout_s`` with one line naming the address. Only then is
``ray.init`` called, told to try the GCS once (``RAY_gcs_server_port_wait_time_s``,
unless the user set it): a gRPC port that is not a Ray GCS then fails after
Ray's own single-try time-out (about 40 s), not after twenty of them. With
``RAY_USE_TLS`` set the handshake check is skipped (it would need Ray's
certificates) and that single try is the bound.

Addresses are resolved as ``ray.init`` resolves them (Ray's own function), so
``None`` and ``"auto"`` find the same cluster Ray would: ``RAY_ADDRESS``, else a
cluster started on this machine with ``ray start``, else (``None`` only) a new
local Ray. ``ray://host:port`` is Ray Client: its server port is checked the same
way, then ``ray.init`` connects through it.

Example:
    >>> started_here = connect(None, None, timeout_s=30.0, notify=print)  # doctest: +SKIP
    starting Ray (8 CPUs) ...
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import ray

from raysweep.errors import RayConnectError, SpecError

__all__ = ["CONNECT_TIMEOUT_ENV", "DEFAULT_CONNECT_TIMEOUT_S", "connect", "connect_timeout"]

#: Seconds :func:`connect` waits for a Ray address to answer, unless told otherwise.
DEFAULT_CONNECT_TIMEOUT_S = 30.0
#: The environment variable that overrides :data:`DEFAULT_CONNECT_TIMEOUT_S`.
CONNECT_TIMEOUT_ENV = "RAYSWEEP_CONNECT_TIMEOUT_S"
#: Ray's knob for how many times ``ray.init`` tries the GCS (about a second apart).
_GCS_TRIES_ENV = "RAY_gcs_server_port_wait_time_s"
#: Pause between two TCP probes of an address that refused the connection.
_RETRY_S = 0.5
#: What a gRPC port that is not a Ray GCS most likely is instead.
_NOT_A_GCS = (
    "; expected the head's GCS port (6379 by default), or ray://host:port for Ray Client "
    "(10001 by default)"
)
#: The least time the gRPC handshake gets (if the budget is that long), however much of
#: the budget the TCP wait took: a head that just opened its port is not failed at once.
_HANDSHAKE_S = 5.0


def _ignore(text: str) -> None:
    """The default ``notify``: say nothing."""


def connect_timeout(value: float | None = None) -> float:
    """The connect time-out to use: ``value``, else ``RAYSWEEP_CONNECT_TIMEOUT_S``, else 30 s.

    Raises:
        SpecError: the value (or the variable) is not a number of seconds > 0.
    """
    source = "connect_timeout_s"
    if value is None:
        text = os.environ.get(CONNECT_TIMEOUT_ENV, "").strip()
        if not text:
            return DEFAULT_CONNECT_TIMEOUT_S
        source = CONNECT_TIMEOUT_ENV
        try:
            value = float(text)
        except ValueError:
            value = math.nan
    if isinstance(value, bool) or not (isinstance(value, int | float) and 0 < value < math.inf):
        raise SpecError(f"{source}: expected a number of seconds > 0, got {value!r}")
    return float(value)


def connect(
    address: str | None,
    runtime_env: Mapping[str, Any] | None,
    *,
    timeout_s: float | None = None,
    notify: Callable[[str], None] = _ignore,
) -> bool:
    """Make sure this process is connected to Ray; return True if this call did it.

    A Ray already initialized in this process is used as it is (False: the
    caller must not shut it down). Otherwise ``address`` (else ``RAY_ADDRESS``)
    is joined, checked first to answer within ``timeout_s``; with neither, Ray's
    own search for a cluster on this machine runs, and failing that a local Ray
    is started. ``notify`` hears one line for each step a person waits for.

    Args:
        address: ``host:port`` of a GCS, ``ray://host:port`` (Ray Client), ``auto``,
            ``local`` (always a new local Ray) or ``None``.
        runtime_env: passed to ``ray.init`` (ignored when Ray is already running:
            the caller attaches it to its tasks).
        timeout_s: how long the address may take to answer (see
            :func:`connect_timeout` for the default).
        notify: receives "starting Ray (8 CPUs) ...", "connected to Ray at ...".

    Raises:
        RayConnectError: nothing answered at the address within ``timeout_s``,
            ``auto`` found no cluster, or Ray refused the connection; one line
            naming the address.
        SpecError: ``address`` is not a Ray address, or a bad time-out.
    """
    if ray.is_initialized():
        notify(f"using the Ray this process already joined ({_resources()})")
        return False
    budget = connect_timeout(timeout_s)
    target = address or os.environ.get("RAY_ADDRESS") or None
    named = f"{target} (from RAY_ADDRESS)" if target and not address else str(target)
    init: dict[str, Any] = {
        "runtime_env": dict(runtime_env) if runtime_env else None,
        "logging_level": logging.WARNING,
        "configure_logging": False,
    }
    if target is not None and "://" in target:
        host, port = _host_port(target.split("://", 1)[1], target)
        notify(f"connecting to Ray at {target} ...")
        _wait_for_ray(host, port, budget, named)
        _init(target, named, init)
        notify(f"connected to Ray at {target} ({_resources()})")
        return True
    bootstrap = _bootstrap(target, named)
    if bootstrap is None:
        notify(f"starting Ray ({_local_cpus()} CPUs) ...")
        with _fork_unwarned():
            ray.init(address=target, include_dashboard=False, **init)
        return True
    if target is None or target == "auto":
        named = f"{bootstrap}, the cluster Ray found on this machine (from `ray start`)"
    host, port = _host_port(bootstrap, target or bootstrap)
    shown = bootstrap if target in (None, "auto") else target
    notify(f"connecting to Ray at {shown} ...")
    _wait_for_ray(host, port, budget, named)
    with _gcs_tried_once():
        _init(bootstrap, named, init, _NOT_A_GCS)
    notify(f"connected to Ray at {shown} ({_resources()})")
    return True


def _bootstrap(target: str | None, named: str) -> str | None:
    """The GCS ``host:port`` Ray would join for ``target``, or ``None`` to start one."""
    from ray._private.services import canonicalize_bootstrap_address

    try:
        # Typed as taking str, documented (and written) to take None too.
        return canonicalize_bootstrap_address(target)  # type: ignore[arg-type]
    except ValueError:
        raise SpecError(_bad_address(target)) from None
    except ConnectionError as exc:
        # "auto" with no cluster running here: Ray says so at once.
        raise RayConnectError(f"cannot connect to Ray at {named}: {_first_line(exc)}") from None


def _host_port(hostport: str, given: str | None) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(_bad_address(given))
    return host, int(port)


def _bad_address(given: str | None) -> str:
    return (
        f"address: {given!r} is not a Ray address; expected host:port (the head's GCS "
        f"port, 6379 by default), ray://host:port (Ray Client, 10001 by default) or 'auto'"
    )


def _wait_for_ray(host: str, port: int, timeout_s: float, named: str) -> None:
    """Return once ``host:port`` accepts TCP connections and speaks gRPC."""
    deadline = time.monotonic() + timeout_s
    _wait_for_port(host, port, timeout_s, named)
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return
    left = max(deadline - time.monotonic(), min(_HANDSHAKE_S, timeout_s))
    import grpc

    channel = grpc.insecure_channel(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=left)
    except grpc.FutureTimeoutError:
        raise RayConnectError(
            f"cannot connect to Ray at {named}: something listens there but did not answer "
            f"as Ray (gRPC) within {left:.3g} s{_NOT_A_GCS}"
        ) from None
    finally:
        channel.close()


def _wait_for_port(host: str, port: int, timeout_s: float, named: str) -> None:
    """Return once something accepts a TCP connection at ``host:port``.

    A refused connection is tried again until ``timeout_s`` (a head that is
    still starting); a host that does not answer at all uses up the time in one
    try. A host name that does not resolve fails at once.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(left, 0.01)):
                return
        except socket.gaierror as exc:
            raise RayConnectError(
                f"cannot connect to Ray at {named}: host {host!r} not found ({exc.strerror})"
            ) from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
        left = deadline - time.monotonic()
        if left <= 0:
            raise RayConnectError(
                f"cannot connect to Ray at {named}: nothing answered within {timeout_s:g} s "
                f"({reason.lower()}); is a Ray head running there (`ray start --head` prints "
                f"its address)? Raise connect_timeout_s (CLI: --connect-timeout-s, or "
                f"{CONNECT_TIMEOUT_ENV}) to wait longer"
            )
        time.sleep(min(_RETRY_S, left))


def _init(address: str, named: str, init: Mapping[str, Any], hint: str = "") -> None:
    try:
        with _fork_unwarned():
            ray.init(address=address, **init)
    except ConnectionError as exc:
        raise RayConnectError(
            f"cannot connect to Ray at {named}: {_first_line(exc)}{hint}"
        ) from None


@contextlib.contextmanager
def _fork_unwarned() -> Iterator[None]:
    """Leave out Python's warning about a fork in a process with threads (JAX's, say):
    Ray forks only to exec its own processes, which run no Python of the parent."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
        yield


@contextlib.contextmanager
def _gcs_tried_once() -> Iterator[None]:
    """Let ``ray.init`` try the GCS once instead of 20 times, unless the user chose.

    The TCP check has already waited for the port; what is left to fail is a
    port that answers without being a Ray GCS, and Ray's own single try bounds
    that. Ray reads the variable when ``ray.init`` runs, so it is set only for
    the call and then put back.
    """
    if _GCS_TRIES_ENV in os.environ:
        yield
        return
    os.environ[_GCS_TRIES_ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(_GCS_TRIES_ENV, None)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _local_cpus() -> int:
    """The CPUs a local Ray will use (Ray's count: cgroup and container limits included)."""
    try:
        from ray._private.utils import get_num_cpus

        return int(get_num_cpus())
    except Exception:  # a Ray without it: the machine's count is close enough for a note
        return os.cpu_count() or 1


def _resources() -> str:
    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0.0)), float(total.get("GPU", 0.0))
    return f"{_count(cpus, 'CPU')}, {_count(gpus, 'GPU')}"


def _count(amount: float, unit: str) -> str:
    return f"{amount:g} {unit}" + ("" if amount == 1 else "s")
