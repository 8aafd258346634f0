"""Distillation: teacher logits as a column, transfer-set augmentation, the loss in RNNTrainer, the CLI."""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer

from cli_runner import run_cli
from rnn_textclf import (
    PackedSequenceCollator,
    RNNClassifier,
    RNNClassifierConfig,
    RNNTokenizer,
    RNNTrainer,
    RNNTrainingArguments,
    add_teacher_logits,
    augment_texts,
    build_transfer_set,
)
from rnn_textclf.data import load_sms_spam
from rnn_textclf.distillation import distillation_loss
from rnn_textclf.recipes import get_recipe


@pytest.fixture(scope="module")
def sms() -> datasets.DatasetDict:
    data = load_sms_spam(seed=0)
    return datasets.DatasetDict({"train": data["train"].select(range(800)), "test": data["test"]})


def _args(tmp_path, **kwargs) -> RNNTrainingArguments:
    values = dict(
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        learning_rate=5e-3,
        num_train_epochs=3,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
        seed=0,
    )
    values.update(kwargs)
    return RNNTrainingArguments(str(tmp_path), **values)


def _rnn(tokenizer, seed: int, **kwargs) -> RNNClassifier:
    torch.manual_seed(seed)
    values = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=2,
        id2label={0: "ham", 1: "spam"},
        label2id={"ham": 0, "spam": 1},
        embedding_dim=32,
        hidden_size=32,
        rnn_type="gru",
        pooling="max",
    )
    values.update(kwargs)
    return RNNClassifier(RNNClassifierConfig(**values))


def _tokenized(ds, tokenizer):
    return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True)


def _record_teacher_batches(trainer: RNNTrainer) -> list[bool]:
    """Whether each ``compute_loss`` call of ``trainer`` got ``teacher_logits`` (filled as it trains)."""
    seen: list[bool] = []
    original = trainer.compute_loss

    def spy(model, inputs, *args, **kwargs):
        seen.append("teacher_logits" in inputs)
        return original(model, inputs, *args, **kwargs)

    trainer.compute_loss = spy
    return seen


def _assert_agrees_with_teacher(trainer: RNNTrainer, rows, teacher_logits, tokenizer) -> None:
    """The student predicts the teacher's class on > 95% of ``rows``, well above the teacher's majority class."""
    teacher_pred = np.asarray(teacher_logits).argmax(1)
    predicted = trainer.predict(_tokenized(rows, tokenizer)).predictions.argmax(1)
    agreement = float((predicted == teacher_pred).mean())
    majority = max(teacher_pred.mean(), 1 - teacher_pred.mean())
    assert agreement > 0.95 and agreement > majority + 0.05, (agreement, majority)


@pytest.fixture(scope="module")
def rnn_teacher(sms, tmp_path_factory):
    """An RNNClassifier trained on 800 SMS rows, saved as a folder: (folder, model, tokenizer)."""
    tokenizer = RNNTokenizer.train_from_iterator(sms["train"]["text"], min_freq=2)
    model = _rnn(tokenizer, seed=0)
    folder = tmp_path_factory.mktemp("teacher")
    RNNTrainer(
        model=model,
        args=_args(folder / "run", num_train_epochs=4, learning_rate=1e-2),
        train_dataset=_tokenized(sms["train"], tokenizer),
        processing_class=tokenizer,
    ).train()
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model, tokenizer


def _tiny_bert(texts: list[str], seed: int = 0) -> tuple[BertForSequenceClassification, BertTokenizer]:
    counts = collections.Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower()))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [w for w, _ in counts.most_common(400)]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=2,
        id2label={0: "ham", 1: "spam"},
        label2id={"ham": 0, "spam": 1},
        initializer_range=0.5,  # logits that differ from row to row
    )
    return BertForSequenceClassification(config).eval(), tokenizer


def _own_logits(model, tokenizer, texts: list[str], max_length: int) -> np.ndarray:
    """The teacher run on each text alone (no padding at all)."""
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
            rows.append(model(**encoded).logits[0].numpy())
    return np.stack(rows)


# ---------------------------------------------------------------------------------------------- the column
def test_column_equals_the_teachers_own_logits(sms, rnn_teacher):
    rows = sms["train"].select(range(150))
    bert, bert_tok = _tiny_bert(sms["train"]["text"])
    out = add_teacher_logits(rows, (bert, bert_tok), batch_size=16, labels=["ham", "spam"])
    assert out.column_names == ["text", "label", "teacher_logits"]
    assert out.features["teacher_logits"].length == 2
    column = np.array(out["teacher_logits"], dtype=np.float32)
    np.testing.assert_allclose(column, _own_logits(bert, bert_tok, rows["text"], 64), atol=1e-5)
    assert column[:, 0].std() > 0.05  # a teacher whose logits really vary, so the check means something

    folder, model, tokenizer = rnn_teacher  # a folder: loaded with its own tokenizer
    out = add_teacher_logits(rows, folder, batch_size=16)
    own = _own_logits(model, tokenizer, rows["text"], 512)
    np.testing.assert_allclose(np.array(out["teacher_logits"]), own, atol=1e-5)


