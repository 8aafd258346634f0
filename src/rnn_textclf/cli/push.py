"""``rnn-textclf push``: upload a trained model folder to a Hub repo."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import EXIT_OK, CLIError, _positive_int
from ._inference import _load_model_and_tokenizer


def _push(folder: Path, repo: str) -> None:
    model, tokenizer = _load_model_and_tokenizer(str(folder))
    try:
        url = model.push_to_hub(repo)
        tokenizer.push_to_hub(repo)
    except Exception as err:  # huggingface_hub raises many HTTP error types
        raise CLIError(f"could not push to {repo!r}: {str(err).splitlines()[0]} (is HF_TOKEN set?)") from None
    print(f"Pushed {folder} to {repo} ({url})")


def cmd_push(args: argparse.Namespace) -> int:
    _push(Path(args.model), args.repo)
    return EXIT_OK


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds ``push`` to the sub-command parsers."""
    push = sub.add_parser("push", help="upload a trained model folder to a Hub repo")
    push.add_argument("model", help="a model folder")
    push.add_argument("repo", help="the Hub repo id, e.g. acme/spam-lstm")
    push.add_argument("--quiet", action="store_true")
    push.add_argument("--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)")
    push.set_defaults(func=cmd_push)
    return push
