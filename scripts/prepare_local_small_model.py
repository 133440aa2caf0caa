#!/usr/bin/env python
"""Make the micro models for CPU/MPS debugging: `micro-mtp` (4 heads) and `micro-ref` (1 head).

    python scripts/prepare_local_small_model.py --from-scratch            # own tokenizer, random init
    python scripts/prepare_local_small_model.py --from-scratch --text corpus.txt --vocab-size 2048
    python scripts/prepare_local_small_model.py --from-bundle storage/models_v2/meta-llama-mtp \\
        --trunk-layers 0,1 --heads 4 --dim 512                              # structural slice (see below)

--from-scratch trains a small SentencePiece BPE tokenizer (byte fallback, so any text encodes) on
the project's local problems (or --text) and initialises both models at random. Sizes: dim 256,
2 trunk blocks + H heads, 8 query / 4 kv heads; with a 1k vocabulary that is ~5 M parameters
(~10 MB fp16), so a CPU training step takes well under a second. The seed's spec (dim 512, 4
layers, vocab 32000, < 50 MB fp16) cannot hold: its two 32000x512 embedding tables alone are 65 MB.

--from-bundle keeps the chosen trunk blocks and the first --heads heads of a real bundle, and
the first --dim channels of every matrix. This is structural, not quality-preserving: the result
has real shapes, keys and tokenizer but is not a good model. micro-ref is the same slice with
one head (n_future_tokens = 1) and shares the tokenizer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from wmtp_lightning.data.local_problems import corpus_text
from wmtp_lightning.errors import ArgumentParser, BadInput, MissingInput, script_main
from wmtp_lightning.models.bundle import bundle_tokenizer, load_bundle, save_bundle, tokenizer_path
from wmtp_lightning.models.micro import from_scratch, micro_args, slice_model
from wmtp_lightning.models.tokenizer import Tokenizer, train_sentencepiece


@script_main
def main(argv: list[str] | None = None) -> list[Path]:
    ap = ArgumentParser(description=__doc__)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--from-scratch", action="store_true", help="random init + own tokenizer")
    mode.add_argument("--from-bundle", metavar="DIR", help="slice a real bundle (structural only)")
    ap.add_argument("--dst", default="storage/models_v2", help="folder that receives the bundles")
    ap.add_argument("--name", default="micro-mtp")
    ap.add_argument("--ref-name", default="micro-ref", help="n_future_tokens=1 sibling ('' to skip)")
    ap.add_argument("--heads", type=int, default=4, help="n_future_tokens of the MTP model")
    ap.add_argument("--text", help="--from-scratch: tokenizer training text (default: the local problems)")
    ap.add_argument("--vocab-size", type=int, default=1024, help="--from-scratch: tokenizer vocabulary")
    ap.add_argument("--tokenizer", help="--from-scratch: use this tokenizer instead of training one")
    ap.add_argument("--trunk-layers", help="--from-bundle: comma-separated trunk block indices to keep")
    ap.add_argument("--dim", type=int, help="--from-bundle: keep this many channels")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--target-device", default="cpu", choices=["cpu", "mps", "cuda"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        return _make(args)
    except ValueError as err:  # a corrupt bundle or tokenizer: the library's `file: what is wrong` line
        raise BadInput(str(err)) from err


def _make(args) -> list[Path]:
    dst = Path(args.dst)
    extra = {"target_device": args.target_device}
    if args.from_scratch:
        with tempfile.TemporaryDirectory() as tmp:
            if args.tokenizer:
                tok_path = Path(args.tokenizer)
            else:
                text = Path(args.text).read_text() if args.text else corpus_text()
                corpus = Path(tmp) / "corpus.txt"
                corpus.write_text(text)
                tok_path = train_sentencepiece(corpus, Path(tmp) / "tokenizer", args.vocab_size)
            vocab = Tokenizer(tok_path).vocab_size
            models = {args.name: from_scratch(micro_args(vocab, args.heads), args.seed)}
            if args.ref_name:
                models[args.ref_name] = from_scratch(micro_args(vocab, 1), args.seed + 1)
            source = {"kind": "from_scratch", "seed": args.seed, "tokenizer_vocab": vocab}
            out = _save(models, dst, tok_path, args.dtype, source, extra)
    else:
        src = Path(args.from_bundle)
        if not (src / "metadata.json").is_file():
            raise MissingInput(f"{src}: bundle not found (no metadata.json)")
        try:
            layers = [int(x) for x in args.trunk_layers.split(",")] if args.trunk_layers else None
        except ValueError:
            raise BadInput(
                f"--trunk-layers: expected comma-separated block indices, got {args.trunk_layers!r}"
            ) from None
        base = load_bundle(src)
        models = {args.name: slice_model(base, layers, args.heads, args.dim)}
        if args.ref_name:
            models[args.ref_name] = slice_model(base, layers, 1, args.dim)
        bundle_tokenizer(src, base.args)  # checks the tokenizer matches before copying it
        source = {
            "kind": "sliced (structural, not quality-preserving)",
            "from": str(src),
            "trunk_layers": layers,
            "dim": args.dim,
        }
        out = _save(models, dst, tokenizer_path(src), args.dtype, source, extra)
    for path in out:
        print(f"wrote {path}")
    return out


def _save(models: dict, dst: Path, tokenizer: Path, dtype: str, source: dict, extra: dict) -> list[Path]:
    names = list(models)
    out = []
    for name, model in models.items():
        meta = {
            **extra,
            "tokenizer_shared_with": [n for n in names if n != name],
            "n_future_tokens": model.args.n_future_tokens,
        }
        out.append(save_bundle(model, dst / name, tokenizer=tokenizer, dtype=dtype, source=source, extra=meta))
    return out


if __name__ == "__main__":
    main()
