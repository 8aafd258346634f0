"""Loading a trained model for ``predict`` and ``evaluate`` (float, int8 or onnxruntime) and classifying texts."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._common import CLIError


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fast CPU inference")
    group.add_argument(
        "--quantize", action="store_true", help="run the LSTM/GRU and classifier in dynamic int8"
    )
    group.add_argument(
        "--onnx",
        action="store_true",
        help="run with onnxruntime (MODEL/model.onnx, or exported on the fly; needs the export extra)",
    )


def _load_for_inference(args: argparse.Namespace) -> tuple[Any, Any]:
    """The model as asked: float, dynamic int8 (``--quantize``) or onnxruntime (``--onnx``)."""
    if args.quantize and args.onnx:
        raise CLIError("use either --quantize or --onnx, not both.")
    model, tokenizer = _load_model_and_tokenizer(args.model)
    if args.quantize:
        from ..export import quantize_dynamic

        try:
            model = quantize_dynamic(model)
        except ValueError as err:
            raise CLIError(f"--quantize: {str(err).splitlines()[0]}") from None
    elif args.onnx:
        from ..export import OnnxClassifier, export_onnx

        existing = Path(args.model) / "model.onnx"
        try:
            if existing.is_file():
                model = OnnxClassifier(existing)
            else:
                # Export once into a temporary file; `export_onnx` checks it against the model.
                folder = Path(tempfile.mkdtemp(prefix="rnn-textclf-onnx-"))
                model = OnnxClassifier(export_onnx(model, folder / "model.onnx"))
        except ImportError:
            raise CLIError('--onnx needs onnx and onnxruntime: pip install "rnn-textclf[export]"') from None
        except ValueError as err:
            raise CLIError(f"--onnx: {str(err).splitlines()[0]}") from None
    return model, tokenizer


def _load_model_and_tokenizer(name: str) -> tuple[Any, Any]:
    from transformers import AutoTokenizer

    from ..modeling import RNNClassifier

    path = Path(name)
    if path.exists() and not (path / "config.json").is_file():
        raise CLIError(
            f"MODEL {name!r} is not a saved rnn-textclf model (no config.json); pass the --output-dir of a "
            "training run or a Hub repo id."
        )
    try:
        model = RNNClassifier.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise CLIError(f"could not load MODEL {name!r}: {str(err).splitlines()[0]}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise CLIError(
            f"could not load the tokenizer of MODEL {name!r}: {str(err).splitlines()[0]}"
        ) from None
    model.eval()
    return model, tokenizer


def predict_texts(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    top_k: int = 1,
    max_length: int | None = 512,
) -> list[dict[str, Any]]:
    """Classifies texts in input order: label, score and the top-k labels with scores."""
    import torch

    from ..collator import PackedSequenceCollator

    collator = PackedSequenceCollator(tokenizer)
    multi = model.config.problem_type == "multi_label_classification"
    id2label = model.config.id2label
    results: list[dict[str, Any]] = []
    k = min(top_k, model.config.num_labels)
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        enc = tokenizer(chunk, truncation=max_length is not None, max_length=max_length)
        batch = collator([{"input_ids": ids} for ids in enc["input_ids"]])
        with torch.no_grad():
            logits = model(**batch).logits
        scores = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
        top = scores.topk(k, dim=-1)
        for text, values, indices in zip(chunk, top.values.tolist(), top.indices.tolist(), strict=True):
            ranked = [
                {"label": id2label[i], "score": round(v, 6)} for v, i in zip(values, indices, strict=True)
            ]
            results.append(
                {"text": text, "label": ranked[0]["label"], "score": ranked[0]["score"], "top_k": ranked}
            )
    return results
