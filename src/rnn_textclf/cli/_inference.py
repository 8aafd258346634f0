"""Loading a trained model for ``predict`` and ``evaluate`` (float, int8 or onnxruntime) and classifying texts."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._common import CLIError, _info, _positive_int

#: A multi-label model's text has a label when its sigmoid is at least this (as the metrics threshold them).
MULTI_LABEL_THRESHOLD = 0.5

#: Lines (rows) read, classified and written at a time by ``predict`` and ``evaluate``: enough to batch
#: by length well (16 batches of 256), few enough that the first results come within a second and
#: memory stays flat.
DEFAULT_CHUNK_SIZE = 4096


def _add_chunk_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"{what} read and classified at a time; memory grows with it (default {DEFAULT_CHUNK_SIZE})",
    )


def _progress(quiet: bool, what: str) -> Any:
    """A progress bar on stderr (lines done, lines/s) for inputs that take longer than a second.

    Silent under ``--quiet``, when stderr is not a terminal (a log file would fill with bar redraws) and
    when stdout is one (the results would be printed through the bar).
    """
    from tqdm.auto import tqdm

    quiet = quiet or not _is_terminal(sys.stderr) or _is_terminal(sys.stdout)
    return tqdm(
        desc=what, unit=" lines", unit_scale=True, file=sys.stderr, disable=quiet, delay=1.0, mininterval=0.5
    )


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def _stdout_gone() -> None:
    """Points stdout at the null device after a broken pipe (the reader, e.g. ``head``, has exited).

    Python flushes stdout again at exit; without this that flush fails a second time and prints
    "Exception ignored ... BrokenPipeError" (see the SIGPIPE note in the ``signal`` module's docs).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # stdout without a file descriptor: nothing to redirect
        pass
    finally:
        os.close(devnull)


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--revision", help="branch, tag or commit of a Hub MODEL (pin a commit to run what you checked)"
    )
    group = parser.add_argument_group("fast CPU inference")
    group.add_argument(
        "--quantize", action="store_true", help="run the LSTM/GRU and classifier in dynamic int8"
    )
    group.add_argument(
        "--onnx",
        action="store_true",
        help="run with onnxruntime (MODEL/model.onnx, or exported on the fly; needs the export extra)",
    )


def _refuse_regression(model: Any, name: str, command: str, instead: str) -> None:
    """``evaluate`` and ``predict`` give and score classes: a regression model's number would be lost."""
    if model.config.problem_type == "regression" or model.config.num_labels < 2:
        n = model.config.num_labels
        raise CLIError(
            f"{name!r} is a regression model ({'a number' if n == 1 else f'{n} numbers'} per text, not classes); "
            f"`rnn-textclf {command}` works with classifiers. {instead}"
        )


def _load_for_inference(args: argparse.Namespace, command: str, instead: str) -> tuple[Any, Any]:
    """The model as asked: float, dynamic int8 (``--quantize``) or onnxruntime (``--onnx``); a regression
    model is refused (`_refuse_regression`, with ``command`` and ``instead``) before it is converted."""
    if args.quantize and args.onnx:
        raise CLIError("use either --quantize or --onnx, not both.")
    model, tokenizer = _load_model_and_tokenizer(args.model, args.revision)
    _refuse_regression(model, args.model, command, instead)
    if getattr(model.config, "rnn_textclf_quantization", None) and not (args.quantize or args.onnx):
        _info(
            f"{args.model} was saved from an int8 model (QuantizedRNNClassifier): it runs in float here; pass "
            "--quantize to run it in int8 (or --onnx)."
        )
    if args.quantize:
        from ..export import quantize_dynamic

        try:
            model = quantize_dynamic(model)
        except ValueError as err:
            raise CLIError(f"--quantize: {str(err).splitlines()[0]}") from None
    elif args.onnx:
        from ..export import OnnxClassifier, export_onnx

        existing = Path(args.model) / "model.onnx"
        weights = Path(args.model) / "model.safetensors"
        # A model.onnx older than the weights beside it is out of date: exported again, not used.
        current = existing.is_file() and (
            not weights.is_file() or existing.stat().st_mtime >= weights.stat().st_mtime
        )
        import torch

        # the threads --threads / OMP_NUM_THREADS gave torch (`_configure_threads`): onnxruntime would
        # otherwise start one per core
        threads = torch.get_num_threads()
        try:
            onnx_model = _existing_onnx(existing, model, threads) if current else None
            if onnx_model is not None:
                model = onnx_model
            else:
                # Exported into a temporary folder (`export_onnx` checks it against the model) and read into
                # the onnxruntime session, which needs the file no more.
                with tempfile.TemporaryDirectory(prefix="rnn-textclf-onnx-") as folder:
                    exported = export_onnx(model, Path(folder) / "model.onnx")
                    model = OnnxClassifier(exported, num_threads=threads)
        except ImportError:
            raise CLIError('--onnx needs onnx and onnxruntime: pip install "rnn-textclf[export]"') from None
        except ValueError as err:
            raise CLIError(f"--onnx: {str(err).splitlines()[0]}") from None
    return model, tokenizer


