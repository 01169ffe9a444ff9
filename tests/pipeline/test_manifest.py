"""pipeline.manifest: manifests read, verified and written in one place (round trip, atomic writes,
tampered files refused, both record layouts read). The committed manifests' sha256 against their
files are audited in tests/test_weights_audit.py."""

from __future__ import annotations

import json
import os

import pytest

from pipeline import manifest as M
from pipeline.errors import ModelFileError


def _shipped_file(folder, name="w.bin", data=b"weights " * 64):
    (folder / name).write_bytes(data)
    return folder / name


def _manifest(folder):
    return {
        "default": "w.bin",
        "files": {
            "w.bin": M.record(
                folder / "w.bin",
                command="python -m training.x",
                config={"width": 16},
                data={"images": 3},
                figures={"nme": 5.2},
                bytes=512,
            )
        },
        "note": "zoë",
    }


def test_round_trip_on_a_tmp_folder(tmp_path):
    _shipped_file(tmp_path)
    man = _manifest(tmp_path)
    path = M.write_manifest(tmp_path, man)
    assert path == tmp_path / "MANIFEST.json"
    assert M.read_manifest(tmp_path) == man
    raw = path.read_bytes()
    assert raw == (json.dumps(man, indent=2) + "\n").encode() and raw.endswith(b"}\n")
    rec = M.entry(tmp_path, "w.bin")
    assert M.verified_path(tmp_path, rec, "test weights") == tmp_path / "w.bin"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MANIFEST.json", "w.bin"]  # no temporary


def test_write_manifest_creates_the_folder(tmp_path):
    M.write_manifest(tmp_path / "a" / "b", {"files": {}})
    assert M.read_manifest(tmp_path / "a" / "b") == {"files": {}}


@pytest.mark.parametrize("name", sorted(M.SHIPPED))
def test_the_committed_manifests_are_written_back_byte_for_byte(name):
    """write_manifest keeps the layout of the committed files: reading and writing one back changes nothing."""
    folder = M.SHIPPED[name].folder
    assert M.dumps(M.read_manifest(folder)) == (folder / M.MANIFEST_NAME).read_bytes()


def test_failed_serialisation_leaves_the_old_manifest_and_no_temporary(tmp_path):
    _shipped_file(tmp_path)
    M.write_manifest(tmp_path, _manifest(tmp_path))
    before = (tmp_path / "MANIFEST.json").read_bytes()
    bad = _manifest(tmp_path)
    bad["files"]["w.bin"]["figures"]["when"] = object()  # not JSON
    with pytest.raises(TypeError):
        M.write_manifest(tmp_path, bad)
    missing_sha = {"files": {"w.bin": {"file": "w.bin", "config": {}}}}
    with pytest.raises(ValueError, match="sha256"):
        M.write_manifest(tmp_path, missing_sha)
    with pytest.raises(ValueError, match="sha256"):  # a top-level record is checked too
        M.write_manifest(tmp_path, {"files": {}, "refiner": {"file": "w.bin"}})
    with pytest.raises(ValueError, match="file name"):
        M.write_manifest(tmp_path, {"files": {"w": {**_manifest(tmp_path)["files"]["w.bin"], "file": "../w.bin"}}})
    assert (tmp_path / "MANIFEST.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MANIFEST.json", "w.bin"]


