"""Reliability and security (issue 9): the bad-input matrix, safe checkpoints, resumable and reproducible training.

Each item of the bad-input matrix runs end to end through the public API (tokenizer -> collator -> model,
or checkpoint loading) and must give a prediction or a clear error that names the field and the fix;
never an opaque IndexError/CUDA error or a silent wrong answer. Where another test file already
covers a layer in depth, the test here says so in a comment and checks the whole path.

The kill tests run tests/reliability_worker.py in subprocesses that die by SIGKILL at a chosen point
(signalled through files, never by timing).
"""

from __future__ import annotations

import ast
import builtins
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import Dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    TrainingArguments,
    pipeline,
)
from transformers.trainer_utils import get_last_checkpoint

from rnn_textclf import (
    PackedSequenceCollator,
    RNNClassifier,
    RNNClassifierConfig,
    RNNTokenizer,
    RNNTrainer,
    basic_english_tokenize,
)
from rnn_textclf.configuration import InvalidConfigError
from rnn_textclf.data import load_sms_spam
from rnn_textclf.tokenization import DEFAULT_MODEL_MAX_LENGTH

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rnn_textclf"
WORKER = Path(__file__).resolve().parent / "reliability_worker.py"
CALL_PATHS = ("python", "rust", "standard")
NUM_LABELS = 3


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer() -> RNNTokenizer:
    """A tokenizer trained on 400 real SMS messages (the embedded data set)."""
    texts = load_sms_spam(seed=0)["train"]["text"][:400]
    return RNNTokenizer.train_from_iterator(texts, min_freq=2)


def make_model(tokenizer: Any, **overrides: Any) -> RNNClassifier:
    torch.manual_seed(0)
    fields: dict[str, Any] = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=NUM_LABELS,
        embedding_dim=8,
        hidden_size=6,
        rnn_type="lstm",
        bidirectional=True,
        pooling="mean_max",
    )
    fields.update(overrides)
    return RNNClassifier(RNNClassifierConfig(**fields)).eval()


@pytest.fixture(scope="module")
def model(tokenizer: RNNTokenizer) -> RNNClassifier:
    return make_model(tokenizer)


def reference_ids(tokenizer: RNNTokenizer, text: str) -> list[int]:
    """torchtext's answer: basic_english words looked up in the vocabulary, unknown words -> <unk>."""
    vocab, unk = tokenizer.get_vocab(), tokenizer.unk_token_id
    return [vocab.get(word, unk) for word in basic_english_tokenize(text)]


def classify(
    model: RNNClassifier, tokenizer: Any, texts: list[str], **tokenizer_options: Any
) -> torch.Tensor:
    """tokenizer -> PackedSequenceCollator -> model; checks every row against the text run alone."""
    encoded = tokenizer(texts, **tokenizer_options)["input_ids"]
    batch = PackedSequenceCollator(tokenizer)([{"input_ids": ids} for ids in encoded])
    with torch.no_grad():
        logits = model(**batch).logits
        assert logits.shape == (len(texts), model.config.num_labels)
        assert torch.isfinite(logits).all()
        for row, ids in enumerate(encoded):
            alone = model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0]
            torch.testing.assert_close(logits[row], alone, rtol=1e-5, atol=1e-6)
    return logits


def trainer_args(tmp_path: Path) -> TrainingArguments:
    return TrainingArguments(str(tmp_path), use_cpu=True, report_to="none", disable_tqdm=True)


@pytest.fixture
def checkpoint(tmp_path: Path, tokenizer: RNNTokenizer, model: RNNClassifier) -> Path:
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def edited(checkpoint: Path, edit: Callable[[Path], None], name: str = "edited") -> Path:
    """A copy of the checkpoint with one thing changed."""
    folder = checkpoint.parent / name
    shutil.copytree(checkpoint, folder)
    edit(folder)
    return folder


def set_config(**fields: Any) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config.update(fields)
        (folder / "config.json").write_text(json.dumps(config))

    return edit


# ---------------------------------------------------------------------------------------------
# Bad-input matrix: texts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "   ", "\t\n \x1c\u3000"], ids=["empty", "spaces", "unicode-whitespace"]
)
def test_empty_and_whitespace_only_texts_predict_the_prior(model, tokenizer, text):
    # Tokenizer side: test_tokenization.test_empty_and_whitespace_texts; model side:
    # test_modeling.test_empty_texts_get_the_classifier_bias. Here the whole path, mixed with real texts.
    for path in CALL_PATHS:
        tokenizer.call_path = path
        assert tokenizer(text)["input_ids"] == []
        logits = classify(model, tokenizer, [text, "free entry now", text])
        # No tokens: a pooled vector of zeros, so the logits are the classifier's bias (the model's prior).
        torch.testing.assert_close(logits[0], model.classifier.bias.detach())
        torch.testing.assert_close(logits[2], model.classifier.bias.detach())
    tokenizer.call_path = "auto"


