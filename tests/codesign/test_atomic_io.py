"""codesign.atomic_io: complete-or-old files and directories, with the umask's permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from codesign import atomic_io


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_text_files_are_0644_under_umask_022(tmp_path, umask_022):
    target = tmp_path / "summary.md"
    atomic_io.write_text_atomically(target, "# report\n")
    assert target.read_text() == "# report\n"
    assert _mode(target) == 0o644


def test_replacing_a_file_keeps_the_umask_mode_and_leaves_no_temporaries(tmp_path, umask_022):
    target = tmp_path / "s.json"
    atomic_io.write_text_atomically(target, "1")
    atomic_io.write_bytes_atomically(target, b"2")
    assert target.read_bytes() == b"2" and _mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_a_private_umask_gives_private_files(tmp_path):
    old = os.umask(0o077)
    try:
        target = tmp_path / "private.txt"
        atomic_io.write_text_atomically(target, "x")
    finally:
        os.umask(old)
    assert _mode(target) == 0o600


def test_atomic_path_for_writers_that_take_a_name(tmp_path, umask_022):
    target = tmp_path / "fig.png"
    with atomic_io.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".fig.png.")
        tmp.write_bytes(b"png")
        assert not target.exists()
    assert target.read_bytes() == b"png" and _mode(target) == 0o644


def test_a_failed_writer_leaves_the_old_file(tmp_path):
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_a_directory_is_built_aside_and_moved_into_place(tmp_path, umask_022):
    final = tmp_path / "report"
    with atomic_io.atomic_directory(final) as built:
        assert built.parent == tmp_path and not final.exists()
        (built / "a.txt").write_text("new")
    assert (final / "a.txt").read_text() == "new"
    assert _mode(final) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_a_new_directory_replaces_a_previous_one_whole(tmp_path):
    final = tmp_path / "report"
    final.mkdir()
    (final / "old-only.png").write_text("old")
    (final / "a.txt").write_text("old")
    with atomic_io.atomic_directory(final) as built:
        (built / "a.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["a.txt"]
    assert (final / "a.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_an_interrupted_directory_leaves_the_previous_one_intact(tmp_path):
    final = tmp_path / "report"
    final.mkdir()
    (final / "a.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_io.atomic_directory(final) as built:
            (built / "a.txt").write_text("half")
            raise KeyboardInterrupt
    assert [p.name for p in final.iterdir()] == ["a.txt"] and (final / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_outputs_are_written_by_the_one_atomic_writer():
    """mkstemp makes 0600 files: outputs (samples, sidecars, checkpoints, exports, figures) go through atomic_io instead."""
    root = Path(__file__).resolve().parents[2]
    allowed = {
        "codesign/atomic_io.py",
        "device_runners/protocol.py",  # the runner's progress file: private scratch, not an output
        "firmware_host/deploy/tls.py",  # TLS private keys: 0600 on purpose
    }
    offenders = []
    for room in ("codesign", "firmware_host", "sim", "sensors"):
        for source in sorted((root / room).rglob("*.py")):
            relative = source.relative_to(root).as_posix()
            if relative not in allowed and "mkstemp(" in source.read_text(encoding="utf-8"):
                offenders.append(relative)
    assert offenders == []


def test_check_output_file_refuses_what_cannot_be_written_even_as_root(tmp_path):
    """#12: outputs are checked before the work; a path under a regular file or in /proc is refused for root too."""
    from codesign.atomic_io import OutputPathError, check_output_directory, check_output_file

    afile = tmp_path / "afile"
    afile.write_text("x")
    for bad, message in [(tmp_path, "is a directory"), (afile / "out.json", "is not a directory"), (tmp_path / "no" / "out.json", "does not exist"),
                         ("/proc/edgetran-out.json", "cannot write"), (tmp_path / ("x" * 300), "cannot write")]:
        with pytest.raises(OutputPathError, match=message):
            check_output_file(bad)
    for bad, message in [(afile, "exists and is not a directory"), (afile / "sub" / "dir", "is not a directory"), ("/proc/edgetran-rep", "cannot write")]:
        with pytest.raises(OutputPathError, match=message):
            check_output_directory(bad)
    assert check_output_file(tmp_path / "ok.json") == tmp_path / "ok.json" and check_output_directory(tmp_path / "new" / "deep")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # the probes leave nothing behind