def _existing_onnx(path: Path, model: Any, threads: int) -> Any:
    """The folder's model.onnx when it was exported from these weights, else None (exported again): another
    model's file, one written before the fingerprint was recorded, or a file onnxruntime cannot load."""
    from ..export import OnnxClassifier, weights_fingerprint

    try:
        onnx_model = OnnxClassifier(path, num_threads=threads)
    except (ImportError, OSError):
        raise
    except Exception as err:  # (onnxruntime's own error types as well as ValueError)
        _info(f"{path} cannot be loaded ({err}): exporting the model again.")
        return None
    if onnx_model.weights_fingerprint != weights_fingerprint(model):
        _info(f"{path} was not exported from this folder's weights: exporting the model again.")
        return None
    return onnx_model


def _load_model_and_tokenizer(name: str, revision: str | None = None) -> tuple[Any, Any]:
    from transformers import AutoTokenizer

    from ..modeling import RNNClassifier

    path = Path(name)
    if revision is not None and path.exists():
        raise CLIError(
            f"--revision {revision!r} is for a Hub repo id, but MODEL {name!r} is a local folder (it has no "
            "revisions); leave --revision out."
        )
    if path.exists() and not (path / "config.json").is_file():
        raise CLIError(
            f"MODEL {name!r} is not a saved rnn-textclf model (no config.json); pass the --output-dir of a "
            "training run or a Hub repo id."
        )
    if not path.exists() and len(path.parts) > 1 and path.parent.is_dir() and revision is None:
        # "runs/modle" where runs/ is a folder here: a typo of a local path, not a Hub repo id (asking the Hub
        # took ~30 s of retries offline)
        raise CLIError(
            f"MODEL {name!r} does not exist: the folder {str(path.parent)!r} has no {path.name!r}. (For a Hub repo "
            f"id whose owner is also a folder here, pass --revision main.)"
        )
    try:
        model = RNNClassifier.from_pretrained(name, revision=revision)
    except (OSError, ValueError) as err:
        where = "" if path.exists() else "there is no such folder here, and as a Hub repo id: "
        at = f" at --revision {revision!r}" if revision else ""
        raise CLIError(f"could not load MODEL {name!r}{at}: {where}{str(err).splitlines()[0]}") from None
    try:
        # trust_remote_code=False: transformers never asks on stdin (where predict's texts come from) whether
        # to run Python files of the folder (a config.json without model_type sends it to auto_map)
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise CLIError(
            f"could not load the tokenizer of MODEL {name!r}: {str(err).splitlines()[0]}"
        ) from None
    broken = model.non_finite_parameters()
    if broken:  # every score would be NaN (not JSON), every label the first class
        raise CLIError(
            f"MODEL {name!r} has NaN or infinite weights ({', '.join(broken)}): its training diverged. Use an "
            "earlier checkpoint, or train again with a lower --lr."
        )
    from ..trainer import check_tokenizer_fits_model

    try:  # (as RNNTrainer checks it: a tokenizer larger than the embedding failed at the first batch)
        check_tokenizer_fits_model(tokenizer, model.config)
    except ValueError as err:
        raise CLIError(
            f"the tokenizer of MODEL {name!r}: it is not the tokenizer the model was trained with. {err}"
        ) from None
    model.eval()
    return model, tokenizer


