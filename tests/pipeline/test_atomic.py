"""Atomic writes: content replaced whole, permissions as a plain open() gives (umask), no temporaries left."""

import os
import stat

import pytest

from pipeline.atomic import atomic_write_bytes
from pipeline.cli import write_json


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_atomic_write_respects_umask_and_replaces(tmp_path):
    old = os.umask(0o022)
    try:
        p = atomic_write_bytes(tmp_path / "sub" / "a.bin", b"one")
        assert p.read_bytes() == b"one" and mode(p) == 0o644  # mkstemp alone would give 0o600
        atomic_write_bytes(p, b"two")
        assert p.read_bytes() == b"two"
        write_json({"x": 1}, str(tmp_path / "r.json"))
        assert mode(tmp_path / "r.json") == 0o644
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "private.bin", b"x")
        assert mode(tmp_path / "private.bin") == 0o600
    finally:
        os.umask(old)
    assert sorted(x.name for x in tmp_path.rglob("*")) == ["a.bin", "private.bin", "r.json", "sub"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    p = atomic_write_bytes(tmp_path / "a.json", b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(p, "not bytes")  # type: ignore[arg-type]
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.json"]
