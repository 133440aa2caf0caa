"""One tokenizer interface over a SentencePiece `tokenizer.model` or a Hugging Face `tokenizer.json`.

`Tokenizer(path)` takes either file, or a folder holding one of them (`tokenizer.json` first, as
transformers loads the fast tokenizer when both are there). The `tokenizers` library reads
`tokenizer.json`; transformers is never imported.

Special tokens, and why each is what it is:
  bos_id / add_bos  SentencePiece: the model's BOS piece, always prepended by `encode(bos=True)`.
                    tokenizer.json: the `bos_token` of the companion files; it is prepended only
                    where transformers would prepend it (`add_bos_token` in tokenizer_config.json,
                    else the tokenizer.json post-processor): Llama 3 starts with
                    <|begin_of_text|>, SmolLM2 with nothing although its bos_token is <|im_start|>.
  eos_id            the token appended after a training response (`encode(eos=True)`): the
                    tokenizer's `eos_token` (SmolLM2-Instruct: <|im_end|>).
  eos_ids           every id that ends a generation: eos_id plus the `eos_token_id` (an int or a
                    list) of generation_config.json, else config.json, as transformers' `generate`
                    stops on those (Llama 3 Instruct: <|end_of_text|>, <|eom_id|>, <|eot_id|>).
  pad_id            the pad token if there is one, else eos_id (padding is masked everywhere, so
                    its value never matters).

Companion files (read from the tokenizer.json's folder, all optional): tokenizer_config.json, then
special_tokens_map.json for keys the first lacks (a disagreement between them is an error, not a
guess), then generation_config.json, else config.json, for the token ids the tokenizer files do not
name. A tokenizer with no EOS anywhere is refused: MTP training and generation need one.

Text is text: a literal "<|im_end|>" inside a code sample encodes as ordinary pieces, never as the
control token (SentencePiece behaves so; transformers would parse it), and `decode` drops control
tokens, so `decode(encode(s)) == s` for any string.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from wmtp_lightning.errors import BadInput, MissingInput

MODEL_FILES = ("tokenizer.json", "tokenizer.model")  # looked up in this order in a folder
HF_CONFIG_FILES = ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "config.json")
_SPECIAL_KEYS = ("bos_token", "eos_token", "pad_token")


def resolve_tokenizer_file(path: str | Path) -> Path:
    """The tokenizer file `path` names: the file itself, or the first of MODEL_FILES in a folder."""
    p = Path(path)
    if p.is_dir():
        for name in MODEL_FILES:
            if (p / name).is_file():
                return p / name
        raise MissingInput(f"tokenizer model not found: {p} holds neither {' nor '.join(MODEL_FILES)}")
    if not p.is_file():
        raise MissingInput(f"tokenizer model not found: {p}")
    return p


class Tokenizer:
    """bos/eos/pad ids, encode/decode and batch encode, for either tokenizer format.

    Attributes:
        path: the tokenizer file (tokenizer.model or tokenizer.json).
        files: every file the special ids were read from (the tokenizer file first); a bundle
            copies exactly these so its tokenizer resolves to the same ids.
        bos_id: the BOS token id, or None when the tokenizer has none.
        add_bos: whether `encode(bos=True)` prepends `bos_id` (see the module docstring).
        eos_id: appended by `encode(eos=True)` (the end of a training response).
        eos_ids: the ids that end a generation (contains eos_id).
        pad_id: the padding id.
        adds_prefix_space: encoding a fragment on its own prepends a space (SentencePiece's dummy
            prefix, Metaspace, ByteLevel(add_prefix_space)), so a response cannot be tokenized
            apart from its prompt without changing its text (see data/collate.py).
    """

    def __init__(self, path: str | Path):
        self.path = resolve_tokenizer_file(path)
        if self.path.suffix == ".json":
            self._backend: _SentencePiece | _HuggingFace = _HuggingFace(self.path)
        else:
            self._backend = _SentencePiece(self.path)
        b = self._backend
        self.files: list[Path] = [self.path, *b.companions]
        self.bos_id: int | None = b.bos_id
        self.add_bos: bool = b.add_bos
        if b.eos_id is None:
            raise ValueError(f"{self.path}: tokenizer has no EOS piece; MTP training and generation need one")
        self.eos_id: int = b.eos_id
        self.eos_ids: frozenset[int] = frozenset({b.eos_id, *b.extra_eos_ids})
        self.pad_id: int = b.pad_id if b.pad_id is not None else b.eos_id
        self.adds_prefix_space: bool = "".join(map(self.piece_text, b.encode_batch(["a"])[0])) != "a"
        for name, i in (("bos", self.bos_id), ("pad", self.pad_id), *(("eos", e) for e in self.eos_ids)):
            if i is not None and not 0 <= i < self.vocab_size:
                raise ValueError(f"{self.path}: {name} id {i} is outside the vocabulary (size {self.vocab_size})")

    @property
    def vocab_size(self) -> int:
        """Number of ids the tokenizer can produce (largest id + 1)."""
        return self._backend.vocab_size

    @property
    def kind(self) -> str:
        """The backend: sentencepiece or huggingface."""
        return self._backend.kind

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of `text`; `bos`: start a sequence (BOS where the tokenizer adds one); `eos`: append eos_id."""
        return self.encode_batch([text], bos=bos, eos=eos)[0]

    def encode_batch(self, texts: Sequence[str], bos: bool = False, eos: bool = False) -> list[list[int]]:
        head = [self.bos_id] if bos and self.add_bos and self.bos_id is not None else []
        tail = [self.eos_id] if eos else []
        return [head + ids + tail for ids in self._backend.encode_batch(list(texts))]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`; control tokens (BOS, EOS, padding, chat markers) give no text."""
        return self._backend.decode([int(i) for i in ids])

    def id_to_piece(self, i: int) -> str:
        """The vocabulary entry as stored ('▁def' in SentencePiece, 'Ġdef' in byte-level BPE)."""
        return self._backend.id_to_piece(i)

    def piece_text(self, i: int) -> str:
        """The text one token stands for (per-token displays): '▁def' / 'Ġdef' -> ' def', '<0x0A>' -> newline.

        A byte-level token that holds part of a multi-byte character shows as U+FFFD.
        """
        return self._backend.piece_text(i)


# ----------------------------------------------------------------------------- SentencePiece


class _SentencePiece:
    kind = "sentencepiece"
    companions: tuple[Path, ...] = ()
    extra_eos_ids: tuple[int, ...] = ()

    def __init__(self, path: Path):
        from sentencepiece import SentencePieceProcessor

        try:
            self.sp = SentencePieceProcessor(model_file=str(path))
        except (RuntimeError, OSError) as err:
            raise BadInput(f"{path}: not a SentencePiece model ({err})") from err
        ids = {name: getattr(self.sp, f"{name}_id")() for name in ("bos", "eos", "pad")}
        self.bos_id, self.eos_id, self.pad_id = (i if i >= 0 else None for i in ids.values())
        self.add_bos = self.bos_id is not None  # LLaMA's convention: every sequence starts with <s>
        self.vocab_size = self.sp.vocab_size()

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode(ids)

    def id_to_piece(self, i: int) -> str:
        return self.sp.id_to_piece(i)

    def piece_text(self, i: int) -> str:
        return _metaspace_text(self.sp.id_to_piece(i))


def _metaspace_text(piece: str) -> str:
    if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
        return chr(int(piece[3:5], 16))
    return piece.replace("\u2581", " ")


# ----------------------------------------------------------------------------- Hugging Face


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte <-> printable-character table, inverted (byte-level BPE pieces -> bytes)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _token_content(value: Any, where: str) -> str | None:
    """A special-token entry: a string, an AddedToken dict ({"content": ...}) or null."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    raise ValueError(f"{where}: expected a token string or {{'content': ...}}, got {value!r}")


def _id_list(value: Any, where: str) -> list[int]:
    """A config's *_token_id: null, an int or a list of ints."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{where}: expected an int or a list of ints, got {value!r}")
    return values


class _HuggingFace:
    kind = "huggingface"

    def __init__(self, path: Path):
        from tokenizers import Tokenizer as _Backend

        spec = _read_json(path)
        try:
            self.tok = _Backend.from_str(json.dumps(spec))
        except Exception as err:  # the Rust side raises a plain Exception
            raise BadInput(f"{path}: not a Hugging Face tokenizer.json ({err})") from err
        self.tok.encode_special_tokens = True  # text is text (see the module docstring)
        vocab = self.tok.get_vocab(with_added_tokens=True)
        self.vocab_size = max(vocab.values()) + 1
        self.added = set(self.tok.get_added_tokens_decoder())
        self.byte_level = '"ByteLevel"' in json.dumps(spec.get("decoder"))
        folder = path.parent
        self.companions = tuple(folder / n for n in HF_CONFIG_FILES if (folder / n).is_file())
        configs = {p.name: _read_json(p) for p in self.companions}
        if "generation_config.json" in configs:  # transformers reads config.json's ids only without it
            self.companions = tuple(p for p in self.companions if p.name != "config.json")
            configs.pop("config.json", None)

        tokens: dict[str, str | None] = {}
        for key in _SPECIAL_KEYS:
            found = {
                name: _token_content(configs[name][key], f"{folder / name}: {key}")
                for name in ("tokenizer_config.json", "special_tokens_map.json")
                if name in configs and key in configs[name]
            }
            if len(set(found.values())) > 1:
                raise ValueError(f"{folder}: {key} differs between tokenizer files: {found}")
            tokens[key] = next(iter(found.values()), None)

        def token_id(key: str) -> int | None:
            content = tokens[key]
            if content is None:
                return None
            i = vocab.get(content)
            if i is None:
                raise ValueError(f"{folder}: {key} {content!r} is not in the vocabulary of {path.name}")
            return i

        model_cfg_name = next((n for n in ("generation_config.json", "config.json") if n in configs), None)
        model_cfg = configs.get(model_cfg_name, {}) if model_cfg_name else {}

        def config_ids(key: str) -> list[int]:
            return _id_list(model_cfg.get(key), f"{folder / str(model_cfg_name)}: {key}")

        self.bos_id = token_id("bos_token")
        if self.bos_id is None and config_ids("bos_token_id"):
            self.bos_id = config_ids("bos_token_id")[0]
        self.eos_id = token_id("eos_token")
        self.extra_eos_ids = tuple(config_ids("eos_token_id"))
        if self.eos_id is None and self.extra_eos_ids:
            self.eos_id = self.extra_eos_ids[0]
        self.pad_id = token_id("pad_token")
        if self.pad_id is None and config_ids("pad_token_id"):
            self.pad_id = config_ids("pad_token_id")[0]
        self.add_bos = self._adds_bos(configs.get("tokenizer_config.json", {}), path)

    def _adds_bos(self, tokenizer_config: dict[str, Any], path: Path) -> bool:
        """Whether a sequence starts with BOS, decided as transformers decides it."""
        explicit = tokenizer_config.get("add_bos_token")
        if explicit is not None:  # transformers rebuilds the post-processor from this flag
            if explicit and self.bos_id is None:
                raise ValueError(f"{path.parent / 'tokenizer_config.json'}: add_bos_token is true but no bos_token")
            return bool(explicit)
        plain = self.tok.encode("a", add_special_tokens=False).ids
        full = self.tok.encode("a", add_special_tokens=True).ids
        start = next((i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain), None)
        prefix = full[:start] if start is not None else full
        if not prefix:
            return False
        if len(prefix) == 1 and self.bos_id in (None, prefix[0]):
            self.bos_id = prefix[0]
            return True
        raise ValueError(
            f"{path}: the post-processor starts a sequence with ids {prefix}, not with the bos_token id "
            f"{self.bos_id}; this tokenizer layout is not supported"
        )

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)

    def id_to_piece(self, i: int) -> str:
        piece = self.tok.id_to_token(i)
        if piece is None:
            raise IndexError(f"token id {i} is not in the vocabulary (size {self.vocab_size})")
        return piece

    def piece_text(self, i: int) -> str:
        piece = self.id_to_piece(i)
        if i in self.added:
            return piece
        if not self.byte_level:
            return _metaspace_text(piece)
        table = _byte_decoder()
        return bytes(table[c] for c in piece if c in table).decode("utf-8", errors="replace")


def train_sentencepiece(text_file: str | Path, out_prefix: str | Path, vocab_size: int) -> Path:
    """Train a small LLaMA-like BPE tokenizer (byte fallback, split digits, bos=1, eos=2).

    Used to make the micro model's own vocabulary from the local data, so the micro model can
    stay small (its embeddings dominate otherwise) and the demo needs nothing from a hub.
    """
    import sentencepiece as spm

    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=str(text_file),
        model_prefix=str(out_prefix),
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        split_digits=True,
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        character_coverage=1.0,
        allow_whitespace_only_pieces=True,
        hard_vocab_limit=False,
        max_sentence_length=1 << 16,
        num_threads=1,
        minloglevel=2,
        user_defined_symbols=["\n", "\t", "    "],
    )
    return out_prefix.with_suffix(".model")
