"""RNNTokenizer: torchtext basic_english parity, vocabulary order, HF integration, bad input."""

from __future__ import annotations

import copy
import csv
import json
import pickle
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import normalizers
from transformers import AutoTokenizer, BatchEncoding

from rnn_textclf import RNNTokenizer, basic_english_tokenize
from rnn_textclf.tokenization import build_tokenizer, check_vocabulary, choose_tokenizer

# ---------------------------------------------------------------------------------------------
# References, written here from the rules (not imported from the package)
# ---------------------------------------------------------------------------------------------

# torchtext/data/utils.py: _basic_english_normalize
_PATTERNS = [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"]
_REPLACEMENTS = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
_RULES = [(re.compile(p), r) for p, r in zip(_PATTERNS, _REPLACEMENTS, strict=True)]


def reference_basic_english(line: str) -> list[str]:
    line = line.lower()
    for pattern, replacement in _RULES:
        line = pattern.sub(replacement, line)
    return line.split()


def reference_vocab(
    tokenized: list[list[str]],
    min_freq: int = 1,
    specials: tuple[str, ...] = ("<pad>", "<unk>"),
    max_size: int | None = None,
) -> dict[str, int]:
    """torchtext's Vocab order: specials first; sort by token, then stable sort by count, descending."""
    counter = Counter(token for tokens in tokenized for token in tokens)
    for special in specials:
        del counter[special]
    ordered = sorted(counter.items(), key=lambda item: item[0])
    ordered.sort(key=lambda item: item[1], reverse=True)
    words = [token for token, count in ordered if count >= min_freq]
    if max_size is not None:
        words = words[: max_size - len(specials)]
    return {token: i for i, token in enumerate([*specials, *words])}


def reference_ids(texts: list[str], vocab: dict[str, int], unk: str = "<unk>") -> list[list[int]]:
    return [[vocab.get(token, vocab[unk]) for token in reference_basic_english(text)] for text in texts]


CALL_PATHS = ("python", "rust", "standard")


def itos(tok: RNNTokenizer) -> list[str]:
    vocab = tok.get_vocab()
    return sorted(vocab, key=vocab.__getitem__)


def ids_by_path(tok: RNNTokenizer, texts: list[str], **kwargs) -> dict[str, list[list[int]]]:
    out = {}
    for path in CALL_PATHS:
        tok.call_path = path
        out[path] = tok(texts, **kwargs)["input_ids"]
    tok.call_path = "auto"
    return out


# Characters where Python and Rust disagree, or that the rules treat specially.
_RUST_LOWERCASES = [
    c
    for c in "\u1c89\ua7cb\ua7cc\ua7dc\U00010d50\U00010d57\U00016ea0\U00016eb8"
    if normalizers.Lowercase().normalize_str(c) != c.lower()
]
TRICKY = (
    list("aAzZ09 \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u3000")
    + list("'\".,()!?;:<>/br-_\\#$&")
    + list("\u03a3\u03c3\u03c2\u0391\u0130\u0049\u0307\u02b0\u0345\u00ad\u0300\u2019\u00aa\u2160\u24b6")
    + list("\u1e9e\u00df\u212a\u2126\ufb00\u0149\u01c5\u1f88\ufdd0\ufdd1\ufdd2")
    + _RUST_LOWERCASES
)
tricky_text = st.text(alphabet=st.sampled_from(TRICKY), max_size=30)
any_text = st.text(max_size=30)
texts_strategy = st.one_of(tricky_text, any_text, st.sampled_from(["<br />", 'a<br "/>b', "ΑΣ ΑΣΑ ʰΣ Α'Σ"]))


@pytest.fixture(scope="module")
def ag_news(shared_data: Path) -> list[str]:
    with open(shared_data / "ag_news_csv" / "test.csv", newline="", encoding="utf-8") as f:
        return [f"{title} {description}" for _, title, description in csv.reader(f)]


@pytest.fixture(scope="module")
def ag_tok(ag_news: list[str]) -> RNNTokenizer:
    return RNNTokenizer.train_from_iterator(ag_news)


# ---------------------------------------------------------------------------------------------
# Parity with basic_english
# ---------------------------------------------------------------------------------------------


def test_ag_news_words_and_ids_match_reference(ag_news: list[str], ag_tok: RNNTokenizer) -> None:
    assert len(ag_news) == 7600
    expected_words = [reference_basic_english(t) for t in ag_news]
    assert [basic_english_tokenize(t) for t in ag_news] == expected_words
    assert [ag_tok.split_words(t) for t in ag_news] == expected_words  # the Rust pipeline itself

    vocab = reference_vocab(expected_words)
    assert ag_tok.get_vocab() == vocab
    expected_ids = reference_ids(ag_news, vocab)
    for path in ("python", "rust"):
        ag_tok.call_path = path
        assert ag_tok(ag_news)["input_ids"] == expected_ids, path
    ag_tok.call_path = "standard"  # the transformers path is slow: a fifth of the texts
    assert ag_tok(ag_news[::5])["input_ids"] == expected_ids[::5]
    ag_tok.call_path = "auto"


def test_ag_news_min_freq_10_as_in_the_lecture(ag_news: list[str]) -> None:
    tok = RNNTokenizer.train_from_iterator(iter(ag_news), min_freq=10)
    vocab = reference_vocab([reference_basic_english(t) for t in ag_news], min_freq=10)
    assert tok.get_vocab() == vocab
    assert 2 < len(vocab) < 10_000
    assert tok(ag_news[:500])["input_ids"] == reference_ids(ag_news[:500], vocab)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts_strategy)
