"""Model bundles: the project's on-disk model format (DESIGN §2).

    storage/models_v2/<name>/
      safetensors/model.safetensors   weights, Meta key names
      configs/params.json             ModelArgs (Meta's field names)
      tokenizer/                      optional but usual: tokenizer.model (SentencePiece), or
                                      tokenizer.json + the small json files its special ids come
                                      from (tokenizer_config.json, special_tokens_map.json,
                                      generation_config.json or config.json; see models/tokenizer.py)
      metadata.json                   format_version, dtype, sha256 of each file, source, status, ...

`metadata.json` is written last, so a bundle whose metadata is missing or whose status is not
"ready" is an interrupted write, never mistaken for a model. Every file's sha256 is verified on load.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from wmtp_lightning.errors import BadInput, MissingInput
from wmtp_lightning.io import read_json, sha256_file, write_json, write_safetensors_streaming
from wmtp_lightning.models.tokenizer import MODEL_FILES, Tokenizer
from wmtp_lightning.models.transformer import ModelArgs, Transformer

FORMAT_VERSION = 1
WEIGHTS = "safetensors/model.safetensors"
PARAMS = "configs/params.json"
TOKENIZER_DIR = "tokenizer"
METADATA = "metadata.json"

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; expected one of {sorted(DTYPES)}")
    return DTYPES[name]


def dtype_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in DTYPES.items()}[dtype]


def expected_shapes(args: ModelArgs) -> dict[str, tuple[int, ...]]:
    """State-dict key -> shape for `args`, computed on the meta device (no memory)."""
    with torch.device("meta"):
        model = Transformer(args)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_state_dict_keys(names_shapes: dict[str, tuple[int, ...]], args: ModelArgs, source: str) -> None:
    """One clear error for missing keys, unexpected keys and shape mismatches (no strict=False)."""
    want = expected_shapes(args)
    missing = sorted(set(want) - set(names_shapes))
    unexpected = sorted(set(names_shapes) - set(want))
    wrong = [
        f"{k}: got {tuple(names_shapes[k])}, expected {want[k]}"
        for k in sorted(set(want) & set(names_shapes))
        if tuple(names_shapes[k]) != want[k]
    ]
    problems = []
    if missing:
        problems.append(f"missing key(s) {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if unexpected:
        problems.append(f"unexpected key(s) {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    if wrong:
        problems.append("shape mismatch " + "; ".join(wrong[:8]))
    if problems:
        raise BadInput(
            f"{source}: state dict does not match params ({args.n_layers} layers, dim {args.dim}, "
            f"vocab {args.vocab_size}, n_future_tokens {args.n_future_tokens}): " + "; ".join(problems)
        )


def read_params(path: str | Path) -> ModelArgs:
    return ModelArgs.from_dict(read_json(path), source=str(path))


def write_bundle(
    out_dir: str | Path,
    args: ModelArgs,
    tensors: Iterable[tuple[str, torch.Tensor]],
    specs: list[tuple[str, torch.Size, torch.dtype]],
    *,
    tokenizer: str | Path | None = None,
    source: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Low-level bundle writer: tensors are streamed (one in memory at a time), metadata goes last."""
    out = Path(out_dir)
    tokenizer_files: dict[str, bytes] = {}
    if tokenizer is not None:  # checked first: a mismatch must not cost a multi-GB write
        tok = Tokenizer(tokenizer)
        check_tokenizer_vocab(tok, args, str(tok.path))
        tokenizer_files = {f"{TOKENIZER_DIR}/{p.name}": p.read_bytes() for p in tok.files}
    (out / METADATA).unlink(missing_ok=True)  # an overwritten bundle is "not ready" until the end
    write_json(out / PARAMS, args.to_dict())
    dtypes = {d for _, _, d in specs if d.is_floating_point}
    write_safetensors_streaming(out / WEIGHTS, specs, tensors, metadata={"format": "pt"})
    files = [PARAMS, WEIGHTS]
    shutil.rmtree(out / TOKENIZER_DIR, ignore_errors=True)  # no stale file of another tokenizer
    for rel, data in tokenizer_files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
        files.append(rel)
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": out.name,
        "dtype": dtype_name(dtypes.pop()) if len(dtypes) == 1 else "mixed",
        "n_params": sum(int(torch.Size(s).numel()) for _, s, _ in specs),
        "files": {f: sha256_file(out / f) for f in files},
        "source": source or {},
        "tokenizer_shared_with": [],
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "status": "ready",
        **(extra or {}),
    }
    write_json(out / METADATA, meta)
    return out


