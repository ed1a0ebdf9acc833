"""``churnscale learn`` end to end in process: bad input is one line and exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from stream_data import KEY, write_jsonl

from churnscale.cli import main


def _learn(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["churnscale", "learn", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err.strip()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURNSCALE_ONLINE_CHECKPOINT_KEY", KEY)
    return tmp_path


def test_learn_reports_prequential_metrics_and_quarantine(
    home: Path,
    records: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_jsonl(home / "s.jsonl", records[:800], bad={5: b"{"})
    args = ("--stream", str(path), "--model", "m", "--target", "churned", "--batch", "100")
    code, err = _learn(monkeypatch, capsys, *args, "--warmup", "300")
    assert code == 0, err
    assert "learned 800 of 801 events (1 quarantined); prequential ROC-AUC" in err
    entry = orjson.loads((home / "home/online/m.quarantine.jsonl").read_bytes())
    assert (entry["offset"], entry["reason"][:12]) == (6, "invalid JSON")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--stream", "kafka://x:1?topic=t", "--model", "m"), "error: --stream: expected"),
        (("--stream", "missing.jsonl", "--model", "m"), "error: missing.jsonl: no such file"),
        (("--stream", "-", "--model", "../m"), "error: --model: expected a name"),
        (("--stream", "-", "--model", "m", "--batch", "0"), "error: --batch: expected"),
    ],
)
def test_bad_flags_are_one_line(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.chdir(home)
    code, err = _learn(monkeypatch, capsys, *args)
    assert code == 2 and err.startswith(message) and len(err.splitlines()) == 1, err


def test_a_weak_key_is_refused_without_echoing_it(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHURNSCALE_ONLINE_CHECKPOINT_KEY", "short")
    path = write_jsonl(home / "s.jsonl", [{"a": 1}])
    code, err = _learn(monkeypatch, capsys, "--stream", str(path), "--model", "m")
    assert code == 2 and err.startswith("error: CHURNSCALE_ONLINE_CHECKPOINT_KEY"), err
    assert "short" not in err and len(err.splitlines()) == 1


def test_without_a_key_one_is_made_in_the_home_and_announced_once(
    home: Path,
    records: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 24: a first run needs no key; a random one is kept in the home (mode 0600) and
    signs the checkpoint, and the next run (resuming) uses it without a word."""
    monkeypatch.delenv("CHURNSCALE_ONLINE_CHECKPOINT_KEY")
    path = write_jsonl(home / "s.jsonl", records[:300])
    args = ("--stream", str(path), "--model", "m", "--target", "churned", "--batch", "100")
    code, err = _learn(monkeypatch, capsys, *args, "--warmup", "100")
    key_file = home / "home" / "online-checkpoint.key"
    assert code == 0, err
    assert f"created a random checkpoint signing key in {key_file}" in err
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_bytes().strip()) == 64
    first = key_file.read_bytes()
    code, err = _learn(monkeypatch, capsys, *args, "--warmup", "100")
    assert code == 0 and "signing key" not in err, err  # the checkpoint verified: same key
    assert "learned 300 of 300 events" in err
    assert key_file.read_bytes() == first
    key_file.chmod(0o644)
    code, err = _learn(monkeypatch, capsys, *args)
    assert code == 2 and "chmod 600" in err, err


def test_preprocessor_must_be_a_bundle_or_dataset(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(home / "s.jsonl", [{"a": 1}])
    code, err = _learn(
        monkeypatch, capsys, "--stream", str(path), "--model", "m", "--preprocessor", str(home)
    )
    assert code == 2 and "neither a model bundle nor a stored dataset" in err, err


def test_preprocessor_taken_from_a_stored_dataset(
    home: Path,
    records: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churnscale.data.schema import SchemaHints
    from churnscale.data.store import ingest

    pq.write_table(pa.Table.from_pylist(records[:1_000]), home / "raw.parquet")
    ingest(str(home / "raw.parquet"), home / "ds", hints=SchemaHints(target="churned"))
    path = write_jsonl(home / "s.jsonl", records[1_000:1_400])
    code, err = _learn(
        monkeypatch, capsys, "--stream", str(path), "--model", "m",
        "--preprocessor", str(home / "ds"), "--batch", "50",
    )  # fmt: skip
    assert code == 0, err
    assert "learned 400 of 400 events" in err  # no warm-up window needed