def test_split_words_matches_reference_on_unicode(ag_tok: RNNTokenizer, text: str) -> None:
    assert ag_tok.split_words(text) == reference_basic_english(text)
    assert basic_english_tokenize(text) == reference_basic_english(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(texts_strategy, min_size=1, max_size=6))
def test_trained_ids_match_reference_on_unicode(texts: list[str]) -> None:
    tok = RNNTokenizer.train_from_iterator(texts)
    vocab = reference_vocab([reference_basic_english(t) for t in texts])
    assert tok.get_vocab() == vocab
    expected = reference_ids(texts, vocab)
    for path, ids in ids_by_path(tok, texts).items():
        assert ids == expected, path
    for text, ids in zip(texts, expected, strict=True):
        assert tok.convert_ids_to_tokens(ids) == reference_basic_english(text)


def test_final_sigma_and_case_ignorable_context() -> None:
    cases = {
        "ΑΣ": ["ας"],
        "ΑΣΑ": ["ασα"],
        "ΑΣΣ": ["ασς"],
        "Σ": ["σ"],
        "ʰΣ": ["ʰσ"],  # modifier letter: case-ignorable, so nothing cased precedes
        "Α'Σ": ["α", "'", "ς"],  # the apostrophe is case-ignorable in str.lower()
        "ΑΣ'Α": ["ασ", "'", "α"],
        "Α\u00adΣ": ["α\u00adς"],
        "İ": ["i̇"],
    }
    tok = RNNTokenizer.train_from_iterator(list(cases))
    for text, words in cases.items():
        assert reference_basic_english(text) == words, text
        assert tok.split_words(text) == words, text
        assert tok.convert_ids_to_tokens(tok(text)["input_ids"]) == words, text


def test_python_whitespace_that_rust_does_not_split_on() -> None:
    text = "a\x1cb\x1dc\x1ed\x1fe\x85f\u2028g\u3000h\u200bi"  # U+200B is not whitespace in Python
    words = ["a", "b", "c", "d", "e", "f", "g", "h\u200bi"]
    assert reference_basic_english(text) == words
    tok = RNNTokenizer.train_from_iterator([text])
    assert tok.split_words(text) == words
    for ids in ids_by_path(tok, [text]).values():
        assert tok.convert_ids_to_tokens(ids[0]) == words


