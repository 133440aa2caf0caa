"""A run killed with SIGKILL mid-way resumes from its last checkpoint to the same final weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.integration.helpers import ROOT, clean_env, fit_args, run
from wmtp_lightning.models import load_bundle
from wmtp_lightning.models.value_head import ValueHead

pytestmark = pytest.mark.slow


def args(root, bundle, data, tok):
    return fit_args(["tests/conf/resume.yaml"], root, bundle, data, tok)


def test_sigkill_then_resume_gives_the_same_weights(tmp_path, tiny_bundle, local_dataset, micro_tokenizer_path):
    a, b = tmp_path / "a", tmp_path / "b"
    run(args(a, tiny_bundle, local_dataset, micro_tokenizer_path), timeout=300)

    proc = subprocess.Popen(
        [sys.executable, *args(b, tiny_bundle, local_dataset, micro_tokenizer_path)],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    ckpt_dir = b / "verifiable_stage2" / "checkpoints"
    deadline = time.monotonic() + 240
    try:
        while not list(ckpt_dir.glob("*step=4.ckpt")):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no step-4 checkpoint appeared"
            time.sleep(0.05)
        time.sleep(0.3)  # let it go on past the checkpoint: that work must be redone, not lost
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (b / "verifiable_stage2" / "export").exists()
    out = run([*args(b, tiny_bundle, local_dataset, micro_tokenizer_path), "--ckpt_path", "last"], timeout=300).stdout
    assert "Restoring states from the checkpoint path" in out and "last" in out  # resumed, not restarted

    full, resumed = (load_bundle(x / "verifiable_stage2" / "export") for x in (a, b))
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=1e-6, msg=k)
    va, vb = (
        ValueHead.load(x / "verifiable_stage2" / "export" / "value_head" / "value_head.safetensors") for x in (a, b)
    )
    torch.testing.assert_close(vb.proj.weight, va.proj.weight, rtol=0, atol=1e-6)
    assert not torch.equal(full.output.weight, load_bundle(tiny_bundle).output.weight)  # it did train
