"""Load figures of the HTTP service (``python -m pipeline.serve``) beside one ``pipeline.identify`` call.

    python benchmarks/service_load.py [--clients 4] [--requests 10] [--repeats 3] [--warmup 2]
        [--gallery examples/gallery] [--probe examples/probes/orl_s01_3.png] [--descriptor NAME]
        [--threads N] [--json FILE]

Starts the service on a temporary copy of ``--gallery`` (so the bundled folder gets no cache
file), waits for ``/health`` (the start-up time: imports, models, enrolment, warm-up), sends
``--warmup`` requests, then per repeat:

1. ``--clients`` concurrent clients (threads, one HTTP connection each) send ``--requests``
   ``POST /identify`` of ``--probe`` each, a FIXED number of requests in all; reported: requests/s
   (all requests / wall time from the common start to the last answer), p50 / p90 latency of the
   single requests, and whether every answer was the same as the warm-up's;
2. one ``python -m pipeline.identify PROBE --gallery COPY`` subprocess on the same probe and the
   same gallery copy (its cache is the one the service wrote): its wall time includes starting
   Python and loading the models, what every CLI call pays and the service pays once.

The service serialises pipeline calls (one lock), so requests/s measures one pipeline's throughput
and the latency grows with the number of clients (queueing). Prints min / median / max over the
repeats and writes them with every single figure as JSON (``--json``, written atomically).
Timings depend on the machine and on the other jobs sharing its cores (the load average is
recorded): compare the service and the CLI of one run, not runs on different machines or days.
Needs the optional extra ``service`` (FastAPI, uvicorn, python-multipart, httpx).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from facedata.paths import REPO
from pipeline.cli import package_version, write_json
from pipeline.imageio import is_image_path

METRICS = ("requests_per_s", "p50_ms", "p90_ms", "cli_wall_s", "speedup")
LABELS = {
    "requests_per_s": "service requests/s",
    "p50_ms": "service p50 latency ms",
    "p90_ms": "service p90 latency ms",
    "cli_wall_s": "pipeline.identify call s",
    "speedup": "service req/s x CLI call s",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_gallery(src: Path, dest: Path) -> Path:
    """``src`` copied to ``dest`` without hidden files (no cache, no lock)."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n.startswith(".")]

    shutil.copytree(src, dest, ignore=ignore)
    if not any(is_image_path(p) for p in dest.rglob("*")):
        raise SystemExit(f"error: no images in the gallery {src}")
    return dest


def start_server(cmd: list[str], env: dict, log: Path, url: str, timeout: float = 600.0):
    """(process, seconds until /health answered 200)."""
    import httpx

    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        if time.perf_counter() - t0 > timeout:
            proc.terminate()
            raise RuntimeError(f"the service did not answer /health in {timeout:.0f} s (log: {log})")
        time.sleep(0.25)


def answer_key(rec: dict) -> list:
    """What must agree between answers: the ranked identities and their scores."""
    return [(c["identity"], c["score"]) for c in rec.get("candidates", [])]


def load_round(url: str, probe: Path, clients: int, requests: int, expected: list) -> dict:
    """``clients`` threads x ``requests`` sequential ``POST /identify`` each, started together."""
    import httpx

    data = probe.read_bytes()
    start = threading.Barrier(clients + 1)
    latencies: list[float] = []
    failures: list[str] = []
    same = [True]
    guard = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=600) as c:
            start.wait()
            for _ in range(requests):
                t = time.perf_counter()
                try:
                    r = c.post("/identify", files={"image": (probe.name, data, "image/png")})
                    ok, body = r.status_code == 200, r.text
                except httpx.HTTPError as e:
                    ok, body = False, f"{type(e).__name__}: {e}"
                dt = 1000.0 * (time.perf_counter() - t)
                with guard:
                    if ok:
                        latencies.append(dt)
                        same[0] &= answer_key(json.loads(body)) == expected
                    else:
                        failures.append(body[:200])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    n = clients * requests
    return {
        "requests": n,
        "ok": len(latencies),
        "failed": len(failures),
        "failures": failures[:5],
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 3) if wall > 0 else float("nan"),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else float("nan"),
        "p90_ms": round(float(np.percentile(latencies, 90)), 1) if latencies else float("nan"),
        "same_answers": bool(same[0]) and not failures,
    }


def cli_call(probe: Path, gallery: Path, stage_args: list[str], env: dict, out: Path) -> dict:
    """One ``python -m pipeline.identify`` subprocess: wall time and its best identity."""
    cmd = [sys.executable, "-m", "pipeline.identify", str(probe), "--gallery", str(gallery), "--json", str(out)]
    cmd += ["--no-progress", *stage_args]
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"pipeline.identify failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    rec = json.loads(out.read_text())[0]
    return {"wall_s": round(wall, 3), "candidates": answer_key(rec)}