def test_characters_rust_lowercases_but_python_does_not() -> None:
    # Code points newer than this Python's Unicode database: str.lower() keeps them.
    texts = [f"x{c}y {c.lower()}z {c}" for c in _RUST_LOWERCASES] + ["\ufdd0 \ufdd0\ufdd0", "plain"]
    tokenized = [reference_basic_english(t) for t in texts]
    tok = RNNTokenizer.train_from_iterator(texts)
    vocab = reference_vocab(tokenized)
    assert tok.get_vocab() == vocab
    assert [tok.split_words(t) for t in texts] == tokenized
    expected = reference_ids(texts, vocab)
    for ids in ids_by_path(tok, texts).values():
        assert ids == expected
    assert [tok.convert_ids_to_tokens(ids) for ids in expected] == tokenized
    words = [w for words in tokenized for w in words]
    assert tok.convert_tokens_to_ids(words) == [vocab[w] for w in words]
    # tokenize() shows them as convert_ids_to_tokens does, so convert_tokens_to_ids(tokenize(t)) is encode's ids
    assert [tok.tokenize(t) for t in texts] == tokenized
    assert [tok.convert_tokens_to_ids(tok.tokenize(t)) for t in texts] == expected


def test_br_tag_and_quotes_follow_rule_order() -> None:
    cases = {
        "a<br />b": ["a", "b"],
        'a<br "/>b': ["a", "b"],  # quotes go first, then <br />
        'a<b"r />b': ["a", "b"],
        "A<BR />B": ["a", "b"],  # lowercased first
        "a<br/>b": ["a<br/>b"],
        "a<br  />b": ["a<br", "/>b"],
        'say "hi"': ["say", "hi"],
        "don't (x)!?;:y,z.": ["don", "'", "t", "(", "x", ")", "!", "?", "y", ",", "z", "."],
    }
    tok = RNNTokenizer.train_from_iterator(list(cases))
    for text, words in cases.items():
        assert reference_basic_english(text) == words, text
        assert tok.split_words(text) == words, text
        assert tok.convert_ids_to_tokens(tok(text)["input_ids"]) == words, text


def test_whitespace_normalization_mode() -> None:
    texts = ["Hello, World! Don't", "ΑΣ a\x1cb", "  ", ""]
    tok = RNNTokenizer.train_from_iterator(texts, normalization="whitespace")
    assert tok.normalization == "whitespace"
    expected_words = [t.lower().split() for t in texts]
    assert [tok.split_words(t) for t in texts] == expected_words
    vocab = reference_vocab(expected_words)
    assert tok.get_vocab() == vocab
    expected = [[vocab[w] for w in words] for words in expected_words]
    for ids in ids_by_path(tok, texts).values():
        assert ids == expected


# ---------------------------------------------------------------------------------------------
# Vocabulary order, min_freq, max_vocab_size, specials
# ---------------------------------------------------------------------------------------------

TIES = ["b a c", "c a b", "d e", "e d f", "zz yy", "yy zz", "a"]


def test_vocab_order_with_ties_matches_torchtext() -> None:
    tok = RNNTokenizer.train_from_iterator(TIES)
    # counts: a 3; b c d e yy zz 2; f 1 -> ties broken by token
    expected = ["<pad>", "<unk>", "a", "b", "c", "d", "e", "yy", "zz", "f"]
    assert tok.convert_ids_to_tokens(list(range(len(expected)))) == expected
    assert tok.get_vocab() == reference_vocab([t.split() for t in TIES])
    assert (tok.pad_token, tok.pad_token_id, tok.unk_token, tok.unk_token_id) == ("<pad>", 0, "<unk>", 1)
    assert tok("a zz f unknown")["input_ids"] == [2, 8, 9, 1]
    assert len(tok) == len(expected) == tok.vocab_size


def test_min_freq_and_max_vocab_size_edges() -> None:
    tokenized = [t.split() for t in TIES]
    for min_freq in (1, 2, 3, 4):
        tok = RNNTokenizer.train_from_iterator(TIES, min_freq=min_freq)
        assert tok.get_vocab() == reference_vocab(tokenized, min_freq=min_freq)
    assert itos(RNNTokenizer.train_from_iterator(TIES, min_freq=4)) == ["<pad>", "<unk>"]
    for size in (3, 4, 9, 10, 11, 100):
        tok = RNNTokenizer.train_from_iterator(TIES, max_vocab_size=size)
        assert tok.get_vocab() == reference_vocab(tokenized, max_size=size)
        assert len(tok) == min(size, 10)
    tok = RNNTokenizer.train_from_iterator(TIES, min_freq=2, max_vocab_size=4)
    assert itos(tok) == ["<pad>", "<unk>", "a", "b"]


