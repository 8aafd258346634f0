"""``rnn-textclf push``: upload a trained model folder to a Hub repo."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import EXIT_OK, CLIError, _info, _positive_int
from ._inference import _load_model_and_tokenizer

#: Suffixes of pickled files (``torch.save``/``pickle``); loading one can run arbitrary code.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle")


def _push(folder: Path, repo: str) -> None:
    """Uploads the model (safetensors, config, code, card named after ``repo``) and its tokenizer.

    The upload is written afresh from the loaded model and tokenizer, so nothing else in the folder goes
    up; a pickle there (e.g. ``training_args.bin`` of an older rnn-textclf) is named and left behind.
    """
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        _info(
            f"Not uploading {', '.join(pickles)}: pickled files are never pushed (loading one can run code); "
            "the model goes up as safetensors."
        )
    model, tokenizer = _load_model_and_tokenizer(str(folder))
    try:
        url = model.push_to_hub(repo, tokenizer=tokenizer)
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
