"""R12: no unpickling in the service and batch paths; River checkpoints only after an HMAC check.

An audit hook on ``pickle.find_class`` (``churnscale.unpickling.UnpicklingAudit``) is installed
by ``tests/conftest.py`` for the whole test session; the session fails at its end if a watched
path (service, batch scoring, online learning) unpickled without ``loads_signed``. The live
server of this suite logs its own unpickling through ``audit_site/sitecustomize.py``.

Pass figure: 0 unpickling events in the service and batch paths (in process: every route and
body type plus ``score``; live server: everything the suite sent it); an unsigned or wrongly
signed checkpoint refused before ``pickle.loads`` runs; a correctly signed one allowed.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from fastapi.testclient import TestClient
from rel_support import LiveService

from churnscale.config import Settings
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.exceptions import IntegrityError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.scoring import score
from churnscale.serving.app import create_app
from churnscale.unpickling import UnpicklingAudit, loads_signed, sign

pytestmark = pytest.mark.reliability
KEY = b"k" * 32


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return generate_table(200, 91).drop_columns(["churned"])


@pytest.fixture(scope="module")
def client(rel_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model=str(rel_bundle)))) as c:
        yield c


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [
        {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
        for row in table.to_pylist()
    ]


def _bodies(table: pa.Table) -> list[tuple[str, bytes | None, Any]]:
    csv = io.BytesIO()
    pacsv.write_csv(table, csv)
    arrow = pa.BufferOutputStream()
    with pa.ipc.new_stream(arrow, table.schema) as writer:
        writer.write_table(table)
    return [
        ("application/json", None, _rows(table)),
        ("text/csv", csv.getvalue(), None),
        ("application/vnd.apache.arrow.stream", arrow.getvalue().to_pybytes(), None),
    ]


def test_service_and_batch_paths_never_unpickle(
    client: TestClient,
    rel_bundle: Path,
    table: pa.Table,
    tmp_path: Path,
    unpickling_audit: UnpicklingAudit,
) -> None:
    before, seen = len(unpickling_audit.events), unpickling_audit.seen
    rows = _rows(table)
    answers = [client.post("/v1/predict", json=x) for x in rows[:20]]
    for kind, content, payload in _bodies(table):
        answers.append(
            client.post(
                "/v1/predict/batch", content=content, json=payload, headers={"content-type": kind}
            )
        )
    answers.append(client.post("/invocations", json={"dataframe_records": rows[:20]}))
    v2 = {
        "inputs": [
            {"name": k, "shape": [1], "datatype": "BYTES", "data": [v]} for k, v in rows[0].items()
        ]
    }
    answers.append(client.post("/v2/models/churn/infer", json=v2))
    answers += [client.get(p) for p in ("/v1/models", "/readyz", "/metrics", "/openapi.json")]
    assert [a.status_code for a in answers[:-4]].count(200) >= len(answers) - 5
    source = tmp_path / "customers.parquet"
    write_batches(table.to_batches(), source)
    info = score(
        str(source),
        LightGBMModel.load(rel_bundle),
        tmp_path / "scores.parquet",
        settings=Settings(),
    )
    assert info.rows == table.num_rows
    during = unpickling_audit.seen - seen
    watched = [e for e in unpickling_audit.events[before:] if e.watched()]
    print(f"R12: {during} unpickling events during the run, {len(watched)} in watched paths")
    assert watched == []
    assert unpickling_audit.violations() == []  # the whole session so far


def test_live_server_never_unpickled(live_service: LiveService) -> None:
    events = live_service.unpickled()
    watched = [e for e in events if e["watched"] and not e["trusted"]]
    print(f"R12 live: {len(events)} unpickling events in the server, {len(watched)} watched")
    assert watched == []


def test_audit_catches_an_unsigned_load_in_a_watched_path(
    unpickling_audit: UnpicklingAudit,
) -> None:
    audit = UnpicklingAudit().install()
    blob = pickle.dumps(np.arange(3))
    probe = "churnscale.serving.probe"
    try:
        # the same call as if made from a service module
        exec("pickle.loads(blob)", {"__name__": "churnscale.serving.probe", "pickle": pickle,
                                    "blob": blob})  # fmt: skip
        caught = audit.violations()
        assert {e.callers[0] for e in caught} == {probe}
        assert {e.module.split(".")[0] for e in caught} == {"numpy"}
    finally:
        audit.active = False
        # the session's own audit saw it too: take the planted load back out of its record
        planted = [e for e in unpickling_audit.events if probe in e.callers]
        unpickling_audit.events[:] = [e for e in unpickling_audit.events if e not in planted]
    assert planted


def test_checkpoints_load_only_after_the_hmac_check(unpickling_audit: UnpicklingAudit) -> None:
    blob = pickle.dumps({"weights": np.arange(4)})
    for bad in ("", "0" * 64, sign(blob + b"x", key=KEY), sign(blob, key=b"other" * 8)):
        with pytest.raises(IntegrityError, match="HMAC"):
            loads_signed(blob, signature=bad, key=KEY, what="checkpoint.pkl")
    with pytest.raises(IntegrityError, match="no HMAC key"):
        loads_signed(blob, signature=sign(blob, key=KEY), key=b"", what="checkpoint.pkl")
    before = len(unpickling_audit.events)
    loaded = loads_signed(blob, signature=sign(blob, key=KEY), key=KEY, what="checkpoint.pkl")
    np.testing.assert_array_equal(loaded["weights"], np.arange(4))
    trusted = unpickling_audit.events[before:]
    assert trusted and all(e.trusted == "checkpoint.pkl" for e in trusted)
