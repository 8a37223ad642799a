"""Loaders of the published ProTran measurements and GLUE scores, shipped as package data."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest

from codesign.published import (
    LICENSE_FILES,
    PublishedDataError,
    list_devices,
    load_device,
    load_glue,
    parse_device_name,
    parse_stored_embedding,
    published_root,
)

EXPECTED_DEVICES = {
    "cpu_jetson-nano_b1_r1": 178,
    "cpu_m1-pro_b32_r1": 83,
    "cpu_rpi_b1_r1": 65,
    "gpu_a100_b128_r3": 191,
    "gpu_jetson-nano_b1_r1": 18,
    "gpu_m1-pro_b32_r3": 74,
    "npu_ncs_b1_r1": 17,
}


def test_all_seven_platforms_load_with_their_sizes():
    devices = list_devices()
    assert [d.name for d in devices] == sorted(EXPECTED_DEVICES)
    for device in devices:
        dataset = load_device(device.name)
        assert len(dataset.measurements) == EXPECTED_DEVICES[device.name]
        for m in dataset.measurements:
            assert m.latency_s > 0 and m.energy_j > 0 and m.peak_power_w > 0
            assert m.embedding is not None and len(m.embedding) == 37


def test_maxima_are_read_as_the_authors_wrote_them():
    """max_values.json is metadata: on the Jetson CPU it is below the data's own maximum."""
    jetson = load_device("cpu_jetson-nano_b1_r1")
    assert jetson.max_latency_s == pytest.approx(49.53724918365479)
    assert max(m.latency_s for m in jetson.measurements) == pytest.approx(78.54806752204895)
    a100 = load_device("gpu_a100_b128_r3")
    assert a100.max_peak_power_w == pytest.approx(479.6)


def test_rpi_record_values_are_read_exactly():
    dataset = load_device("cpu_rpi_b1_r1")
    record = next(m for m in dataset.measurements if m.key == "e3ea4dd7dab98b7ca6aa439a22e2c669")
    assert record.architecture.layers == 10
    assert record.model_type == "deep_narrow"
    assert record.latency_s == pytest.approx(36.07466878890991)
    assert record.energy_j == pytest.approx(122.67738643954438)
    assert record.peak_power_w == pytest.approx(5.170731707317072)


def test_glue_records():
    records = load_glue()
    assert len(records) == 16
    for r in records:
        assert 0 < r.pretrain_steps <= 1_000_000
        assert r.pretrain_loss > 0
    scored = [r for r in records if r.glue_score is not None]
    assert len(scored) == 13
    assert all(0 < r.glue_score < 1 for r in scored)
    first = next(r for r in records if r.key == "f36d5c40c770e4f787c78b43a2a09d78")
    assert first.glue_score == pytest.approx(0.8124)  # stored as the string " 0.8124"
    assert first.pretrain_loss == pytest.approx(2.4507) and first.pretrain_steps == 1_000_000
    assert first.architecture.layers == 6 and first.model_type == "shallow_narrow"


def test_device_names_parse():
    device = parse_device_name("gpu_a100_b128_r3")
    assert (device.processor, device.platform, device.batch_size, device.runs) == ("gpu", "a100", 128, 3)
    assert parse_device_name("cpu_jetson-nano_b1_r1").platform == "jetson-nano"
    with pytest.raises(PublishedDataError, match="not a device name"):
        parse_device_name("rpi")


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(PublishedDataError, match=r"unknown published device 'tpu_v4_b1_r1' \(known: cpu_jetson"):
        load_device("tpu_v4_b1_r1")


def test_stored_embeddings_are_parsed_as_json_never_evaluated():
    assert parse_stored_embedding("[1, 2, 3]", "x") == (1, 2, 3)
    assert parse_stored_embedding([4, 5], "x") == (4, 5)
    assert parse_stored_embedding(None, "x") is None
    with pytest.raises(PublishedDataError, match="not a JSON list"):
        parse_stored_embedding("__import__('os')", "x")
    with pytest.raises(PublishedDataError, match="list of integers"):
        parse_stored_embedding("[1.5]", "x")


def test_malformed_dataset_is_named(tmp_path: Path):
    root = tmp_path / "published"
    shutil.copytree(published_root(), root)
    path = root / "protran" / "npu_ncs_b1_r1" / "dataset.json"
    data = json.loads(path.read_text())
    key = next(iter(data))
    data[key]["model_dict"]["h"][0] = "wide"
    path.write_text(json.dumps(data))
    with pytest.raises(PublishedDataError, match=rf"npu_ncs_b1_r1/{key}: model_dict h\[0\]"):
        load_device("npu_ncs_b1_r1", root)
    data[key]["model_dict"]["h"][0] = 128
    del data[key]["performance"]["energy"]
    path.write_text(json.dumps(data))
    with pytest.raises(PublishedDataError, match="missing or non-numeric 'energy'"):
        load_device("npu_ncs_b1_r1", root)
    path.write_text("{")
    with pytest.raises(PublishedDataError, match="not valid JSON"):
        load_device("npu_ncs_b1_r1", root)


def test_license_notices_ship_with_the_data():
    for name in LICENSE_FILES:
        text = (published_root() / name).read_text()
        assert "BSD 3-Clause License" in text and "Shikhar Tuli and Jha Lab" in text


def test_packaged_copies_equal_the_shared_originals(shared_published: Path):
    root = published_root()
    originals = sorted(p.relative_to(shared_published) for p in (shared_published / "protran").rglob("*.json"))
    originals += [Path("glue/dataset.json"), Path("design_space.yaml"), *map(Path, LICENSE_FILES)]
    for relative in originals:
        assert filecmp.cmp(shared_published / relative, root / relative, shallow=False), relative


def test_published_rpi_latencies_are_whole_run_times_on_0_8_s_steps():
    """The reading behind PUBLISHED_UNIT: RPi latencies are whole-process times on ~0.80 s steps, >= 4 s each."""
    import numpy as np

    from codesign.protran.measures import PUBLISHED_UNIT, units_note
    from codesign.published import load_device

    latency = np.sort([m.latency_s for m in load_device("cpu_rpi_b1_r1").measurements])
    assert latency[0] > 4.0 and latency[-1] > 60.0  # BERT-Tiny-sized models take seconds: not per sequence
    steps = (latency - latency[0]) / 0.80
    on_lattice = np.abs(steps - np.round(steps)) < 0.05  # within 40 ms of 4.01 s + k * 0.80 s
    assert on_lattice[latency < 20].mean() > 0.9, latency[~on_lattice]
    assert PUBLISHED_UNIT["latency_s"].startswith("s per evaluation run") and "not per-sequence" in units_note("published")["note"]
