"""R13: model names and versions built to escape the model root never do.

Pass figure: 1,000 hypothesis cases of names and versions made of ``../``, ``%2e%2e``, double
encoding, absolute paths, backslashes, NUL, Unicode look-alikes and symlinks: ``safe_model_path``,
``parse_reference`` and ``BundleCache.version_dir`` refuse (a 400 error) or return a path under
the root, every one; the live service's ``GET /v2/models/{name}`` answers 400 or 404 only.
"""

from __future__ import annotations

import http.client
import os
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_support import LiveService

from churnscale.exceptions import ChurnscaleError
from churnscale.registry.cache import BundleCache
from churnscale.registry.references import ModelRef, parse_reference
from churnscale.serving.security import safe_model_path

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
CASES = 1_000

PIECES = [
    "..", "../", "..\\", "%2e%2e", "%2E%2E%2F", "%252e%252e%252f", "%c0%ae%c0%ae", "/",
    "/etc/passwd", "C:\\Windows", "\x00", ".", "~", "．．", "..%2f", "%00", "@", "+", "-",
    "churn", "1", "v2", "outside", "inside", " ", "\u202e", "...", ".hidden",
]  # fmt: skip
names = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), min_size=1, max_size=6
).map("".join)


def _status(error: ChurnscaleError) -> int:
    return error.http_status


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("r13")
    root = base / "models"
    (root / "churn" / "1").mkdir(parents=True)
    (base / "secret").mkdir()
    os.symlink(base / "secret", root / "outside")  # a symlink leaving the root
    os.symlink(root / "churn", root / "inside")  # one staying inside
    return root


def test_no_name_or_version_leaves_the_root(model_root: Path) -> None:
    root = model_root.resolve()
    cache = BundleCache(model_root)
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=CASES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(name=names, version=st.one_of(st.none(), names))
    def check(name: str, version: str | None) -> None:
        try:
            path = safe_model_path(model_root, name, version)
        except ChurnscaleError as exc:
            assert _status(exc) == 400, exc
            outcomes["safe_model_path refused"] += 1
        else:
            assert path.resolve().is_relative_to(root), (name, version, path)
            outcomes["safe_model_path inside"] += 1
        text = name if version is None else f"{name}/{version}"
        try:
            ref = parse_reference(text, allow_paths=False)
        except ChurnscaleError as exc:
            assert _status(exc) == 400, exc
            outcomes["parse_reference refused"] += 1
        else:
            assert isinstance(ref, ModelRef)
            try:
                target = cache.version_dir(ref.name, ref.version or 1)
            except ChurnscaleError as exc:  # a name that is a symlink out of the cache
                assert _status(exc) == 400, exc
                outcomes["bundle cache refused"] += 1
            else:
                assert target.resolve().is_relative_to(cache.root), (text, target)
                outcomes["parse_reference inside"] += 1

    check()
    print(f"R13: {dict(outcomes)}")
    assert outcomes["safe_model_path refused"] + outcomes["safe_model_path inside"] == CASES
    assert outcomes["safe_model_path refused"] > CASES // 2
    with pytest.raises(ChurnscaleError, match="outside the model root"):
        safe_model_path(model_root, "outside")
    assert safe_model_path(model_root, "inside", "1") == (root / "churn" / "1")


#: Printable ASCII sent as typed (``%``, ``.``, ``/`` and ``\\`` included); the rest encoded.
_AS_TYPED = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#?")


def _get_raw(port: int, path: str) -> int:
    """GET ``path`` exactly as written: no client-side decoding or dot-segment removal."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_live_model_route_answers_400_or_404(live_service: LiveService) -> None:
    statuses: Counter[int] = Counter()
    port = live_service.server.port

    @settings(
        max_examples=CASES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(name=names)
    def check(name: str) -> None:
        raw = quote(name, safe=_AS_TYPED)
        status = _get_raw(port, f"/v2/models/{raw}")
        statuses[status] += 1
        if name == "churn":  # the served model's own name
            assert status == 200
        else:
            assert status in (400, 404), (name, raw, status)

    check()
    print(f"R13 live: statuses {dict(statuses)}")
    assert sum(statuses.values()) == CASES