def test_streaming_dataset_gets_the_same_column(sms):
    rows = sms["train"].select(range(60))
    bert, bert_tok = _tiny_bert(sms["train"]["text"])
    eager = np.array(add_teacher_logits(rows, (bert, bert_tok), batch_size=8)["teacher_logits"])
    stream = add_teacher_logits(rows.to_iterable_dataset(num_shards=2), (bert, bert_tok), batch_size=8)
    assert isinstance(stream, datasets.IterableDataset)
    lazy = np.array([row["teacher_logits"] for row in stream])
    np.testing.assert_allclose(lazy, eager, atol=1e-5)


def test_cache_is_reused_for_the_same_teacher_only(sms, tmp_path):
    sms["train"].select(range(120)).save_to_disk(str(tmp_path / "ds"))
    rows = datasets.load_from_disk(str(tmp_path / "ds"))  # has cache files: map results are cached
    bert, bert_tok = _tiny_bert(sms["train"]["text"], seed=0)
    calls = []
    bert.register_forward_hook(lambda *a: calls.append(1))
    first = add_teacher_logits(rows, (bert, bert_tok), batch_size=16)
    assert len(calls) == 8  # 120 rows in batches of 16
    second = add_teacher_logits(rows, (bert, bert_tok), batch_size=16)
    assert len(calls) == 8  # the teacher did not run again: read from the cache
    assert second.cache_files == first.cache_files
    assert second["teacher_logits"] == first["teacher_logits"]

    other, _ = _tiny_bert(sms["train"]["text"], seed=1)  # same class and config, other weights
    other_calls = []
    other.register_forward_hook(lambda *a: other_calls.append(1))
    third = add_teacher_logits(rows, (other, bert_tok), batch_size=16)
    assert len(other_calls) == 8
    assert third.cache_files != first.cache_files
    assert not np.allclose(np.array(third["teacher_logits"]), np.array(first["teacher_logits"]))

    # the same teacher cutting long texts from the other end gives other logits: not read from the cache
    bert_tok.truncation_side = "left"
    add_teacher_logits(rows, (bert, bert_tok), batch_size=16, max_length=8)  # (long texts: cut)
    assert len(calls) == 16
    add_teacher_logits(rows, (bert, bert_tok), batch_size=16, max_length=8)
    assert len(calls) == 16
    bert_tok.truncation_side = "right"
    add_teacher_logits(rows, (bert, bert_tok), batch_size=16, max_length=8)
    assert len(calls) == 24


# ---------------------------------------------------------------------------------------------- bad input
def test_label_mismatch_shows_both_label_lists(sms):
    rows = sms["train"].select(range(10))
    bert, bert_tok = _tiny_bert(sms["train"]["text"])
    with pytest.raises(
        ValueError, match=r"\['ham', 'spam'\] differ from the student's \['spam', 'ham'\].*another order"
    ):
        add_teacher_logits(rows, (bert, bert_tok), labels=["spam", "ham"])
    with pytest.raises(ValueError, match=r"2 classes \['ham', 'spam'\] but the student has 3"):
        add_teacher_logits(rows, (bert, bert_tok), labels={0: "a", 1: "b", 2: "c"})
    relabelled = rows.cast_column("label", datasets.ClassLabel(names=["good", "bad"]))
    with pytest.raises(ValueError, match=r"differ from the student's \['good', 'bad'\]"):
        add_teacher_logits(relabelled, (bert, bert_tok))  # the data set's ClassLabel names are the student's
    # Generic names on one side: only the counts must agree.
    config = RNNClassifierConfig(vocab_size=10, num_labels=2)
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    out = add_teacher_logits(rows, (bert, bert_tok), labels=config)
    assert len(out["teacher_logits"]) == 10
    with pytest.raises(
        ValueError, match=r"`labels` as a dict must be the student's id2label .* a label2id\?"
    ):
        add_teacher_logits(rows, (bert, bert_tok), labels={"ham": 0, "spam": 1})
    # Numbers as the student's names (a CSV labelled 0/1): the remedy says what the numbers must mean.
    with pytest.raises(ValueError, match=r"the numbers 0\.\.1: if number i means the teacher's class i "):
        add_teacher_logits(rows, (bert, bert_tok), labels=["0", "1"])


