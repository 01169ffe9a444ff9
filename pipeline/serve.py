"""An HTTP service: the models and the enrolled gallery loaded once, answering in JSON.

    python -m pipeline.serve --gallery DIR [--host 127.0.0.1] [--port 8000] [--token TOKEN]
        [--max-upload-mb 10] [--max-pixels 40e6] [--limit-concurrency 64] [--cache PATH] [--fusion max|mean]
        [--detector NAME] [--refiner NAME] [--landmarker NAME] [--descriptor NAME] [--cropped] ...

Needs the optional extra ``service`` (FastAPI, uvicorn, python-multipart): pip install -e '.[service]'.

Endpoints (uploads are multipart/form-data files; every answer is one JSON object):

  GET  /health      {"status": "ok", "version", "descriptor", "gallery": {"identities", "images",
                    "failed"}, "uptime_s"}; the only endpoint that needs no token
  POST /identify    file "image"; query top_k (default 5), threshold=far1|far0.1|VALUE (open set):
                    the record of python -m pipeline.identify --json for that probe ("probe" is the
                    upload's file name); with --all-faces it is the best face's record plus "faces",
                    the records of every face
  POST /verify      files "a" and "b"; query threshold (default far1): the record of
                    python -m pipeline.verify --json
  POST /landmarks   file "image"; query pose=true (also fit the 3D model: the head pose):
                    {"image", "faces": [records of python -m landmarks.predict --json]}
  POST /enroll      form field "identity" and one or more files "images": each image is checked
                    (decodable, a face is found), saved as DIR/<identity>/<sha256 prefix>.png|.jpg
                    (JPEG and PNG uploads byte for byte, other formats as PNG) and the gallery is
                    re-enrolled, which updates the signature cache atomically under its lock;
                    answers {"identity", "added", "already_enrolled", "failures", "gallery"}

Errors are one-line JSON objects {"error": "..."}: 400 for an upload that is not a readable image
or has more pixels than --max-pixels (and for an operating point that is not calibrated), 413 for
an upload over --max-upload-mb (a request body may carry that much per file: one for /identify
and /landmarks, two for /verify, up to 16 for /enroll), 422 for an image without a face and for
missing or malformed parameters, 401 for a missing or wrong token; an internal error is a 500
whose traceback goes to the server log only. --max-pixels limits uploads; the gallery's own files
are read with the CLIs' limit (64 Mpx), which keeps the pipeline configuration, and so the key of
the gallery cache, the same as the CLIs': the service and python -m pipeline.identify share it.

Security: the service binds 127.0.0.1 by default. Binding any other address needs a token
(--token or the environment variable GODP_TOKEN; the variable keeps it out of the process list);
with a token every endpoint but /health needs the header "Authorization: Bearer TOKEN". There is
no TLS: put a reverse proxy in front of it to serve other machines.

Concurrency: the pipeline's stages are not known to be thread-safe, so one lock serialises every
pipeline call (and image decoding, and enrollment): requests are accepted concurrently but
processed one at a time, and a gallery update is seen by the next request whole. At most
--limit-concurrency requests are in the server at once; uvicorn answers more with a plain 503.
"""

import argparse
import dataclasses
import hashlib
import hmac
import io
import ipaddress
import logging
import os
import sys
import tempfile
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_write_bytes
from pipeline.cli import (
    EXIT_OK,
    add_stage_args,
    add_version_arg,
    config_from_args,
    guarded_main,
    package_version,
    setup_logging,
)
from pipeline.errors import ConfigError, FaceError, FitError, InvalidImageError, ModelFileError, NoFaceFoundError
from pipeline.gallery import Gallery, enroll
from pipeline.identify import UNKNOWN, match_record
from pipeline.imageio import DEFAULT_MAX_PIXELS, load_image
from pipeline.index import FUSIONS
from pipeline.pipeline import Pipeline
from pipeline.types import FaceResult
from pipeline.verify import decide, similarity

log = logging.getLogger("pipeline.serve")

