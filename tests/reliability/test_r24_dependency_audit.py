"""R24: ``pip-audit`` over ``requirements/lock.txt``: 0 known vulnerabilities with a fix available.

pip-audit asks PyPI's JSON API for each pinned version's known vulnerabilities. A package it
could not look up is listed with a skip reason instead of being audited, and pip-audit then
still exits 0 and prints "No known vulnerabilities found". So this test counts what was really
audited: any vulnerability with a fix fails it; when the vulnerability data cannot be reached at
all (0 packages audited, as on this machine's package mirror, where the versions pinned here
are not known to the JSON API and OSV's host does not resolve), the test does not pass: it is
reported as XFAIL with that reason, or fails outright with ``CHURNSCALE_REQUIRE_AUDIT=1``.

Pass figure: every pinned package audited; 0 vulnerabilities with a fix version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
LOCK = Path(__file__).resolve().parents[2] / "requirements" / "lock.txt"


def test_no_known_vulnerability_with_a_fix(tmp_path: Path) -> None:
    report = tmp_path / "audit.json"
    command = [
        sys.executable, "-m", "pip_audit", "--requirement", str(LOCK), "--no-deps",
        "--disable-pip", "--progress-spinner", "off", "--format", "json",
        "--output", str(report), "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert report.is_file(), f"pip-audit wrote no report (exit {done.returncode}): {done.stderr}"
    dependencies = json.loads(report.read_text())["dependencies"]
    audited = [d for d in dependencies if not d.get("skip_reason")]
    unaudited = sorted(d["name"] for d in dependencies if d.get("skip_reason"))
    fixable = [
        f"{d['name']}=={d['version']}: {v['id']} (fixed in {', '.join(v['fix_versions'])})"
        for d in audited
        for v in d.get("vulns", [])
        if v.get("fix_versions")
    ]
    print(
        f"R24: {len(audited)} of {len(dependencies)} pinned packages audited; "
        f"{len(fixable)} vulnerabilities with a fix; not audited: {len(unaudited)}"
    )
    assert fixable == [], fixable
    if not audited:
        reason = (
            f"vulnerability data unreachable: 0 of {len(dependencies)} packages could be "
            f"audited ({dependencies[0].get('skip_reason') if dependencies else 'empty lock'})"
        )
        if os.environ.get("CHURNSCALE_REQUIRE_AUDIT") == "1":
            pytest.fail(reason)
        pytest.xfail(reason)
    assert unaudited == [], f"not audited: {unaudited}"
