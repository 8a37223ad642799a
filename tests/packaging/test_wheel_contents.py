"""The built wheel carries the design-space table, the published data and its licences."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from codesign.published import published_root

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_package_data(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("edgetran-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "codesign/data/design_space.toml" in names
    assert "firmware_host/data/boards.toml" in names  # the virtual rig's board power models
    assert {f"udev/rules/60-edgetran-{kind}.rules" for kind in ("i2c", "npu", "power")} <= names
    packaged = [p.relative_to(published_root()).as_posix() for p in published_root().rglob("*") if p.is_file()]
    assert len(packaged) == 18  # 7 devices x 2 files, GLUE, the YAML, 2 licences
    for relative in packaged:
        assert f"codesign/data/published/{relative}" in names, relative
    corpus = Path(__file__).resolve().parents[2] / "codesign" / "corpus" / "data"
    shipped = [p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()]
    assert "vocab.txt" in shipped and "glue_tasks.toml" in shipped and "tasks/sentiment/train.tsv" in shipped
    for relative in shipped:
        assert f"codesign/corpus/data/{relative}" in names, relative
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "edgetran = firmware_host.cli:run" in zipfile.ZipFile(wheel).read(entry_points).decode()
