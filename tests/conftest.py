"""Shared test configuration.

A run that collects no test (a filter that matches nothing) exits 0, not pytest's 5:
CI must never fail on "no tests collected".
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_PUBLISHED = REPO_ROOT.parent / "shared" / "data" / "published"


# Hard limits (s) for each test of the modules that start real measurements (runner
# children, daemons, dask clusters): a hang there fails that test instead of hanging CI.
# Every other test has the global `timeout` of pyproject.toml; a test's own
# @pytest.mark.timeout wins over both.
MEASURING_MODULE_TIMEOUTS_S = {
    "test_measurement_protocol.py": 120,
    "test_runtimes_agree.py": 180,
    "test_run_command.py": 180,
    "test_runner_agent.py": 180,
    "test_campaign_cli.py": 300,
    "test_cli_protran.py": 400,
    "test_dask_dispatch.py": 300,
    "test_profile_remote_daemon.py": 180,
    "test_profile_virtual_rig.py": 180,
    "test_rig_evaluator.py": 300,
    "test_store.py": 180,
    "test_protran_registry.py": 300,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test of a measuring module its hard timeout (unless it sets its own)."""
    for item in items:
        limit = MEASURING_MODULE_TIMEOUTS_S.get(item.path.name)
        if limit is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(limit))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Map pytest's 'no tests collected' (5) to success."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


@pytest.fixture(scope="session")
def shared_published() -> Path:
    """The project's shared copy of the published data (skips when absent)."""
    if not SHARED_PUBLISHED.is_dir():
        pytest.skip(f"{SHARED_PUBLISHED} not present")
    return SHARED_PUBLISHED


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run the `edgetran` CLI in-process: ``cli("space", "stats")`` -> (exit code, stdout, stderr)."""
    from firmware_host.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
