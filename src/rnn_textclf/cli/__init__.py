"""The ``rnn-textclf`` command line: train, evaluate, predict and push recurrent text classifiers.

One module a command (``train``, ``evaluate``, ``predict``, ``push``), each with its ``add_parser``; the
private modules hold what several commands share (``_common``: errors, option types, logging;
``_data``: the data options; ``_inference``: loading a model to run; ``_output``: the output folder).

Progress goes to stderr, results to stdout. Bad input ends with one line on stderr saying what is wrong and
how to fix it, and exit status 2; nothing in an existing output folder is overwritten without
``--overwrite``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from . import evaluate, predict, push, train
from ._common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CLIError, _configure_logging, _configure_threads
from ._inference import predict_texts
from .train import TRAIN_DEFAULTS


def build_parser() -> argparse.ArgumentParser:
    """The ``rnn-textclf`` parser with its sub-commands."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="rnn-textclf",
        description="Train, evaluate, run and share RNN/LSTM/GRU text classifiers (Hugging Face compatible).",
    )
    parser.add_argument("--version", action="version", version=f"rnn-textclf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.train_parser = train.add_parser(sub)  # `--config FILE` sets this sub-parser's defaults
    evaluate.add_parser(sub)
    parser.predict_parser = predict.add_parser(sub)
    push.add_parser(sub)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``docker stop``, Slurm) ends a command as Ctrl-C does: staging removed,
    checkpoints kept; exit status 143."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # (signals go to the main thread)
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parse_args``, with ``predict``'s texts also taken after its options (``predict M --top-k 2 TEXT``)."""
    if argv[:1] != ["predict"]:
        return parser.parse_args(argv)
    # `--` ends the options wherever it stands (POSIX): what follows are texts, "-5 degrees" included
    cut = argv.index("--", 2) if "--" in argv[2:] else len(argv)
    args, extra = parser.parse_known_args(argv[:cut])
    unknown = [a for a in extra if a.startswith("-") and a != "-"]
    if unknown:
        parser.predict_parser.error(
            f"unrecognized arguments: {' '.join(unknown)} (a text that starts with '-': put -- before it)"
        )
    args.texts = [*args.texts, *extra, *argv[cut + 1 :]]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rnn-textclf``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = _parse(parser, argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    with _sigterm_as_interrupt():
        return _run(parser, args, argv)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str]) -> int:
    try:
        if args.command == "train":
            args = train._merge_config_file(parser, args, argv)
        _configure_logging(args.quiet)
        _configure_threads(args.threads)
        return args.func(args)
    except CLIError as err:
        print(f"rnn-textclf: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except _Terminated:
        print("rnn-textclf: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("rnn-textclf: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        if err.errno not in _WRITE_ERRNOS:
            raise
        # a full disk or quota, a read-only or failing drive (`> /dev/full`): what, where, no traceback
        where = f" ({err.filename})" if err.filename else ""
        print(f"rnn-textclf: error: could not write{where}: {err.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        _close_process_group()


# Write errors that no option fixes (a full disk, a read-only or failing drive): one line, exit 1.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def _close_process_group() -> None:
    """Ends the process group of a torchrun / accelerate launch run before the interpreter exits, as torch
    asks of every program that made one.

    (It was first written against a SIGABRT at exit, "terminate called without an active exception",
    which it did not remove: the group's threads live on with the DDP model after it. That abort's cause
    and fix are at ``trainer._pause_at_exit_for_collectives``.)
    """
    distributed = sys.modules.get("torch.distributed")  # never imported by a one-process command
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()


__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "TRAIN_DEFAULTS",
    "CLIError",
    "build_parser",
    "main",
    "predict_texts",
]
