"""``rnn-textclf evaluate``: score a trained model on labelled data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ._common import EXIT_OK, CLIError, _positive_int, _show_defaults
from ._data import (
    _add_data_options,
    _check_text_features,
    _encode_labels,
    _joined_texts,
    _label_ids,
    _load_files,
    _refuse_repeated_columns,
    _say_empty_texts,
    _text_columns,
)
from ._inference import (
    _add_chunk_option,
    _add_inference_options,
    _classify,
    _load_for_inference,
    _progress,
    _saved_max_length,
    _stdout_gone,
)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..metrics import classification_metrics, multilabel_metrics

    if args.json not in (None, "-"):  # checked before the work, not after it
        target = Path(args.json)
        if target.is_dir() or not target.absolute().parent.is_dir():
            raise CLIError(
                f"--json {args.json!r}: {'that is a folder' if target.is_dir() else 'its folder does not exist'}; "
                "give a file path in an existing folder (or '-' to print the JSON)."
            )
        # the two files an easy slip would replace with the metrics: the labelled data, and the training
        # run's metrics.json (docs: `--json metrics.json`) or any other file of the model's folder
        if target.exists() and target.resolve() == Path(args.test_file).resolve():
            raise CLIError(
                f"--json {args.json!r} is the --test-file: writing the metrics there would replace the data. "
                "Give another path."
            )
        model_folder = Path(args.model)
        if target.exists() and model_folder.is_dir() and target.resolve().parent == model_folder.resolve():
            raise CLIError(
                f"--json {args.json!r} would replace {target.name} of the model folder {args.model!r} (train "
                "wrote its metrics.json there); give another file name."
            )
    model, tokenizer = _load_for_inference(
        args,
        "evaluate",
        "Score it in Python (trainer.evaluate with compute_metrics reports mse).",
    )
    data = _load_files({"test": args.test_file}, args.csv_column_names)["test"]
    text_columns = _text_columns(args, data.column_names)
    # Checked on the Arrow schema up front, so the per-chunk joins below cannot fail half-way.
    _check_text_features(data, text_columns, "test")
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    multi = model.config.problem_type == "multi_label_classification"
    labels = _read_labels(args, data, names, multi)  # (rows,) class ids, or (rows, labels) 0/1
    scores = np.empty((len(data), len(names) if multi else 1), dtype=np.float32)  # (rows, k)
    pred_ids = np.empty((len(data), scores.shape[1]), dtype=np.int64)  # (rows, k)
    # The data stays in its memory-mapped Arrow file; only one chunk of texts is in Python at a time.
    done = empty = 0
    max_length = _saved_max_length(tokenizer)  # where train cut the texts
    with _progress(args.quiet, "evaluate") as bar:
        for columns in data.select_columns(text_columns).iter(batch_size=args.chunk_size):
            texts = _joined_texts(columns, text_columns, "test")
            empty += texts.count("")
            top, ids = _classify(
                model,
                tokenizer,
                texts,
                batch_size=args.batch_size,
                max_length=max_length,
                top_k=scores.shape[1],
            )
            scores[done : done + len(texts)], pred_ids[done : done + len(texts)] = top, ids
            done += len(texts)
            bar.update(len(texts))
    _say_empty_texts(empty, "test")
    if multi:  # every label's sigmoid score, in id order
        every = np.empty_like(scores)
        np.put_along_axis(every, pred_ids, scores, axis=1)
        metrics = multilabel_metrics(labels, every)
    else:
        metrics = classification_metrics(labels, pred_ids[:, 0], names)
    metrics["rows"] = len(labels)
    try:
        _report(metrics, names, args.json)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        _stdout_gone()
    return EXIT_OK


def _report(metrics: dict[str, Any], names: list[str], json_path: str | None) -> None:
    if json_path == "-":
        print(json.dumps(metrics, indent=2))
        return
    if json_path:  # before printing, so that a closed stdout cannot lose it
        Path(json_path).write_text(json.dumps(metrics, indent=2) + "\n")
    if "exact_match" in metrics:  # multi-label
        print(
            f"rows {metrics['rows']}  exact match {metrics['exact_match']:.4f}  micro F1 {metrics['micro_f1']:.4f}  "
            f"macro F1 {metrics['macro_f1']:.4f}"
        )
        return
    print(f"rows {metrics['rows']}  accuracy {metrics['accuracy']:.4f}  macro F1 {metrics['macro_f1']:.4f}")
    print(f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name in names:
        row = metrics["per_class"][name]
        print(
            f"{name:<14}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10}"
        )


def _read_labels(args: argparse.Namespace, data: Any, names: list[str], multi: bool) -> np.ndarray:
    """The file's labels as the model's classes: ``(rows,)`` class ids, or for a multi-label model
    ``(rows, labels)`` 0/1 from one column per label (named as the labels, as ``train`` read them)."""
    given = args.label_column or []
    where = repr(args.test_file)
    _refuse_repeated_columns(given)
    if multi:
        columns = given or names
        if sorted(columns) != sorted(names):
            raise CLIError(
                f"--label-column {', '.join(columns)}: the model is multi-label with the labels {', '.join(names)}; "
                f"{where} needs a 0/1 column named as each (leave --label-column out to read them all)."
            )
        missing = [c for c in names if c not in data.column_names]
        if missing:
            raise CLIError(
                f"the model is multi-label: {where} needs a 0/1 column for each of its labels, and lacks "
                f"{', '.join(missing)}; columns are {', '.join(data.column_names)}."
            )
        plan = {"problem_type": "multi_label_classification", "columns": names}
        return np.asarray(_encode_labels(data, plan, where, "the model's"), dtype=np.float32)
    if len(given) > 1:
        raise CLIError(
            f"--label-column is given {len(given)} times ({', '.join(given)}), but the model is single-label (one "
            "class per text): give its label column once."
        )
    column = given[0] if given else "label"
    if column not in data.column_names:
        raise CLIError(
            f"--label-column {column!r} is not in {where}; columns are {', '.join(data.column_names)}."
        )
    return _label_ids(data, column, {name: i for i, name in enumerate(names)}, where, "the model's")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds ``evaluate`` to the sub-command parsers."""
    evaluate = sub.add_parser("evaluate", help="score a trained model on labelled data")
    evaluate.add_argument("model", help="a model folder or Hub repo id")
    _add_data_options(evaluate, train=False)
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)
    _add_chunk_option(evaluate, "rows")
    evaluate.add_argument(
        "--json", metavar="PATH", help="also write the metrics as JSON ('-': print JSON only)"
    )
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.add_argument(
        "--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)"
    )
    _add_inference_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)
    _show_defaults(evaluate)
    return evaluate