def test_custom_specials_and_specials_in_the_text() -> None:
    texts = ["<unk> <unk> <unk> x", "<bos> y y", "x<pad>y"]
    specials = ("<unk>", "<pad>", "<bos>")
    tok = RNNTokenizer.train_from_iterator(texts, specials=specials)
    vocab = reference_vocab([reference_basic_english(t) for t in texts], specials=specials)
    assert tok.get_vocab() == vocab
    assert (tok.unk_token_id, tok.pad_token_id) == (0, 1)
    assert tok.convert_tokens_to_ids("<bos>") == 2
    assert "<bos>" in tok.all_special_tokens
    # Special tokens written in a text are plain words, as in torchtext (no added-token matching).
    assert tok(["<pad>", "<unk>", "x<pad>y", "<PAD>"])["input_ids"] == [[1], [0], [vocab["x<pad>y"]], [1]]
    assert tok("y")["input_ids"] == [vocab["y"]]


def test_no_special_tokens_around_texts() -> None:
    tok = RNNTokenizer.train_from_iterator(["a b"])
    assert tok.model_input_names == ["input_ids", "attention_mask"]
    for path in CALL_PATHS:
        tok.call_path = path
        enc = tok("a b", add_special_tokens=True)
        assert enc["input_ids"] == tok.convert_tokens_to_ids(["a", "b"])
        assert set(enc) == {"input_ids", "attention_mask"}
    assert tok.decode(tok("a b c")["input_ids"]) == "a b <unk>"
    assert tok.decode(tok("a b c")["input_ids"], skip_special_tokens=True) == "a b"


def test_train_from_iterator_streams_a_generator_with_progress_bar(capfd: pytest.CaptureFixture[str]) -> None:
    consumed = []

    def texts():
        for text in TIES * 100:
            consumed.append(1)
            yield text

    tok = RNNTokenizer.train_from_iterator(texts(), show_progress=True, length=len(TIES) * 100)
    assert len(consumed) == len(TIES) * 100
    assert "Counting words" in capfd.readouterr().err
    assert tok.get_vocab() == RNNTokenizer.train_from_iterator(TIES).get_vocab()


def test_long_documents_are_counted_exactly() -> None:
    words = [f"w{i % 997}" for i in range(60_000)]
    texts = [" ".join(words[i::3]) + " . Tail" for i in range(3)] + ["short one"] * 300
    assert max(map(len, texts)) > 70_000
    tok = RNNTokenizer.train_from_iterator(texts, min_freq=2)
    assert tok.get_vocab() == reference_vocab([reference_basic_english(t) for t in texts], min_freq=2)


def test_from_vocab() -> None:
    itos = ["<pad>", "<unk>", "the", "cat", "."]
    tok = RNNTokenizer.from_vocab(itos)
    assert tok("The cat. The dog.")["input_ids"] == [2, 3, 4, 2, 1, 4]
    assert RNNTokenizer.from_vocab({t: i for i, t in enumerate(itos)}).get_vocab() == tok.get_vocab()
    with pytest.raises(ValueError, match=r"unk_token '<oov>' is not in the vocabulary"):
        RNNTokenizer.from_vocab(itos, unk_token="<oov>")
    with pytest.raises(ValueError, match="must not repeat"):
        RNNTokenizer.from_vocab([*itos, "cat"])
    with pytest.raises(ValueError, match=r"0\.\.len\(vocab\)-1"):
        RNNTokenizer.from_vocab({"<pad>": 0, "<unk>": 2})


def test_a_hub_tokenizer_not_cached_offline_is_said_so(tmp_path: Path, monkeypatch) -> None:
    # (said: the repo has no tokenizer.json, push one, where the file was only not in the cache)
    with pytest.raises(
        OSError,
        match=r"'me/model': its tokenizer.json is not in the local Hub cache and "
        r"local_files_only=True",
    ):
        RNNTokenizer.from_pretrained("me/model", local_files_only=True)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match=r"not in the local Hub cache and HF_HUB_OFFLINE is set"):
        RNNTokenizer.from_pretrained("me/model")
    # a local folder without the file keeps its own message
    with pytest.raises(OSError, match=r"has no tokenizer: tokenizer.json is missing"):
        RNNTokenizer.from_pretrained(str(tmp_path), local_files_only=True)


