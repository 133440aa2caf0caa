"""The controlled design: the compared experiments may differ only in how they weight tokens.

Baseline, verifiable (stage 2) and Rho-1 are resolved from `configs/<name>.yaml` plus the same
overlays, exactly as `wmtp fit --print_config` resolves them. Relative to the baseline, a key may
differ only if it is

- the experiment's class (`model.class_path`) or one of its own options, i.e. a
  `model.init_args.*` key that the shared base module (`MTPModule`) does not take — the weighting
  knobs (`beta`, `ratio`, `reference`, `stage`, `value_head`, ...);
- how training lines are sampled (`ALLOWED`: sampling, correct_ratio, bins, curriculum, difficulty filter).

Everything else — trainer (steps, precision, devices, accumulation, validation cadence), optimizer,
schedule, the shared model options (the starting model, `sequential_heads`, `normalize`,
`head_coefs`, ...), the validation selection, the batch size, the seed — must be identical, or the
comparison is refused. `tests/experiments/test_configs.py` runs the same check on the shipped configs.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

COMPARED = ("baseline", "verifiable", "rho1")  # configs/<name>.yaml; the first is the reference
STAGE1 = "verifiable_stage1"  # the critic's pre-training, run before `verifiable` (not compared)
ALLOWED = (
    "model.class_path",
    "data.init_args.sampling",
    "data.init_args.correct_ratio",
    "data.init_args.bins",
    "data.init_args.difficulty_schedule",
    "data.init_args.difficulty_range",
    "data.init_args.difficulty_field",
)


class DesignError(ValueError):
    """A comparison that is not controlled, or a config that does not resolve (one-line message)."""


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": value} for every leaf of nested dicts (lists are leaves)."""
    if isinstance(d, dict):
        return {k: v for key, val in d.items() for k, v in flatten(val, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): d}


def init_params(cls: type) -> set[str]:
    """Constructor arguments of `cls`, following `**kwargs` up the class hierarchy as LightningCLI does."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def shared_module_keys() -> set[str]:
    """Options of the shared base module: the same in every compared experiment."""
    from wmtp_lightning.experiments import MTPModule

    return init_params(MTPModule)


def class_from_path(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise DesignError(f"model.class_path {class_path!r} does not name a class ({err})") from err


def outside_allow_list(resolved: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, Any, Any]]]:
    """Keys where an experiment differs from the first one outside the allow-list.

    resolved: {experiment: flattened resolved config}, the reference first.
    Returns {experiment: [(key, reference value, its value), ...]} (only experiments with differences).
    """
    shared = shared_module_keys()
    names = list(resolved)
    ref = resolved[names[0]]
    bad = {}
    for name in names[1:]:
        cfg = resolved[name]
        keys = sorted(set(ref) | set(cfg))
        differ = [k for k in keys if ref.get(k, "<absent>") != cfg.get(k, "<absent>")]
        own = {k for k in differ if k.startswith("model.init_args.") and k.split(".")[2] not in shared}
        found = [(k, ref.get(k, "<absent>"), cfg.get(k, "<absent>")) for k in differ if k not in own]
        found = [d for d in found if not d[0].startswith(ALLOWED)]
        if found:
            bad[name] = found
    return bad


def check_controlled(resolved: dict[str, dict[str, Any]]) -> None:
    """Raise `DesignError` (one line) when the compared configs differ outside the allow-list."""
    bad = outside_allow_list(resolved)
    if not bad:
        return
    ref = next(iter(resolved))
    name, diffs = next(iter(bad.items()))
    shown = "; ".join(f"{k}: {a!r} vs {b!r}" for k, a, b in diffs[:4])
    more = f" (+{len(diffs) - 4} more)" if len(diffs) > 4 else ""
    raise DesignError(
        f"not a controlled comparison: {name} differs from {ref} outside the allow-list in {shown}{more}; "
        "compared runs may differ only in their weighting (model class and its own options) and training sampling"
    )


def resolve_config(subcommand: str, configs: Sequence[str | Path], extra: Sequence[str] = ()) -> dict[str, Any]:
    """The config `wmtp <subcommand> --config ... <extra>` would run with (`--print_config`, in process).

    Raises `DesignError` with the parser's own one-line reason when it does not resolve.
    """
    from wmtp_lightning.cli import main

    args = [subcommand, *(x for c in configs for x in ("--config", str(c))), *extra, "--print_config"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as stop:
            if stop.code not in (0, None):
                where = " + ".join(str(c) for c in configs)
                raise DesignError(f"{where}: {parser_error(err.getvalue()) or f'exit {stop.code}'}") from None
    return yaml.safe_load(out.getvalue())


def parser_error(stderr: str) -> str:
    """The parser's reason in one line: its `error:` block, without the usage text."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    return "" if start is None else one_line("\n".join(lines[start:]).removeprefix("error: "))


_NOISE = ("Subtypes:", "Errors:", "Given value", "Expected a <class 'NoneType'>", "Does not validate against any")


def one_line(message: str) -> str:
    """A (jsonargparse) error message as one line: the reasons, without the union bookkeeping and echoed input."""
    kept = [line.strip().removeprefix("- ") for line in message.splitlines() if line.strip()]
    return " ".join(line for line in kept if not line.startswith(_NOISE))


def overlay_model_keys(overlay: Path) -> list[str]:
    """The `model.init_args` keys an overlay sets (an overlay must not switch the model class)."""
    try:
        data = yaml.safe_load(overlay.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise DesignError(f"{overlay}: not valid YAML{where} ({getattr(err, 'problem', None) or err})") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        return []
    if "class_path" in model:
        raise DesignError(f"{overlay}: an overlay must not set model.class_path (it would switch the experiment)")
    return sorted((model.get("init_args") or {}).keys())


def route_overlays(overlays: Sequence[Path], classes: dict[str, type]) -> dict[str, list[Path]]:
    """Which overlays each experiment gets: those whose `model.init_args` keys its class accepts.

    Scale and hardware overlays (`local.yaml`, `vessl.yaml`) set only shared keys and reach every
    experiment; an experiment-specific one (`local_rho1.yaml`: the reference model) reaches the
    experiments that have the option. An overlay no experiment accepts is an error, not a no-op.
    """
    routed: dict[str, list[Path]] = {name: [] for name in classes}
    for overlay in overlays:
        keys = overlay_model_keys(overlay)
        takers = [name for name, cls in classes.items() if set(keys) <= init_params(cls)]
        if not takers:
            raise DesignError(f"{overlay}: no compared experiment accepts model.init_args keys {keys}")
        for name in takers:
            routed[name].append(overlay)
    return routed
