"""The container and VESSL run spec point at commands the real CLI accepts."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from tests.experiments.test_configs import parse

ROOT = Path(__file__).resolve().parents[2]


def test_vessl_run_spec_command_parses_with_the_cli():
    spec = yaml.safe_load((ROOT / "vessl" / "verifiable.yaml").read_text())
    command = spec["run"][0]["command"]
    line = next(x for x in command.splitlines() if "wmtp_lightning.cli" in x)
    argv = shlex.split(line)
    assert argv[:3] == ["torchrun", "--nproc_per_node=4", "-m"] and argv[3] == "wmtp_lightning.cli"
    sub, *rest = argv[4:]
    assert sub == "fit"
    configs = [rest[i + 1] for i, x in enumerate(rest) if x == "--config"]
    cfg = yaml.safe_load(parse(*[c.removeprefix("configs/") for c in configs]))
    assert cfg["trainer"]["devices"] == 4 and cfg["trainer"]["precision"] == "bf16-mixed"
    assert "FSDPStrategy" in cfg["trainer"]["strategy"]["class_path"]


def test_dockerfile_and_env_example():
    docker = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["wmtp"]' in docker and "pip install" in docker and "cuda" in docker.lower()
    example = (ROOT / ".env.example").read_text()
    assert "MLFLOW_TRACKING_URI=" in example
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored and ".env.vessl" in ignored