def test_one_token_text(model, tokenizer):
    for path in CALL_PATHS:
        tokenizer.call_path = path
        ids = tokenizer("free")["input_ids"]
        assert ids == reference_ids(tokenizer, "free") and len(ids) == 1 and ids[0] != tokenizer.unk_token_id
        logits = classify(model, tokenizer, ["free", "call me later please"])
        assert not torch.equal(logits[0], model.classifier.bias.detach())
    tokenizer.call_path = "auto"


def test_text_of_100k_tokens_is_truncated_by_default_or_read_whole_with_a_warning(model, tokenizer, caplog):
    words = ["free", "prize", "call", "now", "to", "claim"]
    text = " ".join(words[i % len(words)] for i in range(100_000))
    # truncation=True without max_length cuts to the documented default, model_max_length=512.
    assert tokenizer.model_max_length == DEFAULT_MODEL_MAX_LENGTH == 512
    reference = reference_ids(tokenizer, text)
    for path in CALL_PATHS:
        tokenizer.call_path = path
        ids = tokenizer(text, truncation=True)["input_ids"]
        assert len(ids) == DEFAULT_MODEL_MAX_LENGTH
        assert ids == reference[:DEFAULT_MODEL_MAX_LENGTH]
    tokenizer.call_path = "auto"
    truncated = classify(model, tokenizer, [text, "hi"], truncation=True)
    prefix = " ".join(text.split()[:DEFAULT_MODEL_MAX_LENGTH])
    torch.testing.assert_close(truncated[0], classify(model, tokenizer, [prefix])[0])
    # The pipeline truncates the same way when asked.
    classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    scores = classifier(text, truncation=True, top_k=None)
    expected = torch.softmax(truncated[0], dim=-1)
    assert sorted(round(s["score"], 5) for s in scores) == sorted(round(float(x), 5) for x in expected)

    # Without truncation nothing is cut: the RNN reads all 100,000 tokens (memory linear in the length),
    # and both the tokenizer and the collator say once how to bound it.
    tokenizer.deprecation_warnings.pop("sequence-length-is-longer-than-the-specified-maximum", None)
    with caplog.at_level(logging.WARNING):
        ids = tokenizer(text)["input_ids"]
        assert ids == reference
        batch = PackedSequenceCollator(tokenizer)([{"input_ids": ids}, {"input_ids": ids[:3]}])
        assert batch["input_ids"].shape == (2, 100_000)
        with torch.no_grad():  # the long row alone (a packed batch of unequal lengths is slow on CPU)
            assert torch.isfinite(model(input_ids=batch["input_ids"][:1]).logits).all()
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "100000 tokens, more than model_max_length=512" in messages and "truncation=True" in messages
    assert "indexing errors" not in messages  # transformers' warning, wrong for an RNN
    assert "PackedSequenceCollator(max_length=...)" in messages
    # The collator's own max_length bounds a batch whatever the tokenizer did.
    bounded = PackedSequenceCollator(tokenizer, max_length=256)([{"input_ids": ids}])
    assert bounded["input_ids"].shape == (1, 256)


def test_texts_of_unknown_words_only(model, tokenizer):
    texts = ["zxqv blorptastic wugwug", "qqqq xkcdz florb", "zzzzzzz"]
    for path in CALL_PATHS:
        tokenizer.call_path = path
        encoded = tokenizer(texts)["input_ids"]
        assert encoded == [
            [tokenizer.unk_token_id] * 3,
            [tokenizer.unk_token_id] * 3,
            [tokenizer.unk_token_id],
        ]
    tokenizer.call_path = "auto"
    logits = classify(model, tokenizer, texts)
    # Same ids, same prediction: the words themselves cannot leak in.
    torch.testing.assert_close(logits[0], logits[1])


ODD_TEXTS = {
    "control": "free\x07 entry\x1b[0m win\x0b now\x7f",
    "nul": "free\x00entry win\x00 now",
    "emoji": "WIN 🎉🎉 a free 👍🏽 prize 👨‍👩‍👧",
    "rtl": "call \u202eniw\u202c now مرحبا بك שלום",
    "combining": "cafe\u0301 free e\u0301\u0301\u0301 win \u0308",
    "zero-width": "free\u200bentry \ufeffwin\u2060now",
    "noncharacters": "free \ufdd0 \ufdd1 \uffff win",
}