def test_unchecked_teacher_labels_are_warned_about(sms, caplog):
    # An int label column without names: the teacher's order cannot be checked, and the log says so.
    rows = sms["train"].select(range(6)).cast_column("label", datasets.Value("int64"))
    bert, bert_tok = _tiny_bert(sms["train"]["text"])
    with caplog.at_level(logging.WARNING, logger="rnn_textclf"):
        add_teacher_logits(rows, (bert, bert_tok))
    assert "The teacher's classes {0: 'ham', 1: 'spam'} were not checked" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnn_textclf"):
        add_teacher_logits(rows, (bert, bert_tok), labels=["ham", "spam"])
    assert "not checked" not in caplog.text


def test_a_teacher_whose_classes_are_in_another_order_is_refused_by_its_answers(sms, rnn_teacher, caplog):
    # Generic names (LABEL_0, LABEL_1: what fine-tuning without id2label saves) cannot show that the
    # teacher's class 0 is spam; its answers on the labelled rows do (the student learnt inverted targets)
    import copy

    _folder, model, tokenizer = rnn_teacher
    swapped = copy.deepcopy(model)
    with torch.no_grad():
        swapped.classifier.weight.copy_(model.classifier.weight.flip(0))
        swapped.classifier.bias.copy_(model.classifier.bias.flip(0))
    swapped.config.id2label, swapped.config.label2id = (
        {0: "LABEL_0", 1: "LABEL_1"},
        {"LABEL_0": 0, "LABEL_1": 1},
    )
    rows = sms["test"].select(range(100))
    with caplog.at_level(logging.INFO, logger="rnn_textclf"):
        out = add_teacher_logits(rows, (model, tokenizer), labels=["ham", "spam"])
    agreement = float((np.array(out["teacher_logits"]).argmax(1) == np.array(rows["label"])).mean())
    assert agreement > 0.9  # the trained teacher, in the data's order: accepted, its agreement logged
    assert f"the data's label on {100 * agreement:.1f}% of 100 labelled rows" in caplog.text
    for labels in (["ham", "spam"], None):
        with pytest.raises(ValueError, match=r"another order than the data's labels.*\{0: 1, 1: 0\}"):
            add_teacher_logits(rows, (swapped, tokenizer), labels=labels)
    # unlabelled rows (-100) are not judged; too few labelled rows neither
    unlabelled = rows.map(lambda b: {"label": [-100] * len(b["text"])}, batched=True)
    add_teacher_logits(unlabelled, (swapped, tokenizer))
    add_teacher_logits(rows.select(range(10)), (swapped, tokenizer))


def test_a_teacher_no_better_than_the_majority_label_is_warned_about(sms, caplog):
    rows = sms["train"].select(range(200))
    bert, bert_tok = _tiny_bert(sms["train"]["text"])  # a random classification head
    with caplog.at_level(logging.WARNING, logger="rnn_textclf"):
        add_teacher_logits(rows, (bert, bert_tok), labels=["ham", "spam"])
    assert "no better than always answering the most common label" in caplog.text


def test_teachers_that_cannot_teach_are_refused(sms, tmp_path):
    rows = sms["train"].select(range(6))
    bert, bert_tok = _tiny_bert(sms["train"]["text"])
    # A base model (no classification head in its checkpoint) would get a random head at each load.
    BertModel(bert.config).save_pretrained(tmp_path / "base")
    bert_tok.save_pretrained(tmp_path / "base")
    with pytest.raises(
        ValueError,
        match=r"is not a fine-tuned classifier: its checkpoint \(BertModel\) has no "
        r"weights for \['classifier.bias', 'classifier.weight'\]",
    ):
        add_teacher_logits(rows, tmp_path / "base")
    bert.save_pretrained(tmp_path / "clf")  # the same with its head loads
    bert_tok.save_pretrained(tmp_path / "clf")
    assert len(add_teacher_logits(rows, tmp_path / "clf")["teacher_logits"]) == 6
    # Sigmoid (multi-label) or regression logits are no softmax scores.
    bert.config.problem_type = "multi_label_classification"
    with pytest.raises(ValueError, match=r"is a multi_label_classification model .* single-label classifier"):
        add_teacher_logits(rows, (bert, bert_tok))
    bert.config.problem_type = None
    # More tokens than the teacher has positions (64): refused up front, not a tensor-size error inside it.
    with pytest.raises(ValueError, match=r"`max_length=100` is more than the teacher's 64 positions"):
        add_teacher_logits(rows, (bert, bert_tok), max_length=100)


