"""Where the runner executes: in this process's children, or on a board's dask worker.

Two dispatchers with one surface (``run``, ``clock_offset``, ``worker_process``):

* :class:`InProcessDispatch` (default): the measurement protocol runs in an isolated
  child process of the host (:func:`device_runners.protocol.measure`); boards are local
  or virtual; measurements run one after another.
* :class:`DaskDispatch` (``--scheduler tcp://host:8786``): each board runs a dask worker
  started with a resource tag naming it (``dask worker tcp://host:8786 --resources
  "board-rpi4-01=1" --nthreads 1``). Every task for a board asks for that resource, so
  runs on one board never overlap, while different boards measure concurrently. The
  artifact travels by content hash: the worker is asked whether its cache holds it, and
  the model files' bytes are sent (scattered to that worker) only when it does not
  (:mod:`device_runners.agent`).

**A board that disconnects or hangs.** dask re-queues a task whose worker died; with no
other worker offering the board's resource, it would wait forever. So the host watches
each task: when no worker has offered ``board-<name>`` for ``disconnect_grace_s`` the
attempt fails with :class:`BoardUnavailable` ("disconnected"), and an attempt that runs
past ``task_timeout_s`` is cancelled and fails the same way ("timed out"). The campaign
retries a failed measurement once, then records the failure with its reason and goes on
(:mod:`firmware_host.campaign`).

**Clocks.** Runner markers are stamped with the board's monotonic clock; the clock offset
to a sensor daemon is therefore estimated *on the worker* (``sensors.clock_sync``, a
board-side module), by the same minimum-delay exchange the host uses for its own daemons.
:func:`clock_offset_for` skips the estimate where there is one clock: an in-process
runner (a child of this process, stamping ``time.monotonic_ns``) against a daemon that
samples in this process on ``time.monotonic`` is offset by exactly 0 (no uncertainty).
A dask worker is not assumed to share the host's clock, even on this machine: its offset
is estimated (over one warm connection, a few microseconds on loopback).

**Who may send work.** A dask worker unpickles and runs any task that reaches it. A
``tls://`` scheduler is reached with the rig's client certificate
(:mod:`firmware_host.deploy.tls`, made by ``rig deploy``); plain ``tcp://`` (or ``ws://``)
is accepted for a loopback scheduler, and for any other address only with ``insecure``
(the CLI's ``--insecure``): :func:`check_scheduler_address` refuses it otherwise, with one line.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Optional

from device_runners.protocol import RunReport

RESOURCE_PREFIX = "board-"  # dask resource tag of a board: board-<name>
DISCONNECT_GRACE_S = 10.0  # no worker offers the board for this long -> disconnected
TASK_TIMEOUT_S = 600.0  # one protocol run (warm-up, idle, timed block) at most
POLL_S = 0.2  # how often the host checks a pending task


PLAIN_SCHEMES = ("tcp", "ws")  # unencrypted, unauthenticated transports
SCHEMES = ("tcp", "tls", "inproc", "ws", "wss")


class InsecureScheduler(ValueError):
    """A plain-TCP scheduler address off loopback, without an explicit --insecure."""


class BoardUnavailable(RuntimeError):
    """A board's worker disconnected, never appeared, or a task on it timed out."""


def resource_of(board: str) -> str:
    """The dask resource naming a board."""
    return f"{RESOURCE_PREFIX}{board}"


def _report(result: dict | RunReport) -> RunReport:
    """A worker's report (run_on_worker adds the worker's host name, which a RunReport does not hold)."""
    if isinstance(result, RunReport):
        return result
    return RunReport.from_dict({k: v for k, v in result.items() if k != "host"})


class InProcessDispatch:
    """Runs the protocol in an isolated child of this process (local and virtual boards)."""

    name = "in-process"
    concurrent_boards = False  # a virtual board's power follows *all* of this process's children
    shares_host_clock = True  # runners are children of this process: their markers are on this machine's monotonic clock

    def run(self, board: Any, sidecar: Path, options: dict) -> RunReport:
        """Measure one artifact with the protocol options (device_runners.protocol.measure's keywords)."""
        from device_runners.protocol import measure

        if board.host not in ("virtual", "local"):
            raise BoardUnavailable(f"board {board.name!r} is on {board.host}: dispatch it through a dask scheduler (--scheduler tcp://HOST:8786)")
        return measure(sidecar, **options)

    def clock_offset(self, board: Any, address: tuple[str, int], token: str | None = None) -> Any:
        """The daemon's clock against the runner's (this machine's monotonic clock)."""
        from sensors.clock_sync import daemon_offset

        return daemon_offset(address, token=token)

    def worker_process(self, board: Any) -> tuple[int, str]:
        """(pid, hostname) of the process whose children run the protocol: this one."""
        return os.getpid(), socket.gethostname()

    def close(self) -> None:
        """Nothing to release."""


def _worker_identity() -> tuple[int, str]:
    return os.getpid(), socket.gethostname()


