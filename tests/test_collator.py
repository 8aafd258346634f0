from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_textclf import BucketBatchSampler, PackedBatch, PackedSequenceCollator

PAD = 7


def rows(lengths, label=True, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i, n in enumerate(lengths):
        row = {"input_ids": rng.integers(8, 100, size=n).tolist(), "text": f"t{i}"}
        if label:
            row["label"] = i % 3
        out.append(row)
    return out


def test_shapes_dtypes_padding_value_and_cpu_lengths():
    collator = PackedSequenceCollator(pad_token_id=PAD, vocab_size=100)
    features = rows([4, 1, 0, 6])
    batch = collator(features)
    assert isinstance(batch, PackedBatch)
    assert set(batch) == {"input_ids", "attention_mask", "lengths", "labels"}
    assert batch["input_ids"].shape == (4, 6) and batch["input_ids"].dtype == torch.int64
    assert batch["attention_mask"].dtype == torch.int64
    assert batch["lengths"].dtype == torch.int64 and batch["lengths"].device.type == "cpu"
    assert batch["lengths"].tolist() == [4, 1, 0, 6]
    assert batch["labels"].tolist() == [0, 1, 2, 0] and batch["labels"].dtype == torch.int64
    for i, row in enumerate(features):
        n = len(row["input_ids"])
        assert batch["input_ids"][i, :n].tolist() == row["input_ids"]
        # padding uses the tokenizer's pad id, not a literal 0
        assert (batch["input_ids"][i, n:] == PAD).all()
        assert batch["attention_mask"][i].tolist() == [1] * n + [0] * (6 - n)
    assert collator.padding_fraction == pytest.approx((24 - 11) / 24)


def test_pad_id_and_vocab_come_from_the_tokenizer():
    class Tok:
        pad_token_id = 5

        def __len__(self):
            return 20

    collator = PackedSequenceCollator(Tok())
    batch = collator([{"input_ids": [6, 7]}, {"input_ids": [8]}])
    assert batch["input_ids"][1].tolist() == [8, 5]
    assert "labels" not in batch
    with pytest.raises(ValueError, match=r"Token id 20 is outside the tokenizer's vocab \[0, 20\)"):
        collator([{"input_ids": [6, 20]}])


def test_vocab_bound_follows_tokens_added_after_the_collator_was_built():
    # transformers' flow: collator built, then tok.add_tokens(...) and model.resize_token_embeddings(len(tok))
    from rnn_textclf import RNNTokenizer

    tok = RNNTokenizer.train_from_iterator(["free prize now", "see you soon", "call me now"])
    collator = PackedSequenceCollator(tok)
    size = len(tok)
    tok.add_tokens(["covid19"])
    ids = tok("covid19 free prize")["input_ids"]
    assert ids[0] == size  # the new token's id: one past the vocab the collator was built with
    batch = collator([{"input_ids": ids}, {"input_ids": tok("see")["input_ids"]}])
    assert batch["input_ids"][0].tolist() == ids and collator.vocab_size == size + 1
    with pytest.raises(
        ValueError, match=rf"Token id {size + 1} is outside the tokenizer's vocab \[0, {size + 1}\)"
    ):
        collator([{"input_ids": [size + 1]}])
    # a bound given as vocab_size= stays (the model's embedding size), and the error says where it came from
    fixed = PackedSequenceCollator(tok, vocab_size=size)
    with pytest.raises(ValueError, match=rf"outside the vocab \[0, {size}\) given as vocab_size={size}"):
        fixed([{"input_ids": ids}])


def test_truncation_and_pad_to_multiple_of():
    collator = PackedSequenceCollator(pad_token_id=PAD, max_length=3, pad_to_multiple_of=4)
    batch = collator(rows([5, 2]))
    assert batch["lengths"].tolist() == [3, 2]
    assert batch["input_ids"].shape == (2, 4)


def test_all_empty_batch():
    batch = PackedSequenceCollator(pad_token_id=PAD)(rows([0, 0]))
    assert batch["input_ids"].shape == (2, 0)
    assert batch["lengths"].tolist() == [0, 0]


def test_label_kinds():
    collator = PackedSequenceCollator(pad_token_id=PAD)
    multi = collator([{"input_ids": [9], "labels": [1, 0, 1]}, {"input_ids": [9, 9], "labels": [0, 0, 1]}])
    assert multi["labels"].dtype == torch.float32 and multi["labels"].shape == (2, 3)
    reg = collator([{"input_ids": [9], "label": 0.5}, {"input_ids": [9], "label": 2.0}])
    assert reg["labels"].dtype == torch.float32
    custom = PackedSequenceCollator(pad_token_id=PAD, label_column="topic")([{"input_ids": [9], "topic": 3}])
    assert custom["labels"].tolist() == [3]
    forced = PackedSequenceCollator(pad_token_id=PAD, label_kind="regression")(
        [{"input_ids": [9], "label": 3}]
    )
    assert forced["labels"].dtype == torch.float32
    # a class id per row as a list of one ([2]) for a model of several classes (RNNTrainer sets num_labels):
    # class ids (batch,), as transformers' models read them (was refused as a multi-label row of 1 column)
    rows = [{"input_ids": [9], "labels": [2]}, {"input_ids": [9, 9], "labels": [0]}]
    for kwargs in ({"num_labels": 4}, {"label_kind": "single_label_classification"}):
        ids = PackedSequenceCollator(pad_token_id=PAD, **kwargs)(rows)["labels"]
        assert ids.dtype == torch.int64 and ids.tolist() == [2, 0], kwargs
    # without the number of classes a 0/1 column stays one multi-label output
    assert PackedSequenceCollator(pad_token_id=PAD)(rows[1:])["labels"].shape == (1, 1)


@pytest.mark.parametrize(
    ("features", "error", "match"),
    [
        ([{"text": "no ids"}], ValueError, "Each row needs `input_ids`"),
        (
            [{"input_ids": [9], "label": 1}, {"input_ids": [9]}],
            ValueError,
            r"1 of the batch's 2 rows \(batch positions \[1\]\) have no 'label'.*all labelled or all unlabelled",
        ),
        ([{"input_ids": [9], "label": "sports"}], TypeError, "class_encode_column"),
        ([{"input_ids": [9], "label": 1.5}, {"input_ids": [9], "label": 2}], None, None),
        ([], ValueError, "empty list"),
        ({"input_ids": [[9]]}, TypeError, "list of rows"),
        (
            [{"input_ids": [9], "labels": [1, 0]}, {"input_ids": [9], "labels": [1]}],
            ValueError,
            "different widths",
        ),
    ],
)
def test_bad_rows(features, error, match):
    collator = PackedSequenceCollator(pad_token_id=PAD)
    if error is None:  # fractional labels are regression targets under "auto"
        assert collator(features)["labels"].dtype == torch.float32
        forced = PackedSequenceCollator(pad_token_id=PAD, label_kind="single_label_classification")
        with pytest.raises(TypeError, match="integer class ids"):
            forced(features)
        return
    with pytest.raises(error, match=match):
        collator(features)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "needs a pad id"),
        ({"pad_token_id": 0, "max_length": 0}, "max_length"),
        ({"pad_token_id": 0, "pad_to_multiple_of": -8}, "pad_to_multiple_of"),
        ({"pad_token_id": 0, "label_kind": "ranking"}, "label_kind"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PackedSequenceCollator(**kwargs)


def test_to_keeps_lengths_on_cpu():
    batch = PackedSequenceCollator(pad_token_id=PAD)(rows([3, 1]))
    moved = batch.to("meta")
    assert moved["input_ids"].device.type == "meta"
    assert moved["lengths"].device.type == "cpu"
    # a dtype is not a device: ids 2049 would become 2048 in float16 (BatchEncoding.to refuses it too)
    with pytest.raises(TypeError, match=r"got the dtype torch.float16.*must stay integers"):
        batch.to(torch.float16)


def test_reset_stats_zeroes_the_padding_counters():
    collator = PackedSequenceCollator(pad_token_id=PAD)
    collator(rows([4, 1, 0, 6]))  # 11 real tokens in 24 positions
    assert (collator.real_tokens, collator.padded_tokens) == (11, 13)
    collator.reset_stats()
    assert (collator.real_tokens, collator.padded_tokens, collator.padding_fraction) == (0, 0, 0.0)
    collator(rows([2, 2]))  # counting starts again from this batch alone: no padding in it
    assert (collator.real_tokens, collator.padded_tokens, collator.padding_fraction) == (4, 0, 0.0)


def test_pin_memory_and_the_device_path():
    features = rows([3, 1, 5])
    plain = PackedSequenceCollator(pad_token_id=PAD)(features)
    accelerator = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None
    if accelerator is not None:
        pinned = PackedSequenceCollator(pad_token_id=PAD)(features).pin_memory()
        assert isinstance(pinned, PackedBatch)
        assert all(pinned[key].is_pinned() for key in plain)
        moved = PackedSequenceCollator(pad_token_id=PAD, device=accelerator)(features)
        target = accelerator.type
    else:
        # Without an accelerator torch cannot pin host memory at all; the collator's device= path then
        # copies without pinning (to "meta" here, the one other device a CPU-only torch has).
        with pytest.raises(RuntimeError):
            PackedSequenceCollator(pad_token_id=PAD)(features).pin_memory()
        moved = PackedSequenceCollator(pad_token_id=PAD, device="meta")(features)
        target = "meta"
    assert isinstance(moved, PackedBatch)
    for key in ("input_ids", "attention_mask", "labels"):
        assert moved[key].device.type == target, key
        assert moved[key].shape == plain[key].shape and moved[key].dtype == plain[key].dtype
        if target != "meta":
            assert torch.equal(moved[key].cpu(), plain[key]), key
    # pack_padded_sequence wants the lengths on the CPU: they are never moved.
    assert moved["lengths"].device.type == "cpu" and torch.equal(moved["lengths"], plain["lengths"])
    # device="cpu" is the plain batch, not a pinned one.
    on_cpu = PackedSequenceCollator(pad_token_id=PAD, device="cpu")(features)
    assert all(torch.equal(on_cpu[key], plain[key]) and not on_cpu[key].is_pinned() for key in plain)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 999), max_size=12), min_size=1, max_size=20))
