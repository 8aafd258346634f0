"""Length bucketing inside a shuffle buffer over streamed data sets, and training from streamed shards."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, load_dataset
from torch.utils.data import DataLoader
from transformers import TrainerCallback, TrainingArguments

from rnn_textclf import (
    LengthBucketedStream,
    PackedSequenceCollator,
    RNNClassifier,
    RNNClassifierConfig,
    RNNTokenizer,
    RNNTrainer,
    bucket_stream,
)
from rnn_textclf.metrics import make_compute_metrics


def rows_with_lengths(lengths):
    return [{"input_ids": [1] * int(n), "idx": i} for i, n in enumerate(lengths)]


class Counting:
    """An iterable of rows that counts how many rows were taken from it."""

    def __init__(self, rows):
        self.rows = rows
        self.pulled = 0
        self.epochs: list[int] = []

    def __iter__(self):
        for row in self.rows:
            self.pulled += 1
            yield row

    def set_epoch(self, epoch):
        self.epochs.append(epoch)


def padding_fraction(batches) -> float:
    real = padded = 0
    for batch in batches:
        lengths = np.array([len(row["input_ids"]) for row in batch])
        real += lengths.sum()
        padded += (lengths.max() - lengths).sum()
    return padded / (real + padded)


@pytest.fixture(scope="module")
def sst2_lengths(shared_data) -> np.ndarray:
    """Word counts of 20,000 real SST-2 training sentences (a skewed, realistic length distribution)."""
    with (shared_data / "sst2" / "sst2_train.csv").open(newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    return np.array([max(1, len(t.split())) for t in texts[:20000]])


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize(
    ("n", "buffer_size"), [(0, 64), (5, 64), (64, 64), (1000, 96), (1001, 100), (777, 2000)]
)
def test_every_row_once_full_batches_then_the_short_one(n, buffer_size, shuffle):
    rng = np.random.default_rng(n)
    rows = rows_with_lengths(rng.integers(1, 60, size=n))
    stream = bucket_stream(rows, batch_size=32, buffer_size=buffer_size, shuffle=shuffle, seed=1)
    batches = list(stream.iter_batches())
    assert sorted(row["idx"] for b in batches for row in b) == list(range(n))
    assert all(len(b) == 32 for b in batches[:-1])
    if n:
        assert len(batches[-1]) == (n % 32 or 32)
    # __iter__ yields the same rows flat, so a DataLoader with batch_size=32 cuts exactly these batches.
    assert [row["idx"] for row in stream] == [row["idx"] for b in batches for row in b]
    dropped = list(
        bucket_stream(rows, 32, buffer_size, shuffle=shuffle, seed=1, drop_last=True).iter_batches()
    )
    assert all(len(b) == 32 for b in dropped) and len(dropped) == n // 32


def test_buffer_bounds_the_rows_held(sst2_lengths):
    source = Counting(rows_with_lengths(sst2_lengths[:5000]))
    stream = bucket_stream(source, batch_size=32, buffer_size=640)
    emitted = 0
    for batch in stream.iter_batches():
        emitted += len(batch)
        # Rows taken from the source but not yet handed out: at most one buffer.
        assert source.pulled - emitted <= 640
    assert emitted == source.pulled == 5000


def test_length_grouping_cuts_padding_on_real_lengths(sst2_lengths):
    rows = rows_with_lengths(sst2_lengths)
    shuffled = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    random_batches = [shuffled[i : i + 32] for i in range(0, len(shuffled), 32)]
    bucketed = list(bucket_stream(shuffled, batch_size=32, buffer_size=3200, seed=0).iter_batches())
    random_pad, bucket_pad = padding_fraction(random_batches), padding_fraction(bucketed)
    assert random_pad > 0.4  # SST-2 sentences run from 1 to 50+ words
    assert bucket_pad < 0.1 * random_pad, (random_pad, bucket_pad)


def test_batches_are_random_yet_seeded(sst2_lengths):
    rows = rows_with_lengths(sst2_lengths[:3000])

    def order(seed, epoch=0):
        stream = bucket_stream(rows, batch_size=32, buffer_size=320, seed=seed)
        stream.set_epoch(epoch)
        return [row["idx"] for row in stream]

    assert order(0) == order(0)
    assert order(0) != order(1) and order(0) != order(0, epoch=1)
    first = order(0)
    # A shuffle buffer: rows leave in a different order than they came, and some travel far.
    displacement = np.abs(np.array(first) - np.arange(len(first)))
    assert np.median(displacement) > 32 and displacement.max() > 1000


def test_set_epoch_reaches_the_source():
    source = Counting(rows_with_lengths([3, 4, 5]))
    stream = bucket_stream(source, batch_size=2)
    stream.set_epoch(3)
    assert source.epochs == [3] and stream.epoch == 3


def _ids_through_workers(stream, *, persistent: bool = False, epochs: int = 1) -> list[list[int]]:
    loader = DataLoader(
        stream,
        batch_size=None,
        num_workers=2,
        persistent_workers=persistent,
        collate_fn=lambda row: row["id"],
    )
    passes = []
    for epoch in range(epochs):
        stream.set_epoch(epoch)
        passes.append(list(loader))
    return passes


def test_workers_read_a_list_once_and_persistent_workers_see_the_epoch():
    rows = [{"input_ids": [1] * (1 + i % 7), "id": i} for i in range(100)]
    # A source that does not shard itself by worker (a list, a map-style Dataset) was read whole by each
    # worker: every row twice with num_workers=2.
    (ids,) = _ids_through_workers(bucket_stream(rows, batch_size=4))
    assert sorted(ids) == list(range(100))
    (ids,) = _ids_through_workers(bucket_stream(Dataset.from_list(rows), batch_size=4))
    assert sorted(ids) == list(range(100))
    # Persistent workers keep their copy of the stream: the epoch (the buffer's seed) must reach them.
    first, second = _ids_through_workers(bucket_stream(rows, batch_size=4), persistent=True, epochs=2)
    assert sorted(first) == sorted(second) == list(range(100)) and first != second


def test_a_buffer_larger_than_the_stream_costs_nothing():
    rows = [{"input_ids": [1, 2]}] * 10
    assert len(list(bucket_stream(rows, batch_size=4, buffer_size=10**11))) == 10  # (was 745 GiB up front)


def test_length_column_is_preferred_and_checked():
    rows = [{"input_ids": [1, 2, 3], "length": 3}, {"input_ids": [1], "length": [1]}]
    assert sorted(len(r["input_ids"]) for r in bucket_stream(rows, 1, 2)) == [1, 3]
    with pytest.raises(ValueError, match=r"neither 'length' nor `input_ids`.*tokenize the stream first"):
        list(bucket_stream([{"text": "hello"}], 1))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_size": 0}, ValueError, "`batch_size` must be a positive integer, got 0"),
        ({"batch_size": True}, ValueError, "`batch_size` must be a positive integer"),
        ({"batch_size": 32, "buffer_size": 16}, ValueError, "`buffer_size` must be an integer of at least"),
        ({"batch_size": 8, "dataset": "some text"}, TypeError, "iterable of rows"),
        ({"batch_size": 8, "dataset": 5}, TypeError, "iterable of rows"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    kwargs.setdefault("dataset", [])
    with pytest.raises(error, match=message):
        bucket_stream(**kwargs)


def test_buffer_size_rounds_up_to_whole_batches():
    assert bucket_stream([], batch_size=32, buffer_size=100).buffer_size == 128
    assert bucket_stream([], batch_size=32).buffer_size == 3200
    assert isinstance(bucket_stream([], 4), LengthBucketedStream)


def write_shards(rows, folder: Path, fmt: str, shards: int) -> list[str]:
    """Writes AG News rows (label 1-4, title, description) into `shards` files of one format."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(shards):
        part = rows[s::shards]
        records = {
            "label": [int(r[0]) - 1 for r in part],
            "text": [f"{r[1]} {r[2]}" for r in part],
        }
        path = folder / f"part-{s:03d}.{ {'csv': 'csv', 'json': 'jsonl', 'parquet': 'parquet'}[fmt] }"
        if fmt == "csv":
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["label", "text"])
                writer.writerows(zip(records["label"], records["text"], strict=True))
        elif fmt == "json":
            with path.open("w", encoding="utf-8") as handle:
                for label, text in zip(records["label"], records["text"], strict=True):
                    handle.write(json.dumps({"label": label, "text": text}) + "\n")
        else:
            Dataset.from_dict(records).to_parquet(str(path))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def ag_rows(shared_data):
    with (shared_data / "ag_news_csv" / "test.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_streamed_shards_through_a_dataloader_with_workers(ag_rows, tmp_path, fmt):
    files = write_shards(ag_rows[:600], tmp_path / fmt, fmt, shards=4)
    stream = load_dataset(fmt, data_files=files, split="train", streaming=True)
    tokenizer = RNNTokenizer.train_from_dataset(stream, text_column="text")
    tokens = stream.map(lambda b: tokenizer(b["text"], return_length=True), batched=True)
    rows = bucket_stream(tokens, batch_size=16, buffer_size=64, seed=0)
    # Two workers: datasets gives each worker two of the four shards, each worker buckets its own rows.
    loader = DataLoader(rows, batch_size=16, collate_fn=PackedSequenceCollator(tokenizer), num_workers=2)
    seen = Counter()
    for batch in loader:
        assert batch["lengths"].dtype == torch.int64 and batch["input_ids"].shape[1] == batch["lengths"].max()
        seen.update(batch["labels"].tolist())
    assert sum(seen.values()) == 600
    assert seen == Counter(int(r[0]) - 1 for r in ag_rows[:600])


class FirstStepProbe(TrainerCallback):
    def __init__(self, counter):
        self.counter = counter
        self.pulled_at_first_step = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.pulled_at_first_step is None:
            self.pulled_at_first_step = self.counter["rows"]


def test_train_on_a_stream_of_shards_without_materialising_it(ag_rows, tmp_path):
    """Vocab from one streamed pass, then RNNTrainer on the bucketed stream; rows are read as needed."""
    train_rows, test_rows = ag_rows[:6000], ag_rows[6000:7000]
    files = write_shards(train_rows, tmp_path / "shards", "csv", shards=6)
    stream = load_dataset("csv", data_files=files, split="train", streaming=True)
    assert stream.n_shards == 6
    tokenizer = RNNTokenizer.train_from_dataset(stream, text_column="text", min_freq=2)
    expected = RNNTokenizer.train_from_iterator((f"{r[1]} {r[2]}" for r in train_rows), min_freq=2)
    assert tokenizer.get_vocab() == expected.get_vocab()  # same vocab as from the texts in memory

    counter = {"rows": 0}

    def tokenize(batch):
        counter["rows"] += len(batch["text"])
        return tokenizer(batch["text"], truncation=True, max_length=128, return_length=True)

    tokens = stream.map(tokenize, batched=True, batch_size=100, remove_columns=["text"])
    train = bucket_stream(tokens.shuffle(seed=0, buffer_size=500), batch_size=32, buffer_size=640, seed=0)
    test = Dataset.from_dict(
        {"text": [f"{r[1]} {r[2]}" for r in test_rows], "label": [int(r[0]) - 1 for r in test_rows]}
    ).map(lambda b: tokenizer(b["text"], truncation=True, max_length=128), batched=True)

    torch.manual_seed(0)
    model = RNNClassifier(
        RNNClassifierConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            num_labels=4,
            embedding_dim=32,
            hidden_size=32,
            rnn_type="gru",
            bidirectional=True,
            pooling="max",
        )
    )
    probe = FirstStepProbe(counter)
    collator = PackedSequenceCollator(tokenizer)
    trainer = RNNTrainer(
        model=model,
        args=TrainingArguments(
            str(tmp_path / "out"),
            per_device_train_batch_size=32,
            per_device_eval_batch_size=128,
            learning_rate=5e-3,
            max_steps=6000 // 32,  # about one pass; a stream has no length
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            save_strategy="no",
            seed=0,
        ),
        train_dataset=train,
        eval_dataset=test,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=make_compute_metrics("single_label_classification", ["1", "2", "3", "4"]),
        callbacks=[probe],
    )
    trainer.train()
    # The first step ran after reading about two buffers' worth of rows, not the 6,000-row stream.
    assert probe.pulled_at_first_step is not None and probe.pulled_at_first_step <= 500 + 640 + 2 * 100
    train_padding = collator.padding_fraction
    metrics = trainer.evaluate()
    assert metrics["eval_accuracy"] > 0.6, metrics  # 4 classes: chance is 0.25
    assert train_padding < 0.15, train_padding  # length-grouped (random batches of these rows: ~0.4)