class DaskDispatch:
    """Sends protocol runs to the dask worker that offers each board's resource."""

    name = "dask"
    concurrent_boards = True
    shares_host_clock = False  # a worker's clock is estimated, wherever it runs

    def __init__(
        self,
        scheduler: str,
        disconnect_grace_s: float = DISCONNECT_GRACE_S,
        task_timeout_s: float = TASK_TIMEOUT_S,
        connect_timeout_s: float = 10.0,
        cache_root: Optional[str] = None,
        security: Any = None,
    ) -> None:
        from distributed import Client

        self.scheduler = scheduler
        self.disconnect_grace_s = disconnect_grace_s
        self.task_timeout_s = task_timeout_s
        self.cache_root = cache_root
        try:
            self.client = Client(scheduler, timeout=connect_timeout_s, set_as_default=False, security=security)
        except (OSError, TimeoutError) as error:
            raise BoardUnavailable(f"dask scheduler {scheduler}: cannot connect ({' '.join(str(error).split()) or type(error).__name__})") from None

    def workers_of(self, board: str) -> list[str]:
        """Addresses of the workers offering a board's resource now."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        tag = resource_of(board)
        return [address for address, info in workers.items() if (info.get("resources") or {}).get(tag, 0) >= 1]

    def _wait_for_worker(self, board: str) -> list[str]:
        deadline = time.monotonic() + self.disconnect_grace_s
        while True:
            workers = self.workers_of(board)
            if workers:
                return workers
            if time.monotonic() >= deadline:
                raise BoardUnavailable(f"board {board!r}: no dask worker offers {resource_of(board)} (disconnected or never started)")
            time.sleep(POLL_S)

    def _submit(self, board: str, function: Callable, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> Any:
        """Run ``function`` on the board's worker and wait, watching for disconnects and timeouts."""
        self._wait_for_worker(board)
        future = self.client.submit(function, *args, resources={resource_of(board): 1}, pure=False, **kwargs)
        started = time.monotonic()
        missing_since: float | None = None
        limit = self.task_timeout_s if timeout_s is None else timeout_s
        try:
            while True:
                if future.done():
                    return future.result()
                time.sleep(POLL_S)
                now = time.monotonic()
                if now - started > limit:
                    raise BoardUnavailable(f"board {board!r}: task timed out after {limit:g} s")
                if self.workers_of(board):
                    missing_since = None
                elif missing_since is None:
                    missing_since = now
                elif now - missing_since > self.disconnect_grace_s:
                    raise BoardUnavailable(f"board {board!r}: its worker disconnected ({resource_of(board)} offered by no worker for {self.disconnect_grace_s:g} s)")
        except BaseException:
            future.cancel()
            raise
        finally:
            future.release()

    def run(self, board: Any, sidecar: Path, options: dict) -> RunReport:
        """Measure one artifact on the board's worker; its files travel only if the worker lacks them."""
        from device_runners.agent import is_cached, package_artifact, run_on_worker
        from device_runners.artifact import load_artifact

        sha = load_artifact(sidecar).sha256
        cached = self._submit(board.name, is_cached, sha, self.cache_root, timeout_s=60.0)
        payload = package_artifact(sidecar, include_files=not cached)
        if not cached:
            workers = self._wait_for_worker(board.name)
            payload = self.client.scatter([payload], workers=workers, hash=False)[0]  # a list: a dict would scatter per key
        timeout = self.task_timeout_s
        return _report(self._submit(board.name, run_on_worker, payload, options, self.cache_root, timeout_s=timeout))

    def clock_offset(self, board: Any, address: tuple[str, int], token: str | None = None) -> Any:
        """The daemon's clock against the board's monotonic clock, estimated on the board's worker."""
        from sensors.clock_sync import daemon_offset

        return self._submit(board.name, daemon_offset, address, token=token, timeout_s=60.0)

    def worker_process(self, board: Any) -> tuple[int, str]:
        """(pid, hostname) of the board's worker process (its children run the protocol)."""
        return self._submit(board.name, _worker_identity, timeout_s=60.0)

    def close(self) -> None:
        """Disconnect from the scheduler."""
        self.client.close()


def clock_offset_for(dispatch: Any, board: Any, link: Any) -> Any:
    """The daemon's clock against the board runner's (a ClockOffset): exactly 0 when both are this machine's monotonic clock."""
    from sensors.clock_sync import shared_clock_offset

    local = getattr(link, "local", None)  # a SamplingDaemon in this process, or None for a remote daemon
    if local is not None and local.clock is time.monotonic and getattr(dispatch, "shares_host_clock", False):
        return shared_clock_offset()
    return dispatch.clock_offset(board, link.address, link.token)


def split_scheduler(address: str) -> tuple[str, str, int | None]:
    """``scheme://host:port`` -> (scheme, host, port or None); ValueError naming the address otherwise."""
    scheme, sep, rest = address.partition("://")
    if not sep or scheme not in SCHEMES or not rest:
        raise ValueError(f"--scheduler {address!r}: expected tcp://HOST:PORT or tls://HOST:PORT (or 'in-process')")
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit():
        host, port = rest, ""
    return scheme, host.strip("[]"), int(port) if port else None


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address is this machine's loopback only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_scheduler_address(address: str, insecure: bool = False) -> tuple[str, str, int | None]:
    """Split a scheduler address; InsecureScheduler for plain TCP off loopback unless ``insecure``."""
    scheme, host, port = split_scheduler(address)
    if scheme in PLAIN_SCHEMES and not is_loopback_host(host) and not insecure:
        raise InsecureScheduler(
            f"--scheduler {address}: plain {scheme}:// to a non-loopback host lets anyone who reaches it run code on the boards' "
            f"workers; use tls://{host}{f':{port}' if port else ''} (rig deploy makes the rig's certificates) or pass --insecure"
        )
    return scheme, host, port


def make_dispatch(scheduler: str | None, rig_source: str | None = None, insecure: bool = False, **kwargs: Any) -> InProcessDispatch | DaskDispatch:
    """The dispatcher for a scheduler address ("in-process"/None: this process's children; tls://: the rig's client certificate)."""
    if scheduler in (None, "", "in-process"):
        return InProcessDispatch()
    scheme, _, _ = check_scheduler_address(scheduler, insecure)
    if scheme in ("tls", "wss") and "security" not in kwargs:
        from firmware_host.deploy.tls import client_identity, rig_tls_dir

        kwargs["security"] = client_identity(rig_tls_dir(rig_source or "")).security("client")
    return DaskDispatch(scheduler, **kwargs)
