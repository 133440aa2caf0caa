"""The Meta MTP transformer, its value head, tokenizer, bundles and checkpoint converters."""

from wmtp_lightning.models.bundle import bundle_tokenizer, load_bundle, read_metadata, save_bundle
from wmtp_lightning.models.tokenizer import Tokenizer
from wmtp_lightning.models.transformer import PRESETS, KVCache, ModelArgs, Transformer
from wmtp_lightning.models.value_head import ValueHead

__all__ = [
    "PRESETS",
    "KVCache",
    "ModelArgs",
    "Tokenizer",
    "Transformer",
    "ValueHead",
    "bundle_tokenizer",
    "load_bundle",
    "read_metadata",
    "save_bundle",
]
