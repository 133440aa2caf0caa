"""Checkpoint converters into bundles: Meta's release format, Hugging Face LLaMA, GGUF, bundles.

Key maps and the RoPE permutation are pure functions (tested on their own); the drivers stream
tensors shard by shard into the bundle's safetensors file, so a 7B checkpoint never exists twice
in memory.

Meta layout (`7B_1T_4/`): `consolidated.pth` (or `consolidated.00.pth`) + `params.json`. Keys are
already ours; `rope.freqs` (a precomputed table in some releases) is dropped.

Hugging Face layout: `config.json` + `model.safetensors` | `model-0000i-of-0000n.safetensors` +
`model.safetensors.index.json` | `pytorch_model*.bin` (+ index). HF stores q/k rows permuted for
its rotate-half RoPE; `unpermute_qk` restores Meta's interleaved order.

GGUF (llama.cpp) files go through transformers into a temporary Hugging Face folder and then
through `convert_hf`. Any source can become an MTP model on the way (`ntp_to_mtp`).
"""

from __future__ import annotations

import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from wmtp_lightning.errors import BadInput, MissingInput, one_line
from wmtp_lightning.io import SAFETENSORS_DTYPES, read_json, write_json
from wmtp_lightning.models.bundle import (
    PARAMS,
    WEIGHTS,
    check_state_dict_keys,
    parse_dtype,
    read_metadata,
    read_params,
    tokenizer_path,
    write_bundle,
)
from wmtp_lightning.models.tokenizer import MODEL_FILES
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
    "use_scaled_rope",
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


def source_dir(src: str | Path, what: str) -> Path:
    """`src` as a folder, or one line saying it is missing or a file."""
    src = Path(src)
    if not src.exists():
        raise MissingInput(f"{src}: {what} not found")
    if not src.is_dir():
        raise BadInput(f"{src}: expected a {what}, got a file")
    return src


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
# Keys that do not change the forward pass: bookkeeping, token ids, dtype, generation and init
# defaults (transformers 4.x wrote every PretrainedConfig attribute; 5.x writes a diff).
# `pretraining_tp` is here too: transformers splits each projection into that many slices and sums
# them, which is the same function (it only reorders float additions).
HF_IGNORED = {
    "_name_or_path", "_model_name_or_path", "architectures", "model_type", "transformers_version",
    "torch_dtype", "dtype", "use_bfloat16", "torchscript", "tf_legacy_loss", "use_cache", "initializer_range",
    "pretraining_tp", "chunk_size_feed_forward", "is_decoder", "cross_attention_hidden_size",
    "output_attentions", "output_hidden_states", "return_dict", "output_scores", "return_dict_in_generate",
    "bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "sep_token_id", "decoder_start_token_id",
    "tokenizer_class", "id2label", "label2id", "problem_type", "finetuning_task", "task_specific_params", "prefix",
    "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty",
    "temperature", "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "forced_bos_token_id",
    "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens",
    "begin_suppress_tokens",
}  # fmt: skip
# PretrainedConfig attributes that would change the model unless false or empty.
HF_MUST_BE_OFF = {"is_encoder_decoder", "add_cross_attention", "tie_encoder_decoder", "pruned_heads"}
# Keys that do change the forward pass, each read (and checked) by `hf_config_to_args`.
HF_MATH = {
    "num_key_value_heads",
    "rms_norm_eps",
    "max_position_embeddings",
    "tie_word_embeddings",
    "head_dim",
    "hidden_act",
    "attention_bias",
    "mlp_bias",
    "attention_dropout",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
}
_ROPE_KEYS = {"rope_type", "type", "rope_theta"}
_LLAMA3_KEYS = {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}


