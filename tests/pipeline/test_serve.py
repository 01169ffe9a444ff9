"""pipeline.serve: the real HTTP service in a subprocess, on a free localhost port, talked to over HTTP.

One server per module (descriptor dlib-resnet-torch: no 3D fit, fast), on a temporary copy of
examples/gallery WITHOUT orl_s06 (examples/README.md: gallery/orl_sNN.png and probes/orl_sNN_K.png
are the same ORL subject NN), so that /enroll can add that person and a following /identify find
them. The server runs with a token (GODP_TOKEN), a 1 MB upload limit and a 2 Mpx limit of uploaded pixels.
The tests that need the server skip when fastapi / uvicorn / python-multipart / httpx are absent
(the optional extra ``service``); the start-up refusals run without them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

EX = REPO / "examples"
PROBE = EX / "probes" / "orl_s01_3.png"
DESC = "dlib-resnet-torch"
MISSING = [m for m in ("fastapi", "uvicorn", "python_multipart", "httpx") if importlib.util.find_spec(m) is None]
needs_service = pytest.mark.skipif(
    bool(MISSING), reason=f"the service extra is not installed ({', '.join(MISSING)}): pip install -e '.[service]'"
)
IDENTIFY_KEYS = {"probe", "status", "message", "candidates", "box"}
VERIFY_KEYS = {"a", "b", "status", "message", "descriptor", "score", "decision", "operating_point", "box_a", "box_b"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    token: str
    gallery: Path
    cli_gallery: Path  # a copy of the gallery and its cache as the server enrolled it at start
    log: Path
    client: object  # httpx.Client with the token

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if MISSING:
        pytest.skip(f"the service extra is not installed ({', '.join(MISSING)})")
    import httpx

    tmp = tmp_path_factory.mktemp("serve")
    gallery = tmp / "gallery"
    gallery.mkdir()
    for p in sorted((EX / "gallery").glob("orl_s0[1-5].png")):
        shutil.copy(p, gallery / p.name)
    token = secrets.token_urlsafe(24)
    port = free_port()
    log = tmp / "server.log"
    env = {**os.environ, "GODP_TOKEN": token, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-m", "pipeline.serve", "--gallery", str(gallery), "--port", str(port)]
    cmd += ["--descriptor", DESC, "--max-upload-mb", "1", "--max-pixels", "2e6"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /health in 240 s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        cli_gallery = tmp / "cli-gallery"
        shutil.copytree(gallery, cli_gallery)  # before any /enroll: the same 5 images and their cache
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=180) as client:
            yield Server(url, token, gallery, cli_gallery, log, client)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def upload(path: Path, field: str = "image") -> dict:
    return {field: (path.name, path.read_bytes(), "image/png")}


def png_bytes(array: np.ndarray) -> bytes:
    buf = BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def assert_error(r, status: int, *words: str) -> str:
    """``r`` is a ``status`` answer whose body is one line of JSON {"error": ...} naming ``words``."""
    assert r.status_code == status, (r.status_code, r.text)
    assert "\n" not in r.text.strip() and "Traceback" not in r.text
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    for w in words:
        assert w in body["error"], body
    return body["error"]


@pytest.fixture(scope="module")
def identified(server) -> dict:
    """/identify of the bundled probe orl_s01_3 (closed set), once for the module."""
    r = server.client.post("/identify", files=upload(PROBE))
    assert r.status_code == 200, (r.text, server.log_tail())
    return r.json()


# -- start-up refusals (no server, no model loading) ----------------------------------------------
def test_refuses_a_non_loopback_host_without_a_token(run_cli, tmp_path):
    env_token = os.environ.pop("GODP_TOKEN", None)
    try:
        r = run_cli("pipeline.serve", "--gallery", tmp_path, "--host", "0.0.0.0", timeout=120)
    finally:
        if env_token is not None:
            os.environ["GODP_TOKEN"] = env_token
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to bind 0.0.0.0") and "token" in lines[0]


def test_missing_service_packages_give_the_install_hint(tmp_path):
    code = "import sys; sys.modules['fastapi'] = None; from pipeline.serve import main; sys.exit(main(sys.argv[1:]))"
    r = subprocess.run(
        [sys.executable, "-c", code, "--gallery", str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "install the service extra: pip install -e '.[service]'" in lines[0]


# -- the service ----------------------------------------------------------------------------------
@needs_service
def test_health_needs_no_token(server):
    import httpx

    r = httpx.get(f"{server.url}/health", timeout=30)
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok" and h["descriptor"] == DESC and h["version"]
    assert h["gallery"]["identities"] >= 5 and h["gallery"]["images"] >= 5 and h["uptime_s"] >= 0


@needs_service
def test_token_required(server):
    import httpx

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": server.token}):
        r = httpx.post(f"{server.url}/identify", files=upload(PROBE), headers=headers, timeout=30)
        assert_error(r, 401, "token")
        assert r.headers.get("www-authenticate") == "Bearer"


@needs_service
def test_identify_returns_the_true_identity_first(identified):
    rec = identified
    assert IDENTIFY_KEYS <= set(rec) and rec["status"] == "ok" and rec["message"] == ""  # the CLI test: all keys
    assert rec["probe"] == PROBE.name and len(rec["box"]) == 4
    assert rec["candidates"][0]["identity"] == "orl_s01"
    scores = [c["score"] for c in rec["candidates"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 5  # 5 identities, top_k 5


@needs_service
def test_identify_matches_the_cli_record_open_set(server, run_cli):
    """threshold=VALUE: the same record as pipeline.identify --json --threshold VALUE (the CLI on a
    copy of the gallery and of the cache the server made, with the server's configuration)."""
    r = server.client.post("/identify", files=upload(PROBE), params={"threshold": "0.5", "top_k": 3})
    assert r.status_code == 200, r.text
    srv = r.json()
    assert srv["identity"] == "orl_s01" and srv["decision"] == "match"
    assert srv["operating_point"] == {"label": "manual", "value": 0.5} and len(srv["candidates"]) == 3
    args = ["--gallery", server.cli_gallery, "--json", "-", "--no-progress", "--descriptor", DESC, "--top-k", "3"]
    c = run_cli("pipeline.identify", PROBE, *args, "--threshold", "0.5", "-v")
    assert c.returncode == 0, c.stderr
    assert "5 from the cache, 0 described" in c.stderr  # the service's gallery cache serves the CLI as is
    (cli,) = json.loads(c.stdout)
    assert set(cli) == set(srv)
    for key in ("status", "message", "identity", "decision", "operating_point"):
        assert srv[key] == cli[key], key
    assert [x["identity"] for x in srv["candidates"]] == [x["identity"] for x in cli["candidates"]]
    assert np.allclose([x["score"] for x in srv["candidates"]], [x["score"] for x in cli["candidates"]], atol=2e-3)
    assert np.allclose(srv["box"], cli["box"], atol=0.5)
    # above every score: unknown; a bad operating point: a one-line 422
    r = server.client.post("/identify", files=upload(PROBE), params={"threshold": "1"})
    assert r.status_code == 200 and r.json()["identity"] == "unknown" and r.json()["decision"] == "unknown"
    assert_error(server.client.post("/identify", files=upload(PROBE), params={"threshold": "far5"}), 422, "threshold")
    assert_error(server.client.post("/identify", files=upload(PROBE), params={"top_k": 0}), 422, "top_k")


@needs_service
def test_verify_genuine_scores_above_impostor(server):
    def verify(b: Path) -> dict:
        files = {**upload(PROBE, "a"), **upload(b, "b")}
        r = server.client.post("/verify", files=files, params={"threshold": "-1"})
        assert r.status_code == 200, r.text
        return r.json()

    gen, imp = verify(EX / "gallery" / "orl_s01.png"), verify(EX / "gallery" / "orl_s02.png")
    assert set(gen) == VERIFY_KEYS and gen["status"] == "ok" and gen["descriptor"] == DESC
    assert gen["a"] == PROBE.name and gen["b"] == "orl_s01.png" and len(gen["box_a"]) == len(gen["box_b"]) == 4
    assert gen["operating_point"] == {"label": "manual", "value": -1.0} and gen["decision"] == "same"
    assert -1.0 <= imp["score"] < gen["score"] <= 1.0
    # the default operating point (far1) is the calibrated one, or a clear 400 when there is none
    r = server.client.post("/verify", files={**upload(PROBE, "a"), **upload(EX / "gallery" / "orl_s02.png", "b")})
    if r.status_code != 200:
        assert_error(r, 400, "calibrat")
    # a bad second image names itself
    files = {**upload(PROBE, "a"), "b": ("noise.bin", b"\x00\x01not an image" * 10, "image/png")}
    assert_error(server.client.post("/verify", files=files, params={"threshold": "0"}), 400, "b: noise.bin")


@needs_service
def test_landmarks_returns_19_points(server):
    r = server.client.post("/landmarks", files=upload(PROBE))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == PROBE.name and len(body["faces"]) == 1
    face = body["faces"][0]
    assert set(face) == {"image", "box", "landmarks", "visible", "scores", "status", "message", "pose"}
    assert face["status"] == "ok" and len(face["box"]) == 4 and face["pose"] is None
    assert len(face["landmarks"]) == len(face["visible"]) == len(face["scores"]) == 19
    assert all(len(p) == 2 for p in face["landmarks"])
    # pose=true: the 3D fit's head pose too, the same landmarks
    r = server.client.post("/landmarks", files=upload(PROBE), params={"pose": "true"})
    assert r.status_code == 200, r.text
    posed = r.json()["faces"][0]
    assert set(posed["pose"]) == {"yaw", "pitch", "roll"} and posed["landmarks"] == face["landmarks"]


@needs_service
def test_bad_uploads_are_one_line_4xx(server):
    post = server.client.post
    noise = np.random.default_rng(0).bytes(4096)
    msg = assert_error(post("/identify", files={"image": ("noise.bin", noise)}), 400, "noise.bin", "not a recognised")
    assert "godp-serve" not in msg and "/tmp" not in msg  # the temporary file's path never shows
    half = PROBE.read_bytes()[: PROBE.stat().st_size // 2]
    assert_error(post("/identify", files={"image": ("half.png", half)}), 400, "half.png", "cannot decode")
    assert_error(post("/identify", files={"image": ("empty.png", b"")}), 400, "empty")
    blank = png_bytes(np.full((200, 200, 3), 40, np.uint8))
    assert_error(post("/identify", files={"image": ("blank.png", blank)}), 422, "blank.png", "no face")
    huge = png_bytes(np.zeros((1500, 1500), np.uint8))  # 2.25 Mpx, a small file
    assert_error(post("/landmarks", files={"image": ("huge.png", huge)}), 400, "huge.png", "over the limit")
    assert_error(post("/identify"), 422, "image")  # no upload at all
    assert_error(post("/nowhere"), 404)


@needs_service
def test_oversize_upload_is_413(server):
    big = np.random.default_rng(1).bytes(1_300_000)  # over the server's --max-upload-mb 1
    assert_error(server.client.post("/identify", files={"image": ("big.bin", big)}), 413, "too large")
    # without a Content-Length (chunked): stopped once the body read so far passes the limit
    boundary = "godp-test-boundary"

    def body():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="s.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        for _ in range(40):
            yield bytes(65536)
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    assert_error(server.client.post("/identify", content=body(), headers=headers), 413, "too large")
    assert server.client.get("/health").status_code == 200  # still serving


@needs_service
def test_concurrent_identify_requests_agree(server):
    first = server.client.post("/identify", files=upload(PROBE))
    assert first.status_code == 200, first.text
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: server.client.post("/identify", files=upload(PROBE)), range(4)))
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert all(r.json() == first.json() for r in answers)


