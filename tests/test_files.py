"""Files written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from savos.files import TEMPORARY_SUFFIX, temporary_name, write_atomically


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")

    def half_then_fail(tmp: str) -> None:
        Path(tmp).write_bytes(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    write_atomically(path, lambda tmp: Path(tmp).write_bytes(b"new"))
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_each_write_has_a_temporary_name_of_its_own(tmp_path: Path) -> None:
    """A fixed temporary name let two writers of one checkpoint interleave their bytes."""
    first, second = temporary_name(tmp_path / "model.pt"), temporary_name(tmp_path / "model.pt")
    assert first != second
    assert first.parent == tmp_path
    assert first.name.startswith(".model.pt.")
    assert first.name.endswith(TEMPORARY_SUFFIX)
    write_atomically(tmp_path / "sub" / "x.bin", lambda tmp: Path(tmp).write_bytes(b"x"))  # the folder is made
    assert (tmp_path / "sub" / "x.bin").read_bytes() == b"x"