def _hf_rope(cfg: dict[str, Any], source: str) -> dict[str, Any]:
    """ModelArgs' RoPE fields from `rope_theta` + `rope_scaling` (transformers 4.x) or `rope_parameters` (5.x)."""
    params: dict[str, Any] = {}
    for key in ("rope_scaling", "rope_parameters"):
        given = cfg.get(key) or {}
        if not isinstance(given, dict):
            raise ValueError(f"{source}: {key} must be an object or null, got {given!r}")
        for k, v in given.items():
            if k in params and params[k] != v:
                raise ValueError(f"{source}: rope_scaling and rope_parameters disagree on {k!r}")
            params[k] = v
    if "rope_theta" in cfg and params.get("rope_theta", cfg["rope_theta"]) != cfg["rope_theta"]:
        raise ValueError(
            f"{source}: rope_theta {cfg['rope_theta']} != rope_parameters.rope_theta {params['rope_theta']}"
        )
    kinds = {params[k] for k in ("rope_type", "type") if k in params}
    if len(kinds) > 1:
        raise ValueError(f"{source}: rope scaling names two types {sorted(kinds)}")
    kind = kinds.pop() if kinds else "default"
    out: dict[str, Any] = {"rope_theta": float(params.get("rope_theta", cfg.get("rope_theta", 10000.0)))}
    if kind == "default":
        allowed = _ROPE_KEYS
    elif kind == "llama3":
        allowed = _ROPE_KEYS | _LLAMA3_KEYS
        missing = sorted({"factor", "low_freq_factor", "high_freq_factor"} - set(params))
        if missing:
            raise ValueError(f"{source}: llama3 rope scaling lacks {missing}")
        out |= {
            "use_scaled_rope": True,
            "rope_scaling_factor": float(params["factor"]),
            "rope_low_freq_factor": float(params["low_freq_factor"]),
            "rope_high_freq_factor": float(params["high_freq_factor"]),
            # transformers' fallback when the key is absent
            "rope_original_max_seq_len": int(
                params.get("original_max_position_embeddings", cfg.get("max_position_embeddings", 2048))
            ),
        }
    else:
        raise ValueError(
            f"{source}: rope scaling type {kind!r} is not implemented (plain RoPE and 'llama3' are); "
            "converting it as plain RoPE would change the model"
        )
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"{source}: rope scaling key(s) {unknown} are not implemented for type {kind!r}")
    return out


def hf_config_to_args(cfg: dict[str, Any], source: str) -> ModelArgs:
    """HF LLaMA `config.json` (as transformers 4.x or 5.x writes it) -> ModelArgs (n_future_tokens = 1).

    Every key is either ignored because it cannot change the forward pass (HF_IGNORED), read and
    checked (HF_MATH), or refused with its name: a key this converter does not know might change
    the math (sliding windows, quantization, other architectures' options), so it is never skipped.
    """
    missing = [k for k in HF_REQUIRED if k not in cfg]
    if missing:
        raise ValueError(f"{source}: missing required key(s) {missing}")
    if cfg.get("model_type", "llama") != "llama":
        raise ValueError(f"{source}: model_type {cfg['model_type']!r}, expected 'llama'")
    if "quantization_config" in cfg:
        raise ValueError(f"{source}: quantization_config: quantized weights are not supported; dequantize them first")
    for key in sorted(HF_MUST_BE_OFF & set(cfg)):
        if cfg[key]:
            raise ValueError(f"{source}: {key}={cfg[key]!r} is not implemented (a LLaMA decoder has none)")
    unknown = sorted(set(cfg) - set(HF_REQUIRED) - HF_IGNORED - HF_MATH - HF_MUST_BE_OFF)
    if unknown:
        raise ValueError(
            f"{source}: key(s) {unknown} not understood: not part of a LLaMA config, and possibly changing "
            "the model's math, so they are refused rather than ignored"
        )
    if cfg.get("hidden_act", "silu") not in ("silu", "swish"):
        raise ValueError(f"{source}: hidden_act {cfg['hidden_act']!r} is not implemented (SwiGLU uses 'silu')")
    for flag in ("attention_bias", "mlp_bias"):
        if cfg.get(flag):
            raise ValueError(f"{source}: {flag}=true is not implemented (LLaMA blocks have no biases)")
    if cfg.get("attention_dropout"):
        raise ValueError(f"{source}: attention_dropout {cfg['attention_dropout']} is not implemented (no dropout)")
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    if cfg.get("head_dim") not in (None, hd):
        raise ValueError(
            f"{source}: head_dim {cfg['head_dim']} != hidden_size / num_attention_heads = {hd} is not implemented"
        )
    try:
        return ModelArgs(
            dim=cfg["hidden_size"],
            n_layers=cfg["num_hidden_layers"],
            n_heads=cfg["num_attention_heads"],
            n_kv_heads=cfg.get("num_key_value_heads"),
            vocab_size=cfg["vocab_size"],
            ffn_hidden_dim=cfg["intermediate_size"],
            norm_eps=cfg.get("rms_norm_eps", 1e-6),
            max_seq_len=cfg.get("max_position_embeddings", 2048),
            n_future_tokens=1,
            **_hf_rope(cfg, source),
        )
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err


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
        try:
            if path.suffix == ".safetensors":
                self._st = safe_open(str(path), framework="pt")
                self.keys = list(self._st.keys())
            else:
                self._sd = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
                if not isinstance(self._sd, dict) or not all(isinstance(v, torch.Tensor) for v in self._sd.values()):
                    raise BadInput(f"{path}: expected a state dict (name -> tensor), got {type(self._sd).__name__}")
                self.keys = list(self._sd)
        except (SafetensorError, RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
            kind = "safetensors" if path.suffix == ".safetensors" else "PyTorch checkpoint (torch.save)"
            raise BadInput(f"{path}: not a readable {kind} file, truncated or corrupt ({one_line(err)})") from None

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._st.get_slice(key).get_shape()) if hasattr(self, "_st") else tuple(self._sd[key].shape)

    def dtype(self, key: str) -> torch.dtype:
        if hasattr(self, "_st"):
            return {v: k for k, v in SAFETENSORS_DTYPES.items()}[self._st.get_slice(key).get_dtype()]
        return self._sd[key].dtype

    def get(self, key: str) -> torch.Tensor:
        try:
            return self._st.get_tensor(key) if hasattr(self, "_st") else self._sd[key]
        except (SafetensorError, RuntimeError) as err:
            raise BadInput(
                f"{self.path}: {key}: unreadable tensor data, truncated or corrupt ({one_line(err)})"
            ) from None