def test_constructor_without_a_tokenizer_says_how_to_build_one(tmp_path: Path) -> None:
    # transformers' own message talks of sentencepiece; vocab= gave a byte-pair model with no ids at all
    with pytest.raises(ValueError, match=r"RNNTokenizer\(\) has no tokenizer to wrap.*train_from_iterator"):
        RNNTokenizer()
    with pytest.raises(ValueError, match=r"RNNTokenizer\(vocab=\.\.\.\).*from_vocab\(vocab\)"):
        RNNTokenizer(vocab={"<pad>": 0, "<unk>": 1, "hello": 2})
    with pytest.raises(ValueError, match=r"tokenizer_file='.*nope.json'\): no such file"):
        RNNTokenizer(tokenizer_file=str(tmp_path / "nope.json"))
    # what does build one still works: the Rust object, the file, a saved folder, pickling
    tok = RNNTokenizer.from_vocab(["<pad>", "<unk>", "hello", "world"])
    tok.save_pretrained(tmp_path)
    for again in (
        RNNTokenizer(tokenizer_object=tok.backend_tokenizer),
        RNNTokenizer(tokenizer_file=str(tmp_path / "tokenizer.json")),
        RNNTokenizer.from_pretrained(tmp_path),
        pickle.loads(pickle.dumps(tok)),
        copy.deepcopy(tok),
    ):
        assert again("Hello, world!")["input_ids"] == [2, 1, 3, 1]


# ---------------------------------------------------------------------------------------------
# The call: options, fast paths vs the standard transformers path
# ---------------------------------------------------------------------------------------------

OPTION_GRID = [
    {},
    {"return_length": True},
    {"truncation": True, "max_length": 3},
    {"truncation": True, "max_length": 3, "return_length": True},
    {"max_length": 2},
    {"truncation": True},
    {"padding": True},
    {"padding": "longest", "return_tensors": "pt"},
    {"padding": "max_length", "max_length": 6, "truncation": True},
    {"padding": True, "pad_to_multiple_of": 4, "return_length": True},
    {"padding": True, "padding_side": "left", "return_tensors": "np"},
    {"return_attention_mask": False},
    {"return_token_type_ids": True, "padding": True},
    {"padding": "max_length", "max_length": 5, "truncation": True, "return_tensors": "pt"},
]


def _plain(encoding: BatchEncoding) -> dict:
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in encoding.items()}


@pytest.mark.parametrize(
    "options", OPTION_GRID, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "none"
)
def test_fast_paths_equal_the_standard_path(options: dict) -> None:
    tok = RNNTokenizer.train_from_iterator(TIES)
    batch = ["a b c d e f", "", "zz", "   ", "unknown words here a b", "ΑΣ d."]
    for text in (batch, batch[0], batch[1], tuple(batch)):
        results = {}
        for path in CALL_PATHS:
            tok.call_path = path
            results[path] = _plain(tok(text, **options))
        assert results["python"] == results["standard"], (text, options)
        assert results["rust"] == results["standard"], (text, options)


def test_every_path_follows_added_special_tokens_a_replaced_normalizer_and_a_full_sentinel_vocab() -> None:
    # from a differential fuzz audit: each gave the python path other ids than the standard one (or raised)
    def same_on_every_path(tok, texts):
        results = {}
        for path in CALL_PATHS:
            tok.call_path = path
            results[path] = tok(texts)["input_ids"]
        assert results["python"] == results["rust"] == results["standard"], results
        return results["standard"]

    tok = RNNTokenizer.train_from_iterator(["hello world", "good day"])
    tok("hello")  # the fast path is built before the change
    tok.add_special_tokens({"additional_special_tokens": ["<x>"]})
    # special tokens written in text are split (split_special_tokens=True): "<x>" is an unknown word
    hello, world = tok.convert_tokens_to_ids(["hello", "world"])
    assert same_on_every_path(tok, ["hello <x>", "<x>"]) == [[hello, 1], [1]]

    tok = RNNTokenizer.train_from_iterator(["Hello world", "good day"] * 3)
    tok.call_path = "python"
    assert tok("Hello WORLD")["input_ids"] == [hello, world]
    tok.backend_tokenizer.normalizer = normalizers.Sequence([])  # lowercasing (and the rest) dropped
    assert same_on_every_path(tok, ["Hello WORLD", "hello world"]) == [[1, 1], [hello, world]]

    sentinels = [chr(c) for c in range(0xFDD1, 0xFDF0)]  # every noncharacter the fast paths cut at
    for model in ("word", "char"):
        tok = RNNTokenizer.train_from_iterator(["abc " + " ".join(sentinels)], model=model)
        assert all(tok.convert_tokens_to_ids(c) != tok.unk_token_id for c in sentinels)
        ids = same_on_every_path(tok, ["abc", "abc " + sentinels[0]])
        assert ids[1][-1] == tok.convert_tokens_to_ids(sentinels[0])


