"""The layout's rules, read from the import graph (ast), so a change that breaks them fails here.

- the runtime packages (``pipeline``, ``landmarks``, ``recon3d``, ``descriptors``) import nothing
  from ``training``, ``benchmarks`` or the data factory ``facedata``;
- the stage packages (``landmarks``, ``recon3d``, ``descriptors``, ``pipeline.detection``) import
  from ``pipeline`` only its core (types, errors, registry, manifest, image I/O, atomic writes,
  overlay drawing), never the composition (``pipeline.pipeline``, the gallery, the CLIs); the one
  exception is a stage package's own CLI module (``landmarks/predict.py``);
- the core imports no stage and no composition module;
- nothing outside ``tests/`` edits ``sys.path``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

RUNTIME = ("pipeline", "landmarks", "recon3d", "descriptors")
FORBIDDEN_FOR_RUNTIME = ("training", "benchmarks", "facedata")
CORE = {
    "pipeline.types",
    "pipeline.errors",
    "pipeline.registry",
    "pipeline.manifest",
    "pipeline.modelfiles",
    "pipeline.imageio",
    "pipeline.atomic",
    "pipeline.overlay",
}
STAGE_CLIS = {"landmarks/predict.py"}


def _py_files(*tops: str) -> list[Path]:
    return sorted(p for t in tops for p in (REPO / t).rglob("*.py") if ".venv" not in p.parts)


def _imports(path: Path) -> set[str]:
    """Absolute module names imported anywhere in ``path`` (functions included)."""
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _module(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


@pytest.mark.parametrize("path", _py_files(*RUNTIME), ids=lambda p: str(p.relative_to(REPO)))
def test_runtime_packages_import_no_training_benchmark_or_data_code(path):
    bad = sorted(m for m in _imports(path) if m.split(".")[0] in FORBIDDEN_FOR_RUNTIME)
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def _stage_files() -> list[Path]:
    return _py_files("landmarks", "recon3d", "descriptors") + _py_files("pipeline/detection")


@pytest.mark.parametrize("path", _stage_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_stage_packages_import_only_the_core_of_pipeline(path):
    if str(path.relative_to(REPO)) in STAGE_CLIS:
        pytest.skip("a stage's own CLI composes the pipeline")
    bad = sorted(
        m
        for m in _imports(path)
        if m.startswith("pipeline.")
        and not m.startswith("pipeline.detection")
        and not any(m == c or m.startswith(c + ".") for c in CORE)
    )
    assert not bad, f"{path.relative_to(REPO)} imports composition modules {bad}"


@pytest.mark.parametrize("mod", sorted(CORE))
def test_the_core_imports_no_stage_and_no_composition(mod):
    path = REPO / (mod.replace(".", "/") + ".py")
    if not path.exists():
        pytest.skip(f"{mod} does not exist")
    stages = ("landmarks", "recon3d", "descriptors", "pipeline.detection")
    bad = sorted(
        m
        for m in _imports(path)
        if m.startswith(stages)
        or (m.startswith("pipeline.") and not any(m == c or m.startswith(c + ".") for c in CORE))
    )
    assert not bad, f"{mod} imports {bad}"


def test_nothing_outside_tests_edits_sys_path():
    offenders = []
    for path in _py_files(*RUNTIME, "training", "facedata", "benchmarks", "scripts"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "path"
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, f"sys.path edited in {offenders}"


def test_the_rules_catch_a_violation(tmp_path):
    """The checker itself: a file that imports training and edits sys.path is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nsys.path.insert(0, '.')\n\ndef f():\n    from training.dpm import x\n")
    assert "training.dpm" in _imports(bad)
    assert any(isinstance(n, ast.Attribute) and n.attr == "path" for n in ast.walk(ast.parse(bad.read_text())))
