"""``rnn-textclf evaluate``: score a trained model on labelled data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._common import EXIT_OK, CLIError, _positive_int, _show_defaults
from ._data import _add_data_options, _joined_texts, _load_files, _text_columns
from ._inference import _add_inference_options, _load_for_inference, predict_texts


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..metrics import classification_metrics

    model, tokenizer = _load_for_inference(args)
    data = _load_files({"test": args.test_file}, args.csv_column_names)["test"]
    text_columns = _text_columns(args, data.column_names)
    label_column = args.label_column or "label"
    if label_column not in data.column_names:
        raise CLIError(
            f"--label-column {label_column!r} is not in {args.test_file!r}; columns are "
            f"{', '.join(data.column_names)}."
        )
    texts = _joined_texts(data, text_columns, "test")
    label2id = {str(k): v for k, v in model.config.label2id.items()}
    labels = []
    for row, value in enumerate(data[label_column]):
        key = str(value)
        if key not in label2id:
            raise CLIError(
                f"label {value!r} in row {row} is not one of the model's labels ({', '.join(label2id)})."
            )
        labels.append(label2id[key])
    preds = predict_texts(model, tokenizer, texts, batch_size=args.batch_size)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    pred_ids = [label2id[str(p["label"])] for p in preds]
    metrics = classification_metrics(labels, pred_ids, names)
    metrics["rows"] = len(labels)
    if args.json == "-":
        print(json.dumps(metrics, indent=2))
        return EXIT_OK
    print(f"rows {len(labels)}  accuracy {metrics['accuracy']:.4f}  macro F1 {metrics['macro_f1']:.4f}")
    print(f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name in names:
        row = metrics["per_class"][name]
        print(
            f"{name:<14}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2) + "\n")
    return EXIT_OK


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds ``evaluate`` to the sub-command parsers."""
    evaluate = sub.add_parser("evaluate", help="score a trained model on labelled data")
    evaluate.add_argument("model", help="a model folder or Hub repo id")
    _add_data_options(evaluate, train=False)
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)
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
