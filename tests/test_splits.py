"""The committed splits: train and evaluation sides are disjoint, and no training code reads AFLW2000-3D."""

import re

from conftest import REPO

from facedata.splits import aflw_validation_images, cfp_subjects, load_splits

TRAINING_CODE = sorted(
    str(p.relative_to(REPO))
    for d in ("training", "facedata")
    for p in (REPO / d).glob("*.py")
    if p.name not in ("splits.py", "readers.py", "paths.py", "__init__.py")
)


def test_cfp_train_and_eval_disjoint():
    tr, ev, uh = set(cfp_subjects("train")), set(cfp_subjects("eval")), set(cfp_subjects("uhdb31"))
    assert len(tr) == 125 and len(ev) == 125 and len(uh) == 77
    assert not tr & ev and uh <= ev


def test_aflw_validation_split():
    val = aflw_validation_images()
    assert len(val) == 1394 and all(v.startswith("images/image") for v in val)


def test_no_training_code_reads_aflw2000():
    for rel in TRAINING_CODE:
        p = REPO / rel
        if p.exists():
            assert not re.search(r"aflw2000", p.read_text(), re.I), f"{rel} mentions aflw2000"
    assert "evaluation only" in load_splits()["aflw2000_3d_dev"]["use"]