@pytest.mark.parametrize("name", sorted(ODD_TEXTS))
def test_odd_characters_match_basic_english_and_predict(model, tokenizer, name):
    # Random Unicode against the reference: test_tokenization.test_split_words_matches_reference_on_unicode.
    text = ODD_TEXTS[name]
    for path in CALL_PATHS:
        tokenizer.call_path = path
        assert tokenizer(text)["input_ids"] == reference_ids(tokenizer, text)
        assert tokenizer([text, "free"])["input_ids"][0] == reference_ids(tokenizer, text)
    tokenizer.call_path = "auto"
    classify(model, tokenizer, [text, "free entry"])


def test_lone_surrogates_map_to_unknown_or_raise_a_clear_error(model, tokenizer):
    # json.loads accepts "\ud800", so a served model can receive it; Rust cannot take it at all.
    text = json.loads('"free \\ud800 entry a\\udfffb"')
    expected = reference_ids(tokenizer, text)
    assert expected[1] == expected[3] == tokenizer.unk_token_id
    for path in ("python", "rust", "auto"):
        tokenizer.call_path = path
        assert tokenizer(text)["input_ids"] == expected
        assert tokenizer(["win", text])["input_ids"][1] == expected
    tokenizer.call_path = "auto"
    classify(model, tokenizer, [text])
    tokenizer.call_path = "standard"
    try:
        with pytest.raises(
            ValueError, match=r"text\[1\] holds a lone surrogate.*encode\('utf-8', 'replace'\)"
        ):
            tokenizer(["win", text])
        with pytest.raises(ValueError, match="lone surrogate"):
            tokenizer(text, return_offsets_mapping=True)
    finally:
        tokenizer.call_path = "auto"
    with pytest.raises(ValueError, match=r"lone surrogate U\+D800 .*clean the texts"):
        RNNTokenizer.train_from_iterator(["fine text", text])


@pytest.mark.parametrize(
    ("column", "type_name"),
    [(["free", None, "win"], "NoneType"), ([1, 2, 3], "int"), ([b"free", b"win", b"x"], "bytes")],
    ids=["None", "int", "bytes"],
)
def test_non_text_values_in_a_text_column(tokenizer, column, type_name):
    # Direct calls: test_tokenization.test_non_text_items_raise_type_error_with_position. Here a datasets column.
    data = Dataset.from_dict({"text": column})
    index = column.index(None) if None in column else 0
    with pytest.raises(TypeError, match=rf"text\[{index}\] must be a str, got {type_name}"):
        data.map(lambda batch: tokenizer(batch["text"]), batched=True)
    with pytest.raises(TypeError, match=rf"must be a str.*got {type_name}"):
        data.map(lambda row: tokenizer(row["text"]))
    with pytest.raises(TypeError, match=r"missing value|decode it first|got int"):
        tokenizer(column[index])


def test_batch_of_one(model, tokenizer):
    logits = classify(model, tokenizer, ["Free entry in 2 a wkly comp to win FA Cup final tkts"])
    classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    scores = classifier(["Free entry in 2 a wkly comp to win FA Cup final tkts"], top_k=None)[0]
    assert max(s["score"] for s in scores) == pytest.approx(
        float(torch.softmax(logits[0], -1).max()), abs=1e-6
    )


def test_batch_where_every_text_is_empty(model, tokenizer):
    # Collator side: test_collator.test_all_empty_batch. Here the whole path and the pipeline.
    logits = classify(model, tokenizer, ["", " ", "\n"])
    assert torch.equal(logits, model.classifier.bias.detach().expand(3, -1))
    classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    assert len(classifier(["", "", ""], batch_size=3)) == 3


# ---------------------------------------------------------------------------------------------
# Bad-input matrix: labels
# ---------------------------------------------------------------------------------------------

BAD_LABELS = {
    "out-of-range": ([1, NUM_LABELS], r"Label 3 \(row 1.*\[0, 3\)", r"class ids in \[0, 3\)"),
    "negative": ([-1, 0], r"Label -1 \(row 0.*-100 means 'ignore'", r"class ids in \[0, 3\)"),
    "float-single-label": (
        [0.0, 1.0],
        r"integer class ids. Cast the column",
        r"integer class ids \(labels.long\(\)\)",
    ),
    "multi-label-wrong-width": (
        [[1, 0], [0, 1]],
        r"2 columns but the model has num_labels=3",
        r"shape \(2, 3\)",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_LABELS))
