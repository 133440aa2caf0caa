"""The controlled design: what the compared configs may differ in, and which overlay reaches which run."""

from __future__ import annotations

from pathlib import Path

import pytest

from wmtp_lightning.compare.design import (
    DesignError,
    check_controlled,
    init_params,
    outside_allow_list,
    parser_error,
    route_overlays,
)
from wmtp_lightning.experiments import BaselineMTP, Rho1MTP, VerifiableCriticMTP

CLASSES = {"baseline": BaselineMTP, "verifiable": VerifiableCriticMTP, "rho1": Rho1MTP}


def resolved() -> dict[str, dict]:
    """Flattened configs as `wmtp fit --print_config` resolves them, reduced to a few keys."""
    shared = {
        "seed_everything": 0,
        "trainer.max_steps": 2000,
        "trainer.accumulate_grad_batches": 4,
        "model.init_args.model": "storage/models_v2/meta-llama-mtp",
        "model.init_args.sequential_heads": True,
        "model.init_args.optimizer.init_args.lr": 1e-5,
        "data.init_args.batch_size": 2,
        "data.init_args.val_samples": 512,
    }
    return {
        "baseline": {**shared, "model.class_path": "x.BaselineMTP", "data.init_args.sampling": "correct"},
        "verifiable": {
            **shared,
            "model.class_path": "x.VerifiableCriticMTP",
            "model.init_args.beta": 0.9,
            "model.init_args.value_head": "auto",
            "data.init_args.sampling": "curriculum",
            "data.init_args.correct_ratio": None,
            "data.init_args.difficulty_schedule": [{"start": 0.0, "end": 1.0}],
        },
        "rho1": {
            **shared,
            "model.class_path": "x.Rho1MTP",
            "model.init_args.reference": "ref",
            "model.init_args.ratio": 0.6,
            "data.init_args.sampling": "correct",
        },
    }


def test_weighting_and_sampling_may_differ():
    assert outside_allow_list(resolved()) == {}
    check_controlled(resolved())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("trainer.max_steps", 1000),  # budget
        ("trainer.accumulate_grad_batches", 1),  # effective batch
        ("data.init_args.batch_size", 4),
        ("seed_everything", 1),
        ("model.init_args.optimizer.init_args.lr", 3e-5),  # optimizer: a shared module option, nested
        ("model.init_args.model", "other-start"),  # the starting model
        ("model.init_args.sequential_heads", False),
        ("data.init_args.val_samples", 64),  # the yardstick's rows
        ("trainer.precision", "bf16-mixed"),  # absent in the reference: still a difference
    ],
)
def test_shared_keys_must_agree(key, value):
    cfgs = resolved()
    cfgs["rho1"][key] = value
    assert [k for k, _, _ in outside_allow_list(cfgs)["rho1"]] == [key]
    with pytest.raises(
        DesignError, match=rf"rho1 differs from baseline outside the allow-list in {key}: .* vs {value!r}"
    ):
        check_controlled(cfgs)


def test_a_missing_shared_key_is_a_difference():
    cfgs = resolved()
    del cfgs["verifiable"]["data.init_args.val_samples"]
    assert outside_allow_list(cfgs) == {"verifiable": [("data.init_args.val_samples", 512, "<absent>")]}


def test_constructor_arguments_follow_kwargs_to_the_base_module():
    critic = init_params(VerifiableCriticMTP)
    assert {"beta", "value_head", "stage", "sequential_heads", "optimizer", "model"} <= critic
    assert "reference" in init_params(Rho1MTP) and "reference" not in critic
    assert "beta" not in init_params(BaselineMTP)


def test_overlays_reach_the_experiments_that_take_their_options(tmp_path):
    ROOT = Path(__file__).resolve().parents[2]
    local, local_rho1 = ROOT / "configs" / "local.yaml", ROOT / "configs" / "local_rho1.yaml"
    critic = tmp_path / "critic.yaml"
    critic.write_text("model:\n  init_args:\n    value_coef: 0.25\n")  # the critic's alone (Rho-1 has a beta too)
    routed = route_overlays([local, local_rho1, critic], CLASSES)
    assert routed == {"baseline": [local], "verifiable": [local, critic], "rho1": [local, local_rho1]}
    typo = tmp_path / "typo.yaml"
    typo.write_text("model:\n  init_args:\n    bta: 0.5\n")
    with pytest.raises(DesignError, match=r"typo.yaml: no compared experiment accepts model.init_args keys \['bta'\]"):
        route_overlays([typo], CLASSES)
    switch = tmp_path / "switch.yaml"
    switch.write_text("model:\n  class_path: wmtp_lightning.experiments.Rho1MTP\n")
    with pytest.raises(DesignError, match=r"must not set model\.class_path"):
        route_overlays([switch], CLASSES)


def test_parser_error_is_one_line():
    stderr = (
        "usage: wmtp [-h] ...\n                [--ckpt_path CKPT_PATH]\ntip: For details run: wmtp fit --help\n"
        'error: Parser key "model":\n  Does not validate against any of the Union subtypes\n'
        "  Subtypes: [<class 'LightningModule'>, <class 'NoneType'>]\n  Errors:\n"
        "    - Problem with given class_path 'x.BaselineMTP':\n        Option 'reference' is not accepted\n"
        "    - Expected a <class 'NoneType'>\n  Given value type: <class 'dict'>\n  Given value: {'init_args': {}}\n"
    )
    assert parser_error(stderr) == (
        "Parser key \"model\": Problem with given class_path 'x.BaselineMTP': Option 'reference' is not accepted"
    )
    assert parser_error("no error block") == ""
