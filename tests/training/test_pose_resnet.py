"""The pose fine-tune trainer (training/pose_resnet.py) on a tiny synthetic chip set: it runs, writes its
run folder and a loadable network, refuses evaluation subjects, and an untrained student is the teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.errors import ConfigError


def _chips(path, subjects=("001", "002", "003", "004")):
    rng = np.random.default_rng(0)
    rows = []
    for s in subjects:
        base = rng.integers(0, 256, (150, 150, 3))
        for view, n in (("frontal", 3), ("profile", 2)):
            for k in range(n):
                noise = rng.integers(-20, 21, (150, 150, 3))
                rows.append(
                    (np.clip(base + noise, 0, 255).astype(np.uint8), s, view, f"images/{s}/{view}/{k + 1:02d}.jpg")
                )
    np.savez(
        path,
        chips=np.stack([r[0] for r in rows]),
        subject=np.array([r[1] for r in rows]),
        view=np.array([r[2] for r in rows]),
        path=np.array([r[3] for r in rows]),
    )
    return path


def test_train_writes_a_run_and_a_loadable_network(tmp_path):
    from descriptors.dlib_torch import DlibResNet, load_dlib_torch
    from pipeline import manifest
    from training.pose_resnet import PoseTrainConfig, train

    cfg = PoseTrainConfig(chips=str(_chips(tmp_path / "c.npz")), val_subjects="004-004", cut=13, epochs=1, threads=1)
    row = train(cfg, tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1] and row["epoch"] == 1
    assert lines[0]["student"] == lines[0]["teacher"]  # before training the student is the teacher
    assert lines[0]["val_frontal_cos_to_teacher"] == pytest.approx(1.0, abs=1e-4)
    path = tmp_path / "run" / "last.safetensors"
    net = load_dlib_torch(path, sha256=manifest.sha256_file(path))
    assert isinstance(net, DlibResNet)
    teacher = load_dlib_torch()
    changed = [k for k, v in net.state_dict().items() if not torch.equal(v, teacher.state_dict()[k])]
    assert changed and all(k.startswith(("blocks.13.", "fc.")) for k in changed)  # only the trained part


def test_evaluation_subjects_are_refused(tmp_path):
    from training.pose_resnet import PoseTrainConfig, train

    cfg = PoseTrainConfig(chips=str(_chips(tmp_path / "c.npz", ("001", "130"))), cut=13, epochs=1, threads=1)
    with pytest.raises(ConfigError):
        train(cfg, tmp_path / "run")


def test_fusion_validation_with_frontal_chips(tmp_path):
    """With ``val_frontal`` the 2D + frontalised fusion is validated; a failed fit's chip contributes nothing."""
    from training.pose_resnet import PoseTrainConfig, train

    path = _chips(tmp_path / "c.npz")
    z = dict(np.load(path))
    val = z["subject"] == "004"
    vf = {k: v[val] for k, v in z.items()}
    vf["frontal_chips"] = vf["chips"][:, ::-1].copy()
    vf["frontal_ok"] = np.array([True] * (len(vf["path"]) - 1) + [False])
    np.savez(tmp_path / "vf.npz", **vf)
    cfg = PoseTrainConfig(
        chips=str(path), val_subjects="004-004", val_frontal=str(tmp_path / "vf.npz"), cut=13, epochs=1, threads=1
    )
    train(cfg, tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"teacher_fused_w0.5", "teacher_frontalised", "student_fused_w0.5"} <= set(lines[0])
    assert lines[0]["student_fused_w0.5"] == lines[0]["teacher_fused_w0.5"]
    assert "student_fused_w0.3" in lines[1] and "teacher_fused_w0.3" not in lines[1]
