"""Campaign files: interrupt, resume, same result, no evaluation repeated."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

import firmware_host.store  # noqa: F401 - the host's one store, which registers itself as ProTran's
from codesign.protran.campaign_store import CampaignStore, CampaignStoreError
from codesign.protran.evaluators import PublishedPoolEvaluator, architecture_key
from codesign.protran.loop import LoopConfig, run_campaign

DEVICE = "cpu_rpi_b1_r1"
CONFIG = LoopConfig(regressor="gpr", budget=22, seed=3)


class Interrupted(Exception):
    """Stands for a crash or Ctrl-C in the middle of a campaign."""


class CountingEvaluator(PublishedPoolEvaluator):
    """The published pool, recording every evaluated key; raises after ``stop_after`` evaluations."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__(DEVICE)
        self.stop_after = stop_after
        self.evaluated: list[str] = []

    def __call__(self, arch):
        if self.stop_after is not None and len(self.evaluated) >= self.stop_after:
            raise Interrupted(f"stopped after {self.stop_after} evaluations")
        self.evaluated.append(architecture_key(arch))
        return super().__call__(arch)


@pytest.fixture(scope="module")
def uninterrupted():
    evaluator = CountingEvaluator()
    return run_campaign(evaluator, evaluator.pool, CONFIG, truth=evaluator.truth), evaluator.evaluated


@pytest.mark.parametrize("stop_after", [5, 19])  # inside the initial batch of 16, and after it
def test_resumed_campaign_equals_uninterrupted_and_repeats_nothing(tmp_path, uninterrupted, stop_after):
    expected, expected_calls = uninterrupted
    path = tmp_path / "campaign.sqlite"
    first = CountingEvaluator(stop_after=stop_after)
    with CampaignStore(path) as store, pytest.raises(Interrupted):
        run_campaign(first, first.pool, CONFIG, store, truth=first.truth)
    assert len(first.evaluated) == stop_after
    with CampaignStore(path) as store:
        assert len(store.evaluations()) == stop_after
        second = CountingEvaluator()
        resumed = run_campaign(second, second.pool, CONFIG, store, truth=second.truth)
        stored_keys = [e.arch_key for e in store.evaluations()]
    assert resumed.resumed
    assert first.evaluated + second.evaluated == expected_calls  # every architecture measured exactly once
    assert len(set(stored_keys)) == len(stored_keys) == expected.samples
    assert resumed.queried == expected.queried
    assert resumed.history == expected.history
    assert (resumed.samples, resumed.converged, resumed.val_mse) == (expected.samples, expected.converged, expected.val_mse)


def test_finished_campaign_resumes_without_evaluating(tmp_path, uninterrupted):
    expected, _ = uninterrupted
    path = tmp_path / "done.sqlite"
    with CampaignStore(path) as store:
        first = CountingEvaluator()
        run_campaign(first, first.pool, CONFIG, store, truth=first.truth)
    again = CountingEvaluator()
    with CampaignStore(path) as store:
        result = run_campaign(again, again.pool, CONFIG, store, truth=again.truth)
        assert store.state()["status"] == "budget"
    assert again.evaluated == []
    assert result.queried == expected.queried and result.history == expected.history


def test_a_larger_budget_continues_where_the_campaign_stopped(tmp_path):
    path = tmp_path / "grow.sqlite"
    small = LoopConfig(regressor="gpr", budget=18, seed=3)
    with CampaignStore(path) as store:
        run_campaign(CountingEvaluator(), PublishedPoolEvaluator(DEVICE).pool, small, store)
    more = CountingEvaluator()
    with CampaignStore(path) as store:
        grown = run_campaign(more, more.pool, LoopConfig(regressor="gpr", budget=21, seed=3), store)
    straight = CountingEvaluator()
    direct = run_campaign(straight, straight.pool, LoopConfig(regressor="gpr", budget=21, seed=3))
    assert len(more.evaluated) == 3
    assert grown.queried == direct.queried and grown.history == direct.history


def test_another_configuration_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "c.sqlite"
    with CampaignStore(path) as store:
        store.bind_config({**CONFIG.to_dict(), "device": DEVICE})
    with CampaignStore(path) as store:
        with pytest.raises(CampaignStoreError, match="started with regressor='gpr', not 'gbdt'"):
            run_campaign(CountingEvaluator(), PublishedPoolEvaluator(DEVICE).pool, LoopConfig(regressor="gbdt", budget=22, seed=3), store)
        other = PublishedPoolEvaluator("npu_ncs_b1_r1")
        with pytest.raises(CampaignStoreError, match="started with device='cpu_rpi_b1_r1'"):
            run_campaign(other, other.pool, CONFIG, store)


def test_store_uses_wal_and_refuses_non_campaign_files(tmp_path):
    path = tmp_path / "wal.sqlite"
    with CampaignStore(path):
        pass
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(CampaignStoreError, match="not an EdgeTran store"):
        CampaignStore(junk)
    with pytest.raises(CampaignStoreError, match="does not exist"):
        CampaignStore(tmp_path / "missing" / "x.sqlite")


def test_an_evaluation_is_never_stored_twice(tmp_path):
    with CampaignStore(tmp_path / "twice.sqlite") as store:
        store.add_evaluation(0, "k", {"l": 2}, {"latency_s": 1, "energy_j": 1, "peak_power_w": 1}, "initial")
        with pytest.raises(CampaignStoreError, match="already stored"):
            store.add_evaluation(1, "k", {"l": 2}, {"latency_s": 1, "energy_j": 1, "peak_power_w": 1}, "initial")


def test_codesign_opens_the_store_the_host_registered_and_never_imports_the_host(tmp_path):
    """#12 layering: codesign (ProTran's CLI, loop, reports, campaign store) imports nothing of firmware_host."""
    script = (
        "import sys\n"
        "import codesign.protran.cli, codesign.protran.campaign_report, codesign.protran.loop\n"
        "from codesign.protran.campaign_store import CampaignStore, CampaignStoreError\n"
        "try:\n"
        f"    CampaignStore({str(tmp_path / 'c.sqlite')!r})\n"
        "except CampaignStoreError as error:\n"
        "    print('refused:', error)\n"
        "print('host imported:', sorted(m for m in sys.modules if m.startswith('firmware_host')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "refused: no campaign store is registered" in done.stdout
    assert "host imported: []" in done.stdout
    assert not (tmp_path / "c.sqlite").exists()
