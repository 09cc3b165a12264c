"""fsutil: a reader never sees a half-written file, and a failed write keeps the old one."""

import os

import pytest

from trainlab.fsutil import atomic_write, atomic_write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = atomic_write_text(tmp_path / "f.txt", "old")

    def half(tmp):
        tmp.write_text("new but not fin")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_the_file_gets_the_usual_mode(tmp_path):
    path = atomic_write_text(tmp_path / "sub" / "f.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