#: The one-line hint given when the service's packages are missing.
INSTALL_HINT = "install the service extra: pip install -e '.[service]'"
#: The service's default pixel limit of uploads (below the CLIs' 64 Mpx: uploads come from anyone).
#: Gallery files are read with the pipeline's own limit (the CLIs' default unless changed in
#: code), which is part of the gallery cache's key: the service and the CLIs share the cache.
DEFAULT_SERVICE_MAX_PIXELS = 40_000_000
#: Most images one /enroll request may carry.
MAX_ENROLL_FILES = 16
#: Files a request body may carry per endpoint (the body limit is that many times --max-upload-mb).
FILES_PER_REQUEST = {"/verify": 2, "/enroll": MAX_ENROLL_FILES}
#: Room for the multipart framing and the form fields around the files.
MULTIPART_SLACK = 64 * 1024
#: Hex digits of the sha256 in the file names /enroll writes.
SHA_PREFIX = 16
#: Seconds /enroll waits for another process enrolling the same gallery cache.
ENROLL_LOCK_TIMEOUT = 120.0
#: Endpoints that need no token.
OPEN_PATHS = frozenset({"/health"})


class ServiceError(Exception):
    """A request that cannot be answered: the HTTP status, a one-line message and the project error
    behind it (if any)."""

    def __init__(self, status: int, message: str, error: FaceError | None = None):
        super().__init__(message)
        self.status = status
        self.message = one_line(message)
        self.error = error


def one_line(text: str) -> str:
    """``text`` on one line (its lines joined by ``"; "``)."""
    return "; ".join(s.strip() for s in str(text).splitlines() if s.strip()) or "error"


@dataclass(frozen=True)
class Upload:
    """An uploaded file: the name it is reported under and its bytes."""

    name: str
    data: bytes