def test_collator_never_drops_duplicates_or_reorders_rows(id_lists):
    features = [{"input_ids": ids, "label": i} for i, ids in enumerate(id_lists)]
    batch = PackedSequenceCollator(pad_token_id=1000, vocab_size=1001)(features)
    assert batch["labels"].tolist() == list(range(len(id_lists)))
    for i, ids in enumerate(id_lists):
        n = int(batch["lengths"][i])
        assert n == len(ids)
        assert batch["input_ids"][i, :n].tolist() == ids


def test_bucket_sampler_covers_every_row_once_and_reduces_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=1000)
    sampler = BucketBatchSampler(lengths, batch_size=32, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 32
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))

    def padding(batches):
        pad = sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)
        return pad / sum(len(b) * lengths[b].max() for b in batches)

    random_batches = [list(range(i, min(i + 32, 1000))) for i in range(0, 1000, 32)]
    assert padding(batches) < 0.1 < padding(random_batches)
    sampler.set_epoch(1)
    assert list(sampler) != batches  # reshuffled per epoch
    ordered = list(BucketBatchSampler(lengths, batch_size=32, shuffle=False))
    assert [lengths[b].max() for b in ordered] == sorted(lengths[b].max() for b in ordered)
    assert len(list(BucketBatchSampler(lengths, batch_size=300, drop_last=True))) == 3
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler(lengths, batch_size=0)