def test_missing_text_column_and_dataset_dict_errors(sms):
    bert, bert_tok = _tiny_bert(sms["train"]["text"])
    with pytest.raises(ValueError, match=r"`text_column='sentence'` is not a column .* \['text', 'label'\]"):
        add_teacher_logits(sms["train"], (bert, bert_tok), text_column="sentence")
    with pytest.raises(
        TypeError,
        match=r"dataset is a DatasetDict with splits \['train', 'test'\], not one split: did you mean dataset\['train'\]\?",
    ):
        add_teacher_logits(sms, (bert, bert_tok))
    stream = sms["train"].select(range(10)).to_iterable_dataset().remove_columns("label")
    stream = stream.map(lambda row: row)  # features unknown up front: checked when the rows are read
    with pytest.raises(ValueError, match="text_column='sentence'"):
        list(add_teacher_logits(stream, (bert, bert_tok), text_column="sentence"))
    with pytest.raises(OSError, match="no-such-teacher"):
        add_teacher_logits(sms["train"], "./no-such-teacher")


# ---------------------------------------------------------------------------------------------- augmentation
def test_teacher_path_that_is_no_folder_is_named_as_such(sms, tmp_path):
    rows = sms["train"].select(range(4))
    with pytest.raises(OSError, match=r"`teacher='.*missing'` does not exist\. Pass the folder"):
        add_teacher_logits(rows, tmp_path / "missing")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(OSError, match=r"model\.bin'` is a file, not a model folder"):
        add_teacher_logits(rows, str(tmp_path / "model.bin"))
    with pytest.raises(OSError, match=r"`teacher='\./nowhere'` does not exist"):
        add_teacher_logits(rows, "./nowhere")


def test_teacher_folder_under_home_is_found(sms, rnn_teacher, monkeypatch):
    folder, _, _ = rnn_teacher
    monkeypatch.setenv("HOME", str(folder.parent))
    rows = sms["train"].select(range(8))
    out = add_teacher_logits(rows, f"~/{folder.name}")
    np.testing.assert_allclose(
        np.array(out["teacher_logits"]), np.array(add_teacher_logits(rows, folder)["teacher_logits"])
    )