def upload_name(filename: str | None, fallback: str) -> str:
    """The name an upload is reported under: the base name of the client's file name (printable
    characters only, at most 120), or ``fallback``."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable())[:120].strip()
    return base or fallback


def validate_identity(name: str) -> str:
    """``name`` when it can be an identity folder of the gallery, else a :class:`ServiceError` (400):
    not empty, no path separator, not dots only nor starting with a dot (the gallery skips hidden
    names), no control character, no leading or trailing space, at most 200 bytes, not ``unknown``
    (the open-set answer)."""
    why = None
    if not name:
        why = "is empty"
    elif "/" in name or "\\" in name or (os.altsep is not None and os.altsep in name):
        why = "contains a path separator"
    elif set(name) == {"."}:
        why = "is dots only"
    elif name.startswith("."):
        why = "starts with a dot (the gallery skips hidden names)"
    elif any(unicodedata.category(c).startswith("C") for c in name):
        why = "contains a control character"
    elif name != name.strip():
        why = "has leading or trailing spaces"
    elif len(name.encode("utf-8")) > 200:
        why = "is longer than 200 bytes"
    elif name == UNKNOWN:
        why = f"is {UNKNOWN!r}, the answer of open-set identification for someone not enrolled"
    if why is not None:
        raise ServiceError(400, f"identity {name!r} {why}")
    return name


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _rename(message: str, path: Path, name: str) -> str:
    """An image error about the temporary file ``path`` told about the upload ``name`` instead."""
    return message.replace(str(path), name)


# -- the service, without HTTP ------------------------------------------------------------------
class Service:
    """One :class:`Pipeline` and its enrolled gallery; every method that runs the pipeline holds
    :attr:`lock` (the stages are not known to be thread-safe). Methods return JSON-ready dicts and
    raise :class:`ServiceError` for requests that cannot be answered."""

    def __init__(
        self,
        pipe: Pipeline,
        gallery_root: str | Path,
        cache: str | Path = "auto",
        fusion: str = "max",
        max_pixels: int = DEFAULT_SERVICE_MAX_PIXELS,
    ):
        self.pipe = pipe
        self.root = Path(gallery_root)
        self.cache = cache
        self.fusion = fusion
        self.max_pixels = max_pixels
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.version = package_version()
        self._gallery: Gallery | None = None

    @property
    def gallery(self) -> Gallery:
        if self._gallery is None:
            raise RuntimeError("the gallery is not loaded (call Service.load first)")
        return self._gallery

    def _enroll(self, lock_timeout: float | None = 600.0) -> Gallery:
        return enroll(
            self.pipe, self.root, progress=False, cache=self.cache, fusion=self.fusion, lock_timeout=lock_timeout
        )

    def load(self) -> None:
        """Build the descriptor and enrol the gallery (with its cache)."""
        with self.lock:
            _ = self.pipe.descriptor  # configuration errors before anything else
            self._gallery = self._enroll()

    def warm_up(self) -> None:
        """Run the whole pipeline once on a gallery image, so that every stage is built (and its
        first-call costs paid) before the first request; a failure is only logged."""
        t = time.perf_counter()
        with self.lock:
            for path in self.gallery.paths[:1]:
                try:
                    self.pipe.run(load_image(path, self.pipe.config.max_pixels), until="describe")
                except FaceError as e:
                    if e.exit_code == 2 or isinstance(e, ModelFileError):
                        raise
                    log.warning("warm-up on %s failed (%s); the first request will build the rest", path, e)
        log.info("pipeline warmed up in %.1f s", time.perf_counter() - t)

    # -- helpers ---------------------------------------------------------------------------------
    def _decode(self, up: Upload) -> np.ndarray:
        """The upload as uint8 RGB through :func:`pipeline.imageio.load_image` (a temporary file),
        or a :class:`ServiceError` (400) that names the upload."""
        if not up.data:
            raise ServiceError(400, f"{up.name}: empty upload (0 bytes)")
        with tempfile.TemporaryDirectory(prefix="godp-serve-") as d:
            path = Path(d) / "upload"
            path.write_bytes(up.data)
            try:
                return load_image(path, self.max_pixels)
            except InvalidImageError as e:
                raise ServiceError(400, _rename(str(e), path, up.name)) from None

    def _faces(self, image: np.ndarray, name: str, until: str = "describe") -> list[FaceResult]:
        """``pipe.run(image, until)``; a face problem is a 422, a configuration or model-file error a
        500 (about the server, not the upload)."""
        try:
            faces = self.pipe.run(image, until=until)
        except (NoFaceFoundError, InvalidImageError) as e:
            raise ServiceError(422 if isinstance(e, NoFaceFoundError) else 400, f"{name}: {e}") from None
        except FaceError as e:
            if e.exit_code == 2 or isinstance(e, ModelFileError):
                log.error("pipeline configuration error: %s", e)
                raise ServiceError(500, f"server configuration error: {e}") from None
            raise ServiceError(422, f"{name}: {e}", e) from None
        if not faces:  # the pipeline raises NoFaceFoundError itself; an empty list must not pass
            raise ServiceError(422, f"{name}: no face found")
        return faces

    def operating_point(self, spec: str | None) -> dict[str, Any] | None:
        """``{"label", "value"}`` of ``spec`` (far1 | far0.1 | a number) for this descriptor, as
        ``pipeline.identify --threshold`` and ``pipeline.verify`` resolve it; None for None."""
        if spec is None:
            return None
        from descriptors.thresholds import NAMED_FARS, is_spec, operating_point

        spec = spec.strip()
        if not is_spec(spec):
            raise ServiceError(
                422, f"threshold: expected {', '.join(NAMED_FARS)} or a cosine value between -1 and 1, got {spec!r}"
            )
        name = self.pipe.config.descriptor
        try:
            value, label = operating_point(name, spec, cache_token=getattr(self.pipe.descriptor, "cache_token", None))
        except ConfigError as e:
            raise ServiceError(400, str(e).replace("(--threshold 0.5)", "(threshold=0.5)")) from None
        return {"label": label, "value": value}

    # -- endpoints -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        g = self._gallery
        return {
            "status": "ok" if g is not None else "loading",
            "version": self.version,
            "descriptor": self.pipe.config.descriptor,
            "gallery": {
                "identities": 0 if g is None else len(g.names),
                "images": 0 if g is None else len(g.identities),
                "failed": 0 if g is None else len(g.failures),
            },
            "uptime_s": round(time.monotonic() - self.started, 1),
        }

    def identify(self, up: Upload, top_k: int = 5, threshold: str | None = None) -> dict[str, Any]:
        """The ``pipeline.identify --json`` record of the best face of ``up`` (with ``all_faces``
        plus ``"faces"``: every face's record)."""
        op = self.operating_point(threshold)
        with self.lock:
            faces = self._faces(self._decode(up), up.name)
            gallery = self.gallery
            records = []
            for f in faces:
                assert f.signature is not None  # run(until="describe") describes every face
                cands = gallery.match(f.signature.vector, top_k, f.signature.mask)
                records.append(match_record({"probe": up.name, "status": "ok", "message": ""}, f, cands, op))
        out = dict(records[0])
        if self.pipe.config.all_faces:
            out["faces"] = records
        return out

    def verify(self, a: Upload, b: Upload, threshold: str | None = None) -> dict[str, Any]:
        """The ``pipeline.verify --json`` record of ``a`` against ``b`` (default threshold far1;
        with ``all_faces`` the best-scoring pair of faces decides)."""
        op = self.operating_point(threshold or "far1")
        assert op is not None
        faces: dict[str, list[FaceResult]] = {}
        with self.lock:
            for key, up in (("a", a), ("b", b)):
                try:
                    faces[key] = self._faces(self._decode(up), up.name)
                except ServiceError as e:
                    raise ServiceError(e.status, f"{key}: {e.message}") from None
        pairs = [(fa, fb) for fa in faces["a"] for fb in faces["b"]]
        sims = []
        for fa, fb in pairs:
            assert fa.signature is not None and fb.signature is not None
            sims.append(similarity(fa.signature, fb.signature))
        k = int(np.argmax(sims))  # the best pair (first of equals: the most confident faces)
        score, (fa, fb) = float(sims[k]), pairs[k]
        return {
            "a": a.name,
            "b": b.name,
            "status": "ok",
            "message": "",
            "descriptor": self.pipe.config.descriptor,
            "score": round(score, 6),
            "decision": decide(score, op["value"]),
            "operating_point": op,
            "box_a": [round(v, 1) for v in fa.detection.box],
            "box_b": [round(v, 1) for v in fb.detection.box],
        }

    def landmarks(self, up: Upload, pose: bool = False) -> dict[str, Any]:
        """``{"image", "faces": [...]}``, each face a ``landmarks.predict --json`` record; ``pose``:
        also fit the 3D model and report the head pose (null when the fit fails, as there)."""
        from recon3d.export import pose_json

        with self.lock:
            image = self._decode(up)
            try:
                faces = self._faces(image, up.name, until="fit" if pose else "landmarks")
            except ServiceError as e:
                if not (pose and isinstance(e.error, FitError)):
                    raise
                log.warning("%s: no pose: the 3D fit failed (%s); landmarks only", up.name, e.error)
                faces = self._faces(image, up.name, until="landmarks")
        records = []
        for f in faces:
            assert f.landmarks is not None  # run(until="landmarks") computes every face's landmarks
            records.append(
                {
                    "image": up.name,
                    "box": [round(v, 2) for v in f.detection.box],
                    **f.landmarks.to_json(),
                    "status": "ok",
                    "message": "",
                    "pose": pose_json(f.fit),
                }
            )
        return {"image": up.name, "faces": records}

    def enroll(self, identity: str, uploads: list[Upload]) -> tuple[int, dict[str, Any]]:
        """Save the uploads that hold a face as ``DIR/<identity>/<sha256 prefix>.png|.jpg`` and
        re-enrol the gallery. Returns (HTTP status, answer): 200 when at least one image is in the
        gallery now, else 422 (500 when the gallery folder cannot be written)."""
        name = validate_identity(identity)
        if not uploads:
            raise ServiceError(422, "images: give at least one image file")
        if len(uploads) > MAX_ENROLL_FILES:
            raise ServiceError(413, f"images: {len(uploads)} files, at most {MAX_ENROLL_FILES} per request")
        added: list[dict[str, Any]] = []
        present: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        write_error = False
        with self.lock:
            folder = self.root / name
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                raise ServiceError(409, f"identity {name!r}: {folder.name} in the gallery is not a plain folder")
            for up in uploads:
                try:
                    image = self._decode(up)
                    self._faces(image, up.name, until="detect")
                except ServiceError as e:
                    if e.status >= 500:
                        raise
                    failures.append({"file": up.name, "error": e.message})
                    continue
                data, ext = _gallery_bytes(up.data, image)
                sha = hashlib.sha256(data).hexdigest()
                rel = f"{name}/{sha[:SHA_PREFIX]}{ext}"
                if (self.root / rel).exists():
                    present.append({"file": up.name, "path": rel, "sha256": sha})
                    continue
                try:
                    folder.mkdir(exist_ok=True)
                    atomic_write_bytes(self.root / rel, data)
                except OSError as e:
                    log.error("cannot save %s into the gallery %s: %s", up.name, self.root, e)
                    failures.append({"file": up.name, "error": f"{up.name}: cannot save into the gallery"})
                    write_error = True
                    continue
                added.append({"file": up.name, "path": rel, "sha256": sha})
            if added:
                t = time.perf_counter()
                gallery = self._enroll(lock_timeout=ENROLL_LOCK_TIMEOUT)
                failed = {p: m for p, m in gallery.failures}
                for item in list(added):  # the detector found a face, but a later stage failed
                    msg = failed.get(str(self.root / item["path"]))
                    if msg is not None:
                        (self.root / item["path"]).unlink(missing_ok=True)
                        added.remove(item)
                        failures.append({"file": item["file"], "error": one_line(f"{item['file']}: {msg}")})
                self._gallery = gallery
                log.info(
                    "enrolled %d image(s) of %r in %.1f s (%d already there, %d failed)",
                    len(added),
                    name,
                    time.perf_counter() - t,
                    len(present),
                    len(failures),
                )
        out: dict[str, Any] = {
            "identity": name,
            "added": added,
            "already_enrolled": present,
            "failures": failures,
            "gallery": self.health()["gallery"],
        }
        if added or present:
            return 200, out
        first = failures[0]["error"] if failures else "nothing to enrol"
        return (500 if write_error else 422), {"error": f"no image of {name!r} was enrolled: {first}", **out}


def _gallery_bytes(data: bytes, image: np.ndarray) -> tuple[bytes, str]:
    """(bytes, extension) a gallery file gets: a JPEG or PNG upload as it came, anything else
    (BMP, TIFF, WebP...) re-encoded as PNG from the decoded image."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
    except Exception:  # noqa: BLE001 - any trouble: re-encode what load_image decoded
        fmt = None
    if fmt == "JPEG":
        return data, ".jpg"
    if fmt == "PNG":
        return data, ".png"
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue(), ".png"


# -- HTTP ---------------------------------------------------------------------------------------
def _require_service_packages() -> Any:
    """The ``uvicorn`` module, after checking that FastAPI and python-multipart import; a
    :class:`ConfigError` with the install hint otherwise."""
    try:
        import fastapi  # noqa: F401
        import uvicorn

        try:
            import python_multipart  # noqa: F401
        except ImportError:
            import multipart  # noqa: F401  # python-multipart before 0.0.13
    except ImportError as e:
        raise ConfigError(f"the service needs FastAPI, uvicorn and python-multipart ({e}): {INSTALL_HINT}") from None
    return uvicorn


class _Guard:
    """ASGI middleware in front of the app: the bearer token (checked before the body is read)
    and the request body limit (413 from the Content-Length header, or once the body read so far
    passes the limit)."""

    def __init__(self, app: Any, token: str | None, max_upload_bytes: int):
        self.app = app
        self.token = None if token is None else token.encode("utf-8")
        self.max_upload_bytes = max_upload_bytes

    def limit(self, path: str) -> int:
        return self.max_upload_bytes * FILES_PER_REQUEST.get(path, 1) + MULTIPART_SLACK

    def too_large(self, path: str) -> str:
        mb, n = self.max_upload_bytes / 1e6, FILES_PER_REQUEST.get(path, 1)
        return f"upload too large: over {mb:g} MB per image (--max-upload-mb), {n} image(s) per request"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.exceptions import HTTPException
        from starlette.responses import JSONResponse

        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.token is not None and path not in OPEN_PATHS:
            auth = headers.get("authorization", b"")
            scheme, _, given = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
                msg = "missing or wrong token: send the header 'Authorization: Bearer <token>'"
                resp = JSONResponse({"error": msg}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
                await resp(scope, receive, send)
                return
        limit = self.limit(path)
        declared = headers.get("content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                await JSONResponse({"error": "malformed Content-Length header"}, status_code=400)(scope, receive, send)
                return
            if n > limit:
                await _drain(receive, 4 * limit)  # let the client finish sending, so it reads the answer
                await JSONResponse({"error": self.too_large(path)}, status_code=413)(scope, receive, send)
                return
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if message.get("more_body", False):
                        await _drain(receive, 4 * limit)
                    raise HTTPException(413, self.too_large(path))
            return message

        await self.app(scope, limited_receive, send)


async def _drain(receive: Any, cap: int) -> None:
    """Read and drop the rest of a request body (at most ``cap`` bytes): a client that is still
    sending when the server closes the connection may never see the 413."""
    n = 0
    while n <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        n += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def create_app(service: Service, token: str | None = None, max_upload_bytes: int = 10_000_000) -> Any:
    """The FastAPI application of ``service`` (see the module docstring for the endpoints)."""
    _require_service_packages()
    from fastapi import FastAPI, File, Form, Query, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    app = FastAPI(title="godp-face", version=package_version(), docs_url=None, redoc_url=None, openapi_url=None)

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": one_line(message)}, status_code=status, headers=headers)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Any, exc: ServiceError) -> JSONResponse:
        log.info("%s %s -> %d: %s", request.method, request.url.path, exc.status, exc.message)
        return error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Any, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "header")]
            parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
        return error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(HTTPException)
    async def _http(request: Any, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Any, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error(500, f"internal error: {type(exc).__name__}: {exc} (the server log has the details)")

    async def read(upload: UploadFile, field: str) -> Upload:
        name = upload_name(upload.filename, field)
        size = upload.size
        if size is not None and size > max_upload_bytes:
            raise ServiceError(413, f"{name}: {size / 1e6:.1f} MB, over the limit of {max_upload_bytes / 1e6:g} MB")
        data = await upload.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise ServiceError(413, f"{name}: over the limit of {max_upload_bytes / 1e6:g} MB")
        return Upload(name, data)

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse(service.health())

    @app.post("/identify")
    async def identify(
        image: UploadFile = File(..., description="the probe photo"),
        top_k: int = Query(5, ge=1, le=1000, description="candidates to report"),
        threshold: str | None = Query(None, description="open set: far1 | far0.1 | a cosine value"),
    ) -> JSONResponse:
        up = await read(image, "image")
        return JSONResponse(await run_in_threadpool(service.identify, up, top_k, threshold))

    @app.post("/verify")
    async def verify(
        a: UploadFile = File(..., description="first photo"),
        b: UploadFile = File(..., description="second photo"),
        threshold: str | None = Query(None, description="far1 (default) | far0.1 | a cosine value"),
    ) -> JSONResponse:
        ua, ub = await read(a, "a"), await read(b, "b")
        return JSONResponse(await run_in_threadpool(service.verify, ua, ub, threshold))

    @app.post("/landmarks")
    async def landmarks(
        image: UploadFile = File(..., description="a photo"),
        pose: bool = Query(False, description="also fit the 3D model and report the head pose"),
    ) -> JSONResponse:
        up = await read(image, "image")
        return JSONResponse(await run_in_threadpool(service.landmarks, up, pose))

    @app.post("/enroll")
    async def enroll_(
        identity: str = Form(..., description="the identity's name (its gallery folder)"),
        images: list[UploadFile] = File(..., description="one or more photos of that person"),
    ) -> JSONResponse:
        ups = [await read(f, f"images[{i}]") for i, f in enumerate(images)]
        status, body = await run_in_threadpool(service.enroll, identity, ups)
        return JSONResponse(body, status_code=status)

    app.add_middleware(_Guard, token=token, max_upload_bytes=max_upload_bytes)
    return app


# -- command line -------------------------------------------------------------------------------
SERVE_EXIT_CODES_HELP = """exit codes:
  0  the service was stopped (Ctrl-C, SIGTERM)
  1  it could not start (gallery missing or empty, address in use) or an internal error
  2  usage or configuration error (bad flag, unknown stage name, another host than loopback
     without a token, the service extra not installed)"""


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _pixels(text: str) -> int:
    """A pixel count, also in float notation (``40e6``)."""
    return int(_positive_float(text))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pipeline.serve",
        description=__doc__,
        epilog=SERVE_EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--gallery", required=True, metavar="DIR", help="gallery folder (/enroll writes into it)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind; any but loopback needs a token [127.0.0.1]")
    ap.add_argument("--port", type=_port, default=8000, help="TCP port [8000]")
    ap.add_argument(
        "--token",
        default=None,
        help="require 'Authorization: Bearer TOKEN' on every endpoint but /health [$GODP_TOKEN; none]",
    )
    ap.add_argument(
        "--max-upload-mb", type=_positive_float, default=10.0, help="largest image file accepted, in MB [10]"
    )
    ap.add_argument("--cache", metavar="PATH", default=None, help="gallery signature cache file [DIR/.godp-cache.npz]")
    ap.add_argument(
        "--limit-concurrency",
        type=_positive_int,
        default=64,
        metavar="N",
        help="most requests in the server at once (queued ones included); more are answered 503 [64]",
    )
    ap.add_argument(
        "--fusion", choices=FUSIONS, default="max", help="combine an identity's images by max or mean [max]"
    )
    add_stage_args(ap, descriptor=True)
    # the service's own pixel limit (uploads come from anyone), in float notation too
    pixels = ap._option_string_actions["--max-pixels"]  # argparse has no public lookup of an action
    pixels.type, pixels.default = _pixels, DEFAULT_SERVICE_MAX_PIXELS
    pixels.help = (
        f"refuse uploaded images with more pixels than this (40e6 works) [{DEFAULT_SERVICE_MAX_PIXELS}]; "
        f"gallery files are read with the CLIs' limit ({DEFAULT_MAX_PIXELS}), so both share the gallery cache"
    )
    add_version_arg(ap)
    return ap


def run(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    setup_logging(max(1, a.verbose))  # a service logs what it does (INFO); -vv: debug
    token = a.token if a.token is not None else (os.environ.get("GODP_TOKEN") or None)
    if token is not None and not token.strip():
        raise ConfigError("the token is empty: give a non-empty --token (or GODP_TOKEN), or none on 127.0.0.1")
    if token is not None and len(token) < 16:
        log.warning(
            "the token is short (%d characters): use a long random one (python -c 'import secrets; "
            "print(secrets.token_urlsafe())')",
            len(token),
        )
    if not is_loopback(a.host) and token is None:
        raise ConfigError(
            f"refusing to bind {a.host}, which is not a loopback address, without a token: pass --token TOKEN "
            "or set GODP_TOKEN (clients then send 'Authorization: Bearer TOKEN'), or bind 127.0.0.1"
        )
    uvicorn = _require_service_packages()
    # --max-pixels limits uploads only; the pipeline keeps the CLIs' limit for the gallery files, so
    # that its configuration, and with it the gallery cache key, is the one the CLIs use
    pipe = Pipeline(dataclasses.replace(config_from_args(a), max_pixels=DEFAULT_MAX_PIXELS))
    service = Service(pipe, a.gallery, cache=a.cache or "auto", fusion=a.fusion, max_pixels=a.max_pixels)
    t = time.perf_counter()
    service.load()
    service.warm_up()
    health = service.health()
    app = create_app(service, token, int(a.max_upload_mb * 1e6))
    log.info(
        "serving godp-face %s on http://%s:%d: descriptor %s, gallery %d identities / %d images, loaded in %.1f s; "
        "pipeline calls are serialised by one lock; token %s",
        health["version"],
        a.host,
        a.port,
        pipe.config.descriptor,
        health["gallery"]["identities"],
        health["gallery"]["images"],
        time.perf_counter() - t,
        "required" if token else "not required",
    )
    uvicorn.run(
        app, host=a.host, port=a.port, log_config=None, server_header=False, limit_concurrency=a.limit_concurrency
    )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return guarded_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())
