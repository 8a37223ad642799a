"""ProTran reports a reviewer would accept: points inside the axes, honest ticks and units, origin in every title,
files 0644, and a report directory that is replaced whole or not at all.

The live report is built from a recorded campaign file (``fixtures/live_campaign_virtual_rpi4.sqlite``: the
README's main job, 12 measurements on the emulated Raspberry Pi 4, pool of 64 under 2 GFLOP/seq); the published
one from the Raspberry Pi pool (65 architectures), with cheap regressors so the module takes seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

import firmware_host.store  # noqa: F401 - the host registers the one store, where live campaigns are kept
from codesign.protran.campaign_report import build_campaign_report, load_live_campaign
from codesign.protran.report import ReportError, build_report
from codesign.protran.report_figures import _pyplot, figure_facts

FIXTURE = Path(__file__).parent / "fixtures" / "live_campaign_virtual_rpi4.sqlite"
SMALL_DEVICE = "cpu_rpi_b1_r1"  # 65 architectures: the held-out split leaves 52, enough for 16 initial + 2 queries


@pytest.fixture(scope="module")
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def live_report(tmp_path_factory, umask_022):
    root = tmp_path_factory.mktemp("live")
    store = root / "campaign.sqlite"
    shutil.copy(FIXTURE, store)
    out = root / "report"
    summary = build_campaign_report(store, out, glue_regressor="lr", glue_splits=3)
    return summary, out


@pytest.fixture(scope="module")
def published_report(tmp_path_factory, umask_022):
    out = tmp_path_factory.mktemp("published") / "report"
    summary = build_report(
        [SMALL_DEVICE], out, regressor="lr", curve_regressors=("lr",), budget=18, glue_regressor="lr", glue_splits=3,
    )
    return summary, out


@pytest.fixture(params=["live", "published"])
def report(request):
    return request.getfixturevalue(f"{request.param}_report")


def _panels(summary: dict, prefix: str) -> list[dict]:
    names = [n for n in summary["figures"] if n.startswith(prefix)]
    assert names, f"no {prefix} figure in {sorted(summary['figures'])}"
    return [p for n in names for p in summary["figures"][n]["panels"]]


def test_every_figure_and_summary_is_written(report):
    summary, out = report
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["files"])
    assert {n for n in summary["files"] if n.endswith(".png")} == set(summary["figures"])


def test_every_plotted_point_is_inside_the_axes(report):
    summary, _ = report
    for name, facts in summary["figures"].items():
        for panel in facts["panels"]:
            assert panel["points"] > 0, (name, panel["title"])
            assert panel["outside"] == 0, (name, panel["title"], panel["xlim"], panel["ylim"])


def test_titles_carry_the_origin_in_the_figure_and_the_png(report):
    from PIL import Image

    summary, out = report
    tag = {"live campaign": "[EMULATED]", "published": "[PUBLISHED]"}[summary["kind"]]
    for name, facts in summary["figures"].items():
        assert facts["title"].startswith(tag), (name, facts["title"])
        with Image.open(out / name) as image:
            assert image.text["Title"] == facts["title"]


def test_log_axes_have_at_least_three_labelled_ticks(report):
    summary, _ = report
    for name, facts in summary["figures"].items():
        for panel in facts["panels"]:
            for axis in ("x", "y"):
                if panel[f"{axis}scale"] == "log":
                    assert len(panel[f"{axis}ticks"]) >= 3, (name, panel["title"], axis, panel[f"{axis}ticks"])


def test_fig7_counts_have_integer_ticks(report):
    summary, _ = report
    for panel in _panels(summary, "fig7_"):
        values = [v for v, _ in panel["xticks"]]
        assert values and all(float(v).is_integer() for v in values), panel["xticks"]
        assert all(text.isdigit() for _, text in panel["xticks"]), panel["xticks"]


def test_fig13_rows_are_the_layer_counts_that_exist_and_no_point_hides_another(live_report, tmp_path):
    summary, _ = live_report
    shutil.copy(FIXTURE, tmp_path / "c.sqlite")  # opening migrates the old-layout file in place: never the fixture itself
    campaign = load_live_campaign(tmp_path / "c.sqlite")
    layers = sorted({a.layers for a in campaign.candidates})
    assert layers == [2, 4]  # the 2 GFLOP cap: no 3-layer model exists to interpolate through
    assert summary["depth_width"]["layers"] == layers
    for panel in _panels(summary, "fig13_"):
        assert [text for _, text in panel["yticks"]] == [str(n) for n in layers]
        assert panel["distinct_points"] == panel["points"] == summary["measured"] == 12


def test_fig13_title_counts_the_pool_and_the_extra_samples_apart(live_report):
    summary, _ = live_report
    title = next(f["title"] for n, f in summary["figures"].items() if n.startswith("fig13_"))
    extra = summary["depth_width"]["extra_samples"]
    assert f"the 64 candidates and {extra} more architectures sampled with at most 2 GFLOP/seq" in title
    assert f"{64 + extra} sampled" not in title


def test_fig13_published_rows_are_the_pools_layer_counts(published_report):
    from codesign.protran.evaluators import PublishedPoolEvaluator

    summary, _ = published_report
    pool_layers = {a.layers for a in PublishedPoolEvaluator(SMALL_DEVICE).pool}
    for panel in _panels(summary, "fig13_"):
        shown = {int(text) for _, text in panel["yticks"]}
        assert pool_layers <= shown and all(n % 2 == 0 for n in shown)  # FlexiBERT 2.0 depths, no fractions
        assert panel["distinct_points"] == panel["points"] == summary["devices"][SMALL_DEVICE]["pool"]


def test_one_unit_per_measure_in_figures_and_tables(live_report):
    summary, out = live_report
    assert summary["units"] == {"latency_s": "ms/seq", "energy_j": "mJ/seq", "peak_power_w": "W"}
    text = (out / "summary.md").read_text()
    labels = " ".join(p["xlabel"] + " " + p["ylabel"] for f in summary["figures"].values() for p in f["panels"])
    for where in (text, labels):
        assert not re.search(r"(?<![m/])\bs/seq|(?<!m)J/seq|latency ms\b(?!/)|energy J\b|energy mJ\b(?!/)", where), where
    assert "latency ms/seq" in text and "energy mJ/seq" in text
    assert "latency (ms/seq)" in labels and "energy (mJ/seq)" in labels and "peak power (W)" in labels


def test_published_figures_say_per_run_not_per_sequence(published_report):
    summary, out = published_report
    labels = [p["xlabel"] + p["ylabel"] for f in summary["figures"].values() for p in f["panels"]]
    assert any("s/run" in label for label in labels) and not any("/seq" in label for label in labels)
    assert "per evaluation run" in (out / "summary.md").read_text()


def test_the_live_held_out_table_has_no_extrapolated_embedding_row(live_report):
    """The 37-d embedding's per-layer slots are zero for every 2-layer model: on 12 measurements it extrapolated to
    MSEs of 6.4 (latency) on max-normalised values. The live report scores the campaign's own features only."""
    summary, out = live_report
    assert list(summary["holdout"]) == [summary["features"]] == ["workload"]
    assert all(v < 1.0 for v in summary["holdout"]["workload"]["mse"].values())
    assert any("index embedding" in s for s in summary["skipped"])
    assert "| embedding |" not in (out / "summary.md").read_text()