def test_bad_labels_give_clear_errors_before_and_in_the_model(model, tokenizer, tmp_path, name):
    # Model-level checks: test_modeling.test_bad_inputs_raise_clear_errors / test_wrong_label_kinds.
    labels, collator_error, model_error = BAD_LABELS[name]
    rows = [
        {"input_ids": ids, "label": label}
        for ids, label in zip(tokenizer(["free", "hi"])["input_ids"], labels, strict=True)
    ]
    # RNNTrainer gives its collator the model's num_labels: checked on the CPU, before any accelerator.
    trainer = RNNTrainer(model=model, args=trainer_args(tmp_path), processing_class=tokenizer)
    assert trainer.data_collator.num_labels == NUM_LABELS
    with pytest.raises(ValueError, match=collator_error):
        trainer.data_collator(rows)
    # Without that check (a plain collator), the model refuses the batch, and stays as it was.
    fresh = make_model(tokenizer)
    batch = PackedSequenceCollator(tokenizer)(rows)
    with pytest.raises(ValueError, match=model_error):
        fresh(**batch)
    assert fresh.config.problem_type is None  # one bad batch must not make it a multi-label model
    good = PackedSequenceCollator(tokenizer)([{**row, "label": i} for i, row in enumerate(rows)])
    assert fresh(**good).loss is not None and fresh.config.problem_type == "single_label_classification"


def test_ignored_label_minus_100_is_allowed(model, tokenizer):
    collator = PackedSequenceCollator(tokenizer, num_labels=NUM_LABELS)
    rows = [
        {"input_ids": ids, "label": label}
        for ids, label in zip(tokenizer(["free", "hi"])["input_ids"], [-100, 2], strict=True)
    ]
    out = model(**collator(rows))
    assert torch.isfinite(out.loss)


# ---------------------------------------------------------------------------------------------
# Bad-input matrix: tokenizer vs config
# ---------------------------------------------------------------------------------------------


def test_tokenizer_larger_than_the_embedding_is_refused(tokenizer, tmp_path):
    small = make_model(tokenizer, vocab_size=len(tokenizer) - 5)
    with pytest.raises(
        ValueError, match=rf"tokenizer has {len(tokenizer):,} tokens.*vocab_size={len(tokenizer) - 5:,}"
    ):
        RNNTrainer(model=small, args=trainer_args(tmp_path), processing_class=tokenizer)
    # Outside a Trainer, the model names the id and config.vocab_size (the collator only knows the tokenizer).
    last_word = tokenizer.convert_ids_to_tokens(len(tokenizer) - 1)
    batch = PackedSequenceCollator(tokenizer)([{"input_ids": tokenizer(f"free {last_word}")["input_ids"]}])
    with pytest.raises(
        ValueError, match=rf"token id {len(tokenizer) - 1}, outside .*vocab_size={len(tokenizer) - 5}"
    ):
        small(**batch)
    classifier = pipeline("text-classification", model=small, tokenizer=tokenizer, device="cpu")
    with pytest.raises(ValueError, match="outside the embedding's range"):
        classifier(f"free {last_word}")


def test_tokenizer_smaller_than_the_embedding_warns(tokenizer, tmp_path, caplog):
    # Legitimate for an embedding padded to a round size, a silent mismatch otherwise: so a warning.
    large = make_model(tokenizer, vocab_size=len(tokenizer) + 8)
    with caplog.at_level(logging.WARNING, logger="rnn_textclf"):
        RNNTrainer(model=large, args=trainer_args(tmp_path), processing_class=tokenizer)
    assert f"config.vocab_size is {len(tokenizer) + 8:,}" in caplog.text
    assert "not the tokenizer the model was built for" in caplog.text
    classify(large, tokenizer, ["free entry", "ok"])


def test_pad_token_id_outside_the_vocab_or_different_from_the_tokenizer(tokenizer, checkpoint, tmp_path):
    with pytest.raises(
        InvalidConfigError, match=r"`pad_token_id` must be a valid id below vocab_size=10, got 10"
    ):
        RNNClassifierConfig(vocab_size=10, pad_token_id=10)
    bad = edited(checkpoint, set_config(pad_token_id=len(tokenizer) + 5))
    with pytest.raises(
        InvalidConfigError, match=r"config.json of .* `pad_token_id` must be a valid id.*Fix that field"
    ):
        RNNClassifier.from_pretrained(bad)
    with pytest.raises(ValueError, match=r"pad id 50 is outside the vocab \[0, 10\)"):
        PackedSequenceCollator(pad_token_id=50, vocab_size=10)
    other_pad = make_model(tokenizer, pad_token_id=tokenizer.unk_token_id)
    with pytest.raises(
        ValueError, match=rf"pad_token_id is {tokenizer.pad_token_id} but config.pad_token_id is"
    ):
        RNNTrainer(model=other_pad, args=trainer_args(tmp_path), processing_class=tokenizer)


# ---------------------------------------------------------------------------------------------
# Bad-input matrix: checkpoints
# ---------------------------------------------------------------------------------------------


def test_config_json_with_unknown_fields_loads_and_names_them(checkpoint, caplog):
    folder = edited(checkpoint, set_config(foo_bar=3, hiden_size=12))
    with caplog.at_level(logging.WARNING, logger="rnn_textclf"):
        loaded = RNNClassifier.from_pretrained(folder)
    assert "does not use: foo_bar, hiden_size" in caplog.text and "typos" in caplog.text
    assert loaded.config.hidden_size == 6  # the typo changed nothing, and the weights loaded
    # Fields that rnn-textclf itself writes are not "unknown".
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnn_textclf"):
        RNNClassifier.from_pretrained(checkpoint)
    assert "does not use" not in caplog.text


