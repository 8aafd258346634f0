"""``rnn-textclf predict``: classify texts (arguments, ``--file`` or stdin) to JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ._common import EXIT_OK, CLIError, _positive_int, _show_defaults
from ._inference import _add_inference_options, _load_for_inference, predict_texts


def cmd_predict(args: argparse.Namespace) -> int:
    texts = list(args.texts)
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise CLIError(f"--file {args.file!r} does not exist.")
        texts.extend(line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines())
    if not texts and not args.file:
        if sys.stdin is None or sys.stdin.isatty():
            raise CLIError("no texts: pass them as arguments, with --file F (one per line), or on stdin.")
        texts = [line.rstrip("\n") for line in sys.stdin]
    model, tokenizer = _load_for_inference(args)
    for row in predict_texts(model, tokenizer, texts, batch_size=args.batch_size, top_k=args.top_k):
        print(json.dumps(row, ensure_ascii=False))
    return EXIT_OK


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds ``predict`` to the sub-command parsers."""
    predict = sub.add_parser("predict", help="classify texts (arguments, --file or stdin) to JSON lines")
    predict.add_argument("model", help="a model folder or Hub repo id")
    predict.add_argument("texts", nargs="*", help="texts to classify")
    predict.add_argument("--file", help="a text file, one text per line")
    predict.add_argument("--top-k", type=_positive_int, default=1)
    predict.add_argument("--batch-size", type=_positive_int, default=256)
    predict.add_argument("--quiet", action="store_true")
    predict.add_argument(
        "--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)"
    )
    _add_inference_options(predict)
    predict.set_defaults(func=cmd_predict)
    _show_defaults(predict)
    return predict
