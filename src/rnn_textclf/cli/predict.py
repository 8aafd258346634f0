"""``rnn-textclf predict``: classify texts (arguments, ``--file`` or stdin) to JSON lines.

The input is streamed: read ``--chunk-size`` lines, classify them (batched by length), write their JSON
lines in input order, flush, read on. Memory stays flat whatever the input's size, the first results
appear after the first chunk, and the command works in a pipe (``zcat big.gz | rnn-textclf predict
MODEL > out.jsonl``; ``| head`` ends it quietly).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import select
import stat
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._common import EXIT_OK, CLIError, _positive_int, _show_defaults
from ._data import DATA_FORMATS, _format_suffix
from ._inference import (
    _add_chunk_option,
    _add_inference_options,
    _is_terminal,
    _load_for_inference,
    _progress,
    _saved_max_length,
    _stdout_gone,
    predict_texts,
)

#: The first chunk's size; chunks then double up to ``--chunk-size``, so the first results of a long input
#: come after a fraction of a second, not after a whole chunk.
FIRST_CHUNK_SIZE = 256

_GZIP_MAGIC = b"\x1f\x8b"
_FILE_BLOCK = 1 << 20
_PIPE_BLOCK = 1 << 16
# A pipe that has had nothing to read for this long is answered with what has come so far, so an
# interactive producer (`tail -f log | rnn-textclf predict ...`) sees results without waiting for a chunk;
# a slow but steady one is answered at least this often.
_IDLE_WAIT_S = 0.1
_MAX_WAIT_S = 1.0


def cmd_predict(args: argparse.Namespace) -> int:
    chunk_size = args.chunk_size
    for i, text in enumerate(args.texts, 1):  # (argv bytes that are not UTF-8 arrive as lone surrogates)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise CLIError(
                f"text argument {i} is not UTF-8 text (a byte that is not UTF-8 at character {err.start + 1}); "
                "convert it first (e.g. with iconv -f latin1 -t utf-8), or pass the texts in a --file."
            ) from None
    sources: list[Iterator[list[str]]] = [_batched(args.texts, chunk_size)]
    if args.file and args.file != "-":
        sources.append(_file_chunks(args.file, chunk_size))
    elif args.file == "-" and sys.stdin is not None:  # ("-" is stdin, as for cat and grep)
        sources.append(_stdin_chunks(chunk_size))
    elif not args.texts:
        if sys.stdin is None or _is_terminal(sys.stdin):
            raise CLIError("no texts: pass them as arguments, with --file F (one per line), or on stdin.")
        sources.append(_stdin_chunks(chunk_size))
    model, tokenizer = _load_for_inference(
        args,
        "predict",
        "Predict in Python: pipeline('text-classification', model=..., function_to_apply='none') gives the "
        "number as each text's score.",
    )
    out = getattr(sys.stdout, "buffer", None)
    max_length = _saved_max_length(tokenizer)  # where train cut the texts
    try:
        with _progress(args.quiet, "predict") as bar:
            for chunk in itertools.chain.from_iterable(sources):
                rows = predict_texts(
                    model,
                    tokenizer,
                    chunk,
                    batch_size=args.batch_size,
                    top_k=args.top_k,
                    max_length=max_length,
                )
                text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
                # JSON lines are UTF-8 whatever the locale says stdout's encoding is.
                if out is not None:
                    out.write(text.encode("utf-8"))
                    out.flush()
                else:
                    sys.stdout.write(text)
                    sys.stdout.flush()
                bar.update(len(chunk))
    except BrokenPipeError:  # the reader has gone (`| head`): what it wanted has been written
        _stdout_gone()
    return EXIT_OK


def _batched(texts: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


def _file_chunks(name: str, chunk_size: int) -> Iterator[list[str]]:
    """Opens ``--file`` (plain UTF-8 text or gzip, told by its first bytes) and yields its lines in chunks."""
    path = Path(name)
    if not path.is_file():
        raise CLIError(f"--file {name!r} does not exist (or is not a file); check the path.")
    data_suffix = _format_suffix(path)[0]
    if data_suffix in DATA_FORMATS:
        # its header, labels, quoting or JSON syntax would be classified as texts, one per line
        raise CLIError(
            f"--file {name!r} looks like a data file ({data_suffix}), but --file reads plain text, one text per "
            f"line. For labelled data use `rnn-textclf evaluate MODEL --test-file {name}`; to classify a column, "
            "write its texts one per line to a .txt file first."
        )
    with path.open("rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    return _read_file(path, name, compressed, chunk_size)


def _read_file(path: Path, name: str, compressed: bool, chunk_size: int) -> Iterator[list[str]]:
    source = f"--file {name!r}"
    with gzip.open(path, "rb") if compressed else path.open("rb", buffering=0) as handle:

        def read() -> bytes:
            try:
                return handle.read(_FILE_BLOCK)
            except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
                raise CLIError(f"could not read {source}: {err}") from None

        yield from _line_chunks(read, chunk_size, source=source)


def _stdin_chunks(chunk_size: int) -> Iterator[list[str]]:
    """Yields stdin's lines in chunks, read from its file descriptor (bytes, decoded as UTF-8)."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an in-memory stream (tests, notebooks)
        text = sys.stdin.read()
        blocks = iter([text.encode("utf-8")])
        yield from _line_chunks(lambda: next(blocks, b""), chunk_size, source="stdin")
        return
    mode = os.fstat(fd).st_mode
    pipe = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)
    idle = None
    if pipe and sys.platform != "win32":  # select() works on pipes only on POSIX

        def idle() -> bool:
            return not select.select([fd], [], [], _IDLE_WAIT_S)[0]

    yield from _line_chunks(
        lambda: os.read(fd, _PIPE_BLOCK if pipe else _FILE_BLOCK), chunk_size, source="stdin", idle=idle
    )