def test_config_json_that_is_not_an_object_or_missing(checkpoint, tmp_path):
    # (an AttributeError in get_config_dict; without config.json transformers built a default config, and
    # the weights "did not fit" it: vocab_size 20000 ...)
    folder = edited(checkpoint, lambda f: (f / "config.json").write_text("[1, 2]"), name="not-an-object")
    with pytest.raises(
        InvalidConfigError, match=r"config.json of .* must hold a JSON object of fields, got a list"
    ):
        RNNClassifier.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(OSError, match=r"has no config.json: it is not a saved model folder"):
        RNNClassifier.from_pretrained(folder)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hidden_size", "6", r"`hidden_size` must be an integer >= 1, got '6'"),
        ("bidirectional", "true", r"`bidirectional` must be True or False, got 'true'"),
        ("dropout", "0.1", r"`dropout` must be a float in \[0, 1\), got '0.1'"),
        ("rnn_type", 4, r"`rnn_type` must be one of 'rnn', 'lstm', 'gru', got 4"),
        ("pooling", None, r"`pooling` must be one of .*got None"),
        ("num_labels", "3", r"`num_labels` must be an integer >= 1, got '3'"),
        ("id2label", ["a", "b", "c"], r"`id2label` must be a mapping"),
        ("id2label", {"0": "a", "2": "b", "3": "c"}, r"`id2label` must name each class id 0..2 once"),
        ("id2label", {"zero": "a"}, r"`id2label` keys must be class ids"),
        ("label2id", {"a": "0"}, r"`label2id` values must be integer class ids"),
        # (failed inside huggingface_hub's and torch's code, naming no field)
        ("vocab_size", "1450", r"`vocab_size` must be an integer >= 1, got '1450'"),
        ("dtype", "foo", r"`dtype` must name a torch dtype such as 'float32' or 'bfloat16', got 'foo'"),
        ("num_layers", 100_000, r"`num_layers` must be at most 64, got 100000"),
    ],
)
def test_config_json_with_wrong_typed_fields(checkpoint, field, value, message):
    folder = edited(checkpoint, set_config(**{field: value}))
    for load in (RNNClassifier.from_pretrained, AutoModelForSequenceClassification.from_pretrained):
        with pytest.raises(InvalidConfigError, match=message) as error:
            load(folder)
        assert "Fix that field in config.json" in str(error.value)


def _truncate(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def _cut_last_byte(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:-1])


def _garbage_header(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[:8] = b"\xff" * 8
    (folder / "model.safetensors").write_bytes(bytes(data))


def _garbage_json(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[12:40] = b"@" * 28
    (folder / "model.safetensors").write_bytes(bytes(data))


def _empty(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"")


@pytest.mark.parametrize("damage", [_truncate, _cut_last_byte, _garbage_header, _garbage_json, _empty])
def test_truncated_or_corrupted_safetensors(checkpoint, damage):
    folder = edited(checkpoint, damage)
    with pytest.raises(OSError, match=r"model.safetensors is truncated or corrupted .*force_download=True"):
        RNNClassifier.from_pretrained(folder)
    # The pipeline wraps every loading error in its own ValueError, which quotes ours.
    with pytest.raises(
        ValueError, match=r"(?s)Could not load model.*model.safetensors is truncated or corrupted"
    ):
        pipeline("text-classification", model=str(folder), device="cpu")


def test_checkpoint_without_tokenizer(checkpoint):
    # The Hub case: test_hub.test_bad_input_gives_clear_errors.
    def drop_tokenizer(folder: Path) -> None:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (folder / name).unlink(missing_ok=True)

    folder = edited(checkpoint, drop_tokenizer)
    loads = (
        lambda: RNNTokenizer.from_pretrained(folder),
        lambda: AutoTokenizer.from_pretrained(folder),
        lambda: pipeline("text-classification", model=str(folder), device="cpu"),
    )
    for load in loads:
        with pytest.raises(
            OSError, match=r"has no tokenizer: tokenizer.json is missing.*tokenizer.save_pretrained"
        ):
            load()
    # The model itself still loads, and works with the tokenizer passed in.
    model = RNNClassifier.from_pretrained(folder)
    tokenizer = RNNTokenizer.from_pretrained(checkpoint)
    classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    assert classifier("free entry")[0]["label"].startswith("LABEL_")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hidden_size", 7, r"hidden_size: the weights have 6, the config says 7"),
        ("embedding_dim", 9, r"embedding_dim: the weights have 8, the config says 9"),
        ("num_layers", 2, r"num_layers: the weights have 1, the config says 2"),
        ("bidirectional", False, r"bidirectional: the weights have True, the config says False"),
        ("proj_size", 3, r"proj_size: the weights have 0, the config says 3"),
        ("vocab_size", None, r"vocab_size: the weights have \d+, the config says \d+"),
        ("pooling", "last", r"the classifier takes 24 features in the weights, 12 with this config"),
    ],
)
def test_checkpoint_whose_weights_do_not_match_its_config(checkpoint, tokenizer, field, value, message):
    value = len(tokenizer) + 3 if value is None else value
    folder = edited(checkpoint, set_config(**{field: value}))
    for load in (RNNClassifier.from_pretrained, AutoModelForSequenceClassification.from_pretrained):
        with pytest.raises(ValueError, match=message) as error:
            load(folder)
        assert "ignore_mismatched_sizes=True" in str(error.value)  # the fix, for a deliberate change


