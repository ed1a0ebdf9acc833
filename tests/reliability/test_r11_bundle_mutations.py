"""R11: 100 mutations of a model bundle are all refused at load.

Pass figure: 100/100 mutated bundles (byte flips, truncations, file swaps, manifest edits,
missing and extra files) refused by ``LightGBMModel.load`` with an ``IntegrityError`` naming the
file, and by ``verify_directory``; 0 loaded.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from churnscale.artifacts import MANIFEST, verify_directory
from churnscale.exceptions import IntegrityError
from churnscale.model.bundle import METADATA_FILE, PREPROCESSOR_FILE
from churnscale.model.lightgbm import MODEL_FILE, LightGBMModel

pytestmark = pytest.mark.reliability
FILES = (MODEL_FILE, PREPROCESSOR_FILE, METADATA_FILE, MANIFEST)
Mutation = Callable[[Path, np.random.Generator], str]


def _flip(bundle: Path, rng: np.random.Generator) -> str:
    name = FILES[int(rng.integers(len(FILES)))]
    data = bytearray((bundle / name).read_bytes())
    at = int(rng.integers(len(data)))
    data[at] ^= 1 << int(rng.integers(8))
    (bundle / name).write_bytes(bytes(data))
    return f"flip {name}@{at}"


def _truncate(bundle: Path, rng: np.random.Generator) -> str:
    name = FILES[int(rng.integers(len(FILES)))]
    data = (bundle / name).read_bytes()
    keep = int(rng.integers(len(data)))
    (bundle / name).write_bytes(data[:keep])
    return f"truncate {name} to {keep}"


def _swap(bundle: Path, rng: np.random.Generator) -> str:
    a, b = (FILES[i] for i in rng.choice(3, 2, replace=False))
    first, second = (bundle / a).read_bytes(), (bundle / b).read_bytes()
    (bundle / a).write_bytes(second)
    (bundle / b).write_bytes(first)
    return f"swap {a} {b}"


def _edit_manifest(bundle: Path, rng: np.random.Generator) -> str:
    manifest = json.loads((bundle / MANIFEST).read_text())
    name = FILES[int(rng.integers(3))]
    kind = int(rng.integers(4))
    if kind == 0:
        manifest["files"][name]["sha256"] = "0" * 64
    elif kind == 1:
        manifest["files"][name]["bytes"] += 1
    elif kind == 2:
        del manifest["files"][name]
    else:  # a consistent lie about one file: its hash is right for other bytes
        manifest["files"][name]["sha256"] = manifest["files"][FILES[(FILES.index(name) + 1) % 3]][
            "sha256"
        ]
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return f"manifest edit {kind} on {name}"


def _missing_or_extra(bundle: Path, rng: np.random.Generator) -> str:
    if rng.integers(2):
        name = FILES[int(rng.integers(3))]
        (bundle / name).unlink()
        return f"remove {name}"
    (bundle / "extra.py").write_text("import os\n")
    return "add extra.py"


MUTATIONS: tuple[tuple[Mutation, int], ...] = (
    (_flip, 40),
    (_truncate, 20),
    (_swap, 10),
    (_edit_manifest, 20),
    (_missing_or_extra, 10),
)


def test_every_mutation_is_refused(rel_bundle: Path, tmp_path: Path) -> None:
    LightGBMModel.load(rel_bundle)  # the original loads
    rng = np.random.default_rng(11)
    refused: Counter[str] = Counter()
    loaded: list[str] = []
    for mutate, count in MUTATIONS:
        for i in range(count):
            copy = tmp_path / f"{mutate.__name__}-{i}"
            shutil.copytree(rel_bundle, copy)
            what = mutate(copy, rng)
            with pytest.raises(IntegrityError):
                verify_directory(copy)
            try:
                LightGBMModel.load(copy)
            except IntegrityError as exc:
                assert str(copy) in exc.path, what
                refused[mutate.__name__] += 1
            else:
                loaded.append(what)
            shutil.rmtree(copy)
    print(f"R11: {sum(refused.values())}/100 refused {dict(refused)}; loaded: {loaded}")
    assert loaded == []
    assert sum(refused.values()) == 100
