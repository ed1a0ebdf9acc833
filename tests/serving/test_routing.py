from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from churnscale.exceptions import ConfigError
from churnscale.serving.routing import (
    ModelReference,
    RoutingConfig,
    assign_arm,
    bucket_of,
    parse_model_reference,
)

IDS = [f"cust-{i:07d}" for i in range(100_000)]


def _config(
    weights: dict[str, float], *, experiment: str = "spring", **extra: object
) -> RoutingConfig:
    arms = [
        {"name": n, "model": f"churn/{i + 1}", "weight": w}
        for i, (n, w) in enumerate(weights.items())
    ]
    return RoutingConfig.model_validate({"experiment": experiment, "arms": arms, **extra})


def _arms(config: RoutingConfig, ids: list[str]) -> np.ndarray:
    return np.array([assign_arm(i, config) for i in ids])


@pytest.mark.parametrize(
    "weights",
    [{"a": 1, "b": 1}, {"control": 70, "new": 20, "canary": 10}, {"x": 0.05, "y": 0.95}],
)
def test_split_matches_weights_within_one_point(weights: dict[str, float]) -> None:
    config = _config(weights)
    counts = Counter(assign_arm(i, config) for i in IDS)
    total = sum(weights.values())
    for name, weight in weights.items():
        assert abs(counts[name] / len(IDS) - weight / total) < 0.01, (name, counts)


def test_zero_weight_arm_gets_no_traffic() -> None:
    config = _config({"a": 1, "off": 0, "b": 1})
    assert "off" not in set(_arms(config, IDS[:20_000]))


def test_same_arm_in_a_fresh_process(tmp_path: Path) -> None:
    path = tmp_path / "routing.json"
    config = _config({"a": 3, "b": 2, "c": 5})
    path.write_text(config.model_dump_json())
    sample = IDS[:2_000]
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from churnscale.serving.routing import RoutingConfig, assign_arm\n"
        "config = RoutingConfig.load(Path(sys.argv[1]))\n"
        "print(json.dumps([assign_arm(f'cust-{i:07d}', config) for i in range(2000)]))\n"
    )
    for hash_seed in ("1", "12345"):  # Python's own str hash differs between these runs
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, check=True, env=env
        )
        assert json.loads(out.stdout) == list(_arms(config, sample))


def test_arm_order_in_the_file_does_not_matter() -> None:
    forward = _config({"a": 1, "b": 2, "c": 3})
    backward = _config({"c": 3, "b": 2, "a": 1})
    assert forward.table.names != backward.table.names
    assert list(_arms(forward, IDS[:5_000])) == list(_arms(backward, IDS[:5_000]))


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        ({"a": 50, "b": 50}, {"a": 60, "b": 50}, "a"),
        ({"a": 34, "b": 33, "c": 33}, {"a": 34, "b": 33, "c": 10}, "c"),
        ({"a": 2, "b": 1, "c": 9, "d": 1}, {"a": 2, "b": 1, "c": 0, "d": 1}, "c"),
        ({"a": 1, "b": 1}, {"a": 1, "b": 1, "new": 1}, "new"),
    ],
)
def test_changing_one_weight_moves_only_what_it_must(
    before: dict[str, float], after: dict[str, float], changed: str
) -> None:
    old, new = _config(before), _config(after)
    old_arms = np.frombuffer(old.table.arms, np.uint8)
    new_arms = np.frombuffer(new.table.arms, np.uint8)
    old_names = np.array(old.table.names)[old_arms]
    new_names = np.array(new.table.names)[new_arms]
    moved = old_names != new_names
    # every bucket that moved went to, or came from, the arm whose weight changed
    assert np.all((old_names[moved] == changed) | (new_names[moved] == changed))
    share = lambda w: w.get(changed, 0) / sum(w.values())  # noqa: E731
    must_move = abs(share(after) - share(before))
    assert moved.mean() == pytest.approx(must_move, abs=0.003)