@pytest.mark.parametrize("rnn_type", ["gru", "rnn"])
def test_loading_with_a_different_rnn_type(checkpoint, rnn_type):
    expected = rf"(?s)rnn_type: the weights have 'lstm', the config says '{rnn_type}'.*without overriding these fields"
    for load in (RNNClassifier.from_pretrained, AutoModelForSequenceClassification.from_pretrained):
        with pytest.raises(ValueError, match=expected):
            load(checkpoint, rnn_type=rnn_type)
    with pytest.raises(ValueError, match=rf"rnn_type: the weights have 'lstm', the config says '{rnn_type}'"):
        RNNClassifier.from_pretrained(edited(checkpoint, set_config(rnn_type=rnn_type)))


def test_new_head_for_another_num_labels_only_when_asked(checkpoint, model):
    with pytest.raises(ValueError, match=r"num_labels: the weights have 3, the config says 5"):
        RNNClassifier.from_pretrained(checkpoint, num_labels=5)
    fine_tune = RNNClassifier.from_pretrained(checkpoint, num_labels=5, ignore_mismatched_sizes=True)
    assert fine_tune.classifier.out_features == 5
    assert torch.equal(fine_tune.rnn.weight_hh_l0, model.rnn.weight_hh_l0)  # the rest is the checkpoint's


def test_missing_tensors_are_not_filled_with_random_values(checkpoint):
    from safetensors.torch import save_file

    def drop_classifier(folder: Path) -> None:
        tensors = load_file(folder / "model.safetensors")
        kept = {k: v for k, v in tensors.items() if not k.startswith("classifier.")}
        save_file(kept, folder / "model.safetensors", metadata={"format": "pt"})

    folder = edited(checkpoint, drop_classifier)
    with pytest.raises(ValueError, match=r"classifier.bias is missing from the file"):
        RNNClassifier.from_pretrained(folder)


# ---------------------------------------------------------------------------------------------
# Safety: no unpickling, atomic saves
# ---------------------------------------------------------------------------------------------

_FORBIDDEN_CALLS = {
    "torch.load",
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "joblib.load",
    "dill.load",
    "dill.loads",
    "cloudpickle.load",
    "cloudpickle.loads",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "yaml.load",
    "yaml.unsafe_load",
    "eval",
    "exec",
}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def test_the_package_never_unpickles_or_evaluates_data():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + (
                    [node.module] if isinstance(node, ast.ImportFrom) else []
                )
                if any(
                    n and n.split(".")[0] in ("pickle", "joblib", "dill", "cloudpickle", "marshal", "shelve")
                    for n in names
                ):
                    found.append(f"{path.name}:{node.lineno} imports {names}")
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in _FORBIDDEN_CALLS:
                found.append(f"{path.name}:{node.lineno} calls {name}")
            if name.endswith(("np.load", "numpy.load")):
                flag = keywords.get("allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    found.append(f"{path.name}:{node.lineno} calls {name} without allow_pickle=False")
            flag = keywords.get("trust_remote_code")
            if isinstance(flag, ast.Constant) and flag.value is True:
                found.append(f"{path.name}:{node.lineno} passes trust_remote_code=True")
    assert not found, found


def test_a_malicious_pickle_checkpoint_never_runs(tmp_path, model):
    folder = tmp_path / "evil"
    model.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):  # unpickling would call open(marker, "w")
            return (builtins.open, (str(marker), "w"))

    with (folder / "pytorch_model.bin").open("wb") as handle:
        pickle.dump({"embeddings.weight": Payload()}, handle, protocol=2)
    for load in (RNNClassifier.from_pretrained, AutoModelForSequenceClassification.from_pretrained):
        with pytest.raises(
            OSError, match=r"holds only a pickle checkpoint .*unpickling a checkpoint can run arbitrary code"
        ):
            load(folder)
    # Asked explicitly, transformers reads the .bin with torch.load(weights_only=True): refused as well.
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        RNNClassifier.from_pretrained(folder, use_safetensors=False)
    assert not marker.exists()


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(
                f"the worker exited with {process.returncode} before {path.name}:\n{err[-3000:]}"
            )
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the worker did not reach {path.name} in {timeout} s")
        time.sleep(0.05)


