"""The README's "Python API" block is real code: it is extracted and run here, so it cannot go stale;
the flags of the "Verification and open-set identification" commands are checked against the parsers."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

from conftest import REPO


def python_api_block() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"^## Python API\n(.*?)^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert m, "README.md needs a '## Python API' section with a ```python block"
    return m.group(2)


def test_readme_python_api_block_runs():
    code = python_api_block()
    assert 5 <= len(code.strip().splitlines()) <= 20, "the API example should stay about 10 lines"
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"README API block failed:\n{r.stderr[-2000:]}"
    assert r.stdout.strip(), "the README API block should print its result"
    m = re.search(r"^verify s01 vs s02: cosine (-?[0-9.]+)$", r.stdout, flags=re.M)
    assert m and -1.0 <= float(m.group(1)) <= 1.0, r.stdout


def section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert m, f"README.md needs a '## {title}' section"
    return m.group(1)


def test_readme_api_block_shows_the_whole_flow():
    code = python_api_block()
    for call in ("load_image(", "Pipeline(", ".run(", "enroll(", ".match(", "similarity("):
        assert call in code, f"the README API block should show {call}"


def test_readme_verification_section_matches_the_clis():
    text = section("Verification and open-set identification")
    for phrase in ("calibrated on CFP training subjects 001-125", "docs/descriptors/RESULTS.md", "far0.1", "unknown"):
        assert phrase in text
    block = re.search(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
    assert block
    commands: dict[str, set[str]] = {}
    module = None
    for line in block.group(1).splitlines():
        m = re.match(r"python -m ([\w.]+)", line)
        if m:
            module = m.group(1)
        assert module, line
        commands.setdefault(module, set()).update(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line.split("#")[0]))
    assert set(commands) == {"pipeline.verify", "pipeline.identify", "training.calibrate"}
    for module, flags in commands.items():
        known = set(importlib.import_module(module).build_parser()._option_string_actions)
        assert flags <= known, f"README names flags of {module} that it lacks: {sorted(flags - known)}"
