"""Tokenization beyond space-separated English: subword and character models, any HF tokenizer."""

from __future__ import annotations

import csv
import itertools
import json
import logging
import os
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast, pipeline

from cli_runner import run_cli
from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer, tokenization
from rnn_textclf.tokenization import (
    _drop_fast_path,
    _subword_backend_and_trainer,
    build_tokenizer,
    check_vocabulary,
    choose_tokenizer,
)

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
WAIMAI = SHARED / "waimai_10k" / "waimai_10k.csv"

JAPANESE = [
    "今日はとても良い天気ですね。",
    "このレストランの料理は美味しかったです。",
    "配達が遅すぎて、料理が冷めていました。",
    "また注文したいと思います！",
    "コンピューターが壊れてしまいました。",
]
THAI = [
    "อาหารอร่อยมากและส่งเร็ว",
    "สวัสดีครับ วันนี้อากาศดีมาก",
    "ร้านนี้บริการแย่มาก",
    "ฉันชอบกินข้าวผัดกุ้ง",
]
FRENCH_GERMAN = [
    "Le café était délicieux, très bien servi.",
    "Où est la bibliothèque ? À côté de l'église.",
    "Die Straße war gesperrt, wir mussten über die Brücke fahren.",
    "Schöne Grüße aus München: das Frühstück war großartig!",
    "Ça coûte ｃｉｎｑ euros, le ﬁlm était génial.",
]
SPACE_SEPARATED = [
    "Free entry in 2 a wkly comp to win FA Cup final tkts",
    "Ok lar... Joking wif u oni...",
    "I'm gonna be home soon and i don't want to talk about this stuff anymore tonight",
    "Even my brother is not like to speak with me.",
] * 10

MODELS = ("bpe", "unigram", "wordpiece", "char")


def waimai(n: int, offset: int = 0) -> tuple[list[str], list[int]]:
    with WAIMAI.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # The file is sorted by label: a seeded permutation mixes the classes.
    order = np.random.default_rng(0).permutation(len(rows))[offset : offset + n]
    return [rows[i]["review"] for i in order], [int(rows[i]["label"]) for i in order]


def ag_news(n: int) -> list[str]:
    """The first ``n`` AG News texts (title + " " + description), English."""
    with (SHARED / "ag_news_csv" / "test.csv").open(encoding="utf-8") as f:
        return [f"{title} {body}" for _, title, body in itertools.islice(csv.reader(f), n)]


def backend_ids(tok: RNNTokenizer, texts: list[str]) -> list[list[int]]:
    """The ids of the tokenizer's own Rust pipeline, what every fast path must give."""
    return [e.ids for e in tok.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]


def standard_ids(tok: RNNTokenizer, texts: list[str]) -> list[list[int]]:
    path = tok.call_path
    tok.call_path = "standard"
    try:
        return tok(texts)["input_ids"]
    finally:
        tok.call_path = path


@pytest.mark.parametrize("model", MODELS)
def test_chinese_models_give_character_units_and_the_standard_ids(model: str) -> None:
    texts, _ = waimai(800)
    tok = RNNTokenizer.train_from_iterator(texts, model=model)
    assert (tok.pad_token_id, tok.unk_token_id) == (0, 1)
    assert tok.tokenizer_model == model
    ids = tok(texts)["input_ids"]
    assert ids == standard_ids(tok, texts)  # the fast path gives exactly the backend's ids
    tokens = tok.convert_ids_to_tokens(tok("味道不错，送餐很快")["input_ids"])
    assert tokens == ["味", "道", "不", "错", ",", "送", "餐", "很", "快"]  # NFKC folds the full-width comma
    check = check_vocabulary(tok, texts, warn=False)
    assert check.tokens_per_text > 10 and not check.looks_like_clauses
    batch = tok(
        texts[:5], padding=True, truncation=True, max_length=8, return_tensors="pt", return_length=True
    )
    assert batch["input_ids"].shape == (5, 8)
    assert batch["input_ids"].tolist() == [(row + [0] * 8)[:8] for row in ids[:5]]


@pytest.mark.parametrize("model", ("bpe", "unigram", "wordpiece"))
def test_subword_ids_are_numbered_by_frequency_with_the_trainers_tokens(model: str) -> None:
    # The trainers number BPE/WordPiece characters in code point order; rnn-textclf renumbers every
    # vocabulary by frequency in the training texts (specials first), so most ids fit Python's cached
    # small integers. Only the numbering may change: each text must get the trainer's own tokens.
    texts, _ = waimai(1500)
    # (3,100: room for all 1,516 characters, also WordPiece's half; a cap that keeps only the most frequent
    # ones can break ties between equally rare characters differently in the two trainings below)
    tok = RNNTokenizer.train_from_iterator(texts, model=model, max_vocab_size=3100)
    ids = tok(texts)["input_ids"]
    flat = np.concatenate([np.asarray(row) for row in ids])  # (tokens,)
    counts = np.bincount(flat, minlength=len(tok))
    assert (tok.pad_token_id, tok.unk_token_id) == (0, 1)
    assert np.all(np.diff(counts[2:]) <= 0), "ids after the specials must go by decreasing count"
    assert np.mean(flat < 257) > 0.75

    # The same trainer, backend and pipeline without the renumbering.
    trainer_only, trainer = _subword_backend_and_trainer(model, 3100, 1, ["<pad>", "<unk>"], "<unk>")
    trainer_only.normalizer = tok.backend_tokenizer.normalizer
    trainer_only.pre_tokenizer = tok.backend_tokenizer.pre_tokenizer
    trainer_only.train_from_iterator(texts, trainer=trainer)
    assert trainer_only.get_vocab() != tok.backend_tokenizer.get_vocab()  # renumbered ...
    expected = [e.tokens for e in trainer_only.encode_batch(texts[:300], add_special_tokens=False)]
    assert [tok.convert_ids_to_tokens(row) for row in ids[:300]] == expected  # ... same tokens