def test_fig14_says_whether_the_glue_surrogate_beats_the_mean(report):
    summary, out = report
    loo = summary["glue"]["leave_one_out"]
    assert summary["glue_informative"] == (loo["mse"] < loo["mse_train_mean"])
    title = summary["figures"]["fig14_pareto.png"]["title"]
    assert ("NO BETTER THAN THE MEAN" in title) == (not summary["glue_informative"])
    assert ("no better than predicting the mean" in (out / "summary.md").read_text()) == (not summary["glue_informative"])


def test_report_files_are_0644_and_the_directory_0755_under_umask_022(report):
    _, out = report
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


def test_an_interrupted_report_leaves_the_previous_one_intact(published_report, tmp_path):
    _, previous = published_report
    out = tmp_path / "report"
    shutil.copytree(previous, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupt(message: str) -> None:
        if message.startswith("[2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_report([SMALL_DEVICE], out, regressor="lr", curve_regressors=("lr",), budget=18, glue_regressor="lr",
                     glue_splits=3, progress=interrupt)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary directory left beside it


def test_a_new_report_replaces_the_previous_one_whole(live_report, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    (out / "fig13_contours_virtual-rpi4.png").write_bytes(b"stale")  # a figure the new report no longer writes
    store = tmp_path / "c.sqlite"
    shutil.copy(FIXTURE, store)
    summary = build_campaign_report(store, out, glue_regressor="lr", glue_splits=3)
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["files"])
    assert json.loads((out / "summary.json").read_text())["measured"] == 12


def test_a_directory_that_is_not_a_report_is_refused_untouched(tmp_path):
    out = tmp_path / "papers"
    out.mkdir()
    (out / "draft.tex").write_text("keep me")
    with pytest.raises(ReportError, match="not empty and not a previous report"):
        build_report([SMALL_DEVICE], out, regressor="lr", curve_regressors=("lr",), budget=18, glue_regressor="lr", glue_splits=3)
    assert [p.name for p in out.iterdir()] == ["draft.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["papers"]


def test_the_clipping_check_catches_a_point_on_the_edge():
    """The checker behind the limits tests: a marker on an axis limit counts as clipped."""
    plt = _pyplot()
    fig, ax = plt.subplots()
    ax.plot([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], "o")
    ax.set_xlim(1.0, 3.5)
    ax.set_ylim(0.5, 3.5)
    fig.canvas.draw()
    facts = figure_facts(fig)
    plt.close(fig)
    assert facts["panels"][0]["points"] == 3 and facts["panels"][0]["outside"] == 1
    assert np.allclose(facts["panels"][0]["xlim"], [1.0, 3.5])
