"""R9: SIGKILL at random points of a bundle publish or a registry write, 20 times.

Pass figure: after each of 20 kills (15 during ``publish_directory`` of model bundles, 5 during
a registry register → promote → resolve loop) a restarted reader finds only complete,
checksum-valid versions: every visible bundle directory passes ``verify_directory`` (and
``LightGBMModel.load``), every registered version resolves and verifies, the alias points at one
of them; 0 partial files visible (staging directories are hidden and swept at restart).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from churnscale.artifacts import remove_stale_staging, verify_directory
from churnscale.config import Settings
from churnscale.exceptions import ModelNotFoundError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.registry import Registry

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
PUBLISH_KILLS = 15
#: Fewer: each registry writer pays MLflow's import (~10-20 s on the loaded 2-core machine).
REGISTRY_KILLS = 5

PUBLISHER = """
import shutil, sys
from pathlib import Path
from churnscale.artifacts import publish_directory
source, root = Path(sys.argv[1]), Path(sys.argv[2])
padding = bytes(range(256)) * 8192  # 2 MiB, so a publish takes long enough to be hit
print("ready", flush=True)
n = len([p for p in root.iterdir() if not p.name.startswith(".")]) if root.exists() else 0
while True:
    n += 1
    def fill(staging, n=n):
        for f in source.iterdir():
            if f.name != "manifest.json":
                shutil.copy(f, staging / f.name)
        (staging / "padding.bin").write_bytes(padding * (1 + n % 3))
    publish_directory(root / str(n), fill)
"""

REGISTRAR = """
import sys
from pathlib import Path
from churnscale.config import Settings
from churnscale.registry import Registry
source, home = Path(sys.argv[1]), Path(sys.argv[2])
registry = Registry(Settings(home=home, tracking_uri=None))
registry.list_models()
print("ready", flush=True)
while True:
    with registry.run(experiment="churn") as run:
        version = run.register_bundle(source, name="churn").version
    registry.promote("churn", version, alias="champion")
    registry.resolve("churn@champion")
"""


def _run_and_kill(script: str, args: list[str], delay: float) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()


def _visible(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))


def test_killed_bundle_publish_leaves_only_complete_versions(
    rel_bundle: Path, tmp_path: Path
) -> None:
    root = tmp_path / "bundles"
    root.mkdir()
    rng = np.random.default_rng(9)
    swept = 0
    for _ in range(PUBLISH_KILLS):
        _run_and_kill(PUBLISHER, [str(rel_bundle), str(root)], float(rng.uniform(0.05, 1.0)))
        swept += len(remove_stale_staging(root, older_than_s=0))  # the restart's sweep
        assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
        visible = _visible(root)
        for bundle in visible:
            verify_directory(bundle)
        if visible:
            LightGBMModel.load(max(visible, key=lambda p: int(p.name)))
    published = len(_visible(root))
    print(
        f"R9 publish: {PUBLISH_KILLS} kills, {published} complete versions, {swept} staging swept"
    )
    assert published >= 1


def test_killed_registry_writes_leave_only_verified_versions(
    rel_bundle: Path, rel_settings: Settings
) -> None:
    settings = rel_settings
    home = settings.home
    rng = np.random.default_rng(10)
    checked: set[int] = set()
    for _ in range(REGISTRY_KILLS):
        _run_and_kill(REGISTRAR, [str(rel_bundle), str(home)], float(rng.uniform(0.2, 4.0)))
        registry = Registry(settings)  # the restart
        versions = registry.list_models()
        for version in versions:
            if version.version not in checked:
                verify_directory(registry.resolve(f"churn/{version.version}"))
                checked.add(version.version)
        try:
            champion = registry.resolve("churn@champion")
        except ModelNotFoundError:
            assert not versions or all(not v.aliases for v in versions)
        else:
            assert int(champion.name) in {v.version for v in versions}
            LightGBMModel.load(champion)
        cache = home / "bundles" / "churn"
        if cache.exists():
            remove_stale_staging(cache, older_than_s=0)
            for entry in _visible(cache):
                if entry.is_dir():
                    verify_directory(entry)
    registered = len(Registry(settings).list_models())
    print(f"R9 registry: {REGISTRY_KILLS} kills, {registered} versions, all resolved and verified")
    assert registered >= 1