@pytest.mark.parametrize("model", MODELS)
def test_japanese_and_thai_split_into_characters_with_their_marks(model: str) -> None:
    tok = RNNTokenizer.train_from_iterator(JAPANESE + THAI, model=model)
    thai = tok.convert_ids_to_tokens(tok("สวัสดี")["input_ids"])
    if model == "unigram":  # the unigram model may split a unit into pieces of its alphabet
        assert "".join(thai) == "สวัสดี" and len(thai) >= 4
    else:  # a vowel sign stays with its consonant
        assert thai == ["ส", "วั", "ส", "ดี"]
    assert tok.convert_ids_to_tokens(tok("天気です")["input_ids"]) == ["天", "気", "で", "す"]
    assert tok(JAPANESE + THAI)["input_ids"] == standard_ids(tok, JAPANESE + THAI)
    assert all(tok.unk_token_id not in row for row in tok(JAPANESE + THAI)["input_ids"])


@pytest.mark.parametrize("model", MODELS)
def test_european_accents_are_kept_and_compatibility_forms_fold(model: str) -> None:
    tok = RNNTokenizer.train_from_iterator(FRENCH_GERMAN * 3, model=model, max_vocab_size=300)
    decoded = "".join(tok.convert_ids_to_tokens(tok("Café Straße ﬁlm ｃｉｎｑ")["input_ids"])).replace(
        "##", ""
    )
    assert decoded == "caféstraßefilmcinq"  # accents and ß kept, lowercase, NFKC folds ﬁ and full-width
    assert tok(FRENCH_GERMAN)["input_ids"] == standard_ids(tok, FRENCH_GERMAN)
    cased = RNNTokenizer.train_from_iterator(FRENCH_GERMAN, model=model, lowercase=False)
    assert "É" in "".join(cased.convert_ids_to_tokens(cased("À côté, Église")["input_ids"])).upper()
    assert cased("München")["input_ids"] != cased("münchen")["input_ids"]


def test_bad_options_name_the_argument() -> None:
    with pytest.raises(ValueError, match="model must be one of"):
        RNNTokenizer.train_from_iterator(["a"], model="sentencepiece")
    with pytest.raises(ValueError, match="min_freq=2 does not apply to model='unigram'"):
        RNNTokenizer.train_from_iterator(["a"], model="unigram", min_freq=2)
    with pytest.raises(ValueError, match="lowercase=False does not apply to model='word'"):
        RNNTokenizer.train_from_iterator(["a"], lowercase=False)
    with pytest.raises(ValueError, match="normalization='whitespace' applies to model='word' only"):
        RNNTokenizer.train_from_iterator(["a"], model="char", normalization="whitespace")
    with pytest.raises(TypeError, match=r"text\[1\] must be a str, got NoneType"):
        RNNTokenizer.train_from_iterator(["a", None], model="bpe")
    with pytest.raises(OSError, match="is not one of"):
        build_tokenizer("no/such-tokenizer-here", ["a"], local_files_only=True)


_CLEAN_LOAD = r"""
import importlib.util, json, sys
from pathlib import Path
sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "rnn_textclf").is_dir()]
assert importlib.util.find_spec("rnn_textclf") is None, "rnn_textclf is importable"
from transformers import AutoTokenizer
texts = json.loads(sys.argv[1])
out = {}
for folder in sys.argv[2:]:
    tok = AutoTokenizer.from_pretrained(folder)
    out[folder] = {"class": type(tok).__name__, "ids": tok(texts)["input_ids"], "pad": tok.pad_token_id}
print(json.dumps(out))
"""


