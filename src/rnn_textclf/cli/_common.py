"""What every command shares: exit codes, the user-error type, option types, logging and threads."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger("rnn_textclf.cli")

EXIT_OK = 0

EXIT_FAILURE = 1

EXIT_USAGE = 2


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _number_type(
    convert: Callable[[str], float], allowed: Callable[[float], bool], expected: str, name: str
) -> Callable[[str], Any]:
    """An argparse ``type``: ``convert(text)``, refused with "expected EXPECTED, got 'TEXT'" unless allowed."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not allowed(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = name
    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive integer", "_positive_int")
_positive_float = _number_type(float, lambda v: v > 0, "a positive number", "_positive_float")
_non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0", "_non_negative_int")
_unit_interval = _number_type(float, lambda v: 0 <= v <= 1, "a number in [0, 1]", "_unit_interval")
_seed = _number_type(int, lambda v: 0 <= v < 2**32, "an integer in [0, 2**32 - 1]", "_seed")
_steps = _number_type(int, lambda v: v == -1 or v >= 1, "a positive integer (or -1: off)", "_steps")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Appends "(default: X)" to the help of every option that has a default, so ``--help`` tells it.

    Options without a help text get one; flags (``store_true``) and options defaulting to None are left as
    they are. Call it after all options and ``set_defaults`` are in place.
    """
    for action in parser._actions:
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            continue
        if not action.option_strings or "default" in (action.help or ""):
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            continue  # argparse adds "(default: ...)" to these itself
        action.help = f"{action.help} (default: %(default)s)" if action.help else "default: %(default)s"


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Training libraries print progress to stdout; keep stdout for results. Log lines (``_info``, the
    library's warnings) go above the progress bars (``tqdm.write``) instead of into the bar's line."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    with contextlib.redirect_stdout(sys.stderr), logging_redirect_tqdm():
        yield


def _configure_threads(threads: int | None) -> None:
    """One torch thread unless asked otherwise.

    The CLI's recurrent models are small: a second intra-op thread gains little on a quiet machine, and on a
    busy one OpenMP threads that spin-wait for a core made the default training 8x slower (230 s vs 30 s).
    ``--threads N`` or ``OMP_NUM_THREADS`` choose otherwise.
    """
    import torch

    if threads is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return
        threads = 1
    torch.set_num_threads(threads)


def _configure_logging(quiet: bool) -> None:
    import transformers

    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr, force=True)
    logging.getLogger("rnn_textclf").setLevel(level)
    transformers.logging.set_verbosity_error()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets

    datasets.logging.set_verbosity_error()
    from huggingface_hub.utils import logging as hub_logging

    # huggingface_hub's logger has a handler of its own: its records (a connection's retries) also reached the
    # root handler above and were printed twice; --quiet leaves only errors
    hub_logging.disable_propagation()
    hub_logging.set_verbosity(logging.ERROR if quiet else logging.WARNING)
    # transformers' own bars ("Writing model shards" at every checkpoint, "Loading weights" when the best one is
    # loaded back) say nothing to a CLI user and break up the epoch table; the training bar (tqdm, from the
    # Trainer's ProgressCallback) is not one of them. transformers' switch also turns off huggingface_hub's
    # download/upload bars, which do tell the user something: those come back unless --quiet.
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars

    hub_bars_were_on = not are_progress_bars_disabled()
    transformers.utils.logging.disable_progress_bar()
    if quiet:
        datasets.disable_progress_bars()
    elif hub_bars_were_on:
        enable_progress_bars()


def _info(message: str) -> None:
    logger.info(message)
