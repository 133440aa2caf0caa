"""Every YAML under configs/ is parsed; every experiment config is run for a few steps on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from wmtp_lightning.cli import main
from wmtp_lightning.compare.design import COMPARED, check_controlled, flatten, outside_allow_list
from wmtp_lightning.models import load_bundle

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ["baseline", "verifiable_stage1", "verifiable", "rho1"]


def parse(*configs: str, extra: tuple[str, ...] = ()) -> str:
    """`wmtp fit --config ... --print_config` in process; returns the resolved YAML."""
    import contextlib
    import io

    buf = io.StringIO()
    args = ["fit"] + [x for c in configs for x in ("--config", str(ROOT / "configs" / c))] + list(extra)
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code in (0, None), buf.getvalue()
    return buf.getvalue()


def test_every_config_has_its_launch_command():
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        text = path.read_text()
        if path.parent.name == "common":
            continue
        assert "wmtp " in text.split("\n\n")[0] or "torchrun" in text, f"{path} lacks a launch command in its header"


@pytest.mark.parametrize("exp", EXPERIMENTS)
def test_experiment_configs_parse_alone_and_with_overlays(exp):
    overlays = ["local.yaml", "local_rho1.yaml"] if exp == "rho1" else ["local.yaml"]
    local = yaml.safe_load(parse(f"{exp}.yaml", *overlays))
    assert local["model"]["class_path"] == yaml.safe_load(parse(f"{exp}.yaml"))["model"]["class_path"]
    assert local["model"]["init_args"]["model"] == "storage/models_v2/micro-mtp"
    assert local["trainer"]["accelerator"] == "cpu"


@pytest.mark.parametrize("exp", ["verifiable_stage1", "verifiable"])
def test_real_overlay_keeps_the_critic_and_sets_smollm2(exp):
    """configs/real.yaml (make demo-real) switches model, data and scale, never the experiment."""
    real = yaml.safe_load(parse(f"{exp}.yaml", "real.yaml"))
    assert real["model"]["class_path"] == "wmtp_lightning.experiments.VerifiableCriticMTP"
    assert real["model"]["init_args"]["model"] == "storage/models_v2/smollm2-135m-mtp2"
    assert real["data"]["init_args"]["bins"] == {"low": [1, 2], "medium": [3, 4], "high": [5, 5]}
    # a model's own samples are mostly `high` (unsolved): no phase may leave a bin without weight
    phases = real["data"]["init_args"]["difficulty_schedule"]
    assert [(p["start"], p["end"]) for p in phases] == [(0.0, 0.3), (0.3, 0.7), (0.7, 1.0)]
    assert all(min(p["weights"].values()) > 0 for p in phases)


@pytest.mark.parametrize("exp", EXPERIMENTS)
def test_vessl_overlay_is_a_valid_fsdp_config(exp):
    cfg = yaml.safe_load(parse(f"{exp}.yaml", "vessl.yaml"))
    t = cfg["trainer"]
    assert (t["devices"], t["precision"], t["accumulate_grad_batches"], t["gradient_clip_val"]) == (
        4,
        "bf16-mixed",
        4,
        1.0,
    )
    assert cfg["data"]["init_args"]["batch_size"] == 2  # 2 x 4 GPUs x 4 accumulation = 32
    strat = t["strategy"]["init_args"]
    assert "wmtp_lightning.models.transformer.TransformerBlock" in strat["auto_wrap_policy"]
    assert strat["activation_checkpointing_policy"] == ["wmtp_lightning.models.transformer.TransformerBlock"]
    # The short form from the README parses too.
    parse(f"{exp}.yaml", extra=("--trainer.strategy=fsdp", "--trainer.devices=4", "--trainer.precision=bf16-mixed"))


def test_fsdp_strategy_object_and_its_cpu_message():
    from lightning.pytorch.strategies import FSDPStrategy

    from wmtp_lightning.models.transformer import TransformerBlock
    from wmtp_lightning.models.value_head import ValueHead

    strategy = FSDPStrategy(
        auto_wrap_policy={TransformerBlock, ValueHead}, activation_checkpointing_policy={TransformerBlock}
    )
    assert strategy.kwargs["auto_wrap_policy"] is not None
    import lightning.pytorch as pl

    with pytest.raises(Exception, match="GPU"):  # Lightning's own message: FSDP1 needs CUDA
        pl.Trainer(accelerator="cpu", devices=1, strategy=strategy)


def common_overrides(tmp_path, bundle, dataset, tokenizer):
    return [
        "--model.init_args.model",
        str(bundle),
        "--data.init_args.data_dir",
        str(dataset),
        "--data.init_args.tokenizer",
        str(tokenizer),
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.max_steps",
        "3",
        "--trainer.val_check_interval",
        "3",
        "--trainer.enable_progress_bar",
        "false",
        "--data.init_args.val_samples",
        "2",
        "--data.init_args.val_incorrect_samples",
        "2",
        "--data.init_args.batch_size",
        "2",
    ]


def fit(*configs: str, extra: list[str]):
    args = ["fit"] + [x for c in configs for x in ("--config", str(ROOT / "configs" / c))] + extra
    return main(args)


def test_run_every_experiment(tmp_path, tiny_bundle, tiny_ref_bundle, local_dataset, micro_tokenizer_path):
    base = common_overrides(tmp_path, tiny_bundle, local_dataset, micro_tokenizer_path)
    cli = fit("baseline.yaml", "local.yaml", extra=base)
    assert cli.trainer.global_step == 3 and (tmp_path / "baseline" / "export" / "metadata.json").is_file()
    assert cli.trainer.callback_metrics["val/ce_head1"] > 0 and "val_incorrect/ce_head1" in cli.trainer.callback_metrics
    # The data side counted exactly the rows of the 3 trained batches (batch size 2).
    assert cli.datamodule.train_sampler.consumed == 3 * 2

    cli = fit("verifiable_stage1.yaml", "local.yaml", extra=base)
    head = tmp_path / "verifiable_stage1" / "export" / "value_head" / "value_head.safetensors"
    assert head.is_file() and (tmp_path / "verifiable_stage1" / "checkpoints" / "last.ckpt").is_file()
    assert all(not p.requires_grad for p in cli.model.model.parameters())
    first = load_file(head)
    # Stage 1 again in the same folder starts from a fresh head, not from the export above
    # (value_head: auto is stage 2's): same seed and data, so the very same head comes out.
    cli = fit("verifiable_stage1.yaml", "local.yaml", extra=base)
    assert cli.model.value_head_path() is None
    again = load_file(head)
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    assert any(v.abs().sum() > 0 for v in first.values())  # it did train: a warm start would differ

    cli = fit("verifiable.yaml", "local.yaml", extra=base)  # value_head: auto -> finds stage 1's head
    assert cli.model.value_head_path() == head
    metrics = cli.trainer.callback_metrics
    assert {"train/weight_mean", "train/td_mean", "train/value_loss", "train/loss_head1"} <= set(metrics)
    exported = load_bundle(tmp_path / "verifiable_stage2" / "export")
    assert exported.args == load_bundle(tiny_bundle).args

    cli = fit(
        "rho1.yaml", "local.yaml", "local_rho1.yaml", extra=[*base, "--model.init_args.reference", str(tiny_ref_bundle)]
    )
    assert 0.55 < float(cli.trainer.callback_metrics["train/selected_frac"]) <= 0.7
    assert not any("ref_model" in k for k in cli.model.state_dict())


def expect_error(capsys, *args: str) -> str:
    with pytest.raises((SystemExit, ValueError, FileNotFoundError)) as info:
        main(["fit", *args])
    return str(info.value) + capsys.readouterr().err


def test_bad_config_errors_name_the_key(
    capsys, tmp_path, tiny_bundle, local_dataset, micro_tokenizer_path, llama_tokenizer_path
):
    cfg = ["--config", str(ROOT / "configs" / "verifiable.yaml"), "--config", str(ROOT / "configs" / "local.yaml")]
    assert "bta" in expect_error(capsys, *cfg, "--model.init_args.bta", "0.9")
    assert "beta" in expect_error(capsys, *cfg, "--model.init_args.beta", "abc")
    err = expect_error(capsys, *cfg, "--model.init_args.model", str(tmp_path / "none"))
    assert "model bundle not found" in err
    err = expect_error(
        capsys,
        *cfg,
        "--model.init_args.model",
        str(tiny_bundle),
        "--model.init_args.value_head",
        str(tmp_path / "missing.safetensors"),
    )
    assert "stage-1 value head not found" in err
    base = common_overrides(tmp_path, tiny_bundle, local_dataset, llama_tokenizer_path)
    with pytest.raises(ValueError, match="has 32000 pieces but the model's vocab_size is"):
        fit("baseline.yaml", "local.yaml", extra=base)


def test_one_seed_drives_init_and_data(tmp_path, tiny_bundle, local_dataset, micro_tokenizer_path):
    """`seed_everything` is the run's only seed: the modules take none, and it changes the data selection."""
    cfg = [x for c in ("verifiable.yaml", "local.yaml") for x in ("--config", str(ROOT / "configs" / c))]
    for key in ("--model.init_args.seed", "--data.init_args.seed"):
        with pytest.raises(SystemExit):
            main(["fit", *cfg, key, "1", "--print_config"])
    base = [*common_overrides(tmp_path, tiny_bundle, local_dataset, micro_tokenizer_path), "--trainer.max_steps", "1"]
    lines = {}
    for seed in (0, 0, 1):
        cli = fit("baseline.yaml", "local.yaml", extra=[*base, "--seed_everything", str(seed)])
        lines.setdefault(seed, []).append(cli.datamodule.train_sampler.lines.tolist())
    assert lines[0][0] == lines[0][1] and lines[0][0] != lines[1][0]


# ----------------------------------------------------------------------------- one controlled experiment
# The allow-list and its check live in the package (`wmtp compare` refuses an uncontrolled comparison
# with the same logic): model class + its own weighting options, training sampling; nothing else.


@pytest.mark.parametrize("overlays", [(), ("local.yaml",), ("vessl.yaml",)])
def test_compared_experiments_differ_only_in_their_weighting(overlays):
    resolved = {}
    for name in COMPARED:
        extra = ("local_rho1.yaml",) if name == "rho1" and overlays == ("local.yaml",) else ()
        resolved[name] = flatten(yaml.safe_load(parse(f"{name}.yaml", *overlays, *extra)))
    bad = outside_allow_list(resolved)
    assert not bad, f"differences outside the allow-list: {bad}"
    check_controlled(resolved)  # what `wmtp compare` runs before training: silent here
    # the shared pieces really are shared, not merely equal by accident
    for name in COMPARED:
        text = (ROOT / "configs" / f"{name}.yaml").read_text()
        assert "optimizer: common/optim.yaml" in text and "lr_scheduler: common/schedule.yaml" in text, name
