#!/usr/bin/env python
"""Convert a Meta or Hugging Face LLaMA checkpoint into a project bundle.

    python scripts/convert_checkpoint.py --format meta --src 7B_1T_4 --dst storage/models_v2/meta-llama-mtp \\
        --tokenizer tokenizer.model --dtype bfloat16
    python scripts/convert_checkpoint.py --format hf --src Sheared-LLaMA-2.7B --dst storage/models_v2/ref-sheared-2.7b

`meta` reads `consolidated.pth` + `params.json` (Meta's release layout, `vocab_size: -1` is taken
from the embedding); `hf` reads `config.json` + `model.safetensors`, sharded safetensors or
`.bin` files with an index, and un-permutes q/k rows (HF rotate-half -> Meta interleaved RoPE).
Tensors are streamed into the output one at a time.
"""

from __future__ import annotations

import argparse

from wmtp_lightning.models.convert import convert_hf, convert_meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--format", required=True, choices=["meta", "hf"])
    ap.add_argument("--src", required=True, help="source checkpoint folder")
    ap.add_argument("--dst", required=True, help="bundle folder to write")
    ap.add_argument("--tokenizer", help="tokenizer.model to include (HF: defaults to SRC/tokenizer.model)")
    ap.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="cast floating tensors")
    args = ap.parse_args(argv)
    fn = convert_meta if args.format == "meta" else convert_hf
    out = fn(args.src, args.dst, tokenizer=args.tokenizer, dtype=args.dtype)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