def test_kill_mid_save_keeps_the_previous_checkpoint(tmp_path):
    """SIGKILL while model.safetensors (80 MB) is half written: the previous checkpoint loads, identical."""
    folder = tmp_path / "ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(WORKER), "save-loop", str(folder)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(tmp_path / "inside-save", process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert (tmp_path / "saved").read_text() == "1"  # exactly one save completed, the second was cut

    # The half-written file is in the staging folder beside the checkpoint, never in it.
    staging = [p for p in tmp_path.iterdir() if p.name.startswith(".ckpt.saving-")]
    assert len(staging) == 1
    partial = Path((tmp_path / "inside-save").read_text())
    assert partial.parent == staging[0] and partial.stat().st_size > 0

    torch.manual_seed(0)
    expected = RNNClassifier(
        RNNClassifierConfig(vocab_size=200_000, embedding_dim=100, hidden_size=8, num_labels=2)
    ).state_dict()
    expected["embeddings.weight"] += 1.0  # the worker's first (complete) save
    loaded = RNNClassifier.from_pretrained(folder).state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)

    # Nothing mistakes the staging folder for a checkpoint: the Trainer looks for checkpoint-<step>,
    # and loading it directly fails clearly (its weights are incomplete).
    assert get_last_checkpoint(str(tmp_path)) is None
    with pytest.raises(OSError, match="truncated or corrupted"):
        RNNClassifier.from_pretrained(staging[0])
    # The next save over the same folder works.
    model = RNNClassifier(RNNClassifierConfig(vocab_size=50, embedding_dim=4, hidden_size=3))
    model.save_pretrained(folder)
    assert RNNClassifier.from_pretrained(folder).config.vocab_size == 50


# ---------------------------------------------------------------------------------------------
# Training survives interruption, and is reproducible
# ---------------------------------------------------------------------------------------------


def _run_worker(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), "train", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen, expect: int = 0) -> None:
    _, err = process.communicate(timeout=900)
    assert process.returncode == expect, f"worker exit {process.returncode}:\n{err[-3000:]}"


@pytest.fixture(scope="module")
def training_runs(tmp_path_factory) -> dict[str, Path]:
    """Three fresh runs of the same seed (two uninterrupted, one killed at step 24 and resumed)."""
    root = tmp_path_factory.mktemp("training")
    runs = {name: root / name for name in ("first", "second", "killed")}
    started = [
        (_run_worker(str(runs["first"])), 0),
        (_run_worker(str(runs["second"])), 0),
        (_run_worker(str(runs["killed"]), "--kill-after-save", "24"), -signal.SIGKILL),
    ]
    for process, expect in started:
        _finish(process, expect)
    assert (runs["killed"] / "killed-at").read_text() == "24"
    assert not (runs["killed"] / "final").exists()
    assert get_last_checkpoint(str(runs["killed"] / "run")).endswith("checkpoint-24")
    _finish(_run_worker(str(runs["killed"]), "--resume"))
    return runs


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "final" / "model.safetensors")


def _result(run: Path) -> dict[str, Any]:
    return json.loads((run / "result.json").read_text())


def test_killed_training_resumes_to_bit_identical_weights(training_runs):
    # 600 SMS messages, batch 32: 19 steps per epoch, 2 epochs. Killed right after the checkpoint of step
    # 24, i.e. in epoch 2, so the resumed run must replay epoch 2's length-grouped order (RNNTrainer seeds
    # it per epoch), skip 5 batches, restore the RNG for dropout, the optimizer and the scheduler.
    uninterrupted, resumed = _weights(training_runs["first"]), _weights(training_runs["killed"])
    assert uninterrupted.keys() == resumed.keys()
    different = [k for k in uninterrupted if not torch.equal(uninterrupted[k], resumed[k])]
    assert not different, different
    first, after_resume = _result(training_runs["first"]), _result(training_runs["killed"])
    assert first["losses"] == after_resume["losses"]  # steps 25-38 were trained on the same batches
    assert len(first["losses"]) == 38


