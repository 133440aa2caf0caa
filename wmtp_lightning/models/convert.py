"""Checkpoint converters into bundles: Meta's release format and Hugging Face LLaMA.

Key maps and the RoPE permutation are pure functions (tested on their own); the drivers stream
tensors shard by shard into the bundle's safetensors file, so a 7B checkpoint never exists twice
in memory.

Meta layout (`7B_1T_4/`): `consolidated.pth` (or `consolidated.00.pth`) + `params.json`. Keys are
already ours; `rope.freqs` (a precomputed table in some releases) is dropped.

Hugging Face layout: `config.json` + `model.safetensors` | `model-0000i-of-0000n.safetensors` +
`model.safetensors.index.json` | `pytorch_model*.bin` (+ index). HF stores q/k rows permuted for
its rotate-half RoPE; `unpermute_qk` restores Meta's interleaved order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from wmtp_lightning.io import SAFETENSORS_DTYPES, read_json
from wmtp_lightning.models.bundle import check_state_dict_keys, parse_dtype, write_bundle
from wmtp_lightning.models.transformer import ModelArgs

# ----------------------------------------------------------------------------- Meta

META_PARAM_KEYS = {
    "dim",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "vocab_size",
    "multiple_of",
    "ffn_dim_multiplier",
    "norm_eps",
    "rope_theta",
    "max_seq_len",
    "n_future_tokens",
    "max_batch_size",
}
META_DROPPED_KEYS = ("rope.freqs",)


def meta_params_to_args(params: dict[str, Any], vocab_size: int | None, source: str) -> ModelArgs:
    """Meta `params.json` -> ModelArgs. Meta writes `vocab_size: -1` (set from the tokenizer)."""
    unknown = sorted(set(params) - META_PARAM_KEYS)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; expected a subset of {sorted(META_PARAM_KEYS)}")
    for key in ("dim", "n_layers", "n_heads"):
        if key not in params:
            raise ValueError(f"{source}: missing required key {key!r}")
    d = {k: v for k, v in params.items() if k != "max_batch_size"}
    if d.get("vocab_size", -1) in (-1, None):
        if vocab_size is None:
            raise ValueError(f"{source}: vocab_size is {d.get('vocab_size')} and could not be read from the weights")
        d["vocab_size"] = vocab_size
    d.setdefault("n_future_tokens", 1)
    return ModelArgs.from_dict(d, source=source)


def meta_key_map(key: str) -> str | None:
    """Meta state-dict key -> bundle key (identity), or None for keys that are not parameters."""
    return None if key in META_DROPPED_KEYS else key


def find_meta_checkpoint(src: Path) -> Path:
    shards = sorted(src.glob("consolidated*.pth"))
    if not shards:
        raise FileNotFoundError(f"{src}: no consolidated*.pth (expected Meta's release layout)")
    if len(shards) > 1:
        raise ValueError(
            f"{src}: {len(shards)} model-parallel shards {[s.name for s in shards]}; merge them first "
            "(only MP=1 releases such as 7B_1T_4 are supported)"
        )
    return shards[0]


# ----------------------------------------------------------------------------- Hugging Face

HF_REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "intermediate_size")
# Keys that do not change the forward pass (bookkeeping, generation defaults, init).
HF_BENIGN = {
    "_name_or_path",
    "architectures",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "torch_dtype",
    "dtype",
    "transformers_version",
    "use_cache",
    "initializer_range",
    "pretraining_tp",
    "attention_dropout",
    "model_type",
    "hidden_act",
    "rope_scaling",
    "attention_bias",
    "mlp_bias",
    "tie_word_embeddings",
    "num_key_value_heads",
    "rms_norm_eps",
    "rope_theta",
    "max_position_embeddings",
    "head_dim",
    "rope_parameters",
    "output_attentions",
    "output_hidden_states",
    "return_dict",
}


def hf_config_to_args(cfg: dict[str, Any], source: str) -> ModelArgs:
    """HF LLaMA `config.json` -> ModelArgs (n_future_tokens = 1)."""
    missing = [k for k in HF_REQUIRED if k not in cfg]
    if missing:
        raise ValueError(f"{source}: missing required key(s) {missing}")
    unknown = sorted(set(cfg) - set(HF_REQUIRED) - HF_BENIGN)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; not a LLaMA config this converter understands")
    if cfg.get("model_type", "llama") != "llama":
        raise ValueError(f"{source}: model_type {cfg['model_type']!r}, expected 'llama'")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ValueError(f"{source}: hidden_act {cfg['hidden_act']!r}, expected 'silu' (SwiGLU)")
    for flag in ("attention_bias", "mlp_bias"):
        if cfg.get(flag):
            raise ValueError(f"{source}: {flag}=true is not supported (LLaMA has no biases)")
    rope = cfg.get("rope_parameters") or {}
    scaling = cfg.get("rope_scaling") or ({} if rope.get("rope_type", "default") == "default" else rope)
    if scaling:
        raise ValueError(f"{source}: rope scaling {scaling} is not supported (plain RoPE only)")
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    if cfg.get("head_dim") not in (None, hd):
        raise ValueError(f"{source}: head_dim {cfg['head_dim']} != hidden_size/num_attention_heads = {hd}")
    return ModelArgs(
        dim=cfg["hidden_size"],
        n_layers=cfg["num_hidden_layers"],
        n_heads=cfg["num_attention_heads"],
        n_kv_heads=cfg.get("num_key_value_heads"),
        vocab_size=cfg["vocab_size"],
        ffn_hidden_dim=cfg["intermediate_size"],
        norm_eps=cfg.get("rms_norm_eps", 1e-6),
        rope_theta=float(cfg.get("rope_theta", rope.get("rope_theta", 10000.0))),
        max_seq_len=cfg.get("max_position_embeddings", 2048),
        n_future_tokens=1,
    )


_HF_LAYER = {
    "self_attn.q_proj": "attention.wq",
    "self_attn.k_proj": "attention.wk",
    "self_attn.v_proj": "attention.wv",
    "self_attn.o_proj": "attention.wo",
    "mlp.gate_proj": "feed_forward.w1",
    "mlp.down_proj": "feed_forward.w2",
    "mlp.up_proj": "feed_forward.w3",
    "input_layernorm": "attention_norm",
    "post_attention_layernorm": "ffn_norm",
}
_HF_TOP = {
    "model.embed_tokens.weight": "tok_embeddings.weight",
    "model.norm.weight": "norm.weight",
    "lm_head.weight": "output.weight",
}
_HF_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)\.weight$")


def hf_key_map(key: str) -> str | None:
    """HF key -> bundle key; None for non-parameters (rotary `inv_freq`). Unknown keys raise."""
    if key.endswith("rotary_emb.inv_freq"):
        return None
    if key in _HF_TOP:
        return _HF_TOP[key]
    m = _HF_LAYER_RE.match(key)
    if m and m.group(2) in _HF_LAYER:
        return f"layers.{m.group(1)}.{_HF_LAYER[m.group(2)]}.weight"
    raise KeyError(f"unexpected Hugging Face key {key!r}")


def unpermute_qk(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo HF's q/k row permutation (rotate-half -> Meta's interleaved RoPE pairs).

    HF's converter maps Meta row order (head, pair, 2) to (head, 2, pair); this is its inverse:
    (n_heads, 2, hd/2, dim_in) -> (n_heads, hd/2, 2, dim_in).
    """
    out_dim, in_dim = w.shape
    return w.view(n_heads, 2, out_dim // n_heads // 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def permute_qk(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Meta -> HF row order (the inverse of `unpermute_qk`; used in tests and for export)."""
    out_dim, in_dim = w.shape
    return w.view(n_heads, out_dim // n_heads // 2, 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


def hf_shards(src: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = src / index_name
        if index.is_file():
            weight_map = read_json(index).get("weight_map")
            if not isinstance(weight_map, dict):
                raise ValueError(f"{index}: missing 'weight_map'")
            shards = [src / name for name in dict.fromkeys(weight_map.values())]
            for s in shards:
                if not s.is_file():
                    raise FileNotFoundError(f"{s}: listed in {index} but missing")
            return shards
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (src / name).is_file():
            return [src / name]
    raise FileNotFoundError(f"{src}: no model.safetensors, pytorch_model.bin or shard index")


class _Shard:
    """Uniform lazy access to a .safetensors (safe_open) or .bin (torch.load mmap) shard."""

    def __init__(self, path: Path):
        self.path = path
        if path.suffix == ".safetensors":
            self._st = safe_open(str(path), framework="pt")
            self.keys = list(self._st.keys())
        else:
            self._sd = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
            self.keys = list(self._sd)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._st.get_slice(key).get_shape()) if hasattr(self, "_st") else tuple(self._sd[key].shape)

    def dtype(self, key: str) -> torch.dtype:
        if hasattr(self, "_st"):
            return {v: k for k, v in SAFETENSORS_DTYPES.items()}[self._st.get_slice(key).get_dtype()]
        return self._sd[key].dtype

    def get(self, key: str) -> torch.Tensor:
        return self._st.get_tensor(key) if hasattr(self, "_st") else self._sd[key]


# ----------------------------------------------------------------------------- drivers


def _stream(
    entries: list[tuple[str, _Shard, str]],
    transform: Callable[[str, torch.Tensor], torch.Tensor],
    dtype: torch.dtype | None,
) -> Iterator[tuple[str, torch.Tensor]]:
    for dst, shard, key in entries:
        t = transform(dst, shard.get(key))
        yield dst, (t.to(dtype) if dtype is not None and t.is_floating_point() else t)


def convert_meta(
    src: str | Path, dst: str | Path, *, tokenizer: str | Path | None = None, dtype: str | None = None
) -> Path:
    """Meta `consolidated.pth` + `params.json` -> bundle."""
    src = Path(src)
    ckpt = find_meta_checkpoint(src)
    shard = _Shard(ckpt)
    vocab = shard.shape("tok_embeddings.weight")[0] if "tok_embeddings.weight" in shard.keys else None
    args = meta_params_to_args(read_json(src / "params.json"), vocab, str(src / "params.json"))
    entries = [(d, shard, k) for k in shard.keys if (d := meta_key_map(k)) is not None]
    return _write(dst, args, entries, lambda _k, t: t, dtype, tokenizer, {"format": "meta", "path": str(src)})


def convert_hf(
    src: str | Path, dst: str | Path, *, tokenizer: str | Path | None = None, dtype: str | None = None
) -> Path:
    """Hugging Face LLaMA directory -> bundle (n_future_tokens = 1), q/k rows un-permuted."""
    src = Path(src)
    cfg_path = src / "config.json"
    cfg = read_json(cfg_path)
    args = hf_config_to_args(cfg, str(cfg_path))
    entries = []
    for shard in map(_Shard, hf_shards(src)):
        for key in shard.keys:
            try:
                dst_key = hf_key_map(key)
            except KeyError as err:
                raise ValueError(f"{shard.path}: {err.args[0]}") from err
            if dst_key is not None:
                entries.append((dst_key, shard, key))
    if cfg.get("tie_word_embeddings") and not any(d == "output.weight" for d, _, _ in entries):
        entries += [("output.weight", s, k) for d, s, k in entries if d == "tok_embeddings.weight"]

    def transform(key: str, t: torch.Tensor) -> torch.Tensor:
        if key.endswith("attention.wq.weight"):
            return unpermute_qk(t, args.n_heads)
        if key.endswith("attention.wk.weight"):
            return unpermute_qk(t, args.kv_heads)
        return t

    if tokenizer is None and (src / "tokenizer.model").is_file():
        tokenizer = src / "tokenizer.model"
    return _write(dst, args, entries, transform, dtype, tokenizer, {"format": "hf", "path": str(src)})


def _write(
    dst: str | Path,
    args: ModelArgs,
    entries: list[tuple[str, _Shard, str]],
    transform: Callable[[str, torch.Tensor], torch.Tensor],
    dtype: str | None,
    tokenizer: str | Path | None,
    source: dict[str, Any],
) -> Path:
    shapes = {d: s.shape(k) for d, s, k in entries}
    check_state_dict_keys(shapes, args, source["path"])
    target = parse_dtype(dtype) if dtype is not None else None

    def out_dtype(shard: _Shard, key: str) -> torch.dtype:
        src_dtype = shard.dtype(key)  # read from the header / mmap: no copy of the data
        return target if target is not None and src_dtype.is_floating_point else src_dtype

    specs = [(d, torch.Size(shapes[d]), out_dtype(s, k)) for d, s, k in entries]
    return write_bundle(dst, args, _stream(entries, transform, target), specs, tokenizer=tokenizer, source=source)