def test_truncation_side_left_and_single_text() -> None:
    tok = RNNTokenizer.train_from_iterator(TIES)
    tok.truncation_side = "left"
    for path in CALL_PATHS:
        tok.call_path = path
        assert tok("a b c d", truncation=True, max_length=2)["input_ids"] == tok.convert_tokens_to_ids(
            ["c", "d"]
        )
        single = tok("a b", return_length=True)
        assert single["input_ids"] == [2, 3] and single["attention_mask"] == [1, 1]
        assert single["length"] == [2]  # as transformers gives it for one text


def test_other_options_take_the_standard_path() -> None:
    tok = RNNTokenizer.train_from_iterator(TIES)
    enc = tok(["a b", "c"], return_offsets_mapping=True)
    assert enc["offset_mapping"] == [[(0, 1), (2, 3)], [(0, 1)]]
    assert enc.word_ids(0) == [0, 1]
    pair = tok("a b", "c d")
    assert pair["input_ids"] == tok.convert_tokens_to_ids(["a", "b", "c", "d"])
    words = tok([["A", "b"], ["c"]], is_split_into_words=True)
    assert words["input_ids"] == [[2, 3], [4]]


def test_empty_and_whitespace_texts() -> None:
    tok = RNNTokenizer.train_from_iterator(["a", "", " \t\n"])
    assert itos(tok) == ["<pad>", "<unk>", "a"]
    for path in CALL_PATHS:
        tok.call_path = path
        enc = tok(["", "   ", "\x1c\n", "a"], return_length=True)
        assert enc["input_ids"] == [[], [], [], [2]]
        assert enc["length"] == [0, 0, 0, 1]
        assert tok("")["input_ids"] == []
        assert tok([])["input_ids"] == []


def test_datasets_map_batched_with_truncation_and_length() -> None:
    texts = [" ".join(["a", "b", "c", "zz"] * (i % 7)) + " tail" for i in range(300)]
    ds = datasets.Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(300)]})
    tok = RNNTokenizer.train_from_dataset(ds, text_column="text", min_freq=1)
    assert tok.get_vocab() == reference_vocab([reference_basic_english(t) for t in texts])
    mapped = ds.map(
        lambda batch: tok(batch["text"], truncation=True, max_length=8, return_length=True),
        batched=True,
        batch_size=64,
    )
    assert set(mapped.column_names) == {"text", "label", "input_ids", "attention_mask", "length"}
    expected = [ids[:8] for ids in reference_ids(texts, tok.get_vocab())]
    assert mapped["input_ids"] == expected
    assert mapped["length"] == [len(ids) for ids in expected]
    assert max(mapped["length"]) == 8
    assert mapped["attention_mask"] == [[1] * len(ids) for ids in expected]