# ---------------------------------------------------------------- the in-memory table RNNTrainer feeds
def _same_batch(a, b):
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 99), max_size=15), min_size=1, max_size=30),
    st.sampled_from(["int", "float", "bool", "multi", "none"]),
    st.sampled_from([None, 1, 4]),
    st.data(),
)
def test_table_rows_make_the_same_batch_as_arrow_rows(id_lists, label_kind, max_length, data):
    """A batch gathered from `_TokenTable` equals the batch of the data set's own rows, bit for bit."""
    from datasets import Dataset

    from rnn_textclf.collator import _TokenRows, _TokenTable

    n = len(id_lists)
    columns = {"input_ids": id_lists, "text": [f"t{i}" for i in range(n)]}
    if label_kind != "none":
        columns["label"] = {
            "int": [i % 3 for i in range(n)],
            "float": [i / 7 for i in range(n)],
            "bool": [i % 2 == 0 for i in range(n)],
            "multi": [[i % 2, 1 - i % 2, 1] for i in range(n)],
        }[label_kind]
    ds = Dataset.from_dict(columns)
    if n > 2:  # an indices mapping, as after shuffle/select
        ds = ds.shuffle(seed=0).select(range(n - 1))
    table = _TokenTable.from_dataset(ds)
    assert table is not None and len(table) == len(ds)
    assert table.lengths.tolist() == [len(ids) for ids in ds["input_ids"]]
    indices = data.draw(st.lists(st.integers(0, len(ds) - 1), min_size=1, max_size=12))
    collator = PackedSequenceCollator(pad_token_id=100, vocab_size=101, max_length=max_length, num_labels=3)
    batch_rows = table.__getitems__(indices)
    assert isinstance(batch_rows, _TokenRows)
    try:
        expected = collator([ds[i] for i in indices])
    except ValueError as err:  # float/bool labels for a 3-class model: the same error either way
        with pytest.raises(ValueError, match=re.escape(str(err))):
            collator(batch_rows)
    else:
        _same_batch(expected, collator(batch_rows))
    # rows of the table read like the data set's (any collator can use them)
    assert [batch_rows[j] for j in range(len(indices))] == [
        {k: v for k, v in ds[i].items() if k != "text"} for i in indices
    ]


