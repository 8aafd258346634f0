"""Length bucketing for streamed corpora: batches of similar length drawn from a bounded shuffle buffer.

A ``datasets.load_dataset(..., streaming=True)`` data set (an ``IterableDataset``) never sits in memory, so
[`BucketBatchSampler`][rnn_textclf.BucketBatchSampler], which needs every row's length up front, cannot
sort it. [`bucket_stream`][rnn_textclf.bucket_stream] does the same job inside a buffer of
``buffer_size`` rows: it sorts the buffer by length, hands out one randomly chosen run of ``batch_size``
neighbours, refills those slots from the stream and repeats. Memory stays at one buffer however long the
stream is; padding is close to a global sort once the buffer holds a few dozen batches.

```python
from datasets import load_dataset
from rnn_textclf import RNNTokenizer, RNNTrainer, bucket_stream

stream = load_dataset("csv", data_files="shards/*.csv", split="train", streaming=True)
tokenizer = RNNTokenizer.train_from_dataset(stream, text_column="text", min_freq=2)  # one pass, bounded
tokens = stream.map(
    lambda b: tokenizer(b["text"], truncation=True, max_length=256, return_length=True),
    batched=True,
    remove_columns=["text"],
)
train = bucket_stream(tokens.shuffle(seed=0, buffer_size=10_000), batch_size=32)
trainer = RNNTrainer(model=model, args=TrainingArguments(..., per_device_train_batch_size=32, max_steps=5000),
                     train_dataset=train, processing_class=tokenizer)
```
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)


class LengthBucketedStream(torch.utils.data.IterableDataset):
    """Rows of a stream, reordered so that every run of ``batch_size`` rows has similar lengths.

    Made by [`bucket_stream`][rnn_textclf.bucket_stream]; see there for the arguments. Iterating yields
    rows (what ``Trainer`` and ``DataLoader(stream, batch_size=batch_size, collate_fn=collator)`` expect);
    [`iter_batches`][rnn_textclf.LengthBucketedStream.iter_batches] yields the lists of rows.
    A short batch, when the stream length is not a multiple of ``batch_size``, comes last, so a
    ``DataLoader`` with the same batch size cuts exactly these batches.
    """

    def __init__(
        self,
        dataset: Iterable[Mapping[str, Any]],
        batch_size: int,
        *,
        buffer_size: int | None = None,
        length_column: str = "length",
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        if buffer_size is None:
            buffer_size = 100 * batch_size
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < batch_size:
            raise ValueError(
                f"`buffer_size` must be an integer of at least `batch_size` ({batch_size}), got {buffer_size!r}; "
                "a few dozen batches (e.g. 100 * batch_size) give little padding."
            )
        if not isinstance(dataset, Iterable) or isinstance(dataset, (str, bytes, Mapping)):
            raise TypeError(
                f"`dataset` must be an iterable of rows (e.g. a datasets.IterableDataset), got {type(dataset).__name__}."
            )
        self.dataset = dataset
        self.batch_size = batch_size
        # Whole batches: every row of a full buffer belongs to exactly one candidate batch.
        self.buffer_size = -(-buffer_size // batch_size) * batch_size
        self.length_column = length_column
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        # In shared memory (as datasets keeps its own): persistent DataLoader workers, made once, then
        # see each new epoch too; a plain int would stay 0 in their copies (the same batches every epoch).
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        """The epoch that seeds the buffer (see `set_epoch`)."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Reseeds the buffer for ``epoch`` and passes it on to the source (``datasets`` reshuffles shards).

        ``Trainer`` (through ``accelerate``) calls it at the start of every epoch.
        """
        self._epoch.fill_(int(epoch))
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def _rows(self) -> Iterator[Any]:
        """The source's rows for this DataLoader worker. A ``datasets.IterableDataset`` gives each worker
        its own shards; any other source is read whole by every worker, so each takes every n-th row
        (without this, ``num_workers=n`` would yield every row n times)."""
        info = torch.utils.data.get_worker_info()
        rows = iter(self.dataset)
        datasets = sys.modules.get("datasets")
        if info is None or info.num_workers == 1:
            return rows
        if datasets is not None and isinstance(self.dataset, datasets.IterableDataset):
            return rows
        return itertools.islice(rows, info.id, None, info.num_workers)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.iter_batches():
            yield from batch

    def _length(self, row: Mapping[str, Any], index: int) -> int:
        value = row.get(self.length_column) if isinstance(row, Mapping) else None
        if value is None:
            if not isinstance(row, Mapping) or "input_ids" not in row:
                keys = sorted(row) if isinstance(row, Mapping) else type(row).__name__
                raise ValueError(
                    f"Row {index} of the stream has neither {self.length_column!r} nor `input_ids` ({keys}); "
                    "tokenize the stream first, e.g. stream.map(lambda b: tokenizer(b['text'], "
                    "return_length=True), batched=True)."
                )
            return len(row["input_ids"])
        if isinstance(value, (list, tuple)):  # tokenizer(..., return_length=True) on one text gives [n]
            value = value[0]
        return int(value)

    def _rng(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        return np.random.default_rng([self.seed, self.epoch, worker])

    def iter_batches(self) -> Iterator[list[dict[str, Any]]]:
        """Yields lists of ``batch_size`` rows of similar length (the last may be shorter).

        With ``shuffle=True`` the buffer is a shuffle buffer: after filling it, each step sorts it by length
        (ties in random order), yields one uniformly chosen run of ``batch_size`` neighbours and refills
        those slots from the stream. When the stream ends, the rest is sorted, cut into batches and yielded
        in random order, the short batch last. With ``shuffle=False`` the stream is cut into buffers that
        are each sorted and yielded shortest first (deterministic, still bounded).
        """
        rng = self._rng()
        size, width = self.buffer_size, self.batch_size
        stream = self._rows()
        buffer: list[Any] = []
        # grown as rows come (doubling, up to `size`): a buffer larger than the stream costs nothing
        lengths = np.zeros(min(size, 1024), dtype=np.float64)
        seen = 0
        for row in stream:
            if len(buffer) == len(lengths):
                lengths = np.concatenate([lengths, np.zeros(min(len(lengths), size - len(lengths)))])
            lengths[len(buffer)] = self._length(row, seen)
            buffer.append(row)
            seen += 1
            if len(buffer) == size:
                if not self.shuffle:
                    yield from self._drain(buffer, lengths[:size], rng, final=False)
                    buffer = []
                    continue
                break
        if self.shuffle and len(buffer) == size:
            candidates = size // width
            exhausted = False
            while not exhausted:
                order = np.argsort(lengths + rng.random(size), kind="stable")
                start = int(rng.integers(candidates)) * width
                chosen = order[start : start + width]
                yield [buffer[i] for i in chosen]
                for slot in chosen:
                    row = next(stream, None)
                    if row is None:
                        exhausted = True
                        lengths[slot] = -1.0  # marks an empty slot
                        buffer[slot] = None
                        continue
                    lengths[slot] = self._length(row, seen)
                    buffer[slot] = row
                    seen += 1
            keep = [i for i in range(size) if buffer[i] is not None]
            buffer = [buffer[i] for i in keep]
            lengths = lengths[keep]
        yield from self._drain(buffer, lengths[: len(buffer)], rng, final=True)

    def _drain(
        self, rows: list[Any], lengths: np.ndarray, rng: np.random.Generator, *, final: bool
    ) -> Iterator[list[Any]]:
        if not rows:
            return
        keys = lengths + rng.random(len(rows)) if self.shuffle else lengths
        order = np.argsort(keys, kind="stable")
        batches = [order[i : i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
        short = batches.pop() if len(batches[-1]) < self.batch_size else None
        if self.shuffle:
            rng.shuffle(batches)
        if short is not None and not (final and self.drop_last):
            batches.append(short)  # last, so a DataLoader with this batch size cuts the same batches
        for batch in batches:
            yield [rows[i] for i in batch]


def bucket_stream(
    dataset: Iterable[Mapping[str, Any]],
    batch_size: int,
    buffer_size: int | None = None,
    *,
    length_column: str = "length",
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
) -> LengthBucketedStream:
    """Groups a stream of tokenized rows into batches of similar length, in bounded memory.

    Works on a ``datasets.IterableDataset`` (``load_dataset(..., streaming=True)``, shards of CSV, JSON
    Lines or Parquet) or any iterable of row dicts, and gives a ``torch.utils.data.IterableDataset`` for
    ``Trainer`` (set ``max_steps``: a stream has no length) or a plain ``DataLoader``. Shuffle the source
    too (``stream.shuffle(seed=..., buffer_size=...)`` reorders the shards and mixes rows across them);
    this buffer then only decides which rows share a batch.

    Under DDP (torchrun, accelerate launch) pass ``TrainingArguments(accelerator_config={"dispatch_batches":
    False})`` and ``batch_size=per_device_train_batch_size * world_size``: every rank then reads the stream
    and keeps its share of each block of ``batch_size`` rows, one length group. (accelerate's default for
    iterable data sets, rank 0 reading and sending out batches, needs batches of one width and broadcasts
    the CPU ``lengths``, which NCCL cannot.)

    Args:
        dataset: Rows with ``input_ids`` and, ideally, the tokenizer's ``length`` column
            (``tokenizer(texts, return_length=True)``); other columns (labels) pass through.
        batch_size: Rows per batch; use the ``DataLoader``'s (``per_device_train_batch_size``) so its
            batches coincide with the length groups.
        buffer_size: Rows held at once (default ``100 * batch_size``; rounded up to whole batches). Larger
            means less padding and more mixing, and more memory.
        length_column: Column holding each row's token count; rows without it are measured with
            ``len(row["input_ids"])``.
        shuffle: Random batches from a sliding buffer (training). ``False``: consecutive buffers each
            sorted by length, deterministic (for evaluation, when the order of rows does not matter).
        seed: Seed of the buffer's choices; epoch ``e`` and DataLoader worker ``w`` use ``(seed, e, w)``.
        drop_last: Drop the final short batch.

    Returns:
        A [`LengthBucketedStream`][rnn_textclf.LengthBucketedStream].

    Raises:
        ValueError: For a non-positive ``batch_size`` or a ``buffer_size`` smaller than it, and (while
            iterating) for rows with neither ``length_column`` nor ``input_ids``.
        TypeError: If ``dataset`` is not an iterable of rows.

    Example:
        ```python
        from torch.utils.data import DataLoader

        rows = bucket_stream(tokenized_stream, batch_size=32, buffer_size=3200, seed=0)
        loader = DataLoader(rows, batch_size=32, collate_fn=PackedSequenceCollator(tokenizer))
        ```
    """
    return LengthBucketedStream(
        dataset,
        batch_size,
        buffer_size=buffer_size,
        length_column=length_column,
        shuffle=shuffle,
        seed=seed,
        drop_last=drop_last,
    )


__all__ = ["LengthBucketedStream", "bucket_stream"]