def test_train_from_dataset_streaming_and_errors() -> None:
    ds = datasets.Dataset.from_dict({"sentence": TIES})
    streamed = datasets.IterableDataset.from_generator(lambda: ({"sentence": t} for t in TIES))
    expected = RNNTokenizer.train_from_iterator(TIES).get_vocab()
    assert RNNTokenizer.train_from_dataset(ds, "sentence").get_vocab() == expected
    assert RNNTokenizer.train_from_dataset(streamed, "sentence", batch_size=2).get_vocab() == expected
    with pytest.raises(
        TypeError, match=r"dataset is a DatasetDict with splits .* did you mean dataset\['train'\]\?"
    ):
        RNNTokenizer.train_from_dataset(datasets.DatasetDict({"train": ds, "test": ds}), "sentence")
    with pytest.raises(ValueError, match=r"text_column 'text' is not a column .*\['sentence'\]"):
        RNNTokenizer.train_from_dataset(ds)
    with pytest.raises(TypeError, match=r"text\[1\] must be a str, got NoneType"):
        RNNTokenizer.train_from_dataset(datasets.Dataset.from_dict({"text": ["a", None]}))
    with pytest.raises(ValueError, match=r"text_column 'text' is not a column .*\['sentence'\]"):
        RNNTokenizer.train_from_dataset(streamed)  # features unknown: found out at the first batch
    # A data set (or its dict of splits) where texts are expected would iterate rows or split names.
    splits = datasets.DatasetDict({"train": ds, "test": ds})
    for call in (RNNTokenizer.train_from_iterator, check_vocabulary_of_ties, choose_tokenizer):
        with pytest.raises(
            TypeError,
            match=r"is a DatasetDict with splits \['train', 'test'\], not one split: did you mean \w+\['train'\]\? Pass one split's text column",
        ):
            call(splits)
    with pytest.raises(TypeError, match=r"got a Dataset \(its rows are dicts\) with columns \['sentence'\]"):
        RNNTokenizer.train_from_iterator(ds)
    with pytest.raises(TypeError, match=r"texts must be an iterable of texts, got a single str"):
        build_tokenizer("basic_english", "one text")


def check_vocabulary_of_ties(texts):
    return check_vocabulary(RNNTokenizer.train_from_iterator(TIES), texts)


# ---------------------------------------------------------------------------------------------
# Save / load
# ---------------------------------------------------------------------------------------------

ROUND_TRIP_TEXTS = [
    "Hello, World! Don't <br />stop.",
    "ΑΣ ΑΣΑ İstanbul ʰΣ",
    "x<pad>y <unk> <pad>",
    "a\x1cb\u2028c",
    "",
    "unseen words",
    "Fears for T N pension after talks",
]

_CLEAN_LOAD = r"""
import importlib.util, json, sys
from pathlib import Path
sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "rnn_textclf").is_dir()]
assert importlib.util.find_spec("rnn_textclf") is None, "rnn_textclf is importable"
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
texts = json.loads(sys.argv[2])
print(json.dumps({"class": type(tok).__name__, "ids": tok(texts)["input_ids"],
                  "batch": [tok(t)["input_ids"] for t in texts],
                  "pad": tok.pad_token_id, "unk": tok.unk_token_id, "vocab": tok.get_vocab()}))
"""