def test_table_keeps_the_collator_errors_and_declines_what_it_cannot_hold():
    from datasets import Dataset

    from rnn_textclf.collator import _TokenTable

    collator = PackedSequenceCollator(pad_token_id=0, vocab_size=10, num_labels=2)
    bad_class = _TokenTable.from_dataset(Dataset.from_dict({"input_ids": [[1], [2]], "label": [0, 5]}))
    with pytest.raises(ValueError, match=r"Label 5 \(row 1 of the batch"):
        collator(bad_class.__getitems__([0, 1]))
    bad_id = _TokenTable.from_dataset(Dataset.from_dict({"input_ids": [[1], [12]], "label": [0, 1]}))
    with pytest.raises(ValueError, match="Token id 12 is outside"):
        collator(bad_id.__getitems__([0, 1]))
    # a custom label column is read when the collator names it
    topic = Dataset.from_dict({"input_ids": [[1], [2]], "topic": [1, 0]})
    named = PackedSequenceCollator(pad_token_id=0, label_column="topic")
    assert named(_TokenTable.from_dataset(topic, label_column="topic").__getitems__([1, 0]))[
        "labels"
    ].tolist() == [0, 1]
    # nulls, text labels or no ids: no table (the caller keeps the Arrow rows and the collator's errors)
    assert _TokenTable.from_dataset(Dataset.from_dict({"input_ids": [[1], [2]], "label": [0, None]})) is None
    assert _TokenTable.from_dataset(Dataset.from_dict({"input_ids": [[1], None], "label": [0, 1]})) is None
    assert _TokenTable.from_dataset(Dataset.from_dict({"input_ids": [[1], [2]], "label": ["a", "b"]})) is None
    assert _TokenTable.from_dataset(Dataset.from_dict({"text": ["a"]})) is None
    # the `length` column (when there is one) is what samplers get
    with_length = Dataset.from_dict({"input_ids": [[1, 2], [2]], "length": [5, 1]})
    assert _TokenTable.from_dataset(with_length).lengths.tolist() == [5, 1]


def test_a_streamed_csv_with_an_empty_label_cell_gets_a_fix_that_works_on_streams(shared_data, tmp_path):
    # datasets' CSV reader makes the whole label column floats when one cell is empty: every batch of the
    # file fails, also those without that row, so the message names the likely cause and a stream's fix
    import csv

    import datasets

    with open(shared_data / "sst2" / "sst2_train.csv", newline="", encoding="utf-8") as f:
        sst2 = list(itertools.islice(csv.DictReader(f), 40))
    sst2[30]["label"] = ""
    path = tmp_path / "part-0.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sst2)
    stream = datasets.load_dataset("csv", data_files=str(path), split="train", streaming=True)
    stream = stream.map(lambda row: {"input_ids": [9] * len(row["text"].split())})
    collator = PackedSequenceCollator(pad_token_id=PAD, num_labels=2)
    first = list(stream.take(8))  # (no empty cell among them)
    with pytest.raises(ValueError, match=r"empty cell in a CSV label column") as info:
        collator(first)
    fix = re.search(r"ds = (ds\.filter\(lambda row: .*?\))\.", str(info.value)).group(1)
    cast = re.search(r"ds = (ds\.map\(lambda row: .*?\}\))", str(info.value)).group(1)
    fixed = eval(cast, {"ds": eval(fix, {"ds": stream})})  # the message's own code
    batch = collator(list(fixed))
    assert batch["labels"].dtype == torch.int64 and len(batch["labels"]) == 39
    assert batch["labels"].tolist() == [int(r["label"]) for i, r in enumerate(sst2) if i != 30]
