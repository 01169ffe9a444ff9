"""Issue 11: every shipped model file is verified by sha256 before use, and nothing is unpickled.

* a static audit of the project's own source: no ``pickle``/``joblib`` loading, every
  ``torch.load`` passes ``weights_only=True``, every ``np.load`` passes ``allow_pickle=False``;
* each shipped file, altered by one byte in a copy, is refused with ModelFileError naming sha256
  (GoDP, SFM and dlib here; DFD in tests/descriptors, the detector and refiner in tests/pipeline);
* every record of the three committed manifests (:data:`pipeline.manifest.SHIPPED`) has the sha256
  of its file on disk, and every file of those folders has a record.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO

from pipeline.errors import ModelFileError

PACKAGES = ("pipeline", "landmarks", "recon3d", "descriptors", "benchmarks", "scripts", "docs")


def project_sources():
    for pkg in PACKAGES:
        yield from sorted((REPO / pkg).rglob("*.py"))


def calls(text: str, name: str):
    """Argument text of every call ``name(...)`` (balanced parentheses)."""
    for m in re.finditer(re.escape(name) + r"\(", text):
        i, depth = m.end(), 1
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield text[m.end() : i - 1]


def test_no_unsafe_deserialisation_in_the_source():
    bad = []
    for f in project_sources():
        t = f.read_text(encoding="utf-8")
        rel = f.relative_to(REPO)
        if re.search(r"^\s*(import pickle|from pickle|import joblib|import dill|import cloudpickle)", t, re.M):
            bad.append(f"{rel}: imports a pickle module")
        bad += [
            f"{rel}: torch.load without weights_only=True"
            for a in calls(t, "torch.load")
            if "weights_only=True" not in a
        ]
        bad += [
            f"{rel}: np.load without allow_pickle=False" for a in calls(t, "np.load") if "allow_pickle=False" not in a
        ]
        if "allow_pickle=True" in t:
            bad.append(f"{rel}: allow_pickle=True")
    assert not bad, "\n".join(bad)


def test_audit_catches_an_unsafe_call():
    """The audit itself can fail: it flags a torch.load without weights_only."""
    assert list(calls("x = torch.load(path, map_location='cpu')", "torch.load")) == ["path, map_location='cpu'"]
    assert "weights_only=True" not in next(calls("torch.load(open(p), map_location=f(1))", "torch.load"))


def altered_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src.parent, dst)
    f = dst / src.name
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    return f


def test_godp_weights_verified(tmp_path, monkeypatch):
    from landmarks.godp import weights

    man = json.loads((weights.WEIGHTS_DIR / "MANIFEST.json").read_text())
    name = man["default"]
    altered_copy(weights.WEIGHTS_DIR / name, tmp_path / "w")
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path / "w")
    with pytest.raises(ModelFileError, match="sha256"):
        weights.load_model(name)


def test_sfm_model_verified(tmp_path, monkeypatch):
    from recon3d import model

    f = altered_copy(model.packaged_model_path(), tmp_path / "m")
    monkeypatch.setattr(model, "packaged_model_path", lambda: f)
    model.load_model.cache_clear()
    try:
        with pytest.raises(ModelFileError, match="sha256"):
            model.load_model()
    finally:
        model.load_model.cache_clear()


def test_dlib_model_verified(monkeypatch):
    from pipeline import manifest

    monkeypatch.setitem(manifest.DLIB_MODELS, "shape_predictor_5_face_landmarks.dat", "0" * 64)
    with pytest.raises(ModelFileError, match="sha256"):
        manifest.dlib_model_path("shape_predictor_5_face_landmarks.dat")


def _shipped():
    from pipeline.manifest import SHIPPED

    return sorted(SHIPPED.items())


@pytest.mark.parametrize("name,shipped", _shipped(), ids=[n for n, _ in _shipped()])
def test_every_committed_record_matches_its_file(name, shipped):
    """Each record's sha256 is the digest of its file as committed (hashed here, not memoised), and
    the folder holds no model file without a record."""
    from pipeline.manifest import MANIFEST_NAME, read_manifest, records, sha256_file

    recs = list(records(read_manifest(shipped.folder)))
    assert recs, f"{shipped.folder}: no records"
    bad = [
        f"{rec_name}: {rec['file']}"
        for rec_name, rec in recs
        if not (shipped.folder / rec["file"]).is_file() or sha256_file(shipped.folder / rec["file"]) != rec["sha256"]
    ]
    assert not bad, f"{shipped.folder.relative_to(REPO)}: sha256 differs from the manifest for {bad}"
    on_disk = {p.name for p in shipped.folder.iterdir() if p.is_file() and p.name != MANIFEST_NAME}
    unrecorded = on_disk - {rec["file"] for _, rec in recs}
    assert not unrecorded, f"{shipped.folder.relative_to(REPO)}: files without a manifest record: {sorted(unrecorded)}"