def test_auto_tokenizer_loads_every_model_without_rnn_textclf(tmp_path: Path) -> None:
    chinese, _ = waimai(300)
    texts = chinese[:20] + JAPANESE + THAI + FRENCH_GERMAN
    expected = {}
    for model in MODELS:
        tok = RNNTokenizer.train_from_iterator(chinese + JAPANESE + THAI + FRENCH_GERMAN, model=model)
        folder = str(tmp_path / model)
        tok.save_pretrained(folder)
        expected[folder] = tok(texts)["input_ids"]
        assert RNNTokenizer.from_pretrained(folder)(texts)["input_ids"] == expected[folder]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    result = subprocess.run(
        [sys.executable, "-I", "-c", _CLEAN_LOAD, json.dumps(texts), *expected],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for folder, ids in expected.items():
        assert loaded[folder]["class"] in ("TokenizersBackend", "PreTrainedTokenizerFast")
        assert loaded[folder]["ids"] == ids
        assert loaded[folder]["pad"] == 0


def test_whole_clause_vocabulary_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    texts, _ = waimai(2000)
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.tokenization"):
        RNNTokenizer.train_from_iterator(texts)
    warnings = [r.getMessage() for r in caplog.records if "whole clauses" in r.getMessage()]
    assert len(warnings) == 1
    assert "occur once" in warnings[0] and "--tokenizer char" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.tokenization"):
        RNNTokenizer.train_from_iterator(texts, model="char")
        RNNTokenizer.train_from_iterator(SPACE_SEPARATED)
    assert not [r for r in caplog.records if "whole clauses" in r.getMessage()]
    # Any tokenizer: a word-level one checked on its texts from outside gives the same verdict.
    word = RNNTokenizer.train_from_iterator(texts)
    check = check_vocabulary(word, texts, warn=False)
    assert check.looks_like_clauses and check.singleton_share > 0.9 and check.tokens_per_text < 3


def test_a_vocabulary_that_does_not_fit_the_texts_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    # An English word vocabulary (or a pretrained tokenizer of another language) on Chinese reviews: most
    # tokens are unknown, and a model could learn nothing; no clause-like figures show it (unknown tokens
    # are not counted as distinct tokens), the unknown share does.
    chinese, _ = waimai(300)
    english = RNNTokenizer.train_from_iterator(ag_news(300) + SPACE_SEPARATED)
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.tokenization"):
        check = check_vocabulary(english, chinese)
    assert check.mostly_unknown and check.unk_share > 0.5 and not check.looks_like_clauses
    assert "maps" in caplog.text and "% of the training tokens to its unknown token" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.tokenization"):
        check = check_vocabulary(english, ag_news(400)[300:])  # its own language: a few unknown words
    assert 0 < check.unk_share < 0.3 and not check.mostly_unknown and not caplog.records


def test_auto_choice_picks_characters_for_unsegmented_scripts_and_words_for_english() -> None:
    chinese, _ = waimai(500)
    assert choose_tokenizer(chinese)[0] == "char"
    assert choose_tokenizer(JAPANESE)[0] == "char"
    assert choose_tokenizer(THAI)[0] == "char"
    assert choose_tokenizer(SPACE_SEPARATED)[0] == "basic_english"
    assert choose_tokenizer(FRENCH_GERMAN)[0] == "basic_english"
    english = build_tokenizer("auto", SPACE_SEPARATED)
    assert english.tokenizer_model == "word" and english.normalization == "basic_english"
    assert build_tokenizer("auto", chinese).tokenizer_model == "char"


def _wordpiece_folder(tmp_path: Path, texts: list[str]) -> Path:
    """A BERT-style WordPiece tokenizer ([CLS] ... [SEP], token_type_ids), built with `tokenizers`."""
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    folder = tmp_path / "wordpiece"
    tok.save_pretrained(folder)
    return folder


def test_pretrained_tokenizer_without_a_pad_token_gets_one_that_trains(tmp_path: Path, caplog) -> None:
    # Padding's embedding row stays zero: the unknown token cannot pad (the config refuses unk == pad, and
    # the CLI crashed there); the end-of-text token can, else a new "<pad>" is added.
    from rnn_textclf.recipes import get_recipe

    texts = SPACE_SEPARATED * 3
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[UNK]", "</s>"])
    )
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(tmp_path / "unk")
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", eos_token="</s>").save_pretrained(
        tmp_path / "eos"
    )
    with caplog.at_level(logging.WARNING, logger="rnn_textclf"):
        unk_only = build_tokenizer(str(tmp_path / "unk"), texts)
        eos = build_tokenizer(str(tmp_path / "eos"), texts)
    assert unk_only.pad_token == "<pad>" and unk_only.pad_token_id == len(unk_only) - 1
    assert "added '<pad>'" in caplog.text and "padding with its end-of-text token '</s>'" in caplog.text
    assert (eos.pad_token, len(eos)) == ("</s>", len(backend.get_vocab()))
    for tok in (unk_only, eos):
        assert tok.pad_token_id != tok.unk_token_id
        model, _ = get_recipe("default").build_model(tok, label_names=["a", "b"], seed=0)  # word dropout on
        assert model.config.pad_token_id == tok.pad_token_id and model.config.vocab_size == len(tok)
        batch = tok(texts[:4], padding=True, return_tensors="pt")
        assert model(**batch).logits.shape == (4, 2)
    # A byte-level BPE (GPT-2's kind) has no unknown token: the recipes' word dropout goes off, logged.
    byte_level = Tokenizer(models.BPE())
    byte_level.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    byte_level.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"])
    )
    PreTrainedTokenizerFast(tokenizer_object=byte_level, eos_token="<|endoftext|>").save_pretrained(
        tmp_path / "gpt"
    )
    gpt = build_tokenizer(str(tmp_path / "gpt"), texts)
    assert gpt.unk_token_id is None and get_recipe("bilstm-glove").word_dropout > 0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnn_textclf"):
        model, _ = (
            get_recipe("bilstm-glove")
            .replace(vectors=None, model={"embedding_dim": 16})
            .build_model(gpt, label_names=["a", "b"], seed=0)
        )
    assert (
        model.config.word_dropout == 0
        and "word_dropout=0.1 is off: the tokenizer has no unknown" in caplog.text
    )
    # GPT-2's end-of-text token is also its unknown token (the config refused pad == unk: a CLI traceback);
    # an end-of-text token added to every text would pad its last real token's row to zeros; a
    # tokenizer.json saved alone holds "<pad>"/"<unk>" that its wrapper does not know (a new pad was added)
    for name, kwargs in (
        ("gpt2", {"eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}),
        ("closing", {"eos_token": "<|endoftext|>"}),
        ("alone", {}),
    ):
        backend = Tokenizer.from_str(byte_level.to_str())
        if name == "alone":
            backend.add_special_tokens(["<pad>", "<unk>"])
        if name == "closing":
            backend.post_processor = processors.TemplateProcessing(
                single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", 0)]
            )
        PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs).save_pretrained(tmp_path / name)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnn_textclf"):
        gpt2, closing, alone = (
            build_tokenizer(str(tmp_path / n), texts) for n in ("gpt2", "closing", "alone")
        )
    assert "its end-of-text token '<|endoftext|>' is its unknown token): added '<pad>'" in caplog.text
    assert "'<|endoftext|>' is added to every text): added '<pad>'" in caplog.text
    assert (alone.pad_token, alone.unk_token, len(alone)) == (
        "<pad>",
        "<unk>",
        byte_level.get_vocab_size() + 2,
    )
    for tok in (gpt2, closing, alone):
        assert tok.pad_token_id not in tok("a text")["input_ids"] and tok.pad_token_id != tok.unk_token_id
        model, _ = get_recipe("default").build_model(tok, label_names=["a", "b"], seed=0)
        assert model(**tok(texts[:4], padding=True, return_tensors="pt")).logits.shape == (4, 2)
    unk_only.save_pretrained(tmp_path / "saved")
    assert AutoTokenizer.from_pretrained(tmp_path / "saved").pad_token == "<pad>"
    # A left-padding tokenizer pads right for the model (whose pipeline would refuse left-padded batches).
    eos.padding_side = "left"
    eos.save_pretrained(tmp_path / "left")
    assert build_tokenizer(str(tmp_path / "left"), texts).padding_side == "right"


def test_pipeline_with_a_wordpiece_tokenizer(tmp_path: Path) -> None:
    texts, _ = waimai(300)
    folder = _wordpiece_folder(tmp_path, texts + SPACE_SEPARATED)
    tok = build_tokenizer(str(folder), texts)
    assert "token_type_ids" in tok(texts[:2])
    torch.manual_seed(0)
    config = RNNClassifierConfig(
        vocab_size=len(tok), pad_token_id=tok.pad_token_id, num_labels=2, hidden_size=8
    )
    model = RNNClassifier(config).eval()
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    batch = tok(texts[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits  # token_type_ids accepted and ignored
        plain = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(logits, plain)
    clf = pipeline("text-classification", model=str(tmp_path / "model"))
    assert clf.tokenizer("味道")["input_ids"] == tok("味道")["input_ids"]
    expected = torch.softmax(logits, -1)
    got = [max(x["score"] for x in row) for row in clf(texts[:4], top_k=None)]
    np.testing.assert_allclose(got, expected.max(-1).values.numpy(), rtol=1e-4)
    tok.padding_side = "left"
    left = tok(texts[:4], padding=True, return_tensors="pt")
    if left["attention_mask"].all():
        return
    with pytest.raises(ValueError, match="padding_side must be 'right'"):
        model(**left)


def _write_split(path: Path, texts: list[str], labels: list[int]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "review"])
        writer.writerows(zip(labels, texts, strict=True))


def _train_on_chinese(tmp_path: Path, *options: str, margin: float = 0.1) -> tuple[str, dict[str, Any]]:
    """`rnn-textclf train` on 1,500 waimai reviews, tested on 400 more, beats the majority class (0.6625) by
    ``margin``: (stderr, the saved config/tokenizer_config/metrics)."""
    train_texts, train_labels = waimai(1500)
    test_texts, test_labels = waimai(400, offset=1500)
    _write_split(tmp_path / "train.csv", train_texts, train_labels)
    _write_split(tmp_path / "test.csv", test_texts, test_labels)
    proc = run_cli(
        "train", "--train-file", "train.csv", "--test-file", "test.csv", "--text-column", "review",
        "--label-column", "label", "--max-length", "64", "--output-dir", "out", *options, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = {
        name: json.loads((tmp_path / "out" / f"{name}.json").read_text())
        for name in ("config", "tokenizer_config", "metrics")
    }
    assert saved["tokenizer_config"]["tokenizer_model"] == "char"
    majority = max(np.mean(test_labels), 1 - np.mean(test_labels))
    accuracy = saved["metrics"]["test"]["accuracy"]
    assert accuracy >= majority + margin, (accuracy, majority)
    return proc.stderr, saved


def test_cli_default_on_chinese_beats_the_majority_class(tmp_path: Path) -> None:
    stderr, _ = _train_on_chinese(
        tmp_path, "--epochs", "3", "--hidden-size", "16", "--embedding-dim", "32", "--batch-size", "64",
        "--lr", "0.01",
    )  # fmt: skip
    assert "Tokenizer: char (auto:" in stderr
    card = (tmp_path / "out" / "README.md").read_text()  # the card speaks of characters, not words
    assert "A character-level recurrent model knows only its vocabulary" in card
    assert "word-level" not in card and "English-like" not in card


def test_cli_best_documented_option_on_chinese(tmp_path: Path) -> None:
    # docs/how-to/non-english.md: a recipe built for GloVe, with a learned character embedding instead.
    # Two epochs of this bigger model reach 0.76-0.795 (--seed 0-11 and 42; the default model's three
    # reach 0.81-0.86): a margin of 0.1 over the majority was the typical result itself (--seed 10 failed).
    stderr, saved = _train_on_chinese(
        tmp_path, "--recipe", "bigru-glove", "--vectors", "none", "--embedding-dim", "128", "--tokenizer", "char",
        "--epochs", "2", margin=0.05,
    )  # fmt: skip
    assert "Recipe bigru-glove:" in stderr and "coverage" not in stderr  # no word vectors
    config = saved["config"]
    assert (config["rnn_type"], config["embedding_dim"], config["pooling"]) == ("gru", 128, "mean_max")


def test_cli_with_a_pretrained_tokenizer_and_its_transformer_embeddings(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    texts, labels = waimai(400)
    folder = _wordpiece_folder(tmp_path, texts)
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    weights = np.random.default_rng(0).normal(size=(len(vocab), 16)).astype(np.float32)
    save_file({"bert.embeddings.word_embeddings.weight": weights}, str(folder / "model.safetensors"))
    _write_split(tmp_path / "train.csv", texts, labels)
    proc = run_cli(
        "train", "--train-file", "train.csv", "--text-column", "review", "--label-column", "label",
        "--tokenizer", str(folder), "--vectors", str(folder), "--freeze-vectors", "--max-steps", "4",
        "--hidden-size", "8", "--output-dir", "out", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # every row but padding's, the transformer's trained [CLS], [SEP], [UNK] and [MASK] too (they were
    # left random, for good with --freeze-vectors: [CLS] and [SEP] are in every text)
    assert f"coverage: {len(vocab) - 1:,} / {len(vocab) - 1:,} tokens found (100.0%)" in proc.stderr
    embedding = RNNClassifier.from_pretrained(tmp_path / "out").get_input_embeddings().weight.detach().numpy()
    rows = [vocab[t] for t in ("[UNK]", "[CLS]", "[SEP]", "[MASK]")] + [len(vocab) - 1]
    np.testing.assert_array_equal(embedding[rows], weights[rows])
    assert not embedding[vocab["[PAD]"]].any()
    # loaded as saved: no training options are claimed for it
    assert f"Vocab: {len(vocab):,} tokens (pretrained {folder})." in proc.stderr
    assert "min_freq" not in (tmp_path / "out" / "README.md").read_text()
    # The folder's own name only, in every file `push` uploads (the user's folder layout stays local).
    for name in ("recipe.yaml", "metrics.json", "config.json", "README.md"):
        text = (tmp_path / "out" / name).read_text()
        assert str(tmp_path) not in text and folder.name in text, name
    model = RNNClassifier.from_pretrained(tmp_path / "out")
    assert model.config.embedding_dim == 16
    clf = pipeline("text-classification", model=str(tmp_path / "out"))
    assert len(clf(texts[:3])) == 3


@pytest.mark.parametrize("model", ["char", "bpe"])
def test_datasets_map_and_train_from_dataset(model: str) -> None:
    import datasets

    texts, _ = waimai(300)
    ds = datasets.Dataset.from_dict({"review": texts})
    tok = RNNTokenizer.train_from_dataset(ds, "review", model=model)
    assert tok.get_vocab() == RNNTokenizer.train_from_iterator(texts, model=model).get_vocab()
    encoded = ds.map(lambda b: tok(b["review"], return_length=True), batched=True, batch_size=64)
    assert encoded["input_ids"] == tok(texts)["input_ids"]
    assert encoded["length"] == [len(ids) for ids in encoded["input_ids"]]


# Odd input for the fast path of subword and character models: every kind of character its tables treat
# differently (expanding compatibility forms, combining marks, astral characters, the sentinels it joins
# texts with, Python-only whitespace, final sigma, Hangul jamo that compose...).
ODD = [
    "",
    " ",
    "\t\n\r ",
    "emoji 😀 and 👍🏽 text",
    "𠀀𠀁 astral Han 𝐀𝐁",
    "\ufdd1",
    "a\ufdd1b \ufdd2 \ufdd1\ufdd1",
    "wait… ½ ﬁne ™ ㈱ ① ℃ Ⅻ",
    "ΟΔΟΣ Σίσυφος ΣΑΣ",
    "İstanbul ǅ ẞ Straße",
    "ＡＢＣ１２３！？ ｶﾞｷﾞ ｱﾞ",
    "\x1c\x1d\x1e\x1f between\x1cwords\x85next\u2028line",
    "\x00nul\x08 ctrl\x7f",
    "e\u0301 o\u0308\u0304 \u0301lead a\u20dd",
    "한국어 \u1100\u1161\u11a8 \u1100 \u1161",
    "नमस्ते दुनिया",
    "مرحبا بالعالم",
    "中文，混合English和数字123、日本語のカタカナ・ひらがな！",
    "วันนี้อากาศดีมาก 555",
    "covid19 2nd 3.14 1,000,000 x86_64 a-b/c",
    'don\'t "quote" <br /> <pad> <unk> [CLS]',
    "   leading and trailing spaces   ",
    "\u3000ideographic\u3000space\u00a0nbsp\u2009thin",
    "x" * 150,
    "中" * 200,
]


def _random_texts(seed: int, n: int) -> list[str]:
    """Random strings over a pool of every script and character kind above, plus random BMP chars."""
    rng = np.random.default_rng(seed)
    pool = sorted(set("".join(ODD + JAPANESE + THAI + FRENCH_GERMAN)) - {"\ufdd1"})
    texts = []
    for _ in range(n):
        k = int(rng.integers(0, 24))
        chars = [pool[i] for i in rng.integers(0, len(pool), k)]
        chars += [chr(int(c)) for c in rng.integers(0x20, 0xD7FF, int(rng.integers(0, 3)))]
        rng.shuffle(chars)
        texts.append("".join(chars))
    return texts


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("lowercase", [True, False])
def test_fast_path_gives_the_backends_ids_on_odd_text(model: str, lowercase: bool) -> None:
    corpus = waimai(300)[0] + JAPANESE + THAI + FRENCH_GERMAN + SPACE_SEPARATED + ODD
    tok = RNNTokenizer.train_from_iterator(corpus, model=model, lowercase=lowercase)
    assert tok._backend_fast_path().classes is not None  # the tables passed their self-check
    texts = ODD + JAPANESE + THAI + FRENCH_GERMAN + SPACE_SEPARATED + _random_texts(0, 400)
    backend = backend_ids(tok, texts)
    assert tok(texts)["input_ids"] == backend
    assert tok(texts)["input_ids"] == backend  # again, with the pieces cached
    assert [tok(t)["input_ids"] for t in ODD] == backend[: len(ODD)]  # single texts
    assert tok(texts[::-1])["input_ids"] == backend[::-1]
    for path in ("python", "rust", "standard"):
        tok.call_path = path
        assert tok(texts)["input_ids"] == backend, path
    tok.call_path = "auto"
    # on the default path too (subword models cannot map it to a word's unknown token): no other path offered
    with pytest.raises(
        ValueError, match=r"lone surrogate .*cannot encode it\. Clean it first, .*decode\('utf-8'\)\.$"
    ):
        tok(["fine", "bad \ud800 text"])


@pytest.mark.parametrize("model", ["bpe", "unigram", "wordpiece"])
@pytest.mark.parametrize("lowercase", [True, False])
def test_fast_path_word_cache_is_shared_by_ascii_and_other_texts(model: str, lowercase: bool) -> None:
    # ASCII texts are looked up word by word as written ("The" and "the" are two cache entries with the
    # ids of the normalized form); other texts by their normalized pieces. Whichever fills the cache
    # first, both must give the backend's ids.
    tok = RNNTokenizer.train_from_iterator(SPACE_SEPARATED + FRENCH_GERMAN, model=model, lowercase=lowercase)
    ascii_texts = ["The CAT sat, didn't it?", "the cat Sat", "THE Cat", "", "  tHe  "]
    other = ["Thé CAT sat", "the Café, THE cat", "ÉTÉ the The"]
    for order in (
        ascii_texts + other,
        other + ascii_texts,
        [t for pair in zip(other, ascii_texts[:3], strict=True) for t in pair],
        [other[0], ascii_texts[0], *other[1:], ascii_texts[2]],  # mostly non-ASCII, ASCII among them
    ):
        _drop_fast_path(tok)  # a fresh, empty cache for each order
        assert tok._backend_fast_path().classes is not None  # the fast tables passed their self-check
        backend = backend_ids(tok, order)
        for _ in range(2):
            assert [tok(t)["input_ids"] for t in order] == backend
            assert tok(order)["input_ids"] == backend


@pytest.mark.parametrize("model", ["bpe", "char"])
def test_fast_path_on_real_chinese_and_english_equals_the_backend(model: str) -> None:
    chinese = waimai(3000)[0]
    english = ag_news(3000)
    for texts in (chinese, english):
        tok = RNNTokenizer.train_from_iterator(texts, model=model)
        backend = backend_ids(tok, texts)
        assert tok(texts)["input_ids"] == backend
        assert tok._backend_fast_path().classes is not None  # the tables passed their self-check
    tok = RNNTokenizer.train_from_iterator(chinese, model=model, split_unsegmented=False)
    backend = backend_ids(tok, chinese)
    assert tok(chinese)["input_ids"] == backend


@pytest.mark.parametrize("model", ["bpe", "char"])
def test_fast_path_copies_of_the_backend_leave_it_alone_and_follow_added_specials(model: str) -> None:
    # The fast path's encoders share the backend's model object (no parsing of its JSON): the backend
    # keeps its settings, and an added special token outside the model's vocabulary keeps its id.
    chinese = waimai(300)[0]
    texts = chinese[:100] + SPACE_SEPARATED + FRENCH_GERMAN
    tok = RNNTokenizer.train_from_iterator(chinese + SPACE_SEPARATED, model=model)
    before = tok.backend_tokenizer.to_str()
    assert tok(texts)["input_ids"] == backend_ids(tok, texts)
    assert tok.backend_tokenizer.to_str() == before  # its normalizer, post-processor, added tokens
    short = tok(texts[:3], truncation=True, max_length=8)["input_ids"]  # (the standard path)
    assert short == [ids[:8] for ids in backend_ids(tok, texts[:3])]
    tok.add_special_tokens({"additional_special_tokens": ["<extra>"]})
    extra = tok.convert_tokens_to_ids("<extra>")
    assert extra >= tok.backend_tokenizer.get_vocab_size(with_added_tokens=False)
    fast = tok._backend_fast_path()
    assert fast is not None and fast.classes is not None
    assert fast.pieces.token_to_id("<extra>") == extra  # the copies keep the added token's id
    with_extra = [*texts, "fine <extra> text", "<extra>"]
    assert tok(with_extra)["input_ids"] == backend_ids(tok, with_extra)


def test_characters_alone_are_looked_up_only_where_the_model_encodes_them_so() -> None:
    # A character alone is its vocabulary entry (else the unknown ids) in the trained models; where a model
    # option changes that (an end-of-word suffix, byte fallback) the fast path asks the pipeline instead.
    chinese = waimai(200)[0]
    for model in MODELS:
        tok = RNNTokenizer.train_from_iterator(chinese, model=model)
        unk = tok.convert_tokens_to_ids("<unk>")
        assert tokenization._unknown_char_ids(tok.backend_tokenizer.model) == [unk], model
        texts = [*chinese, "新字：鑫龘靐齉", "ㄅㄆㄇ ꙮ"]  # characters never seen in training
        assert tok(texts)["input_ids"] == backend_ids(tok, texts), model
    vocab = {"<unk>": 0, "a": 1, "b": 2, "ab": 3}
    assert tokenization._unknown_char_ids(models.BPE(vocab, [("a", "b")], unk_token="<unk>")) == [0]
    assert tokenization._unknown_char_ids(models.BPE(vocab, [("a", "b")])) == []  # unknown: dropped
    assert tokenization._unknown_char_ids(models.BPE(vocab, [], byte_fallback=True)) is None
    assert tokenization._unknown_char_ids(models.BPE(vocab, [], end_of_word_suffix="</w>")) is None


@pytest.mark.parametrize("model", ["bpe", "unigram", "wordpiece"])
def test_piece_cache_restarts_when_full_and_keeps_the_backends_ids(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache of pieces' ids is bounded: past the bound it starts again (its entries are fresh string
    # copies and shared id objects, see `_learn`); ASCII pieces are encoded without the CJK split.
    english = ag_news(600)
    # batches of one kind each, each overflowing the small cache: ASCII words, accented words (pieces
    # cut apart at the separator piece), Chinese characters with runs
    batches = [english[i : i + 100] for i in range(0, 600, 100)] + [FRENCH_GERMAN, waimai(200)[0]]
    texts = [text for batch in batches for text in batch]
    tok = RNNTokenizer.train_from_iterator(texts, model=model)
    fast = tok._backend_fast_path()
    assert fast.classes is not None and fast.ascii_pieces is not None
    monkeypatch.setattr(tokenization, "_PIECE_CACHE_MAX", 60)
    backend = backend_ids(tok, texts)
    got = [ids for batch in batches for ids in tok(batch)["input_ids"]]
    assert got == backend
    assert len(fast.cache) < len(set(" ".join(english).split())) / 4  # it restarted
    assert tok(texts)["input_ids"] == backend


@pytest.mark.parametrize("model", ["char", "bpe"])
def test_isolated_characters_get_their_ids_when_first_met(model: str) -> None:
    # Tens of thousands of characters (CJK, punctuation) are each a piece of their own; their ids are
    # asked for when a text first holds them, so a tokenizer's set-up does not encode them all.
    chinese, _ = waimai(400)
    tok = RNNTokenizer.train_from_iterator(chinese[:200], model=model)
    fast = tok._backend_fast_path()
    pending = int(np.count_nonzero(fast.classes == tokenization._CLASS_PENDING))
    assert pending > 20_000
    for texts in (chinese[:200], chinese[200:], JAPANESE, chinese[:200] + JAPANESE + chinese[200:]):
        backend = backend_ids(tok, texts)
        assert tok(texts)["input_ids"] == backend
    met = {ord(c) for text in chinese + JAPANESE for c in text}
    resolved = pending - int(np.count_nonzero(fast.classes == tokenization._CLASS_PENDING))
    assert 0 < resolved <= len(met) + 500  # those met (and the self-check's sample of 400), not all


def test_threads_sharing_a_subword_tokenizer_get_the_backends_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    # One tokenizer, its pieces' cache shared by threads (e.g. a web server's workers): each thread's
    # misses are its own, and a cache restart by one thread mid-batch of another costs only time.
    import threading

    english = ag_news(800)
    chinese = waimai(400)[0]
    tok = RNNTokenizer.train_from_iterator(english + chinese, model="bpe")
    monkeypatch.setattr(tokenization, "_PIECE_CACHE_MAX", 300)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, in the middle of batches
    try:
        jobs = {
            "english": english,
            "chinese": chinese,
            "reversed": english[::-1],
            "mixed": english[::2] + chinese,
        }
        got: dict[str, list[list[int]]] = {}

        def work(name: str) -> None:
            texts = jobs[name]
            got[name] = [ids for i in range(0, len(texts), 20) for ids in tok(texts[i : i + 20])["input_ids"]]

        threads = [threading.Thread(target=work, args=(name,)) for name in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    for name, texts in jobs.items():
        backend = backend_ids(tok, texts)
        assert got[name] == backend, name


def test_max_vocab_size_holds_for_subword_models_on_chinese() -> None:
    # 400 reviews hold ~1,000 distinct characters: the trainers kept them all whatever the cap (988 BPE
    # tokens for a cap of 300) and Unigram failed with a bare Exception.
    texts, _ = waimai(400)
    for model in ("bpe", "wordpiece", "char"):
        tok = RNNTokenizer.train_from_iterator(texts, model=model, max_vocab_size=300)
        assert len(tok) == 300, (model, len(tok))
        ids = tok(texts[:50])["input_ids"]
        assert ids == backend_ids(tok, texts[:50])
        # the rarest characters became unknown, the common ones did not
        assert 0 < sum(row.count(tok.unk_token_id) for row in ids) < 0.35 * sum(map(len, ids)), model
    with pytest.raises(ValueError, match=r"max_vocab_size=300 is too small for model='unigram', which needs"):
        RNNTokenizer.train_from_iterator(texts, model="unigram", max_vocab_size=300)
    assert len(RNNTokenizer.train_from_iterator(texts, model="bpe")) > 900  # no cap given: all characters


def test_capped_bpe_vocabulary_does_not_change_from_run_to_run() -> None:
    # The trainer's limit_alphabet broke ties between equally frequent characters in hash-map order:
    # another vocabulary each run (and on each DDP rank). Now: most frequent first, ties by code point.
    texts, _ = waimai(400)
    vocabs = [
        RNNTokenizer.train_from_iterator(texts, model="bpe", max_vocab_size=300).get_vocab() for _ in range(4)
    ]
    assert all(v == vocabs[0] for v in vocabs[1:])
    counts = Counter("".join(unicodedata.normalize("NFKC", "".join(texts)).lower().split()))
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    assert set(vocabs[0]) == {"<pad>", "<unk>", *ranked[:298]}


def test_unigram_ids_do_not_change_from_run_to_run() -> None:
    # The Unigram trainer numbers its pieces in an order that changed from run to run.
    texts, _ = waimai(500)
    first, second = (RNNTokenizer.train_from_iterator(texts, model="unigram").get_vocab() for _ in range(2))
    assert first == second


@pytest.mark.parametrize("model", ["bpe", "char"])
def test_a_normalizer_replaced_after_the_first_call_is_followed(model: str) -> None:
    texts = FRENCH_GERMAN + SPACE_SEPARATED
    tok = RNNTokenizer.train_from_iterator(texts, model=model)
    tok(texts)  # the fast path is built
    tok.backend_tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()]
    )
    more = [*texts, "naïve Café"]
    assert tok(more)["input_ids"] == backend_ids(tok, more)
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    assert tok(texts)["input_ids"] == backend_ids(tok, texts)


def test_bpe_dropout_turned_on_after_the_first_call_samples_each_call() -> None:
    # The pieces' cache kept one dropout draw per word: every later call gave the same ids.
    texts = SPACE_SEPARATED * 3
    tok = RNNTokenizer.train_from_iterator(texts, model="bpe")
    plain = tok(texts)["input_ids"]  # the fast path is built, its pieces cached
    tok.backend_tokenizer.model.dropout = 0.5
    draws = [tok(texts)["input_ids"] for _ in range(3)]
    assert all(d != plain for d in draws) and draws[0] != draws[1] != draws[2]
    tok.backend_tokenizer.model.dropout = 0.0
    assert tok(texts)["input_ids"] == plain == backend_ids(tok, texts)


def test_datasets_fingerprint_does_not_change_with_use(tmp_path) -> None:
    # datasets.map's cache key hashes the function and so the tokenizer it calls: two copies of a saved
    # tokenizer (as two runs of a script load it) must hash the same, before and after encoding texts
    # (each copy meets other characters), or every run recomputes the map and writes a new cache file.
    from datasets.fingerprint import Hasher

    texts, _ = waimai(60)
    for model in ("word", "bpe", "char"):
        RNNTokenizer.train_from_iterator(texts[:40], model=model).save_pretrained(tmp_path / model)
        first, second = (RNNTokenizer.from_pretrained(tmp_path / model) for _ in range(2))
        fresh = Hasher.hash(first)
        first(texts[:30])
        second(texts[30:] + SPACE_SEPARATED + ["新字 ñ ü …"])
        assert Hasher.hash(first) == Hasher.hash(second) == fresh, model
        assert first(texts)["input_ids"] == second(texts)["input_ids"]


@pytest.mark.parametrize("model", ["bpe", "char"])
def test_pickled_subword_tokenizer_keeps_its_fast_path_and_special_token_rule(model: str) -> None:
    # datasets.map(num_proc=...) pickles the tokenizer into its workers; a pickled `tokenizers.Tokenizer`
    # comes back with encode_special_tokens off, which disabled the fast tables (every text through Rust)
    # and let "<pad>" written in a text become the pad token on that path.
    import pickle

    texts = SPACE_SEPARATED + FRENCH_GERMAN + waimai(100)[0] + ["a <pad> b <unk>", "<pad>", "x<unk>y"]
    tok = RNNTokenizer.train_from_iterator(texts, model=model)
    expected = tok(texts)["input_ids"]
    tok.call_path = "standard"
    assert tok(texts)["input_ids"] == expected
    tok.call_path = "auto"
    for copy in (
        pickle.loads(pickle.dumps(tok)),
        pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(tok)))),
    ):
        assert copy(texts)["input_ids"] == expected
        assert copy._backend_fast_path().classes is not None  # the fast tables are in use
        fast = copy._backend_fast_path()
        restored = pickle.loads(pickle.dumps(fast))  # the fast path alone (its Rust copies' flag kept)
        assert restored.backend.encode_special_tokens and restored.pieces.encode_special_tokens
        assert restored.encode_python(texts) == expected
    assert tok.pad_token_id not in tok("a <pad> b")["input_ids"]  # written specials are words
