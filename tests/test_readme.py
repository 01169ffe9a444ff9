"""The README's "Python API" block is real code: it is extracted and run here, so it cannot go stale."""

from __future__ import annotations

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