def test_augmentation_is_seeded_and_changes_texts_at_the_asked_rates(sms):
    texts = [t for t in sms["train"]["text"] if len(t.split()) >= 8][:300]
    first = augment_texts(texts, n_copies=10, p_mask=0.1, p_ngram=0.25, seed=3)
    assert len(first) == 3000
    assert first == augment_texts(texts, n_copies=10, p_mask=0.1, p_ngram=0.25, seed=3)
    assert first != augment_texts(texts, n_copies=10, p_mask=0.1, p_ngram=0.25, seed=4)
    nothing = augment_texts(texts, n_copies=2, p_mask=0.0, p_ngram=0.0)
    assert nothing == [t for t in texts for _ in range(2)]

    # Masking alone: the share of masked words is p_mask.
    masked = augment_texts(texts, n_copies=10, p_mask=0.1, p_ngram=0.0, seed=5)
    words = sum(len(t.split()) for t in texts) * 10
    rate = sum(t.count("[MASK]") for t in masked) / words
    assert 0.09 < rate < 0.11
    # n-gram sampling alone: a quarter of the copies become 1- to 5-word pieces of their original.
    cut = augment_texts(texts, n_copies=10, p_mask=0.0, p_ngram=0.25, seed=6)
    short = [(c, texts[i // 10]) for i, c in enumerate(cut) if len(c.split()) <= 5]
    assert 0.22 < len(short) / len(cut) < 0.28
    assert all(c in original for c, original in short)
    assert {len(c.split()) for c, _ in short} == {1, 2, 3, 4, 5}


def test_augmentation_word_splitting_follows_the_script_or_the_tokenizer():
    # Chinese has no spaces: each ideograph is a word by default.
    copies = augment_texts(["我爱北京天安门"], n_copies=200, p_mask=0.5, p_ngram=0.0, seed=0)
    assert all(len(c.replace("[MASK]", "x")) == 7 for c in copies)
    assert {c.count("[MASK]") for c in copies} >= {2, 3, 4, 5}
    # With a tokenizer, its words are masked (here basic_english: "don", "'", "t", ...), the rest is kept.
    tokenizer = RNNTokenizer.train_from_iterator(["don't stop, believing"])
    copies = augment_texts(
        ["Don't stop, believing!"], n_copies=50, p_mask=0.3, p_ngram=0.0, tokenizer=tokenizer
    )
    assert "Don'[MASK] stop, believing!" in copies or "Don't [MASK], believing!" in copies
    assert all(c.count(" ") == 2 for c in copies)  # only words are replaced: the spaces between them stay


def test_transfer_set_rows_and_labels():
    texts = ["one two three four five six", "seven eight nine ten", "short"]
    ts = build_transfer_set(texts, [0, 1, 0], n_copies=4, unlabelled_texts=["extra text"], seed=1, p_mask=0.3)
    assert ts.column_names == ["text", "label"]
    assert ts["text"][:3] == texts and ts["label"][:3] == [0, 1, 0]
    assert ts["text"][-1] == "extra text"
    assert set(ts["label"][3:]) == {-100}  # copies and unlabelled texts: teacher-labelled only
    copies = ts["text"][3:-1]
    assert len(copies) == len(set(copies)) and not set(copies) & set(texts)  # duplicates dropped
    assert 0 < len(copies) <= 12
    with pytest.raises(ValueError, match="`p_mask` must be a probability"):
        build_transfer_set(texts, n_copies=1, p_mask=1.5)
    # Inputs that would be mangled: refused, naming the argument.
    assert build_transfer_set(["a", "b"], [1.0, 0])["label"] == [1, 0]  # integral floats are class ids
    for labels, position in (([0.7, 1], 0), ([0, None], 1), (["ham", "spam"], 0), ([True, 0], 0)):
        with pytest.raises(ValueError, match=rf"`labels\[{position}\]` must be a class id"):
            build_transfer_set(["a", "b"], labels)
    with pytest.raises(TypeError, match="`unlabelled_texts` must be a list of texts, got a single str"):
        build_transfer_set(["a b"], [0], unlabelled_texts="hello")
    with pytest.raises(TypeError, match="`texts` must be a list of texts, got a single str"):
        build_transfer_set("hello")
    with pytest.raises(TypeError, match=r"`texts\[1\]` must be a str, got NoneType"):
        build_transfer_set(["a", None])
    with pytest.raises(ValueError, match="`text_column` and `label_column` are both 'x'"):
        build_transfer_set(["a b"], [0], text_column="x", label_column="x")


# ---------------------------------------------------------------------------------------------- the loss
def test_distillation_loss_terms():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 3), torch.randn(6, 3)
    labels = torch.tensor([0, 2, -100, 1, -100, 0])
    ce = F.cross_entropy(student, labels, reduction="none", ignore_index=-100)
    kl = F.kl_div(
        F.log_softmax(student / 2, -1), F.log_softmax(teacher / 2, -1), log_target=True, reduction="none"
    )
    kl = kl.sum(-1) * 4
    got = distillation_loss(student, teacher, labels, alpha=0.3, temperature=2.0)
    has = labels != -100
    expected = (torch.where(has, 0.3 * kl + 0.7 * ce, kl)).mean()
    torch.testing.assert_close(got, expected)
    assert distillation_loss(teacher, teacher, None, alpha=1.0).abs() < 1e-6
    mse = distillation_loss(student, teacher, None, alpha=1.0, kind="mse")
    torch.testing.assert_close(mse, F.mse_loss(student, teacher))
    with pytest.raises(ValueError, match="distillation_alpha"):
        RNNTrainingArguments("out", distillation_alpha=1.5)
    with pytest.raises(ValueError, match="distillation_loss"):
        RNNTrainingArguments("out", distillation_alpha=0.5, distillation_loss="l1")
    for temperature in (0, float("inf"), float("nan")):  # inf: every softened probability equal, a NaN loss
        with pytest.raises(ValueError, match=r"`distillation_temperature` must be a finite number > 0"):
            RNNTrainingArguments("out", distillation_alpha=0.5, distillation_temperature=temperature)


def test_distillation_alpha_without_teacher_logits_in_training_is_an_error(sms, tmp_path):
    # Set alpha, forget add_teacher_logits: the student would silently train on the labels alone (and on
    # nothing at all from rows without a label).
    tokenizer = RNNTokenizer.train_from_iterator(sms["train"]["text"][:200])
    trainer = RNNTrainer(
        model=_rnn(tokenizer, seed=0),
        args=_args(tmp_path, distillation_alpha=0.5, max_steps=2),
        train_dataset=_tokenized(sms["train"].select(range(64)), tokenizer),
        processing_class=tokenizer,
    )
    with pytest.raises(
        ValueError,
        match=r"distillation_alpha=0.5 is set but the training batches have no "
        r"'teacher_logits': add the teacher's logits .* add_teacher_logits",
    ):
        trainer.train()
    # Evaluation on a plain validation set is fine: the ordinary loss.
    assert "eval_loss" in trainer.evaluate(_tokenized(sms["test"].select(range(32)), tokenizer))


def test_student_learns_to_agree_with_the_teacher_from_its_logits_alone(sms, rnn_teacher, tmp_path):
    folder, _, _ = rnn_teacher
    rows = sms["train"]
    # No hard labels at all: every row is -100, so whatever the student learns comes from the teacher.
    unlabelled = rows.map(lambda b: {"label": [-100] * len(b["text"])}, batched=True).cast_column(
        "label", datasets.Value("int64")
    )
    transfer = add_teacher_logits(unlabelled, folder, batch_size=64, labels=["ham", "spam"])
    teacher_pred = np.array(transfer["teacher_logits"]).argmax(1)
    assert 0.05 < teacher_pred.mean() < 0.3  # the teacher finds spam

    tokenizer = RNNTokenizer.train_from_iterator(rows["text"])  # the student's own vocabulary
    student = _rnn(tokenizer, seed=5, rnn_type="lstm", hidden_size=24)
    train = _tokenized(transfer, tokenizer)
    trainer = RNNTrainer(
        model=student,
        args=_args(
            tmp_path,
            distillation_alpha=1.0,
            distillation_temperature=2.0,
            num_train_epochs=6,
            learning_rate=1e-2,
        ),
        train_dataset=train,
        processing_class=tokenizer,
    )
    collated = trainer.data_collator([train[0], train[1]])
    assert collated["teacher_logits"].dtype == torch.float32
    np.testing.assert_allclose(collated["teacher_logits"].numpy(), np.array(transfer["teacher_logits"][:2]))
    trainer.train()
    assert np.isfinite(trainer.state.log_history[-1]["train_loss"])
    predicted = trainer.predict(train.remove_columns(["teacher_logits", "label"])).predictions.argmax(1)
    agreement = float((predicted == teacher_pred).mean())
    majority = max(teacher_pred.mean(), 1 - teacher_pred.mean())
    spam_recall = float((predicted[teacher_pred == 1] == 1).mean())
    assert agreement > 0.95 and agreement > majority + 0.05, (agreement, majority)
    assert spam_recall > 0.8  # it learnt the teacher's minority class, not the majority


def test_collator_requires_teacher_logits_on_every_row():
    collator = PackedSequenceCollator(pad_token_id=0, num_labels=2)
    batch = collator(
        [{"input_ids": [1, 2], "teacher_logits": [0.5, -1.0]}, {"input_ids": [3], "teacher_logits": [2, 1]}]
    )
    assert batch["teacher_logits"].tolist() == [[0.5, -1.0], [2.0, 1.0]]
    with pytest.raises(
        ValueError, match=r"1 of the batch's \d+ rows \(batch positions \[1\]\) have no 'teacher_logits'"
    ):
        collator(
            [{"input_ids": [1], "teacher_logits": [0.5, 1.0]}, {"input_ids": [3], "teacher_logits": None}]
        )
    with pytest.raises(ValueError, match="3 logits per row but the model has num_labels=2"):
        collator([{"input_ids": [1], "teacher_logits": [0.5, 1.0, 2.0]}])


def test_distillation_composes_with_adversarial_training_weight_averaging_and_label_smoothing(
    sms, rnn_teacher, tmp_path
):
    folder, _, _ = rnn_teacher
    rows = add_teacher_logits(sms["train"].select(range(200)), folder)
    tokenizer = RNNTokenizer.train_from_iterator(rows["text"])
    student = _rnn(tokenizer, seed=1)
    trainer = RNNTrainer(
        model=student,
        args=_args(
            tmp_path,
            num_train_epochs=1,
            distillation_alpha=0.5,
            distillation_temperature=2.0,
            adversarial_eps=1.0,
            ema_decay=0.9,
            label_smoothing_factor=0.1,
        ),
        train_dataset=_tokenized(rows, tokenizer),
        processing_class=tokenizer,
    )
    seen = _record_teacher_batches(trainer)
    trainer.train()
    assert np.isfinite(trainer.state.log_history[-1]["train_loss"])
    assert len(seen) == 2 * 7 and all(
        seen
    )  # 7 batches, two passes each (clean + adversarial), both distilled


def test_student_learns_from_a_streamed_transfer_set(sms, rnn_teacher, tmp_path):
    """A streaming IterableDataset: the teacher labels rows lazily, the student trains on them (max_steps),
    and ends agreeing with the teacher as a student of an in-memory transfer set does."""
    folder, _, _ = rnn_teacher
    rows = sms["train"]
    tokenizer = RNNTokenizer.train_from_iterator(rows["text"])
    stream = add_teacher_logits(rows.to_iterable_dataset(num_shards=4), folder, batch_size=64)
    stream = stream.map(lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True)
    student = _rnn(tokenizer, seed=5, rnn_type="lstm", hidden_size=24)
    trainer = RNNTrainer(
        model=student,
        args=_args(
            tmp_path, distillation_alpha=1.0, max_steps=6 * 800 // 32, learning_rate=1e-2, num_train_epochs=-1
        ),
        train_dataset=stream,
        processing_class=tokenizer,
    )
    seen = _record_teacher_batches(trainer)
    trainer.train()
    assert len(seen) == 150 and all(seen)
    teacher = add_teacher_logits(rows, folder, batch_size=64)["teacher_logits"]
    _assert_agrees_with_teacher(trainer, rows, teacher, tokenizer)


def test_distillation_under_bf16_autocast(sms, rnn_teacher, tmp_path):
    """bf16=True (CPU autocast here; the same code path as a GPU's): the loss is computed in float32 from
    the student's bf16 logits and the student still learns the teacher."""
    folder, _, _ = rnn_teacher
    logits = torch.randn(8, 2).to(torch.bfloat16)
    teacher = torch.randn(8, 2)
    labels = torch.tensor([0, 1, -100, 1, 0, -100, 1, 1])
    loss = distillation_loss(logits, teacher, labels, alpha=0.5, temperature=2.0)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(
        loss, distillation_loss(logits.float(), teacher, labels, alpha=0.5, temperature=2.0)
    )

    rows = add_teacher_logits(sms["train"], folder, batch_size=64)
    tokenizer = RNNTokenizer.train_from_iterator(rows["text"])
    trainer = RNNTrainer(
        model=_rnn(tokenizer, seed=5, rnn_type="lstm", hidden_size=24),
        args=_args(tmp_path, bf16=True, distillation_alpha=1.0, num_train_epochs=6, learning_rate=1e-2),
        train_dataset=_tokenized(rows.remove_columns("label"), tokenizer),
        processing_class=tokenizer,
    )
    assert trainer.accelerator.mixed_precision == "bf16"
    trainer.train()
    assert np.isfinite(trainer.state.log_history[-1]["train_loss"])
    _assert_agrees_with_teacher(trainer, rows, rows["teacher_logits"], tokenizer)


# ---------------------------------------------------------------------------------------------- command line
def test_cli_train_with_teacher_end_to_end(rnn_teacher, tmp_path, capsys):
    folder, _, _ = rnn_teacher
    # A recipe with a distillation section gives the defaults; --distillation-alpha on the command line wins.
    recipe = get_recipe("default").replace(
        name="tiny-distill", distillation={"alpha": 0.3, "temperature": 2.0, "augment": 2}
    )
    recipe.save(tmp_path / "tiny-distill.yaml")
    proc = run_cli(
        "train", "--recipe", "tiny-distill.yaml", "--teacher", str(folder), "--max-train-samples", "300",
        "--epochs", "4", "--lr", "0.01", "--hidden-size", "32", "--embedding-dim", "16",
        "--distillation-alpha", "0.7", "--pretrain-epochs", "1", "--quiet", "--output-dir", "student",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "student"
    metrics = json.loads((out / "metrics.json").read_text())
    distilled = metrics["distillation"]
    # the folder's name, not its local path, and what the teacher is
    assert (
        distilled["teacher"] == folder.name and distilled["alpha"] == 0.7 and distilled["temperature"] == 2.0
    )
    assert distilled["teacher_architecture"] == "RNNClassifier" and distilled["teacher_parameters"] > 1000
    assert distilled["loss"] == "kl"  # DISTILLATION_FIELDS' default: neither the recipe nor a flag set it
    assert distilled["augment_copies"] == 2 and 300 < distilled["transfer_rows"] <= 900
    assert metrics["train_rows"] == distilled["transfer_rows"]
    # the language model learnt from the labelled texts, not from their masked and cut augmented copies
    assert 0 < metrics["pretraining"]["texts"] < distilled["transfer_rows"] / 2
    # above the majority class (ham, 0.866), with 300 labelled texts. With --hidden-size 16, seed 4 of
    # --seed 0-5 stayed at the majority (0.866); with 32, seeds 2, 3, 4, 6, 7 reached 0.92-0.96.
    assert metrics["test"]["accuracy"] > 0.87
    assert json.loads((out / "config.json").read_text())["distillation"] == distilled
    card = (out / "README.md").read_text()
    assert f"distilled from the teacher `{folder.name}`" in card and "## Distillation" in card
    assert f"| Teacher | `{folder.name}` (RNNClassifier, " in card and str(folder.parent) not in card
    assert "| Temperature | 2 |" in card and "| alpha (weight of the teacher's term) | 0.7 |" in card
    # A checkpoint of this run (its config.json records the teacher) resumes with --teacher only: without
    # it the run went on from the hard labels alone and its card lost the distillation
    from rnn_textclf.cli import main

    checkpoint = tmp_path / "checkpoints" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(out / name, checkpoint / name)
    for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt"):
        (checkpoint / name).write_text("{}")  # (refused before any is read)
    common = ["train", "--max-train-samples", "300", "--output-dir", str(tmp_path / "again"), "--quiet"]
    assert main([*common, "--resume-from-checkpoint", str(checkpoint)]) == 2
    assert (
        f"distils from the teacher '{folder.name}' (alpha 0.7): pass the same --teacher"
        in capsys.readouterr().err
    )
    config = json.loads((checkpoint / "config.json").read_text())
    del config["distillation"]
    (checkpoint / "config.json").write_text(json.dumps(config))
    assert main([*common, "--resume-from-checkpoint", str(checkpoint), "--teacher", str(folder)]) == 2
    assert "is of a run without a teacher: resume it without --teacher" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_students_read_a_mask_as_one_unit_whatever_their_tokenizer(rnn_teacher, tmp_path):
    # A character student cut the teacher's "[MASK]" into [ m a s k ]: 6 tokens per masked word, the most
    # frequent of its vocabulary (28% of all tokens on Chinese reviews), shared with real "mask"s.
    from rnn_textclf import RNNTokenizer
    from rnn_textclf.distillation import STUDENT_MASK

    folder, _, _ = rnn_teacher
    proc = run_cli(
        "train", "--teacher", str(folder), "--augment", "3", "--tokenizer", "char", "--max-train-samples", "200",
        "--epochs", "1", "--hidden-size", "8", "--embedding-dim", "8", "--quiet", "--output-dir", "student",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    tok = RNNTokenizer.from_pretrained(tmp_path / "student")
    vocab = tok.get_vocab()  # in frequency order: the mask's "[" (one per masked word) was well above it
    assert STUDENT_MASK in vocab and vocab.get("[", len(vocab)) > vocab[STUDENT_MASK]
    assert tok(f"free {STUDENT_MASK} now")["input_ids"][1:-1] and len(tok(STUDENT_MASK)["input_ids"]) == 1


HUB_SCRIPT = """
import json, sys
import numpy as np, torch, datasets
from huggingface_hub import HfApi
from rnn_textclf import RNNClassifier, RNNTokenizer, add_teacher_logits

out, folder = sys.argv[1], sys.argv[2]
repo = "acme/distill-teacher"
model, tokenizer = RNNClassifier.from_pretrained(folder).eval(), RNNTokenizer.from_pretrained(folder)
HfApi().create_repo(repo)
model.push_to_hub(repo); tokenizer.push_to_hub(repo)
HfApi().create_tag(repo, tag="v1")
with torch.no_grad():
    for p in model.parameters():
        p.add_(0.3)
model.push_to_hub(repo)  # main moves on; v1 keeps the first weights
texts = ["WINNER!! claim your free prize now", "see you at lunch?", "URGENT call 0800 to claim"]
ds = datasets.Dataset.from_dict({"text": texts})
tagged = add_teacher_logits(ds, repo, revision="v1", labels=["ham", "spam"])
latest = add_teacher_logits(ds, repo, labels=["ham", "spam"])
first = RNNClassifier.from_pretrained(folder).eval()
with torch.no_grad():
    own = [first(input_ids=torch.tensor([tokenizer(t)["input_ids"]])).logits[0].tolist() for t in texts]
json.dump({"tagged": list(tagged["teacher_logits"]), "latest": list(latest["teacher_logits"]), "own": own}, open(out, "w"))
"""


def test_teacher_from_the_hub_at_a_revision(rnn_teacher, minihub, tmp_path):
    folder, _, _ = rnn_teacher
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(
        HF_ENDPOINT=minihub,
        HF_HOME=str(tmp_path / "hf_home"),
        HF_TOKEN="hf_test_token",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
    )
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT, str(out), str(folder)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    np.testing.assert_allclose(result["tagged"], result["own"], atol=1e-5)  # revision="v1": the first teacher
    assert not np.allclose(result["latest"], result["own"], atol=1e-3)  # main: the changed one