@needs_service
def test_enroll_adds_an_identity_that_identify_then_finds(server):
    from pipeline.gallery import file_sha256, read_cache

    post = server.client.post
    probe, new = EX / "probes" / "orl_s06_3.png", EX / "probes" / "orl_s06_7.png"
    before = post("/identify", files=upload(probe)).json()
    assert "orl_s06" not in [c["identity"] for c in before["candidates"]]
    for bad in ("../evil", "a/b", "..", ".hidden", "", "unknown"):
        r = post("/enroll", data={"identity": bad}, files=upload(new, "images"))
        assert r.status_code in (400, 422), (bad, r.text)
        assert_error(r, r.status_code)
    files = [
        ("images", (new.name, new.read_bytes(), "image/png")),
        ("images", ("noise.bin", b"definitely not an image" * 20, "application/octet-stream")),
    ]
    r = post("/enroll", data={"identity": "orl_s06"}, files=files)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["identity"] == "orl_s06" and len(out["added"]) == 1 and out["already_enrolled"] == []
    assert [f["file"] for f in out["failures"]] == ["noise.bin"] and "noise.bin" in out["failures"][0]["error"]
    added = out["added"][0]
    saved = server.gallery / added["path"]
    assert added["path"] == f"orl_s06/{added['sha256'][:16]}.png" and saved.is_file()
    assert file_sha256(saved) == added["sha256"] and saved.read_bytes() == new.read_bytes()
    assert out["gallery"]["identities"] == 6
    after = post("/identify", files=upload(probe)).json()
    assert after["candidates"][0]["identity"] == "orl_s06"
    assert server.client.get("/health").json()["gallery"] == {"identities": 6, "images": 6, "failed": 0}
    # the same image again: already there, nothing written
    again = post("/enroll", data={"identity": "orl_s06"}, files=upload(new, "images")).json()
    assert again["added"] == [] and [x["path"] for x in again["already_enrolled"]] == [added["path"]]
    # an identity whose every image fails: 422 with the failures
    blank = png_bytes(np.full((120, 120, 3), 90, np.uint8))
    r = post("/enroll", data={"identity": "nobody"}, files={"images": ("blank.png", blank)})
    assert_error(r, 422, "nobody", "no face")
    assert not (server.gallery / "nobody").exists()
    # the cache file is valid and holds the new image
    records = read_cache(server.gallery / ".godp-cache.npz")
    by_path = {rec.path: rec for rec in records}
    assert by_path[added["path"]].identity == "orl_s06" and by_path[added["path"]].entry.status == "ok"
    assert by_path[added["path"]].sha256 == added["sha256"]
    assert {rec.path for rec in records} == {f"orl_s0{i}.png" for i in range(1, 6)} | {added["path"]}