def test_interrupted_write_leaves_the_old_manifest_and_no_temporary(tmp_path, monkeypatch):
    _shipped_file(tmp_path)
    M.write_manifest(tmp_path, _manifest(tmp_path))
    before = (tmp_path / "MANIFEST.json").read_bytes()

    def crash(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr("pipeline.atomic.os.replace", crash)
    man = _manifest(tmp_path)
    man["note"] = "changed"
    with pytest.raises(OSError, match="disk full"):
        M.write_manifest(tmp_path, man)
    assert (tmp_path / "MANIFEST.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MANIFEST.json", "w.bin"]


def test_a_tampered_file_is_refused_with_a_clear_error(tmp_path):
    f = _shipped_file(tmp_path)
    M.write_manifest(tmp_path, _manifest(tmp_path))
    rec = M.entry(tmp_path, "w.bin")
    assert M.verified_path(tmp_path, rec, "test weights") == f
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a new (mtime, size) key for the memo
    with pytest.raises(ModelFileError, match=r"test weights .*w\.bin does not match its recorded sha256"):
        M.verified_path(tmp_path, M.entry(tmp_path, "w.bin"), "test weights")
    f.unlink()
    with pytest.raises(ModelFileError, match="missing"):
        M.verified_path(tmp_path, rec, "test weights")
    with pytest.raises(ModelFileError, match="lacks its 'file' or 'sha256'"):
        M.verified_path(tmp_path, {"file": "w.bin"}, "test weights")


def test_a_missing_or_unreadable_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match=r"no model manifest at .*MANIFEST.json"):
        M.read_manifest(tmp_path)
    with pytest.raises(ModelFileError, match=r"no GoDP weights manifest .*'python -m training\.godp export"):
        M.read_manifest(tmp_path, what="GoDP weights", command="python -m training.godp export --out RUN")
    empty = {"default": None, "files": {}}
    got = M.read_manifest(tmp_path, empty=empty)
    got["files"]["x"] = 1
    assert empty == {"default": None, "files": {}}  # a copy is returned
    (tmp_path / "MANIFEST.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="unreadable"):
        M.read_manifest(tmp_path)
    (tmp_path / "MANIFEST.json").write_text("[1, 2]")
    with pytest.raises(ModelFileError, match="unreadable"):
        M.read_manifest(tmp_path)


def test_the_shipped_folders_name_their_training_command(tmp_path, monkeypatch):
    """A shipped folder without its manifest names the command that makes it."""
    shipped = M.ShippedManifest(tmp_path.resolve(), "test model", "python -m training.test")
    monkeypatch.setitem(M.SHIPPED, "test", shipped)
    with pytest.raises(ModelFileError, match=r"no test model manifest .*'python -m training\.test'"):
        M.read_manifest(tmp_path)


def test_entries_from_files_and_top_level(tmp_path):
    _shipped_file(tmp_path)
    man = {
        "files": {"frontal": {"file": "w.bin", "sha256": M.sha256_file(tmp_path / "w.bin")}},
        "refiner": {"file": "w.bin", "sha256": M.sha256_file(tmp_path / "w.bin"), "width": 16},
        "config": {"C": 5.0},
        "components": ["frontal"],
    }
    M.write_manifest(tmp_path, man)
    assert M.entry(tmp_path, "frontal")["file"] == "w.bin"
    assert M.entry(tmp_path, "refiner", manifest=man)["width"] == 16
    assert [n for n, _ in M.records(man)] == ["frontal", "refiner"]  # 'config' is no record
    with pytest.raises(ModelFileError, match=r"has no 'part_check' entry: train it with 'python -m training\.fc'"):
        M.entry(tmp_path, "part_check", command="python -m training.fc")
    keyed = {"files": {"w.bin": {"sha256": M.sha256_file(tmp_path / "w.bin")}}}  # keyed by file name, no 'file'
    assert M.entry(tmp_path, "w.bin", manifest=keyed)["file"] == "w.bin"
    assert "file" not in keyed["files"]["w.bin"]  # entry() returns a copy


def test_record_schema_and_both_layouts(tmp_path):
    f = _shipped_file(tmp_path)
    rec = M.record(
        f,
        command="python -m training.x --a 1 ",
        config={"k": 3},
        data={"n": 10},
        figures={"nme": 5.0},
        visibility_threshold=0.7,
    )
    assert list(rec)[:6] == ["file", "sha256", "config", "command", "data", "figures"]
    assert rec["sha256"] == M.sha256_file(f) and rec["command"] == "python -m training.x --a 1"
    assert M.record_data(rec) == {"n": 10} and M.record_figures(rec) == {"nme": 5.0}
    assert M.record(f, command="c", sha256="0" * 64)["sha256"] == "0" * 64
    with pytest.raises(ValueError, match="schema keys"):
        M.record(f, command="c", **{"file": "other"})
    # records written before the schema (GoDP, DFD and detector layouts)
    godp = {
        "sha256": "a" * 64,
        "config": {"K": 3},
        "train_config": {"batch": 32},
        "validation": {"nme_vis": 5.2},
        "visibility_balanced_accuracy_val": 0.84,
    }
    assert M.record_data(godp) == {"batch": 32}
    assert M.record_figures(godp) == {"nme_vis": 5.2, "visibility_balanced_accuracy_val": 0.84}
    dfd = {"sha256": "a" * 64, "training": {"textures": 1454}}
    assert M.record_data(dfd) == {"textures": 1454} and M.record_figures(dfd) == {}
    dpm = {"file": "frontal.svm", "sha256": "a" * 64, "positives": 2400, "train_recall": 0.91}
    assert M.record_data(dpm) == {"positives": 2400} and M.record_figures(dpm) == {"train_recall": 0.91}


@pytest.mark.parametrize("name", sorted(M.SHIPPED))
def test_every_committed_record_has_its_data_read_from_either_layout(name):
    folder = M.SHIPPED[name].folder
    for rec_name, rec in M.records(M.read_manifest(folder)):
        assert M.record_data(rec), f"{folder.name}: record {rec_name} has no training data recorded"


def test_modelfiles_is_a_compatibility_re_export():
    from pipeline import modelfiles

    for name in ("DLIB_MODELS", "dlib_model_path", "save_state_dict", "sha256_file", "verify_file"):
        assert getattr(modelfiles, name) is getattr(M, name)