# ----------------------------------------------------------------------------- NTP -> MTP


def ntp_to_mtp(args: ModelArgs, keys: list[str], n_future: int) -> tuple[ModelArgs, list[tuple[str, str]]]:
    """A next-token model (L blocks) as an MTP model with `n_future` heads: (args, [(new key, source key)]).

    Trunk = the first L−1 blocks; head 1 = the last block, so head 1 computes exactly what the
    source model computes; heads 2..n_future start as copies of that same last block and learn
    to predict further ahead from there. The alternative (trunk = all L blocks, heads 2..n fresh
    or copied on top) keeps the next-token path deeper than any trained head and changes head 1's
    input, so the converted model would no longer reproduce the source at step 0.
    """
    if args.n_future_tokens != 1:
        raise ValueError(f"the source already has n_future_tokens={args.n_future_tokens}; NTP -> MTP needs 1")
    if n_future < 1:
        raise ValueError(f"n_future_tokens must be >= 1, got {n_future}")
    last = f"layers.{args.n_layers - 1}."
    pairs = [(k, k) for k in keys]
    pairs += [(f"extra_heads.{j}.{k[len(last) :]}", k) for j in range(n_future - 1) for k in keys if k.startswith(last)]
    return replace(args, n_layers=args.n_layers - 1 + n_future, n_future_tokens=n_future), pairs


# ----------------------------------------------------------------------------- drivers


def _stream(
    entries: list[tuple[str, _Shard, str]],
    transform: Callable[[str, torch.Tensor], torch.Tensor],
    dtype: torch.dtype | None,
) -> Iterator[tuple[str, torch.Tensor]]:
    for dst, shard, key in entries:
        t = transform(dst, shard.get(key))
        yield dst, (t.to(dtype) if dtype is not None and t.is_floating_point() else t)


def _source_tokenizer(src: Path, tokenizer: str | Path | None) -> Path | None:
    """The given tokenizer, else the source folder's tokenizer.json / tokenizer.model, else None."""
    if tokenizer is not None:
        return Path(tokenizer)
    return next((src / name for name in MODEL_FILES if (src / name).is_file()), None)


def convert_meta(
    src: str | Path,
    dst: str | Path,
    *,
    tokenizer: str | Path | None = None,
    dtype: str | None = None,
    n_future_tokens: int | None = None,
) -> Path:
    """Meta `consolidated.pth` + `params.json` -> bundle (`n_future_tokens`: see `ntp_to_mtp`)."""
    src = source_dir(src, "Meta checkpoint folder")
    ckpt = find_meta_checkpoint(src)
    shard = _Shard(ckpt)
    vocab = shard.shape("tok_embeddings.weight")[0] if "tok_embeddings.weight" in shard.keys else None
    args = meta_params_to_args(read_json(src / "params.json"), vocab, str(src / "params.json"))
    entries = [(d, shard, k) for k in shard.keys if (d := meta_key_map(k)) is not None]
    source = {"format": "meta", "path": str(src)}
    return _write(
        dst, args, entries, lambda _k, t: t, dtype, _source_tokenizer(src, tokenizer), source, n_future_tokens
    )


def convert_hf(
    src: str | Path,
    dst: str | Path,
    *,
    tokenizer: str | Path | None = None,
    dtype: str | None = None,
    n_future_tokens: int | None = None,
    source: dict[str, Any] | None = None,
) -> Path:
    """Hugging Face LLaMA directory -> bundle, q/k rows un-permuted, tied embeddings copied.

    The tokenizer defaults to SRC's tokenizer.json (with its companion json files) or
    tokenizer.model. `source` replaces the provenance recorded in metadata.json.
    """
    src = source_dir(src, "Hugging Face model folder")
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
    # Tied embeddings: our model has its own `output`, so the embedding is copied into it; from
    # then on the two are separate parameters (fine-tuning updates each by its own gradient).
    if cfg.get("tie_word_embeddings") and not any(d == "output.weight" for d, _, _ in entries):
        entries += [("output.weight", s, k) for d, s, k in entries if d == "tok_embeddings.weight"]

    def transform(key: str, t: torch.Tensor) -> torch.Tensor:
        if key.endswith("attention.wq.weight"):
            return unpermute_qk(t, args.n_heads)
        if key.endswith("attention.wk.weight"):
            return unpermute_qk(t, args.kv_heads)
        return t

    source = source or {"format": "hf", "path": str(src)}
    return _write(dst, args, entries, transform, dtype, _source_tokenizer(src, tokenizer), source, n_future_tokens)


