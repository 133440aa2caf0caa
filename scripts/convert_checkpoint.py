#!/usr/bin/env python
"""Convert a Meta, Hugging Face or GGUF LLaMA checkpoint (or a bundle) into a project bundle.

    python scripts/convert_checkpoint.py --format meta --src 7B_1T_4 --dst storage/models_v2/meta-llama-mtp \\
        --tokenizer tokenizer.model --dtype bfloat16
    python scripts/convert_checkpoint.py --format hf --src Sheared-LLaMA-2.7B --dst storage/models_v2/ref-sheared-2.7b
    python scripts/convert_checkpoint.py --format gguf --src SmolLM2-135M-Instruct.Q4_1.gguf \\
        --dst storage/models_v2/smollm2-135m                       # pip install -e '.[gguf]'
    python scripts/convert_checkpoint.py --format bundle --src storage/models_v2/smollm2-135m \\
        --dst storage/models_v2/smollm2-135m-mtp4 --n-future-tokens 4

`meta` reads `consolidated.pth` + `params.json` (Meta's release layout, `vocab_size: -1` is taken
from the embedding); `hf` reads `config.json` (as transformers 4.x or 5.x writes it) +
`model.safetensors`, sharded safetensors or `.bin` files with an index, and un-permutes q/k rows
(HF rotate-half -> Meta interleaved RoPE); `gguf` dequantizes a llama.cpp file through
transformers into a temporary HF folder and converts that; `bundle` re-writes a bundle (dtype,
heads). The tokenizer comes with the source: `--tokenizer`, else SRC's tokenizer.json (+ its
small json companions) or tokenizer.model. Tensors are streamed into the output one at a time.

--n-future-tokens N turns a next-token model (L blocks) into an MTP model with N heads:
trunk = its first L-1 blocks, and every head starts as a copy of its last block. Head 1 is then
the original model exactly (same logits); heads 2..N predict further ahead once fine-tuned from
there. The alternative, trunk = all L blocks and N fresh heads on top, would make head 1 a new,
untrained block: the converted model would no longer be the pretrained model at step 0.

Errors are one line naming the file and the problem (exit status 1); --debug (or WMTP_DEBUG=1)
shows the traceback.
"""

from __future__ import annotations

from wmtp_lightning.errors import ArgumentParser, BadInput, script_main
from wmtp_lightning.models.convert import convert_bundle, convert_gguf, convert_hf, convert_meta


@script_main
def main(argv: list[str] | None = None) -> None:
    ap = ArgumentParser(description=__doc__)
    ap.add_argument("--format", required=True, choices=["meta", "hf", "gguf", "bundle"])
    ap.add_argument("--src", required=True, help="source folder (meta, hf, bundle) or .gguf file")
    ap.add_argument("--dst", required=True, help="bundle folder to write")
    ap.add_argument("--tokenizer", help="meta/hf: tokenizer file or folder (default: the one in SRC)")
    ap.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="cast floating tensors")
    ap.add_argument(
        "--n-future-tokens",
        type=int,
        metavar="N",
        help="make an MTP model with N heads from a next-token model (trunk = first L-1 blocks, "
        "every head initialised from the last block; head 1 reproduces the source exactly)",
    )
    args = ap.parse_args(argv)
    if args.tokenizer and args.format in ("gguf", "bundle"):
        ap.error(f"--tokenizer is not used with --format {args.format} (the source carries its tokenizer)")
    kw = {"dtype": args.dtype, "n_future_tokens": args.n_future_tokens}
    if args.format in ("meta", "hf"):
        kw["tokenizer"] = args.tokenizer
    fn = {"meta": convert_meta, "hf": convert_hf, "gguf": convert_gguf, "bundle": convert_bundle}[args.format]
    try:
        out = fn(args.src, args.dst, **kw)
    except (ValueError, KeyError, ImportError) as err:  # the converters' `file: what is wrong` lines
        raise BadInput(str(err.args[0]) if isinstance(err, KeyError) else str(err)) from err
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