def save_bundle(
    model: Transformer,
    out_dir: str | Path,
    *,
    tokenizer: str | Path | None = None,
    dtype: str | torch.dtype | None = None,
    source: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save `model` as a bundle (optionally cast to `dtype`)."""
    target = parse_dtype(dtype) if dtype is not None else None
    state = model.state_dict()

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.to(target) if target is not None and t.is_floating_point() else t

    specs = [
        (k, v.shape, target if target is not None and v.is_floating_point() else v.dtype) for k, v in state.items()
    ]
    return write_bundle(
        out_dir,
        model.args,
        ((k, cast(v)) for k, v in state.items()),
        specs,
        tokenizer=tokenizer,
        source=source,
        extra=extra,
    )


def read_metadata(bundle_dir: str | Path, verify: bool = True) -> dict[str, Any]:
    """Read metadata.json; with `verify`, check each listed file exists and its sha256 matches."""
    root = Path(bundle_dir)
    if not root.is_dir():
        raise MissingInput(
            f"model bundle not found: {root} (make one with scripts/convert_checkpoint.py "
            "or scripts/prepare_local_small_model.py)"
        )
    meta_path = root / METADATA
    if not meta_path.is_file():
        raise MissingInput(f"{meta_path}: missing; the bundle is incomplete (interrupted write?)")
    meta = read_json(meta_path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise BadInput(f"{meta_path}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    if meta.get("status") != "ready":
        raise BadInput(f"{meta_path}: status {meta.get('status')!r}, expected 'ready'")
    for rel in (WEIGHTS, PARAMS):
        if rel not in meta.get("files", {}):
            raise BadInput(f"{meta_path}: 'files' has no entry for {rel}")
    if verify:
        for rel, digest in meta["files"].items():
            path = root / rel
            if not path.is_file():
                raise MissingInput(f"{path}: listed in {meta_path} but missing")
            actual = sha256_file(path)
            if actual != digest:
                raise BadInput(
                    f"{path}: sha256 {actual} does not match {meta_path} ({digest}); "
                    "the file is corrupt or was changed after export"
                )
    return meta


def load_bundle(
    bundle_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
    verify: bool = True,
) -> Transformer:
    """Load a bundle as a `Transformer` (the model's `.args` hold its ModelArgs).

    The model is built on the meta device and the file's tensors are assigned into it, so only
    one copy of the weights is ever in memory.
    """
    root = Path(bundle_dir)
    read_metadata(root, verify=verify)
    args = read_params(root / PARAMS)
    weights = root / WEIGHTS
    try:
        with safe_open(str(weights), framework="pt", device=str(device)) as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
            check_state_dict_keys(shapes, args, str(weights))
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except SafetensorError as err:
        raise BadInput(f"{weights}: unreadable safetensors file ({err}); truncated or corrupt?") from err
    if dtype is not None:
        target = parse_dtype(dtype)
        state = {k: v.to(target) for k, v in state.items()}
    with torch.device("meta"):
        model = Transformer(args)
    model.load_state_dict(state, strict=True, assign=True)
    return model


def check_tokenizer_vocab(tok: Tokenizer, args: ModelArgs, where: str) -> None:
    """Every id the tokenizer makes must have an embedding row.

    The model may have more rows than the tokenizer has ids (embeddings padded to a multiple,
    as in DeepSeek-Coder: 32256 rows, 32022 ids); those rows are never a target.
    """
    if tok.vocab_size > args.vocab_size:
        raise BadInput(f"{where}: tokenizer vocab size {tok.vocab_size} > model vocab_size {args.vocab_size}")


def tokenizer_path(bundle_dir: str | Path) -> Path | None:
    """The bundle's tokenizer file (tokenizer/tokenizer.json or tokenizer/tokenizer.model), or None."""
    folder = Path(bundle_dir) / TOKENIZER_DIR
    return next((folder / name for name in MODEL_FILES if (folder / name).is_file()), None)


def bundle_tokenizer(bundle_dir: str | Path, args: ModelArgs | None = None) -> Tokenizer:
    """The bundle's tokenizer, checked against the model's vocabulary."""
    root = Path(bundle_dir)
    path = tokenizer_path(root)
    if path is None:
        raise MissingInput(f"{root / TOKENIZER_DIR}: bundle has no tokenizer")
    tok = Tokenizer(path)
    check_tokenizer_vocab(tok, args or read_params(root / PARAMS), f"{path} (model: {root / PARAMS})")
    return tok