def test_experiments_are_independent() -> None:
    one = _arms(_config({"a": 1, "b": 1}, experiment="one"), IDS)
    two = _arms(_config({"a": 1, "b": 1}, experiment="two"), IDS)
    both_a = np.mean((one == "a") & (two == "a"))
    assert both_a == pytest.approx(0.25, abs=0.01)


def test_bucket_count_and_shadow_are_kept() -> None:
    config = _config({"a": 1, "b": 1}, buckets=10_000, shadow="churn@challenger")
    assert len(config.table.arms) == 10_000
    assert config.shadow == "churn@challenger"
    assert config.model_of("b") == "churn/2"
    assert {config.arm_of_bucket(b) for b in range(100)} == {"a", "b"}


def test_bucket_of_agrees_with_assign_arm() -> None:
    config = _config({"a": 1, "b": 2, "c": 3}, buckets=4_096)
    for customer_id in IDS[:2_000]:
        bucket = bucket_of(customer_id, key=b"spring", buckets=4_096)
        assert config.arm_of_bucket(bucket) == assign_arm(customer_id, config)


def test_model_copy_rebuilds_the_table() -> None:
    config = _config({"a": 1, "b": 1})
    moved = config.model_copy(update={"arms": [{"name": "a", "model": "churn/1", "weight": 1}]})
    assert set(_arms(moved, IDS[:1_000])) == {"a"}


def test_load_yaml(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(
        "experiment: q3\narms:\n  - {name: champion, model: churn@champion, weight: 9}\n"
        "  - {name: challenger, model: /models/churn-v4, weight: 1}\nshadow: churn/7\n"
    )
    config = RoutingConfig.load(path)
    assert [arm.name for arm in config.arms] == ["champion", "challenger"]
    assert config.shadow == "churn/7"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"arms": [{"name": "a", "model": "m", "weight": -1}]}, r"arms\.0\.weight.*greater than"),
        ({"arms": [{"name": "a", "model": "m", "weight": 0}]}, "sum to more than 0"),
        ({"arms": [{"name": "A b", "model": "m", "weight": 1}]}, r"arms\.0\.name.*pattern"),
        ({"arms": [{"name": "a", "model": "m", "weight": float("nan")}]}, r"weight.*finite"),
        (
            {
                "arms": [
                    {"name": "a", "model": "m", "weight": 1},
                    {"name": "a", "model": "n", "weight": 1},
                ]
            },
            "repeated: a",
        ),
        ({"arms": []}, r"arms: expected List should have at least 1 item"),
        (
            {"arms": [{"name": "a", "model": "m", "weight": 1}], "extra": 1},
            r"extra: expected Extra",
        ),
        ({"arms": [{"name": "a", "model": "has space", "weight": 1}]}, r"arms\.0\.model"),
        ({"experiment": "Bad!", "arms": [{"name": "a", "model": "m", "weight": 1}]}, "experiment"),
    ],
)
def test_invalid_config_names_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RoutingConfig.from_mapping(data)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: expected a readable file"):
        RoutingConfig.load(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match=r"broken\.json: expected valid YAML or JSON"):
        RoutingConfig.load(broken)
    bad = tmp_path / "bad.yaml"
    bad.write_text("arms:\n  - {name: a, model: m, weight: -2}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: arms\.0\.weight"):
        RoutingConfig.load(bad)


def test_unknown_arm_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"arm: expected one of \['a', 'b'\], got 'c'"):
        _config({"a": 1, "b": 1}).model_of("c")


@pytest.mark.parametrize(
    ("reference", "parsed"),
    [
        ("churn@champion", ModelReference("alias", "churn", alias="champion")),
        ("churn/3", ModelReference("version", "churn", version=3)),
        ("./churn/3", ModelReference("path", "./churn/3")),
        ("/models/bundle", ModelReference("path", "/models/bundle")),
        ("bundle", ModelReference("path", "bundle")),
    ],
)
def test_parse_model_reference(reference: str, parsed: ModelReference) -> None:
    assert parse_model_reference(reference) == parsed
