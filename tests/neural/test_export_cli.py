"""``churnscale export`` end to end (a real process), and its one-line errors (in process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from churnscale.cli import main
from churnscale.neural import MlpTrainResult


def test_export_writes_a_verified_onnx_directory(
    one_process: MlpTrainResult, tmp_path: Path
) -> None:
    one_process.model.save(tmp_path / "mlp")
    out = tmp_path / "onnx"
    args = ["export", str(tmp_path / "mlp"), "--format", "onnx", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "churnscale", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"CHURNSCALE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote onnx to" in done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "export.json",
        "input.json",
        "manifest.json",
        "model.onnx",
        "preprocessor.json",
    ]


@pytest.mark.parametrize(
    ("fmt", "source", "target", "message"),
    [
        ("pruned:2", "mlp", "new", "--format: expected pruned:S with S in (0, 1), got 'pruned:2'"),
        ("onnx", "nowhere", "new", "error: model"),
        ("onnx", "mlp", "taken", "already exists; artifacts are never overwritten"),
    ],
)
def test_export_errors_are_one_line(
    one_process: MlpTrainResult,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    source: str,
    target: str,
    message: str,
) -> None:
    one_process.model.save(tmp_path / "mlp")
    (tmp_path / "taken").mkdir()
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path))
    argv = ["churnscale", "export", str(tmp_path / source), "--format", fmt]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / target)])
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and message in err and err.startswith("error:")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