def test_save_pretrained_round_trip(tmp_path: Path) -> None:
    texts = ROUND_TRIP_TEXTS + TIES
    tok = RNNTokenizer.train_from_iterator(texts)
    expected = reference_ids(ROUND_TRIP_TEXTS, tok.get_vocab())
    tok.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "tokenizer.json").read_text(encoding="utf-8"))
    assert saved["model"]["type"] == "WordLevel"
    assert saved["normalizer"] is not None and saved["pre_tokenizer"] is not None
    config = json.loads((tmp_path / "ckpt" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "RNNTokenizer"
    assert config["split_special_tokens"] is True

    again = RNNTokenizer.from_pretrained(tmp_path / "ckpt")
    assert isinstance(again, RNNTokenizer)
    assert again.get_vocab() == tok.get_vocab()
    for ids in ids_by_path(again, ROUND_TRIP_TEXTS).values():
        assert ids == expected

    auto = AutoTokenizer.from_pretrained(tmp_path / "ckpt")
    assert auto(ROUND_TRIP_TEXTS)["input_ids"] == expected


def test_autotokenizer_loads_without_rnn_textclf(tmp_path: Path) -> None:
    tok = RNNTokenizer.train_from_iterator(ROUND_TRIP_TEXTS + TIES, min_freq=1)
    tok.save_pretrained(tmp_path / "ckpt")
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run(
        [sys.executable, "-I", "-c", _CLEAN_LOAD, str(tmp_path / "ckpt"), json.dumps(ROUND_TRIP_TEXTS)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    expected = reference_ids(ROUND_TRIP_TEXTS, tok.get_vocab())
    assert loaded["class"] in ("TokenizersBackend", "PreTrainedTokenizerFast")
    assert loaded["ids"] == expected
    assert loaded["batch"] == expected
    assert (loaded["pad"], loaded["unk"]) == (0, 1)
    assert loaded["vocab"] == tok.get_vocab()


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "type_name"), [(None, "NoneType"), (3, "int"), (2.5, "float"), (b"bytes", "bytes")]
)
def test_non_text_items_raise_type_error_with_position(bad: object, type_name: str) -> None:
    tok = RNNTokenizer.train_from_iterator(TIES)
    for path in CALL_PATHS:
        tok.call_path = path
        with pytest.raises(TypeError, match=rf"text\[2\] must be a str, got {type_name}"):
            tok(["a", "b", bad, "c"])
        with pytest.raises(TypeError, match=rf"text must be a str or a list of str, got {type_name}"):
            tok(bad)
    with pytest.raises(TypeError, match=rf"text\[1\] must be a str, got {type_name}"):
        RNNTokenizer.train_from_iterator(["a", bad])
    with pytest.raises(TypeError, match=rf"text must be a str, got {type_name}"):
        basic_english_tokenize(bad)  # type: ignore[arg-type]


def test_type_error_hints() -> None:
    tok = RNNTokenizer.train_from_iterator(TIES)
    with pytest.raises(TypeError, match=r"decode it first"):
        tok([b"x"])
    with pytest.raises(TypeError, match=r"missing value"):
        tok(["a", None])
    import datasets
    import numpy as np

    # a datasets Column (ds["text"] in datasets 4+) or an array of texts: say to make a list of it
    column = datasets.Dataset.from_dict({"text": ["a b", "c"]})["text"]
    for texts in (column, np.array(["a b", "c"])):
        with pytest.raises(
            TypeError, match=r"got (Column|ndarray) \(a sequence of texts: pass list\(\.\.\.\) of it\)"
        ):
            tok(texts)
    with pytest.raises(TypeError, match=r"single str; wrap it in a list"):
        RNNTokenizer.train_from_iterator("a whole text")
    for flag in ("lowercase", "split_unsegmented"):  # "no" is truthy: it would have lowercased
        with pytest.raises(TypeError, match=rf"{flag} must be True or False, got 'no'"):
            RNNTokenizer.train_from_iterator(TIES, model="bpe", **{flag: "no"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_freq": 0}, r"min_freq must be an integer >= 1 .*got 0"),
        ({"min_freq": -3}, r"min_freq must be an integer >= 1 .*got -3"),
        ({"min_freq": 1.5}, r"min_freq must be an integer >= 1 .*got 1\.5"),
        ({"min_freq": True}, r"min_freq must be an integer >= 1 .*got True"),
        ({"max_vocab_size": 2}, r"max_vocab_size must be None .* greater than the number of specials \(2"),
        ({"max_vocab_size": 0}, r"max_vocab_size .*got 0"),
        (
            {"specials": ("<pad>", "<unk>", "<pad>")},
            r"specials must not repeat a token.*repeated: \['<pad>'\]",
        ),
        ({"specials": ("<pad>",)}, r"unk_token must be one of the specials \['<pad>'\], got '<unk>'"),
        ({"specials": ("<unk>",)}, r"pad_token must be one of the specials \['<unk>'\], got '<pad>'"),
        ({"pad_token": "[PAD]"}, r"pad_token must be one of the specials .*got '\[PAD\]'"),
        ({"specials": "<pad>"}, r"specials must be a sequence of str"),
        ({"specials": ("<pad>", "<unk>", "")}, r"specials\[2\] must be a non-empty str"),
        ({"specials": ("<pad>", "<unk>"), "unk_token": "<pad>"}, r"pad_token and unk_token must differ"),
        (
            {"normalization": "nfkc"},
            r"normalization must be one of \['basic_english', 'whitespace'\], got 'nfkc'",
        ),
    ],
)
def test_invalid_training_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RNNTokenizer.train_from_iterator(TIES, **kwargs)