def convert_bundle(
    src: str | Path, dst: str | Path, *, dtype: str | None = None, n_future_tokens: int | None = None
) -> Path:
    """A bundle -> another bundle (a dtype cast, or NTP -> MTP heads), tokenizer included."""
    src = source_dir(src, "bundle folder")
    if src.resolve() == Path(dst).resolve():
        raise ValueError(f"{dst}: the destination is the source bundle; write to another folder")
    read_metadata(src)
    args = read_params(src / PARAMS)
    shard = _Shard(src / WEIGHTS)
    entries = [(k, shard, k) for k in shard.keys]
    source = {"format": "bundle", "path": str(src)}
    return _write(dst, args, entries, lambda _k, t: t, dtype, tokenizer_path(src), source, n_future_tokens)


def convert_gguf(
    src: str | Path, dst: str | Path, *, dtype: str | None = None, n_future_tokens: int | None = None
) -> Path:
    """A LLaMA-family GGUF file -> bundle, through transformers (`pip install -e '.[gguf]'`).

    transformers dequantizes the file into a `LlamaForCausalLM` (float32) and its tokenizer;
    `save_pretrained` refuses a GGUF-loaded model, so its state dict (without the tied
    `lm_head.weight`), its config (`to_diff_dict()`, minus the `quantization_config` that no
    longer applies to dequantized weights), its generation config and its tokenizer are written
    as a Hugging Face folder in a temporary directory beside DST, which `convert_hf` converts:
    one conversion path for both sources.
    """
    src = Path(src)
    if not src.exists():
        raise MissingInput(f"{src}: GGUF file not found")
    if not src.is_file():
        raise BadInput(f"{src}: expected a .gguf file, got a folder")
    try:
        from safetensors.torch import save_file
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as err:
        raise ImportError(
            f"GGUF conversion needs transformers, gguf and accelerate: pip install -e '.[gguf]' ({err})"
        ) from err
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    load = {"gguf_file": src.name, "local_files_only": True}
    try:
        model = AutoModelForCausalLM.from_pretrained(src.parent, **load)
        tok = AutoTokenizer.from_pretrained(src.parent, **load)
    except ImportError:
        raise
    except Exception as err:  # a truncated or foreign file fails in many ways inside the reader
        raise BadInput(f"{src}: not a readable GGUF file, truncated or corrupt ({one_line(err)})") from err
    config = model.config.to_diff_dict()
    config.pop("quantization_config", None)
    tied = bool(config.get("tie_word_embeddings"))
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not (tied and k == "lm_head.weight")}
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=f".{dst.name}.hf-") as tmp:
        save_file(state, Path(tmp) / "model.safetensors", metadata={"format": "pt"})
        write_json(Path(tmp) / "config.json", config)
        model.generation_config.to_json_file(Path(tmp) / "generation_config.json", use_diff=True)
        tok.save_pretrained(tmp)
        del model, state
        return convert_hf(
            tmp, dst, dtype=dtype, n_future_tokens=n_future_tokens, source={"format": "gguf", "path": str(src)}
        )


def _write(
    dst: str | Path,
    args: ModelArgs,
    entries: list[tuple[str, _Shard, str]],
    transform: Callable[[str, torch.Tensor], torch.Tensor],
    dtype: str | None,
    tokenizer: str | Path | None,
    source: dict[str, Any],
    n_future_tokens: int | None = None,
) -> Path:
    if n_future_tokens is not None and n_future_tokens != args.n_future_tokens:
        by_key = {d: (s, k) for d, s, k in entries}
        args, pairs = ntp_to_mtp(args, list(by_key), n_future_tokens)
        entries = [(new, *by_key[old]) for new, old in pairs]
        source = {**source, "ntp_to_mtp": f"trunk = the first {args.n_trunk_layers} blocks; every head from the last"}
    shapes = {d: s.shape(k) for d, s, k in entries}
    check_state_dict_keys(shapes, args, source["path"])
    target = parse_dtype(dtype) if dtype is not None else None

    def out_dtype(shard: _Shard, key: str) -> torch.dtype:
        src_dtype = shard.dtype(key)  # read from the header / mmap: no copy of the data
        return target if target is not None and src_dtype.is_floating_point else src_dtype

    specs = [(d, torch.Size(shapes[d]), out_dtype(s, k)) for d, s, k in entries]
    return write_bundle(dst, args, _stream(entries, transform, target), specs, tokenizer=tokenizer, source=source)