def _saved_max_length(tokenizer: Any) -> int | None:
    """Where a saved model's texts are cut: its tokenizer's ``model_max_length`` (``rnn-textclf train`` saves
    the recipe's ``max_length`` there, so predictions cut where training did; transformers' huge value for
    no limit, or none: ``None``, not cut)."""
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 10**9 else None


def _classify(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    top_k: int = 1,
    max_length: int | None = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k scores and class ids of ``texts``, batched by length, rows in input order.

    The texts are tokenized in one call, sorted by token count and cut into batches of ``batch_size``, so
    each batch is padded only to its own longest text (the packed RNN skips padding, but the embedding
    and the unpacked ONNX graph do not); the results are scattered back to input order.

    Returns:
        ``(scores, ids)``, both ``(len(texts), k)`` with ``k = min(top_k, num_labels)``: float32 softmax
        (or, for multi-label models, sigmoid) scores in descending order and their int64 class ids.
    """
    import torch

    from ..collator import PackedSequenceCollator

    k = min(top_k, model.config.num_labels)
    scores = np.empty((len(texts), k), dtype=np.float32)  # (n, k)
    ids = np.empty((len(texts), k), dtype=np.int64)  # (n, k)
    if not texts:
        return scores, ids
    collator = PackedSequenceCollator(tokenizer)
    multi = model.config.problem_type == "multi_label_classification"
    encoded = tokenizer(list(texts), truncation=max_length is not None, max_length=max_length)["input_ids"]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))  # (n,)
    order = np.argsort(lengths, kind="stable")  # (n,) shortest first
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]  # (batch,)
        batch = collator([{"input_ids": encoded[i]} for i in rows])
        with torch.no_grad():
            logits = model(**batch).logits  # (batch, num_labels)
        probs = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
        top = probs.topk(k, dim=-1)
        scores[rows] = top.values.numpy()
        ids[rows] = top.indices.numpy()
    return scores, ids


def predict_texts(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    top_k: int = 1,
    max_length: int | None = 512,
) -> list[dict[str, Any]]:
    """Classifies texts in input order: label, score and the top-k labels with scores.

    ``rnn-textclf predict`` calls it once per chunk of its input, so a caller with a very long input
    should do the same (memory grows with ``len(texts)``).

    Args:
        model: An ``RNNClassifier``, its ``QuantizedRNNClassifier`` or an ``OnnxClassifier``.
        tokenizer: The model's tokenizer.
        texts: The texts; an empty text gets the model's prediction for no tokens.
        batch_size: Texts per forward pass (batches are made of texts of similar length).
        top_k: How many labels to rank per text (at most the model's number of labels).
        max_length: Truncate each text to this many tokens (``None``: no truncation).

    Returns:
        One ``{"text", "label", "score", "top_k": [{"label", "score"}, ...]}`` per text, scores rounded to
        6 decimals; for a multi-label model also ``"labels"``: every label whose sigmoid is at least 0.5,
        highest first (possibly none), the labels the text has.
    """
    multi = model.config.problem_type == "multi_label_classification"
    # multi-label: every label is scored, to give those over the threshold whatever top_k is
    ranked_k = model.config.num_labels if multi else top_k
    scores, ids = _classify(
        model, tokenizer, texts, batch_size=batch_size, top_k=ranked_k, max_length=max_length
    )
    id2label = model.config.id2label
    results: list[dict[str, Any]] = []
    for text, values, indices in zip(texts, scores.tolist(), ids.tolist(), strict=True):
        ranked = [{"label": id2label[i], "score": round(v, 6)} for v, i in zip(values, indices, strict=True)]
        row = {
            "text": text,
            "label": ranked[0]["label"],
            "score": ranked[0]["score"],
            "top_k": ranked[:top_k],
        }
        if multi:
            row["labels"] = [
                r["label"] for r, v in zip(ranked, values, strict=True) if v >= MULTI_LABEL_THRESHOLD
            ]
        results.append(row)
    return results