def test_same_seed_gives_identical_metrics_and_weights(training_runs):
    first, second = _result(training_runs["first"]), _result(training_runs["second"])
    timing = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second")
    metrics = {k: v for k, v in first["metrics"].items() if k not in timing}
    assert metrics == {k: v for k, v in second["metrics"].items() if k not in timing}
    assert metrics["eval_macro_f1"] > 0.6  # it learned something: identical metrics are not trivially equal
    assert first["losses"] == second["losses"]
    a, b = _weights(training_runs["first"]), _weights(training_runs["second"])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_length_grouped_order_depends_only_on_seed_and_epoch(tokenizer, tmp_path):
    data = Dataset.from_dict({"input_ids": [[5] * (i % 17 + 1) for i in range(200)], "label": [0] * 200})
    args = TrainingArguments(
        str(tmp_path), use_cpu=True, report_to="none", train_sampling_strategy="group_by_length", seed=7
    )
    sampler = RNNTrainer(model=make_model(tokenizer), args=args, train_dataset=data)._get_train_sampler()
    epoch0 = list(sampler)
    torch.manual_seed(123)  # the global RNG (dropout, init) does not change the order
    assert list(sampler) == epoch0 and sorted(epoch0) == list(range(200))
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    sampler.set_epoch(0)
    assert list(sampler) == epoch0


# ---------------------------------------------------------------------------------------------
# Property-based tests
# ---------------------------------------------------------------------------------------------

_MODELS: dict[tuple, RNNClassifier] = {}


def _tiny(rnn_type: str, bidirectional: bool, pooling: str, num_layers: int) -> RNNClassifier:
    key = (rnn_type, bidirectional, pooling, num_layers)
    if key not in _MODELS:
        torch.manual_seed(len(_MODELS))
        config = RNNClassifierConfig(
            vocab_size=30,
            embedding_dim=4,
            hidden_size=3,
            num_labels=2,
            pad_token_id=1,
            rnn_type=rnn_type,
            bidirectional=bidirectional,
            pooling=pooling,
            num_layers=num_layers,
        )
        _MODELS[key] = RNNClassifier(config).eval()
    return _MODELS[key]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rnn_type=st.sampled_from(["rnn", "lstm", "gru"]),
    bidirectional=st.booleans(),
    pooling=st.sampled_from(["last", "mean", "max", "mean_max"]),
    num_layers=st.integers(1, 2),
    texts=st.lists(st.lists(st.integers(0, 29), max_size=9), min_size=1, max_size=6),
)
def test_batched_packed_forward_equals_each_text_alone(rnn_type, bidirectional, pooling, num_layers, texts):
    # Fixed-size version: test_modeling.test_padding_never_changes_a_texts_logits.
    model = _tiny(rnn_type, bidirectional, pooling, num_layers)
    batch = PackedSequenceCollator(pad_token_id=1, vocab_size=30)([{"input_ids": ids} for ids in texts])
    with torch.no_grad():
        together = model(**batch).logits
        for row, ids in enumerate(texts):
            alone = model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0]
            torch.testing.assert_close(together[row], alone, rtol=1e-5, atol=1e-6)


# The tokenizer against the reference basic_english on random Unicode:
# test_tokenization.test_split_words_matches_reference_on_unicode and
# test_tokenization.test_trained_ids_match_reference_on_unicode (every call path).


@settings(max_examples=60, deadline=None)
@given(
    id_lists=st.lists(st.lists(st.integers(0, 49), max_size=12), min_size=1, max_size=12),
    max_length=st.one_of(st.none(), st.integers(1, 8)),
    multiple=st.one_of(st.none(), st.integers(1, 5)),
)
def test_collator_keeps_every_row_in_order_with_truncation_and_rounding(id_lists, max_length, multiple):
    # Without the options: test_collator.test_collator_never_drops_duplicates_or_reorders_rows.
    features = [{"input_ids": ids, "label": i % NUM_LABELS, "row": i} for i, ids in enumerate(id_lists)]
    collator = PackedSequenceCollator(
        pad_token_id=0,
        vocab_size=50,
        max_length=max_length,
        pad_to_multiple_of=multiple,
        num_labels=NUM_LABELS,
    )
    batch = collator(features)
    kept = [ids[:max_length] if max_length else ids for ids in id_lists]
    assert batch["labels"].tolist() == [i % NUM_LABELS for i in range(len(id_lists))]
    assert batch["lengths"].tolist() == [len(ids) for ids in kept]
    width, longest = batch["input_ids"].shape[1], max(map(len, kept))
    if multiple:
        assert width % multiple == 0 and longest <= width < longest + multiple
    else:
        assert width == longest
    for row, ids in enumerate(kept):
        assert batch["input_ids"][row, : len(ids)].tolist() == ids
        assert batch["input_ids"][row, len(ids) :].eq(0).all()
        assert batch["attention_mask"][row].sum() == len(ids)
    real = batch["input_ids"].numpy()[batch["attention_mask"].numpy() == 1]
    assert real.tolist() == [token for ids in kept for token in ids]  # nothing dropped, duplicated, moved