def summarise(values: list[float]) -> dict:
    a = np.asarray(values, dtype=float)
    return {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="service_load.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--gallery", type=Path, default=REPO / "examples" / "gallery", help="gallery folder (copied)")
    ap.add_argument("--probe", type=Path, default=REPO / "examples" / "probes" / "orl_s01_3.png", help="probe image")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients [4]")
    ap.add_argument("--requests", type=int, default=10, help="requests per client and repeat [10]")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the load round and the CLI call [3]")
    ap.add_argument("--warmup", type=int, default=2, help="requests sent before timing [2]")
    ap.add_argument("--descriptor", default=None, help="descriptor of both (default: the pipeline's default)")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of both [inherited]")
    ap.add_argument("--json", default=None, metavar="FILE", help="write the figures as JSON")
    a = ap.parse_args(argv)
    if min(a.clients, a.requests, a.repeats) < 1 or a.warmup < 1:
        ap.error("--clients, --requests, --repeats and --warmup must be at least 1")
    try:
        import httpx  # noqa: F401
    except ImportError:
        print(
            "error: this benchmark needs httpx: install the service extra: pip install -e '.[service]'", file=sys.stderr
        )
        return 2
    env = dict(os.environ)
    if a.threads is not None:
        env["OMP_NUM_THREADS"] = str(a.threads)
    stage_args = ["--descriptor", a.descriptor] if a.descriptor else []
    report: dict = {
        "version": package_version(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "omp_num_threads": env.get("OMP_NUM_THREADS"),
            "load_average_start": os.getloadavg(),
        },
        "config": {
            "clients": a.clients,
            "requests_per_client": a.requests,
            "repeats": a.repeats,
            "warmup": a.warmup,
            "probe": str(a.probe),
            "gallery": str(a.gallery),
            "descriptor": a.descriptor or "default",
        },
        "rounds": [],
    }
    with tempfile.TemporaryDirectory(prefix="service-load-") as tmp_:
        tmp = Path(tmp_)
        gallery = copy_gallery(a.gallery, tmp / "gallery")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "pipeline.serve", "--gallery", str(gallery), "--port", str(port), *stage_args]
        log = tmp / "server.log"
        proc, startup = start_server(cmd, env, log, url)
        try:
            import httpx

            report["startup_s"] = round(startup, 2)
            with httpx.Client(base_url=url, timeout=600) as c:
                warm = []
                for _ in range(a.warmup):
                    r = c.post("/identify", files={"image": (a.probe.name, a.probe.read_bytes(), "image/png")})
                    if r.status_code != 200:
                        raise RuntimeError(f"warm-up request failed ({r.status_code}): {r.text}")
                    warm.append(answer_key(r.json()))
                report["health"] = c.get("/health").json()
            expected = warm[-1]
            for k in range(a.repeats):
                rnd = load_round(url, a.probe, a.clients, a.requests, expected)
                cli = cli_call(a.probe, gallery, stage_args, env, tmp / f"cli{k}.json")
                rnd.update(
                    cli_wall_s=cli["wall_s"],
                    cli_same_answer=[x for x, _ in cli["candidates"]] == [x for x, _ in expected],
                    speedup=round(rnd["requests_per_s"] * cli["wall_s"], 2),
                )
                report["rounds"].append(rnd)
                print(
                    f"repeat {k + 1}/{a.repeats}: {rnd['requests_per_s']:.2f} req/s, p50 {rnd['p50_ms']:.0f} ms, "
                    f"p90 {rnd['p90_ms']:.0f} ms, {rnd['failed']} failed; CLI call {cli['wall_s']:.1f} s",
                    file=sys.stderr,
                )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    report["machine"]["load_average_end"] = os.getloadavg()
    report["summary"] = {m: summarise([r[m] for r in report["rounds"]]) for m in METRICS}
    n = a.clients * a.requests
    print(
        f"Service load: {a.clients} clients x {a.requests} requests = {n} POST /identify per repeat, "
        f"{a.repeats} repeats ({os.cpu_count()} cores, OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}, "
        f"load average {report['machine']['load_average_start'][0]:.1f} at the start)"
    )
    print(
        f"service start-up (to the first /health) {report['startup_s']:.1f} s; "
        f"descriptor {report['health']['descriptor']}"
    )
    print(f"{'metric':<28} {'min':>9} {'median':>9} {'max':>9}")
    for m in METRICS:
        s = report["summary"][m]
        print(f"{LABELS[m]:<28} {s['min']:9.2f} {s['median']:9.2f} {s['max']:9.2f}")
    ok = all(r["same_answers"] and r["cli_same_answer"] and r["failed"] == 0 for r in report["rounds"])
    print("every answer the same as the warm-up's and the CLI's: " + ("yes" if ok else "NO (see the JSON)"))
    if a.json:
        write_json(report, a.json)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