def _line_chunks(
    read: Callable[[], bytes],
    chunk_size: int,
    *,
    source: str,
    idle: Callable[[], bool] | None = None,
) -> Iterator[list[str]]:
    """Splits a byte stream into lists of lines: 256, 512, ... then ``chunk_size`` at most.

    A line ends at ``\\n`` (a ``\\r`` before it is dropped, for CRLF files); a last line without ``\\n``
    counts; an empty line is a line (it gets a prediction like any other). Blocks are cut at their last
    ``\\n`` before decoding, so a UTF-8 sequence is never split. ``idle()`` (pipes only) says the producer
    has paused: the lines read so far are then yielded without waiting for a full chunk, as they are
    when the oldest of them has waited a second.
    """
    size = min(FIRST_CHUNK_SIZE, chunk_size)
    pending: list[str] = []
    tail = bytearray()  # the unfinished last line of the blocks read so far
    done = 0  # lines decoded so far, for error messages
    since = 0.0  # when the oldest pending line was read
    while True:
        if pending and idle is not None and (idle() or time.monotonic() - since > _MAX_WAIT_S):
            yield pending
            pending = []
        block = read()
        if not block:
            break
        cut = block.rfind(b"\n")
        if cut < 0:
            tail += block
            continue
        data = bytes(tail) + block[: cut + 1]
        tail = bytearray(block[cut + 1 :])
        text = _decode(data, source, done)
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        lines.pop()  # the empty string after the block's last "\n"
        done += len(lines)
        if not pending:
            since = time.monotonic()
        pending.extend(lines)
        while len(pending) >= size:
            yield pending[:size]
            del pending[:size]
            size = min(2 * size, chunk_size)
            since = time.monotonic()
    if tail:
        pending.append(_decode(bytes(tail), source, done))
    if pending:
        yield pending


def _decode(data: bytes, source: str, lines_before: int) -> str:
    try:
        text = data.decode("utf-8")
        # a byte order mark (Notepad, Excel) is no part of the first text; train/evaluate drop it too
        return text[1:] if lines_before == 0 and text.startswith("\ufeff") else text
    except UnicodeDecodeError as err:
        line = lines_before + data.count(b"\n", 0, err.start) + 1
        column = err.start - data.rfind(b"\n", 0, err.start) - 1
        raise CLIError(
            f"{source}: line {line} is not UTF-8 text ({err.reason} at byte {column} of the line); "
            "convert the input first, e.g. iconv -f latin1 -t utf-8."
        ) from None


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds ``predict`` to the sub-command parsers."""
    predict = sub.add_parser(
        "predict",
        help="classify texts (arguments, --file or stdin) to JSON lines",
        description="Classify texts to JSON lines, one output line per input line, in input order. "
        "--file and stdin are streamed in chunks (constant memory; --file may be gzip), so "
        "`zcat big.gz | rnn-textclf predict MODEL > out.jsonl` works on any size.",
    )
    predict.add_argument("model", help="a model folder or Hub repo id")
    predict.add_argument(
        "texts",
        nargs="*",
        help="texts to classify (before the lines of --file); without texts and --file, the lines of stdin",
    )
    predict.add_argument(
        "--file", help="a UTF-8 text file, one text per line, or a gzip of one ('-': standard input)"
    )
    predict.add_argument("--top-k", type=_positive_int, default=1)
    predict.add_argument("--batch-size", type=_positive_int, default=256)
    _add_chunk_option(predict, "lines")
    predict.add_argument("--quiet", action="store_true")
    predict.add_argument(
        "--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)"
    )
    _add_inference_options(predict)
    predict.set_defaults(func=cmd_predict)
    _show_defaults(predict)
    return predict
