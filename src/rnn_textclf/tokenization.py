"""Word, subword and character tokenizers as Hugging Face fast tokenizers; words reproduce torchtext's ``basic_english``.

Besides words, `RNNTokenizer.train_from_iterator(texts, model=...)` trains ``"bpe"``, ``"unigram"`` and
``"wordpiece"`` subword models with the `tokenizers` trainers and ``"char"`` character vocabularies, for
text written without spaces between words (Chinese, Japanese, Thai) or rich morphology; `build_tokenizer`
picks one from the data (`choose_tokenizer`) or loads any pretrained tokenizer, and `check_vocabulary`
warns about vocabularies of whole clauses. Calling them on plain texts takes a fast path with exactly the
backend's ids: code point tables probed from the backend's own normalizer and pre-tokenizer cut the texts
into pieces in Python, and each piece's ids come from a cache filled by the backend's model
(`_BackendFastPath`). The rest of this description is about words.

[`RNNTokenizer`][rnn_textclf.RNNTokenizer] is a `transformers` fast tokenizer (a subclass of
`TokenizersBackend`, alias `PreTrainedTokenizerFast`) around a `tokenizers` **WordLevel** model. Its
normalizer and pre-tokenizer reproduce torchtext's ``basic_english`` exactly, Unicode included, so the
same texts give the same words, and a vocabulary built with the same rules gives the same ids as
``torchtext.vocab.build_vocab_from_iterator(..., specials=["<pad>", "<unk>"], min_freq=N)``:

1. ``text.lower()`` (Python's full Unicode lowercasing: ``"İ"`` becomes ``"i̇"``, a final capital sigma
   becomes ``"ς"``);
2. the twelve regex rules of ``torchtext/data/utils.py``: ``'`` becomes ``" '  "``, ``"`` is removed,
   ``.`` ``,`` ``(`` ``)`` ``!`` ``?`` are spaced out, ``<br />`` ``;`` ``:`` become a space, runs of
   whitespace collapse;
3. ``str.split()`` (any Unicode whitespace, ``\\x1c``-``\\x1f`` included).

`save_pretrained` writes a self-describing ``tokenizer.json``: ``AutoTokenizer.from_pretrained`` loads it
without rnn-textclf installed and without ``trust_remote_code`` and gives the same ids.

Where Rust and Python differ, the pipeline says so explicitly, from tables computed from the running
Python at build time: the final-sigma rule is a regex over Python's ``Cased`` / ``Case_Ignorable``
sets, whitespace is Python's ``str.isspace`` set, and characters that Rust lowercases but the running
Python does not know (code points assigned after the Python's Unicode version) are kept apart with a
marker character (``U+FDD0``) so that they never merge with other words. Such tokens are shown in their
Python form by `get_vocab`, `convert_ids_to_tokens` and `split_words`.

Vocabulary building counts words in the `tokenizers` Rust trainer (``WordLevelTrainer``) while the
texts stream past. Calling the tokenizer on plain ``str`` / ``list[str]`` input takes a fast path with
identical ids (checked by the tests against the standard path and the reference): torchtext's rules
applied with Python's C string methods, which *are* the reference semantics, then either dict lookups
(``call_path="python"``, the fastest on a few cores) or the Rust model on many texts per call
(``"rust"``, which scales with cores). Anything unusual (pairs, pre-tokenized input, offsets, overflow,
a modified backend) takes the standard `transformers` path.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import logging
import operator
import os
import re
import threading
import unicodedata
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import BatchEncoding, TokenizersBackend
from transformers.tokenization_utils_base import PaddingStrategy, TruncationStrategy

from ._checks import refuse_split_dict
from .modeling import _offline_reason

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

Normalization = Literal["basic_english", "whitespace"]
"""``"basic_english"``: torchtext's rules (the default). ``"whitespace"``: ``text.lower().split()``."""

NORMALIZATIONS: tuple[str, ...] = ("basic_english", "whitespace")

DEFAULT_SPECIALS: tuple[str, ...] = ("<pad>", "<unk>")

# torchtext/data/utils.py (_basic_english_normalize), verbatim.
_PATTERNS = [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"]
_REPLACEMENTS = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
_PATTERNS_DICT = [(re.compile(p), r) for p, r in zip(_PATTERNS, _REPLACEMENTS, strict=True)]

_SIGMA = "\u03a3"
_FINAL_SIGMA = "\u03c2"
_MARK = "\ufdd0"  # a noncharacter: never lowercased, not whitespace, not punctuation
_ISOLATED = "'.,()!?"  # each becomes a word of its own
_DROPPED = ";:"  # each becomes a space
_BR_WITH_QUOTES = '<"*b"*r"* "*/"*>'  # `<br />` once the double quotes are gone
# Texts per string fed to the Rust trainer (at most), and characters (about): fewer per-text costs
# than one string per text, and measured ~1.7x faster than 256 texts per string on real data.
_CHUNK_TEXTS = 32
_CHUNK_CHARS = 4096
_TRAINER_MAX_VOCAB = 2**62
_ORDER_SAMPLE_CHARS = 2**22  # training text kept to number subword ids by frequency (`_frequency_ordered`)
_SURROGATE = re.compile("[\ud800-\udfff]")  # lone surrogates: Python str allows them, UTF-8 (Rust) does not

DEFAULT_MODEL_MAX_LENGTH = 512
"""``model_max_length`` of the tokenizers rnn-textclf builds: what ``truncation=True`` cuts to without ``max_length``."""

TokenizerModel = Literal["word", "bpe", "unigram", "wordpiece", "char"]
"""What `RNNTokenizer.train_from_iterator` builds: ``"word"`` (torchtext ``basic_english`` words, the default),
``"bpe"``, ``"unigram"``, ``"wordpiece"`` (subwords trained with the `tokenizers` trainers) or ``"char"``."""

TOKENIZER_MODELS: tuple[str, ...] = ("word", "bpe", "unigram", "wordpiece", "char")
SUBWORD_MODELS: tuple[str, ...] = ("bpe", "unigram", "wordpiece")

DEFAULT_SUBWORD_VOCAB_SIZE = 8000
"""Vocabulary size (specials included) of ``"bpe"``/``"unigram"``/``"wordpiece"`` without ``max_vocab_size``."""

DEFAULT_WORD_VOCAB_SIZE = 30000
"""Word vocabulary cap of `build_tokenizer` (and so of ``rnn-textclf train``) without ``max_vocab_size``."""

# Scripts written without spaces between words: each character (with its combining marks, e.g. Thai
# vowel signs) is a unit of its own before the subword model, as BERT does for CJK characters. Without
# this, a whole clause would be one pre-token and BPE would learn clause-long pieces from repeated ones.
_UNSEGMENTED_CLASS = r"\p{Han}\p{Hiragana}\p{Katakana}\x{30FC}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
_UNSEGMENTED_UNIT = rf"[{_UNSEGMENTED_CLASS}]\p{{M}}*"
# The same scripts for Python's re (which has no \p{...}), for choose_tokenizer's statistics.
_UNSEGMENTED_PY = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3040-\u30ff"
    "\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)


def basic_english_tokenize(text: str) -> list[str]:
    """Split ``text`` into words exactly as torchtext's ``get_tokenizer("basic_english")`` does.

    A pure-Python reference (slow); [`RNNTokenizer`][rnn_textclf.RNNTokenizer] gives the same words.

    Args:
        text: The text to split.

    Returns:
        The words, in order.

    Raises:
        TypeError: If ``text`` is not a ``str``.

    Example:
        >>> basic_english_tokenize("Don't stop <br />believing!")
        ['don', "'", 't', 'stop', 'believing', '!']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}{_type_hint(text)}")
    line = text.lower()
    for pattern, replacement in _PATTERNS_DICT:
        line = pattern.sub(replacement, line)
    return line.split()


# --------------------------------------------------------------------------------------------------
# Unicode tables: where Python's str.lower()/str.split() and the Rust pipeline differ
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _UnicodeTables:
    unicode_version: str
    case_ignorable: tuple[int, ...]  # Python's Case_Ignorable
    cased: tuple[int, ...]  # Python's Cased and not Case_Ignorable
    whitespace: tuple[int, ...]  # str.isspace(), i.e. what str.split() and re's \s split on
    python_only_whitespace: tuple[int, ...]  # str.isspace() but not Rust's char::is_whitespace
    keep_case: Mapping[str, str]  # Python keeps the char, Rust lowercases it: char -> Rust's lowercase
    python_lower: Mapping[str, str]  # Python lowercases differently from Rust: char -> Python's lowercase


@functools.cache
def _unicode_tables() -> _UnicodeTables:
    """Probe the running Python and the installed `tokenizers` (about half a second, once per process)."""
    codepoints = np.arange(0x110000, dtype=np.uint32)
    codepoints = codepoints[(codepoints < 0xD800) | (codepoints > 0xDFFF)]  # no lone surrogates
    everything = _string_of(codepoints)
    # Final-sigma context (CPython's handle_capital_sigma): in "c + Σ", the Σ becomes ς iff c is cased
    # and not case-ignorable; in "Α + c + Σ", iff c is case-ignorable or cased.
    cased = _final_sigma_after(codepoints, "")
    case_ignorable = _final_sigma_after(codepoints, "\u0391") - cased
    whitespace = [ord(c) for c in re.findall(r"\s", everything)]  # re's \s for str is str.isspace()
    # Rust's White_Space: Python's whitespace plus the controls and (formerly) space-like format chars.
    splitter = pre_tokenizers.WhitespaceSplit()
    candidates = {
        *whitespace,
        *range(0x20),
        *range(0x7F, 0xA0),
        0x180E,
        0x200B,
        0x200C,
        0x200D,
        0x2060,
        0xFEFF,
    }
    rust_whitespace = {cp for cp in candidates if len(splitter.pre_tokenize_str(f"a{chr(cp)}a")) == 2}

    rust = normalizers.Lowercase()
    keep_case: dict[str, str] = {}
    python_lower: dict[str, str] = {}
    # Compare blocks, then the 64-character pieces of differing blocks, then their characters
    # (lowercasing is per character in both, except for Σ, which is handled above).
    differing = [
        piece
        for start in range(0, len(everything), 4096)
        if rust.normalize_str(block := everything[start : start + 4096]) != block.lower()
        for piece in (block[i : i + 64] for i in range(0, len(block), 64))
        if rust.normalize_str(piece) != piece.lower()
    ]
    for char in itertools.chain.from_iterable(differing):
        ours, theirs = char.lower(), rust.normalize_str(char)
        if ours == theirs:
            continue
        if ours == char:
            keep_case[char] = theirs
        else:
            python_lower[char] = ours
    problems = [
        c for c, low in python_lower.items() if rust.normalize_str(low) != low or set(low) & set(keep_case)
    ]
    lowered_kept = list(keep_case.values())
    problems += [c for c, low in keep_case.items() if len(low) != 1 or lowered_kept.count(low) > 1]
    if rust_whitespace - set(whitespace):
        problems += [chr(cp) for cp in sorted(rust_whitespace - set(whitespace))]
    if _MARK in keep_case or _MARK in python_lower or problems:
        raise RuntimeError(
            f"cannot reproduce Python's lowercasing or whitespace for {[f'U+{ord(c):04X}' for c in problems[:5]]} "
            f"with this tokenizers build; please report this with your Python and tokenizers versions"
        )
    return _UnicodeTables(
        unicode_version=unicodedata.unidata_version,
        case_ignorable=tuple(sorted(case_ignorable)),
        cased=tuple(sorted(cased)),
        whitespace=tuple(whitespace),
        python_only_whitespace=tuple(sorted(set(whitespace) - rust_whitespace)),
        keep_case=keep_case,
        python_lower=python_lower,
    )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (restored on exit) while building many acyclic objects."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _string_of(codepoints: np.ndarray) -> str:
    """The string of these code points (built in C: no Python object per character)."""
    return codepoints.astype("<u4").tobytes().decode("utf-32-le")


def _final_sigma_after(codepoints: np.ndarray, prefix: str) -> set[int]:
    """Code points c for which Python lowercases the Σ of ``prefix + c + "Σ"`` to a final ς.

    All probes are lowercased as one string, ``prefix c Σ \\x00`` after another ("\\x00" is neither
    cased nor case-ignorable, so each probe is judged on its own).
    """
    probes = codepoints[codepoints != 0]
    columns = [*map(ord, prefix), -1, ord(_SIGMA), 0]
    table = np.empty((len(probes), len(columns)), dtype=np.uint32)
    for j, column in enumerate(columns):
        table[:, j] = probes if column < 0 else column
    lowered = _string_of(table.ravel()).lower()
    found: set[int] = set()
    probe = previous = 0
    for match in re.finditer(_FINAL_SIGMA, lowered):
        position = match.start()
        if lowered[position + 1] != "\x00":
            continue  # a ς inside a probe (c itself lowercases to ς), not the probe's Σ
        probe += lowered.count("\x00", previous, position)
        previous = position
        found.add(int(probes[probe]))
    return found


def _runs(codepoints: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted code points as inclusive (start, end) runs."""
    runs: list[list[int]] = []
    for cp in sorted(set(codepoints)):
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return [(start, end) for start, end in runs]


def _class_body(codepoints: Iterable[int]) -> str:
    """Oniguruma character-class body (without brackets) for a set of code points, as ranges."""
    return "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in _runs(codepoints))


def _python_class(codepoints: Iterable[int]) -> re.Pattern[str]:
    """A compiled ``re`` character class, as ranges (much faster to scan than a list of chars)."""
    parts = [
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in _runs(codepoints)
    ]
    return re.compile("[" + "".join(parts) + "]")


def _build_normalizer(normalization: str, tables: _UnicodeTables) -> normalizers.Normalizer:
    ci, cased = _class_body(tables.case_ignorable), _class_body(tables.cased)
    steps: list[normalizers.Normalizer] = [
        # Python's Final_Sigma rule, decided on the original text as str.lower() does.
        normalizers.Replace(Regex(f"(?<=[{cased}][{ci}]*){_SIGMA}(?![{ci}]*[{cased}])"), _FINAL_SIGMA),
    ]
    steps += [normalizers.Replace(char, lowered) for char, lowered in sorted(tables.python_lower.items())]
    if tables.keep_case:
        # Rust lowercases these, Python does not: mark them (and the marker itself) so that the words
        # stay distinct. "X" becomes "x" + MARK, MARK becomes MARK + MARK.
        marked = _class_body([ord(_MARK), *map(ord, tables.keep_case)])
        steps.append(normalizers.Replace(Regex(f"(?<=[{marked}])"), _MARK))
    steps.append(normalizers.Lowercase())
    if normalization == "basic_english":
        steps.append(normalizers.Replace(Regex(_BR_WITH_QUOTES), " "))
        steps.append(normalizers.Replace('"', ""))
    return normalizers.Sequence(steps)


def _build_pre_tokenizer(normalization: str, tables: _UnicodeTables) -> pre_tokenizers.PreTokenizer:
    whitespace = list(tables.whitespace)
    if normalization == "basic_english":
        isolated = [ord(c) for c in _ISOLATED]
        separators = whitespace + [ord(c) for c in _DROPPED] + isolated
        pattern = f"[{_class_body(isolated)}]|[^{_class_body(separators)}]+"
    else:
        pattern = f"[^{_class_body(whitespace)}]+"
    # The pattern matches the words; everything else (separators) is dropped.
    return pre_tokenizers.Split(Regex(pattern), behavior="removed", invert=True)


class _PythonSide:
    """torchtext's rules with Python's C string methods, and the bridge to the Rust word splitter.

    ``words_text`` gives, for each text, a string whose ``split()`` is exactly ``basic_english`` (each
    ``re.sub`` of torchtext has a literal pattern, so ``str.replace`` does the same; the ``\\s+`` rule is
    subsumed by ``split()``; ``"`` goes before ``<br />`` as in torchtext). ``rust_text`` turns such a
    string into the backend's form (marked characters, see the module docs) with separators that the
    Rust ``WhitespaceSplit`` also splits on.
    """

    def __init__(self, normalization: str, tables: _UnicodeTables) -> None:
        self.basic_english = normalization == "basic_english"
        to_rust: dict[int, str] = {cp: " " for cp in tables.python_only_whitespace}
        self.python_form: dict[str, str] = {}
        self.marked = bool(tables.keep_case)
        if tables.keep_case:
            to_rust[ord(_MARK)] = _MARK + _MARK
            to_rust.update({ord(c): low + _MARK for c, low in tables.keep_case.items()})
            self.python_form = {low: c for c, low in tables.keep_case.items()}
            self.python_form[_MARK] = _MARK
        self.to_rust = to_rust
        self.to_rust_ascii = "".join(chr(cp) for cp in to_rust if cp < 0x80)
        self.needs_rust_form = _python_class(to_rust) if to_rust else None
        self.needs_marks = (
            _python_class([ord(_MARK), *map(ord, tables.keep_case)]) if tables.keep_case else None
        )

    def words_text(self, texts: Iterable[str]) -> list[str]:
        """Each text lowercased with torchtext's rules applied: ``split()`` gives its words."""
        if not self.basic_english:
            return [t.lower() for t in texts]
        return [
            t.lower()
            .replace('"', "")
            .replace("<br />", " ")
            .replace("'", " ' ")
            .replace(".", " . ")
            .replace(",", " , ")
            .replace("(", " ( ")
            .replace(")", " ) ")
            .replace("!", " ! ")
            .replace("?", " ? ")
            .replace(";", " ")
            .replace(":", " ")
            for t in texts
        ]

    def rust_text(self, text: str) -> str:
        """A ``words_text`` string in the backend's form, split by Rust's ``WhitespaceSplit``."""
        if text.isascii():
            if any(char in text for char in self.to_rust_ascii):
                return text.translate(self.to_rust)
        elif self.needs_rust_form is not None and self.needs_rust_form.search(text):
            return text.translate(self.to_rust)
        return text

    def to_python(self, token: str) -> str:
        """A backend word (marked form) in its Python form."""
        if not self.marked or _MARK not in token:
            return token
        chars: list[str] = []
        i = len(token) - 1
        while i >= 0:  # a suffix code: read right to left
            if token[i] == _MARK and i > 0:
                chars.append(self.python_form.get(token[i - 1], token[i - 1]))
                i -= 2
            else:
                chars.append(token[i])
                i -= 1
        return "".join(reversed(chars))

    def to_backend(self, token: str) -> str:
        """A Python-form word in the backend's (marked) form."""
        if self.needs_marks is None or not self.needs_marks.search(token):
            return token
        return token.translate({cp: v for cp, v in self.to_rust.items() if v != " "})


@dataclass(frozen=True)
class _Pipeline:
    """The Rust normalizer and pre-tokenizer for one mode in this environment, and the Python side."""

    normalizer: normalizers.Normalizer
    pre_tokenizer: pre_tokenizers.PreTokenizer
    normalizer_state: bytes
    pre_tokenizer_state: bytes
    python: _PythonSide


@functools.cache
def _pipeline(normalization: str) -> _Pipeline:
    tables = _unicode_tables()
    normalizer = _build_normalizer(normalization, tables)
    pre_tokenizer = _build_pre_tokenizer(normalization, tables)
    return _Pipeline(
        normalizer,
        pre_tokenizer,
        _state(normalizer),
        _state(pre_tokenizer),
        _PythonSide(normalization, tables),
    )


def _state(component: Any) -> bytes:
    """Serialized form of a `tokenizers` component (b"" for None), for comparisons."""
    return b"" if component is None else component.__getstate__()


# --------------------------------------------------------------------------------------------------
# Subword and character models
# --------------------------------------------------------------------------------------------------


def _subword_normalizer(lowercase: bool) -> normalizers.Normalizer:
    """NFKC (full-width forms, ligatures and compatibility characters fold; accents stay composed)."""
    steps: list[normalizers.Normalizer] = [normalizers.NFKC()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _subword_pre_tokenizer(model: str, split_unsegmented: bool) -> pre_tokenizers.PreTokenizer:
    if model == "char":
        # Each non-space character with its combining marks (Thai vowel signs, Devanagari matras) is a token.
        return pre_tokenizers.Split(Regex(r"\S\p{M}*"), behavior="removed", invert=True)
    steps: list[pre_tokenizers.PreTokenizer] = [pre_tokenizers.WhitespaceSplit()]
    if split_unsegmented:
        steps.append(pre_tokenizers.Split(Regex(_UNSEGMENTED_UNIT), behavior="isolated"))
    steps.append(pre_tokenizers.Punctuation("isolated"))
    steps.append(pre_tokenizers.Digits(individual_digits=False))
    return pre_tokenizers.Sequence(steps)


def _subword_backend_and_trainer(
    model: str, vocab_size: int, min_freq: int, specials: list[str], unk_token: str
) -> tuple[Tokenizer, trainers.Trainer]:
    # The BPE and WordPiece trainers keep every character of the texts whatever vocab_size says (Chinese
    # has thousands): `_alphabet_within_cap` then keeps the most frequent ones. (Their own limit_alphabet
    # breaks ties between equally frequent characters in hash-map order: another vocabulary every run.)
    if model == "bpe":
        backend = Tokenizer(models.BPE(unk_token=unk_token))
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_freq,
            special_tokens=specials,
            show_progress=False,
        )
    elif model == "wordpiece":
        backend = Tokenizer(models.WordPiece(unk_token=unk_token))
        backend.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size,
            min_frequency=min_freq,
            special_tokens=specials,
            show_progress=False,
        )
    elif model == "unigram":
        backend = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=specials, unk_token=unk_token, show_progress=False
        )
    else:  # char: a WordLevel model over characters
        backend = Tokenizer(models.WordLevel({}, unk_token=unk_token))
        trainer = trainers.WordLevelTrainer(
            vocab_size=vocab_size, min_frequency=min_freq, special_tokens=specials, show_progress=False
        )
    return backend, trainer


def _alphabet_within_cap(backend: Tokenizer, sample: list[str], n_fixed: int, vocab_size: int) -> Tokenizer:
    """The trained BPE or WordPiece ``backend`` cut to ``vocab_size`` tokens when its alphabet did not fit.

    The trainers keep every character they meet; when those (with WordPiece's ``##`` forms) are more than
    ``vocab_size``, no merge fits and the model is its characters. The most frequent characters in
    ``sample`` (the first texts, normalized as the backend does) are kept, ties in code point order, each
    with its ``##`` form (WordPiece); the others become the unknown token. The first ``n_fixed`` tokens
    (the specials) stay. Same texts, same vocabulary, every run.
    """
    spec = json.loads(backend.to_str())
    model = spec["model"]
    vocab: dict[str, int] = model["vocab"]
    if len(vocab) <= vocab_size or model.get("merges"):  # (merges only ever come once the alphabet fits)
        return backend
    ordered = sorted(vocab, key=vocab.__getitem__)
    prefix = model.get("continuing_subword_prefix") or ""
    characters = [t for t in ordered[n_fixed:] if not (prefix and t.startswith(prefix))]
    counts = np.zeros(0x110000, dtype=np.int64)  # (code points,)
    for block in sample:
        normalized = backend.normalizer.normalize_str(block) if backend.normalizer else block
        found = np.bincount(np.frombuffer(normalized.encode("utf-32-le", "surrogatepass"), dtype=np.uint32))
        counts[: found.size] += found  # (up to the block's largest code point: no 9 MB array a block)
    kept = ordered[:n_fixed]
    for char in sorted(characters, key=lambda c: (-int(counts[ord(c)]) if len(c) == 1 else 0, c)):
        unit = [char, prefix + char] if prefix and prefix + char in vocab else [char]
        if len(kept) + len(unit) <= vocab_size:
            kept += unit
    model["vocab"] = {token: i for i, token in enumerate(kept)}
    return Tokenizer.from_str(json.dumps(spec))


def _split_at(ids: list[int], sentinel: int, n: int) -> list[list[int]]:
    """The ``n`` texts of one joined encoding, cut at the ``n - 1`` sentinel ids between them."""
    out = []
    start = 0
    for _ in range(n - 1):
        end = ids.index(sentinel, start)
        out.append(ids[start:end])
        start = end + 1
    out.append(ids[start:])
    return out


def _check_texts_iterable(texts: Any, name: str) -> None:
    """TypeError for what is not an iterable of texts but iterates: one text (its characters), a
    ``DatasetDict`` or dict (its split names or keys), a ``Dataset`` (its rows, dicts)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"{name} must be an iterable of texts, got a single {type(texts).__name__}; wrap it in a list"
        )
    refuse_split_dict(
        texts,
        name,
        then=f"Pass one split's text column ({name}['train']['text']) or RNNTokenizer.train_from_dataset.",
    )
    if isinstance(texts, Mapping):
        kind = type(texts).__name__
        keys = list(texts)[:5]
        raise TypeError(
            f"{name} must be an iterable of texts, got a {kind} with keys {keys}: did you mean one split's texts, "
            f"e.g. {name}[{keys[0] if keys else 'train'!r}]['text'] (or RNNTokenizer.train_from_dataset(one split))?"
        )
    if type(texts).__name__ in ("Dataset", "IterableDataset") and hasattr(texts, "column_names"):
        raise TypeError(
            f"{name} must be an iterable of texts, got a {type(texts).__name__} (its rows are dicts) with columns "
            f"{texts.column_names}: pass its text column (dataset['text']) or use RNNTokenizer.train_from_dataset."
        )


def _text_blocks(iterator: Iterable[str], counter: list[int]) -> Iterator[list[str]]:
    """The texts in lists of at most _CHUNK_TEXTS texts / about _CHUNK_CHARS characters (memory stays
    bounded for long documents, and the Rust trainer pays its per-call costs once a block);
    ``counter[0]`` counts the texts."""
    _check_texts_iterable(iterator, "iterator")
    buffer: list[str] = []
    chars = 0
    for index, text in enumerate(iterator):
        if not isinstance(text, str):
            raise TypeError(f"text[{index}] must be a str, got {type(text).__name__}{_type_hint(text)}")
        buffer.append(text)
        chars += len(text)
        counter[0] = index + 1
        if len(buffer) == _CHUNK_TEXTS or chars >= _CHUNK_CHARS:
            yield buffer
            buffer = []
            chars = 0
    if buffer:
        yield buffer


def _joined(iterator: Iterable[str], counter: list[int], sample: list[str] | None = None) -> Iterator[str]:
    """Texts newline-joined a block at a time (newlines are whitespace to every pre-tokenizer here);
    the first blocks, up to ``_ORDER_SAMPLE_CHARS`` characters, are also kept in ``sample``."""
    kept = 0
    for block in _text_blocks(iterator, counter):
        joined = "\n".join(block)
        if sample is not None and kept < _ORDER_SAMPLE_CHARS:
            sample.append(joined)
            kept += len(joined)
        yield joined


def _frequency_ordered(backend: Tokenizer, sample: list[str], n_fixed: int) -> Tokenizer:
    """The trained subword ``backend`` with its ids renumbered by how often each token occurs in
    ``sample`` (most frequent first; ties, and tokens not met, keep the trainer's order, or for Unigram,
    whose trainer's order changes from run to run, go in string order); the first ``n_fixed`` ids (the
    specials) stay where they are.

    The trainers number BPE and WordPiece tokens alphabet first, in code point order, then merges: a
    Chinese character's id is its rank among the characters seen. Frequent tokens first (as torchtext
    and the character model order words) puts most ids of a text below 257, the integers Python keeps
    cached, so building the id lists allocates less (benchmarks/tokenizer.py: Chinese BPE 0.83x ->
    0.89x ``basic_english``'s speed). Only the numbering changes: the merges and pieces are strings, so
    every text gets the same tokens.
    """
    size = backend.get_vocab_size()
    vocab = backend.get_vocab(with_added_tokens=True)
    if not sample or size <= n_fixed or sorted(vocab.values()) != list(range(size)):
        return backend
    spec = json.loads(backend.to_str())
    if any(token["id"] >= n_fixed for token in spec["added_tokens"]):
        return backend
    encodings = backend.encode_batch_fast(sample, add_special_tokens=False)
    ids = np.fromiter(
        itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int64
    )  # (sample tokens,)
    counts = np.bincount(ids, minlength=size)[:size]  # (vocab,)
    counts[:n_fixed] = np.iinfo(np.int64).max  # the specials keep their ids
    model = spec["model"]
    if isinstance(model["vocab"], dict):
        order = np.argsort(-counts, kind="stable")  # (vocab,) old id at each new id
    else:
        # The Unigram trainer numbers its pieces in an order that changes from run to run (hash maps):
        # ties broken by the piece itself give the same ids for the same texts every time.
        pieces = [piece for piece, _ in model["vocab"]]
        rank = np.empty(size, dtype=np.int64)  # (vocab,) each piece's rank in string order
        rank[sorted(range(size), key=pieces.__getitem__)] = np.arange(size)
        order = np.lexsort((rank, -counts))
    new_id = np.empty(size, dtype=np.int64)  # (vocab,) new id of each old id
    new_id[order] = np.arange(size)
    if isinstance(model["vocab"], dict):  # BPE, WordPiece: token -> id
        model["vocab"] = {token: int(new_id[i]) for token, i in model["vocab"].items()}
    else:  # Unigram: [piece, score] at each id
        model["vocab"] = [model["vocab"][i] for i in order.tolist()]
        if model.get("unk_id") is not None:
            model["unk_id"] = int(new_id[model["unk_id"]])
    return Tokenizer.from_str(json.dumps(spec))


def _surrogate_error(err: UnicodeEncodeError) -> ValueError | None:
    """The clear error for a lone surrogate met while training (None for another encoding error)."""
    if not _SURROGATE.search(err.object[err.start : err.end]):
        return None
    context = err.object[max(0, err.start - 30) : err.end + 30]
    return ValueError(
        f"A text holds a lone surrogate U+{ord(err.object[err.start]):04X} (near {context!r}), which is not "
        "valid Unicode and cannot be stored in a vocabulary. It usually comes from decoding bytes with "
        "errors='surrogateescape' or from JSON with a broken escape; clean the texts first, e.g. "
        "text.encode('utf-8', 'replace').decode('utf-8')."
    )


# --------------------------------------------------------------------------------------------------
# Vocabulary diagnostics and the choice of tokenization
# --------------------------------------------------------------------------------------------------

# A vocabulary "looks like whole clauses" when most training tokens occur once and texts are about one
# token long. Measured (basic_english): waimai_10k (Chinese) 91% seen once, 1.6 tokens per text; SMS
# spam 58% and 18.6; TREC 62% and 10.2; AG News 53% and 43.
_CLAUSE_SINGLETON_SHARE = 0.75
_CLAUSE_TOKENS_PER_TEXT = 3.0
# choose_tokenizer: the share of non-space characters in unsegmented scripts from which texts count as
# unsegmented, and the share of texts (of at least _LONG_TEXT characters) without any space.
_UNSEGMENTED_SHARE = 0.2
_NO_SPACE_SHARE = 0.5
_LONG_TEXT = 15
_CHOICE_SAMPLE = 2000


@dataclass(frozen=True)
class VocabularyCheck:
    """How a tokenizer splits training texts (see [`check_vocabulary`][rnn_textclf.tokenization.check_vocabulary]).

    Attributes:
        texts: Texts looked at.
        tokens_per_text: Mean tokens per text (special tokens excluded).
        distinct: Distinct tokens seen (special tokens excluded).
        singleton_share: Share of the distinct tokens seen exactly once.
        unk_share: Share of token occurrences that are the unknown token (0.0 for a trained vocabulary
            checked on its own texts; high when a pretrained tokenizer does not fit the language).
    """

    texts: int
    tokens_per_text: float
    distinct: int
    singleton_share: float
    unk_share: float = 0.0

    @property
    def looks_like_clauses(self) -> bool:
        """Most tokens occur once and texts are about one token long: the units are clauses, not words."""
        return (
            self.distinct > 0
            and self.singleton_share >= _CLAUSE_SINGLETON_SHARE
            and self.tokens_per_text <= _CLAUSE_TOKENS_PER_TEXT
        )

    @property
    def mostly_unknown(self) -> bool:
        """At least a third of the tokens are the unknown token: the vocabulary does not fit these texts
        (a pretrained tokenizer of another language, a word vocabulary of other texts)."""
        return self.unk_share >= _UNKNOWN_SHARE

    def warn(self) -> bool:
        """Logs the whole-clause warning, or the mostly-unknown one (with the figures and the fix), when it
        applies; returns whether it did."""
        if self.mostly_unknown:
            logger.warning(
                "The tokenizer maps %.0f%% of the training tokens to its unknown token: its vocabulary does not "
                "fit these texts (another language or other texts), and the model will see little but unknown "
                "tokens. Use a tokenizer trained on these texts (`rnn-textclf train --tokenizer auto`, or "
                "RNNTokenizer.train_from_iterator(texts, model='char'/'bpe'/...)) or one made for their language.",
                100 * self.unk_share,
            )
            return True
        if not self.looks_like_clauses:
            return False
        logger.warning(
            "The vocabulary looks like whole clauses, not words: %.0f%% of its %s distinct training tokens occur "
            "once and a text is %.1f tokens on average, so most tokens of new texts will be unknown and the model "
            "cannot learn much. Texts written without spaces between words (Chinese, Japanese, Thai, ...) need "
            "subword or character units: train with `rnn-textclf train --tokenizer char` (or bpe/unigram/"
            "wordpiece; the default 'auto' picks one for such texts), or "
            "RNNTokenizer.train_from_iterator(texts, model='char').",
            100 * self.singleton_share,
            f"{self.distinct:,}",
            self.tokens_per_text,
        )
        return True


_UNKNOWN_SHARE = 1 / 3  # share of unknown tokens from which the vocabulary is said not to fit the texts


def _counts_check(counts: np.ndarray, texts: int, unk: int = 0) -> VocabularyCheck:
    """The check from per-token occurrence counts (specials excluded)."""
    counts = counts[counts > 0]
    total = int(counts.sum())
    return VocabularyCheck(
        texts=texts,
        tokens_per_text=total / texts if texts else 0.0,
        distinct=int(counts.size),
        singleton_share=float((counts == 1).mean()) if counts.size else 0.0,
        unk_share=unk / (total + unk) if total + unk else 0.0,
    )


def check_vocabulary(tokenizer: Any, texts: Sequence[str], *, warn: bool = True) -> VocabularyCheck:
    """How ``tokenizer`` splits ``texts``, and a logged warning when its units look like whole clauses or
    when at least a third of the tokens are unknown (a vocabulary that does not fit these texts).

    Works for any Hugging Face tokenizer. A vocabulary looks like whole clauses when at least 75% of the
    distinct tokens of ``texts`` occur once and a text is at most 3 tokens long on average: typical of
    word-level tokenization of text without spaces between words (Chinese, Japanese, Thai).

    Args:
        tokenizer: Any tokenizer called as ``tokenizer(texts)["input_ids"]``.
        texts: Training texts (all of them, or a sample of a few thousand).
        warn: Log the warning when it applies.

    Returns:
        The [`VocabularyCheck`][rnn_textclf.tokenization.VocabularyCheck].
    """
    _check_texts_iterable(texts, "texts")
    texts = list(texts)
    if not texts:
        return VocabularyCheck(texts=0, tokens_per_text=0.0, distinct=0, singleton_share=0.0)
    rows = tokenizer(texts, add_special_tokens=False)["input_ids"]
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64)
    counts = np.bincount(flat, minlength=len(tokenizer)) if flat.size else np.zeros(len(tokenizer), np.int64)
    unk_id = getattr(tokenizer, "unk_token_id", None)
    unk = int(counts[unk_id]) if unk_id is not None and unk_id < counts.size else 0
    special_ids = [i for i in getattr(tokenizer, "all_special_ids", []) if i is not None and i < counts.size]
    counts[special_ids] = 0
    check = _counts_check(counts, len(texts), unk)
    if warn:
        check.warn()
    return check


def choose_tokenizer(texts: Sequence[str]) -> tuple[str, str]:
    """The tokenization for these texts when the user picks none, and why.

    Texts written mostly without spaces (a fifth or more of their non-space characters in Chinese,
    Japanese, Thai, Lao, Khmer or Myanmar script, or most texts of 15+ characters without any space) get
    ``"char"``; everything else ``"basic_english"`` (word level, as before). The first 2,000 texts are
    looked at.

    Args:
        texts: The training texts.

    Returns:
        ``(choice, reason)``: ``"char"`` or ``"basic_english"`` and a sentence that says why.
    """
    _check_texts_iterable(texts, "texts")
    sample = [t for t in itertools.islice(texts, _CHOICE_SAMPLE) if isinstance(t, str)]
    joined = "\n".join(sample)
    non_space = len(joined) - sum(map(joined.count, (" ", "\n", "\t")))
    unsegmented = len(_UNSEGMENTED_PY.findall(joined))
    share = unsegmented / non_space if non_space else 0.0
    long_texts = [t for t in sample if len(t) >= _LONG_TEXT]
    no_space = sum(1 for t in long_texts if not any(c.isspace() for c in t.strip()))
    no_space_share = no_space / len(long_texts) if long_texts else 0.0
    if share >= _UNSEGMENTED_SHARE:
        return "char", (
            f"{100 * share:.0f}% of the non-space characters of the first {len(sample):,} training texts are "
            f"Chinese, Japanese, Thai or similar script, written without spaces between words: character tokens"
        )
    if no_space_share >= _NO_SPACE_SHARE:
        return "char", (
            f"{100 * no_space_share:.0f}% of the training texts of {_LONG_TEXT}+ characters have no space: "
            f"character tokens"
        )
    return "basic_english", f"the texts are space-separated ({100 * share:.0f}% unsegmented script)"


TOKENIZER_CHOICES: tuple[str, ...] = (
    "auto",
    "basic_english",
    "whitespace",
    "bpe",
    "unigram",
    "wordpiece",
    "char",
)
"""The names `build_tokenizer` trains; anything else is a pretrained tokenizer (folder or Hub id)."""


_PAD_NAMES = ("<pad>", "[PAD]", "<|pad|>")


def _choose_pad_token(loaded: Any, name: str) -> None:
    """Gives a pretrained tokenizer without a pad token one (logged), whose embedding row may stay zero.

    Padding's row never learns (``padding_idx``). In order: a pad-named added token it already holds (a
    tokenizer.json saved without its tokenizer_config.json); its end-of-text token, as GPT-2 users do, unless
    that is also its unknown token (GPT-2's ``<|endoftext|>``: unknown words need their row) or it is
    added to every text (a post-processor's ``</s>``: the last real token would read as zeros); else a new
    ``<pad>`` token, kept in the saved tokenizer.
    """
    added = loaded.get_added_vocab()
    own = next((t for t in _PAD_NAMES if t in added), None)
    eos = loaded.eos_token
    if own is not None:
        loaded.pad_token = own
        logger.warning("the tokenizer %r has no pad token set: padding with its own %r", name, own)
        return
    if eos is not None and eos != loaded.unk_token and loaded.eos_token_id not in loaded("x")["input_ids"]:
        loaded.pad_token = eos
        logger.warning("the tokenizer %r has no pad token: padding with its end-of-text token %r", name, eos)
        return
    pad = next(t for t in (*_PAD_NAMES, "<pad_0>") if t not in loaded.get_vocab())
    loaded.add_special_tokens({"pad_token": pad})
    why = (
        f" (its end-of-text token {eos!r} is {'its unknown token' if eos == loaded.unk_token else 'added to every text'})"
        if eos is not None
        else ""
    )
    logger.warning(
        "the tokenizer %r has no pad token%s: added %r (id %d) to pad with; the saved tokenizer keeps it",
        name,
        why,
        pad,
        loaded.pad_token_id,
    )


def build_tokenizer(
    tokenizer: str,
    texts: Sequence[str],
    *,
    min_freq: int = 1,
    max_vocab_size: int | None = None,
    show_progress: bool = False,
    **kwargs: Any,
) -> Any:
    """The tokenizer named by ``tokenizer``, trained on ``texts`` or loaded, with the whole-clause check.

    ``"auto"`` picks from the texts with [`choose_tokenizer`][rnn_textclf.tokenization.choose_tokenizer]
    (``"basic_english"`` for space-separated text, ``"char"`` for text without spaces between words) and
    logs the choice and why. ``"basic_english"`` and ``"whitespace"`` train word-level vocabularies;
    ``"bpe"``, ``"unigram"``, ``"wordpiece"`` and ``"char"`` the models of
    [`RNNTokenizer.train_from_iterator`][rnn_textclf.RNNTokenizer.train_from_iterator]. Anything else is a
    pretrained tokenizer: a folder or Hub id for ``AutoTokenizer.from_pretrained``; it needs a pad token
    (a tokenizer without one pads with a ``<pad>`` it holds or its end-of-text token where they may, else
    gets a new ``<pad>`` token; logged) and pads on the right (a left-padding one is switched, logged).

    Args:
        tokenizer: One of ``TOKENIZER_CHOICES`` or a pretrained tokenizer's folder or Hub id.
        texts: The training texts.
        min_freq: As in ``train_from_iterator`` (trained tokenizers only).
        max_vocab_size: As in ``train_from_iterator`` (trained tokenizers only). None: 30,000 for
            words (``DEFAULT_WORD_VOCAB_SIZE``, the CLI's cap), no cap for characters,
            ``DEFAULT_SUBWORD_VOCAB_SIZE`` for subword models.
        show_progress: Show a progress bar while training.
        **kwargs: More ``train_from_iterator`` options (``lowercase``, ``specials``...), or
            ``from_pretrained`` options for a pretrained tokenizer.

    Returns:
        The tokenizer (an `RNNTokenizer`, or the pretrained tokenizer's class).

    Raises:
        ValueError: For invalid options.
        OSError: ``tokenizer`` is neither a known name nor a loadable tokenizer.
    """
    if not isinstance(tokenizer, str) or not tokenizer:
        raise ValueError(
            f"tokenizer must be one of {list(TOKENIZER_CHOICES)} or a tokenizer folder or Hub id, got {tokenizer!r}"
        )
    _check_texts_iterable(texts, "texts")
    choice = tokenizer
    if choice == "auto":
        choice, reason = choose_tokenizer(texts)
        logger.info("Tokenizer: %s (auto: %s)", choice, reason)
    if choice in TOKENIZER_CHOICES:
        if choice in ("basic_english", "whitespace"):
            kwargs.update(model="word", normalization=choice)
            if max_vocab_size is None:
                max_vocab_size = DEFAULT_WORD_VOCAB_SIZE
        else:
            kwargs["model"] = choice
        return RNNTokenizer.train_from_iterator(
            iter(texts),
            min_freq=min_freq,
            max_vocab_size=max_vocab_size,
            show_progress=show_progress,
            length=len(texts),
            **kwargs,
        )
    from transformers import AutoTokenizer

    try:
        loaded = AutoTokenizer.from_pretrained(tokenizer, **kwargs)
    except (OSError, ValueError) as err:
        raise OSError(
            f"tokenizer {tokenizer!r} is not one of {list(TOKENIZER_CHOICES)} and could not be loaded as a "
            f"pretrained tokenizer (a folder with tokenizer.json, or a Hub id): {str(err).splitlines()[0]}"
        ) from err
    if loaded.unk_token is None:  # (a tokenizer.json saved without its tokenizer_config.json)
        own = next((t for t in ("<unk>", "[UNK]", "<|unk|>") if t in loaded.get_added_vocab()), None)
        if own is not None:
            loaded.unk_token = own
            logger.info("the tokenizer %r has no unknown token set: using its own %r", tokenizer, own)
    if loaded.pad_token is None:
        _choose_pad_token(loaded, tokenizer)
    if getattr(loaded, "padding_side", "right") != "right":
        # RNNClassifier packs right-padded batches (a left-padded one is a clear error): the tokenizer saved
        # with the model must pad right, or pipeline(model=folder) fails on batches.
        logger.info("Tokenizer %r: padding_side set to 'right' (was %r)", tokenizer, loaded.padding_side)
        loaded.padding_side = "right"
    logger.debug("Tokenizer: pretrained %s (%s, %d tokens)", tokenizer, type(loaded).__name__, len(loaded))
    check_vocabulary(loaded, list(itertools.islice(texts, 20000)))
    return loaded


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------


def _type_hint(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return " (decode it first, e.g. text.decode('utf-8'))"
    if value is None:
        return " (a missing value: drop or fill empty rows first)"
    if not isinstance(value, (str, dict)) and hasattr(value, "__iter__") and hasattr(value, "__len__"):
        # e.g. a datasets Column (ds["text"]), a NumPy array or a pandas Series of texts
        return " (a sequence of texts: pass list(...) of it)"
    return ""


def _bad_item(texts: Sequence[Any], name: str = "text") -> TypeError | None:
    for i, item in enumerate(texts):
        if not isinstance(item, str):
            return TypeError(f"{name}[{i}] must be a str, got {type(item).__name__}{_type_hint(item)}")
    return None


def _check_text_argument(value: Any, name: str) -> None:
    """TypeError naming the position for None, numbers, bytes... where text is expected."""
    if isinstance(value, str):
        return
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"{name} must be a str or a list of str, got {type(value).__name__}{_type_hint(value)}"
        )
    for i, item in enumerate(value):
        if isinstance(item, str):
            continue
        if isinstance(item, (list, tuple)):  # pre-tokenized words, or a (text, text_pair) pair
            for j, sub in enumerate(item):
                if not isinstance(sub, (str, list, tuple)):
                    raise TypeError(
                        f"{name}[{i}][{j}] must be a str, got {type(sub).__name__}{_type_hint(sub)}"
                    )
            continue
        raise TypeError(f"{name}[{i}] must be a str, got {type(item).__name__}{_type_hint(item)}")


def _check_training_arguments(
    min_freq: Any,
    max_vocab_size: Any,
    specials: Any,
    pad_token: Any,
    unk_token: Any,
    normalization: Any,
) -> list[str]:
    if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
        raise ValueError(f"min_freq must be an integer >= 1 (torchtext's default is 1), got {min_freq!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)}, got {normalization!r}")
    if isinstance(specials, str) or not isinstance(specials, Iterable):
        raise ValueError(
            f"specials must be a sequence of str such as {list(DEFAULT_SPECIALS)}, got {specials!r}"
        )
    specials = list(specials)
    for i, special in enumerate(specials):
        if not isinstance(special, str) or not special:
            raise ValueError(f"specials[{i}] must be a non-empty str, got {special!r}")
    duplicates = sorted({s for s in specials if specials.count(s) > 1})
    if duplicates:
        raise ValueError(f"specials must not repeat a token, got {specials!r} (repeated: {duplicates})")
    for name, token in (("pad_token", pad_token), ("unk_token", unk_token)):
        if not isinstance(token, str) or token not in specials:
            raise ValueError(
                f"{name} must be one of the specials {specials!r}, got {token!r}; "
                f"add it to specials or choose one of them"
            )
    if pad_token == unk_token:
        raise ValueError(f"pad_token and unk_token must differ, both are {pad_token!r}")
    if max_vocab_size is not None and (
        isinstance(max_vocab_size, bool)
        or not isinstance(max_vocab_size, int)
        or max_vocab_size <= len(specials)
    ):
        raise ValueError(
            f"max_vocab_size must be None (no cap) or an integer greater than the number of specials "
            f"({len(specials)}: {specials!r}), so that at least one word fits; got {max_vocab_size!r}"
        )
    return specials


# --------------------------------------------------------------------------------------------------
# The tokenizer
# --------------------------------------------------------------------------------------------------

_FAST_CALL_OPTIONS = frozenset(
    {
        "add_special_tokens",
        "padding",
        "truncation",
        "max_length",
        "pad_to_multiple_of",
        "padding_side",
        "return_tensors",
        "return_token_type_ids",
        "return_attention_mask",
        "return_length",
        "verbose",
    }
)
_FAST_CALL_DEFAULTS: dict[str, Any] = {
    "text_pair": None,
    "text_target": None,
    "text_pair_target": None,
    "stride": 0,
    "is_split_into_words": False,
    "return_overflowing_tokens": False,
    "return_special_tokens_mask": False,
    "return_offsets_mapping": False,
    "tokenizer_kwargs": None,
}


_SENTINELS = [chr(cp) for cp in range(0xFDD1, 0xFDF0)]  # noncharacters, to cut joined texts apart
_RUST_CALL_MIN_THREADS = 6  # the Rust call path costs ~2.5x the CPU of the Python one (measured)

CallPath = Literal["auto", "python", "rust", "standard"]
"""How ``__call__`` encodes plain texts; all give identical ids (see `RNNTokenizer.call_path`)."""


def _has_free_sentinel(backend: Tokenizer) -> bool:
    """Whether a sentinel is left that is not a token (the fast paths cut joined texts apart at one; a
    vocabulary holding them all takes the standard call path)."""
    return any(backend.token_to_id(w) is None for w in _SENTINELS)


def _rust_threads() -> int:
    """Threads the `tokenizers` Rust code may use in this process."""
    environ = os.environ
    if environ.get("TOKENIZERS_PARALLELISM", "").strip().lower() in ("0", "false", "no", "off"):
        return 1
    configured = (environ.get("RAYON_NUM_THREADS") or environ.get("RAYON_RS_NUM_CPUS") or "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return _available_cpus()


@functools.cache
def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _fresh_copies(strings: Iterable[str]) -> list[str]:
    """New string objects equal to ``strings``, allocated one after another in this order.

    Lookup tables are read for every word of every text: with their keys (and values, see
    `_canonical_ints`) packed in memory, most-used first, a lookup touches fewer CPU cache lines than
    with keys left wherever the texts that first held them were split (measured ~10% of a batch call,
    benchmarks/tokenizer.py --models-only).
    """
    strings = list(strings)
    copies = " ".join(strings).split()  # one C call: the usual case (words and pieces hold no space)
    if copies == strings:
        return copies
    return [s.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass") for s in strings]


def _canonical_ints(top: int) -> list[int]:
    """``0 .. top`` as int objects made one after another: one shared, packed object per id."""
    return list(range(top + 1))


class _Lookup(dict):
    """Word -> id; unknown words give ``unk_id`` (so that ``map(lookup.__getitem__, words)`` works)."""

    unk_id: int = 0

    def __missing__(self, key: str) -> int:
        return self.unk_id


_MISSING = (-3,)  # a piece not in the cache yet (`_PieceCache`): never an id


class _PieceCache(dict):
    """Piece -> its ids. A missing piece gives ``_MISSING`` and is noted in the calling thread's list
    (`missing`): a batch is looked up in one pass, then its new pieces are learned together
    (`_BackendFastPath._learn`). Per thread, so that threads sharing a tokenizer never see each other's
    misses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.local = threading.local()

    def missing(self) -> list[str]:
        """A new, empty list of this thread's misses (the pieces looked up from now on and not found)."""
        self.local.missing = []
        return self.local.missing

    def __missing__(self, key: str) -> tuple[int, ...]:
        self.local.missing.append(key)
        return _MISSING

    def __reduce__(self) -> tuple[Any, ...]:  # (a thread-local cannot be pickled)
        return (_PieceCache, (dict(self),))


class _FastPath:
    """Encoders for plain texts that give exactly the backend's ids, without its per-call overhead."""

    def __init__(
        self, signature: tuple[Any, ...], backend: Tokenizer, python: _PythonSide, unk_id: int
    ) -> None:
        self.signature = signature
        self.python = python
        # The model's vocabulary only: special tokens added later are split (split_special_tokens=True), so
        # the backend looks their text up in the model too, where it is unknown.
        vocab = backend.get_vocab(with_added_tokens=False)
        self.marked_vocab = bool(python.python_form) and any(_MARK in token for token in vocab)
        # Python-form word -> id (unknown words: unk_id), for the Python call path; in id order (the most
        # frequent words first), packed in memory (`_fresh_copies`).
        ordered = sorted(vocab.items(), key=operator.itemgetter(1))
        words = [python.to_python(w) for w, _ in ordered] if self.marked_vocab else [w for w, _ in ordered]
        ints = _canonical_ints(max(unk_id, ordered[-1][1] if ordered else 0))
        self.lookup = _Lookup(zip(_fresh_copies(words), [ints[i] for _, i in ordered], strict=True))
        self.lookup.unk_id = ints[unk_id]
        self.unk_id = unk_id
        self._backend = backend
        self._rust: tuple[Tokenizer, str, int] | None = None

    def encode_python(self, texts: list[str]) -> list[list[int]]:
        """torchtext's rules with Python's C string methods, then dict lookups (one thread)."""
        getitem = self.lookup.__getitem__
        return [list(map(getitem, words.split())) for words in self.python.words_text(texts)]

    def encode_rust(self, texts: list[str]) -> list[list[int]]:
        """Words from the Python side, looked up by the Rust model, many texts per call (all threads).

        Per-text costs (one Rust ``Encoding`` and one Python object each) dominate for short texts, so
        texts are joined around a sentinel word and the ids are cut apart at its id.
        """
        words_only, sentinel_word, sentinel = self._rust_backend()
        joiner = f"\n{sentinel_word}\n"
        prepared = self.python.words_text(texts)
        size = max(1, min(256, len(prepared) // 8))  # 256: measured best here (unlike training)
        starts = range(0, len(prepared), size)
        joined = [self.python.rust_text(joiner.join(prepared[i : i + size])) for i in starts]
        try:
            encodings = words_only.encode_batch_fast(joined, add_special_tokens=False)
        except TypeError:
            # A lone surrogate (e.g. from json.loads('"\\ud800"')) cannot cross into Rust. Its word is in no
            # vocabulary (tokenizer.json is UTF-8), so the Python path gives torchtext's answer: <unk>.
            if not any(_SURROGATE.search(t) for t in joined):
                raise
            return self.encode_python(texts)
        out: list[list[int]] = []
        for i, text, encoding in zip(starts, joined, encodings, strict=True):
            n = min(size, len(prepared) - i)
            if text.count(sentinel_word) != n - 1:  # a text holds the sentinel itself: one by one
                part = [self.python.rust_text(t) for t in prepared[i : i + size]]
                for e in words_only.encode_batch_fast(part, add_special_tokens=False):
                    ids = e.ids
                    out.append([self.unk_id if x == sentinel else x for x in ids] if sentinel in ids else ids)
                continue
            out.extend(_split_at(encoding.ids, sentinel, n))
        return out

    def _rust_backend(self) -> tuple[Tokenizer, str, int]:
        """The backend's model behind Rust's WhitespaceSplit (no normalizer, post-processor or added
        tokens), with a sentinel word that is not in the vocabulary."""
        if self._rust is None:
            spec = json.loads(self._backend.to_str())
            spec.update(normalizer=None, post_processor=None, added_tokens=[], truncation=None, padding=None)
            spec["pre_tokenizer"] = json.loads(pre_tokenizers.WhitespaceSplit().__getstate__())
            vocab = spec["model"]["vocab"]
            sentinel_word = next(w for w in _SENTINELS if w not in vocab)
            sentinel_id = max(vocab.values(), default=-1) + 1
            vocab[sentinel_word] = sentinel_id
            self._rust = (Tokenizer.from_str(json.dumps(spec)), sentinel_word, sentinel_id)
        return self._rust


# Character classes of the subword and character pipelines (see `_char_classes`).
_CLASS_UNSAFE, _CLASS_SPACE, _CLASS_OTHER, _CLASS_ISOLATED, _CLASS_SEPARATOR, _CLASS_EXPANDS = (
    0,
    1,
    2,
    3,
    4,
    5,
)
_CLASS_PENDING = 6  # isolated in the shared tables, its id not asked for yet (`_BackendFastPath._resolve`)
_ASTRAL = 0x10000  # the table index of every character beyond the BMP (unsafe: those texts go to Rust)
_PIECE_CACHE_MAX = 500_000  # pieces whose ids are kept (~75 MB at most); the cache restarts beyond it
_PIECE_BLOCK = 256  # texts (or pieces) per joined string sent to Rust
_PROBE_SEPARATOR = "\ufdd1"
_TABLE_BLOCK_CHARS = 2**18  # characters per pass through the code point tables (measured)
_FREQUENT_EXPANSIONS = 8  # expanding characters replaced before the tables (each costs a scan)


@functools.cache
def _composition_seconds() -> frozenset[str]:
    """Characters that can compose with the character before them under NFC/NFKC (NFC_QC=Maybe): second
    halves of canonical pairs that are not excluded from composition, and Hangul vowel and final jamo."""
    seconds = {chr(cp) for cp in itertools.chain(range(0x1161, 0x1176), range(0x11A8, 0x11C3))}
    for cp in range(0x20000):
        char = chr(cp)
        decomposition = unicodedata.decomposition(char)
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2 and unicodedata.normalize("NFC", char) == char:
                seconds.add(chr(int(parts[1], 16)))
    return frozenset(seconds)


def _piece_counts(pre_tokenizer: pre_tokenizers.PreTokenizer, template: str, chars: list[str]) -> np.ndarray:
    """Pieces the pre-tokenizer makes of ``template.format(char)`` for each char (a few Rust calls)."""
    counter = Tokenizer(models.WordLevel({_PROBE_SEPARATOR: 0, "<unk>": 1}, unk_token="<unk>"))
    counter.pre_tokenizer = pre_tokenizer
    joiner = f" {_PROBE_SEPARATOR} "
    probes = list(map(template.format, chars))
    blocks = [joiner.join(probes[i : i + 1024]) for i in range(0, len(probes), 1024)]
    counts = []
    for encoding in counter.encode_batch_fast(blocks, add_special_tokens=False):
        ids = np.asarray(encoding.ids)
        bounds = np.flatnonzero(ids == 0)  # (probes in the block - 1,)
        counts.append(np.diff(bounds, prepend=-1, append=len(ids)) - 1)  # (probes in the block,)
    return np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)


_EXPANSION_MAX = 4  # longest normalized form kept in the tables (e.g. "…" -> "...", "½" -> "1⁄2")


@dataclass(frozen=True)
class _CharClasses:
    """Per BMP character: what the subword/char pipeline makes of it, where that does not depend on its
    neighbours (see `_char_classes`)."""

    mapped: np.ndarray  # (0x10001,) uint32: the normalizer's output for the char alone (spaces: " ")
    classes: np.ndarray  # (0x10001,) uint8: a _CLASS_* (index _ASTRAL: _CLASS_UNSAFE)
    expansions: Mapping[int, str]  # a _CLASS_EXPANDS char -> its normalized form (chars map to themselves)
    ascii_unsafe: str  # ASCII chars for which `str.lower()`/`str.split()` differ from the pipeline


@functools.cache
def _char_classes(model: str, lowercase: bool, split_unsegmented: bool) -> _CharClasses | None:
    """Probe the normalizer and pre-tokenizer that rnn-textclf builds, once per process (~0.3 s).

    A character is *safe* when it cannot interact with its neighbours under the normalizer: it is
    assigned, not a mark, and neither the first character of its decomposition nor its normalized form
    holds a combining character or one that can compose with the character before it (see
    `_composition_seconds`). A text made of safe characters is then normalized character by character
    (NFKC, then Rust's per-character lowercasing): a table lookup of what the normalizer makes of each
    character alone. Each safe character's normalized form is then classed by the pre-tokenizer itself
    (piece counts in a few contexts): ``_CLASS_SPACE`` (a separator; Python's ``str.split`` must agree),
    ``_CLASS_ISOLATED`` (always a piece of its own: CJK characters, punctuation; every character for
    ``"char"``) or ``_CLASS_OTHER`` (part of a run: letters, digits). A character normalized to 2-4
    safe characters that normalize to themselves (``"…"`` to ``"..."``) is ``_CLASS_EXPANDS``. Anything
    else is ``_CLASS_UNSAFE`` and its texts take the Rust pipeline.
    """
    normalizer = _subword_normalizer(lowercase)
    pre_tokenizer = _subword_pre_tokenizer(model, split_unsegmented)
    codes = np.arange(0x10000, dtype=np.uint32)
    codes = codes[((codes < 0xD800) | (codes > 0xDFFF)) & (codes != 0x0A)]
    chars = _string_of(codes)
    normalized = normalizer.normalize_str("\n".join(chars)).split("\n")
    if len(normalized) != len(chars) or normalizer.normalize_str("\n") != "\n":
        return None
    seconds = _composition_seconds()
    category, combining = unicodedata.category, unicodedata.combining
    candidates, forms, longer = ["\n"], ["\n"], []
    for char, form in zip(chars, normalized, strict=True):
        if not form or len(form) > _EXPANSION_MAX or category(char) == "Cn" or category(char)[0] == "M":
            continue
        first = unicodedata.normalize("NFKD", char)[0]
        if combining(first) or first in seconds:
            continue
        if len(form) > 1:
            longer.append((char, form))
        elif category(form)[0] != "M" and not combining(form) and form not in seconds:
            candidates.append(char)
            forms.append(form)
    # The pre-tokenizer's view of each normalized form, from piece counts in a few contexts.
    between = _piece_counts(pre_tokenizer, "a{0}a", forms)
    doubled = _piece_counts(pre_tokenizer, "{0}{0}", forms)
    space = (between == 2) & (doubled == 0)
    isolated = (between == 3) & (doubled == 2)
    safe = space | isolated | (between == 1) | (between == 3)
    if model == "char" or split_unsegmented:
        # Combining marks attach to the unit before them (\p{M}* in the regex): a form that attaches to a
        # character this pipeline isolates is unsafe.
        anchor = "a" if model == "char" else "\u4e2d"
        if _piece_counts(pre_tokenizer, "a{0}a", [anchor]).tolist() != [3]:
            return None
        after = _piece_counts(pre_tokenizer, anchor + "{0}", forms)
        before = _piece_counts(pre_tokenizer, "{0}" + anchor, forms)
        safe &= space | ((after == 2) & (before == 2))
    python_space = np.array([form.isspace() for form in forms])
    safe &= space == python_space  # Python's split() must cut exactly where the pipeline does
    mapped = np.zeros(_ASTRAL + 1, dtype=np.uint32)
    classes = np.full(_ASTRAL + 1, _CLASS_UNSAFE, dtype=np.uint8)
    where = np.fromiter(map(ord, candidates), dtype=np.int64, count=len(candidates))
    form_codes = np.fromiter(map(ord, forms), dtype=np.uint32, count=len(forms))
    mapped[where] = np.where(space, 0x20, form_codes)
    kind = np.where(space, _CLASS_SPACE, np.where(isolated, _CLASS_ISOLATED, _CLASS_OTHER))
    classes[where] = np.where(safe, kind, _CLASS_UNSAFE).astype(np.uint8)
    # Longer forms: each of their characters must be safe and normalize to itself (" " for a space).
    expansions: dict[int, str] = {}
    for char, form in longer:
        if all(
            classes[ord(c)] != _CLASS_UNSAFE
            and mapped[ord(c)] == (0x20 if classes[ord(c)] == _CLASS_SPACE else ord(c))
            for c in form
        ):
            classes[ord(char)] = _CLASS_EXPANDS
            expansions[ord(char)] = form
    ascii_unsafe = "".join(
        chr(cp)
        for cp in range(0x80)
        if classes[cp] in (_CLASS_UNSAFE, _CLASS_EXPANDS)
        or (classes[cp] == _CLASS_SPACE) != chr(cp).isspace()
        or (classes[cp] != _CLASS_SPACE and chr(mapped[cp]) != (chr(cp).lower() if lowercase else chr(cp)))
    )
    return _CharClasses(mapped, classes, expansions, ascii_unsafe)


class _BackendFastPath:
    """Plain texts through rnn-textclf's subword and character tokenizers, with exactly the backend's ids.

    ``encode_python`` (the default) does the per-text work in Python's C string methods and numpy, and
    asks the Rust model only for pieces it has not seen:

    * normalization: ASCII words of subword models are looked up as written, each cached with the ids
      of its form lowercased by ``str.lower()`` (NFKC leaves ASCII alone); other texts go through a code
      point table of what the backend's normalizer makes of each character alone, exact for characters
      that cannot interact with their neighbours (`_char_classes`);
    * pre-tokenization: texts are cut where the backend's pre-tokenizer surely cuts (whitespace, and
      around characters that are always a piece of their own, such as CJK characters and punctuation);
      each resulting *piece* (a word such as ``"don't"`` or ``"covid19"``) is looked up in a cache of
      its ids, filled by the backend itself (its pre-tokenizer and model, without the normalizer) for
      pieces not seen before. BPE, WordPiece, Unigram and the character model all encode each
      pre-token on its own, so a text's ids are its pieces' ids in order;
    * texts holding an unsafe character (e.g. Thai or Devanagari combining marks, emoji beyond the BMP,
      lone surrogates) take ``encode_rust``: a copy of the backend without truncation, padding or
      post-processor, many texts per ``encode_batch_fast`` call, joined around a sentinel token.

    A self-check on sample strings at construction falls back to ``encode_rust`` for everything if the
    tables ever disagreed with the backend (logged).
    """

    def __init__(self, signature: tuple[Any, ...], backend: Tokenizer, model: str) -> None:
        self.signature = signature
        added = sorted(backend.get_added_tokens_decoder().items())
        trial = Tokenizer(backend.model)  # the backend's own model object: nothing parsed or copied
        trial.add_special_tokens([token for _, token in added])
        # Sharing needs every added token at its backend id (rnn-textclf's specials are in the model's
        # vocabulary); otherwise each copy is parsed from the backend's JSON (~10 ms for 8,000 BPE tokens).
        share = all(trial.token_to_id(token.content) == i for i, token in added)

        def copy() -> Tokenizer:
            # without truncation, padding or post-processor (a new Tokenizer has none)
            if share:
                tokenizer = Tokenizer(backend.model)
                tokenizer.normalizer = backend.normalizer
                tokenizer.pre_tokenizer = backend.pre_tokenizer
                tokenizer.add_special_tokens([token for _, token in added])
            else:
                tokenizer = Tokenizer.from_str(backend.to_str())
                tokenizer.post_processor = None
                tokenizer.no_truncation()
                tokenizer.no_padding()
            tokenizer.encode_special_tokens = backend.encode_special_tokens
            return tokenizer

        self.backend = copy()
        # Texts are joined around a sentinel (a non-special added token: matched even where special tokens
        # are split) and the ids cut apart at its id: one Encoding per 256 texts instead of one per text.
        self.sentinel_word = next(w for w in _SENTINELS if backend.token_to_id(w) is None)
        sentinel = AddedToken(self.sentinel_word, special=False, normalized=False)
        self.backend.add_tokens([sentinel])
        self.sentinel = self.backend.token_to_id(self.sentinel_word)
        self.one_by_one = copy()
        # The pieces' encoder: the same without the normalizer (pieces are already normalized).
        self.pieces = copy()
        self.pieces.normalizer = None
        self.pieces.add_tokens([sentinel])
        self.ascii_pieces: Tokenizer | None = None  # for ASCII pieces, when the tables apply (`_tables`)
        self.cache = self._empty_cache()
        # Each id as one shared int object, and single ids as shared 1-tuples (the cache's values).
        self.ints = _canonical_ints(self.backend.get_vocab_size(with_added_tokens=True))
        self.singles = [(i,) for i in self.ints]
        self.classes: np.ndarray | None = None
        tables = self._tables(backend, model)
        if tables is None:
            return
        self.lowercase, shared = tables
        if model != "char":
            # ASCII pieces skip the pre-tokenizer's split around CJK/Thai... characters: it cannot match
            # there, and its Unicode-class regex is much of the Rust time.
            self.ascii_pieces = copy()
            self.ascii_pieces.normalizer = None
            self.ascii_pieces.pre_tokenizer = _subword_pre_tokenizer(model, False)
            self.ascii_pieces.add_tokens([sentinel])
            if self.ascii_pieces.token_to_id(self.sentinel_word) != self.sentinel:
                self.ascii_pieces = None
        self.mapped = shared.mapped
        self.ascii_unsafe = shared.ascii_unsafe
        self.expansions = shared.expansions
        self.frequent_expansions: dict[str, str] = {}  # the first few met: replaced up front
        classes = shared.classes.copy()
        # Ids of the isolated characters (each its own piece), asked for when first met (`_resolve`;
        # there are ~60,000, mostly CJK, and a text set meets a few thousand at most).
        self.isolated_ids = np.full(_ASTRAL + 1, -2, dtype=np.int32)
        classes[classes == _CLASS_ISOLATED] = _CLASS_PENDING
        separator = ord(self.sentinel_word)
        classes[separator] = _CLASS_SEPARATOR
        self.mapped = self.mapped.copy()
        self.mapped[separator] = separator
        self.isolated_ids[separator] = -1
        self.all_isolated = model == "char"
        self.unknown_char = _unknown_char_ids(backend.model)
        self.classes = classes
        self._self_check()

    def __getstate__(self) -> dict[str, Any]:
        # The pieces' cache is derived data that grows with use: pickles (datasets.map workers and
        # fingerprints) stay small and do not change with what was encoded before.
        state = self.__dict__.copy()
        state["cache"] = self._empty_cache()
        state["encode_special_tokens"] = self.backend.encode_special_tokens  # (not in a Tokenizer's pickle)
        return state

    def _empty_cache(self) -> _PieceCache:
        """A pieces' cache holding only the separator piece (its id -1 cuts joined texts apart)."""
        return _PieceCache({self.sentinel_word: (-1,)})

    def __setstate__(self, state: dict[str, Any]) -> None:
        flag = state.pop("encode_special_tokens", None)
        self.__dict__.update(state)
        if flag is not None:
            for tokenizer in (self.backend, self.one_by_one, self.pieces, self.ascii_pieces):
                if tokenizer is not None:
                    tokenizer.encode_special_tokens = flag

    def _tables(self, backend: Tokenizer, model: str) -> tuple[bool, _CharClasses] | None:
        """(lowercase, the shared character tables) when the backend is exactly a pipeline rnn-textclf
        builds, with a deterministic model and special tokens split; else None (the Rust path)."""
        if not backend.encode_special_tokens or getattr(backend.model, "dropout", None) not in (None, 0.0):
            return None
        normalizer = _state(backend.normalizer)
        lowercase = next((lc for lc in (True, False) if normalizer == _state(_subword_normalizer(lc))), None)
        pre_tokenizer = _state(backend.pre_tokenizer)
        split = next(
            (s for s in (True, False) if pre_tokenizer == _state(_subword_pre_tokenizer(model, s))), None
        )
        if lowercase is None or split is None:
            return None
        # bpe, unigram and wordpiece share their pipeline and so their tables
        shared = _char_classes("char" if model == "char" else "bpe", lowercase, split)
        return None if shared is None else (lowercase, shared)

    def _self_check(self) -> None:
        """Compare with the backend on strings of every kind of safe character; disable on a mismatch."""
        rng = np.random.default_rng(0)
        # Up to 400 characters of each safe class (a uniform sample would be mostly CJK and letters), and
        # the common ones more often: ~2,000 characters, a few ms (each kind in many contexts).
        picked = [
            rng.choice(members, size=min(400, members.size), replace=False)
            for kind in (_CLASS_SPACE, _CLASS_OTHER, _CLASS_PENDING, _CLASS_EXPANDS)
            if (members := np.flatnonzero(self.classes == kind)).size
        ]
        common = np.frombuffer("aZ9 ,.'!-中文，。ア\n".encode("utf-32-le"), dtype=np.uint32)
        picked = np.concatenate([*picked, np.repeat(common, 24)])
        rng.shuffle(picked)
        text = _string_of(picked)
        samples = [text[i : i + n] for i, n in zip(range(0, len(text), 7), itertools.cycle((7, 3, 12)))]
        samples += ["", " ", "Don't STOP", "covid19 2nd", "ＡＢＣ１２３", "Café Straße", "x" * 120]
        expected = [e.ids for e in self.one_by_one.encode_batch_fast(samples, add_special_tokens=False)]
        got = self.encode_python(samples)
        self.cache = self._empty_cache()
        self.frequent_expansions = {}
        if got != expected:
            bad = next(s for s, g, e in zip(samples, got, expected, strict=True) if g != e)
            logger.warning(
                "the tokenizer's fast tables disagree with its backend on %r; using the Rust pipeline "
                "(slower, same ids). Please report this with your Python and tokenizers versions.",
                bad,
            )
            self.classes = None

    # ---- Python side -------------------------------------------------------------------------------

    def encode_python(self, texts: list[str]) -> list[list[int]]:
        """Each text's ids, normalized and cut in Python, pieces looked up in the cache (see the class)."""
        if self.classes is None:
            return self.encode_rust(texts)
        if self.all_isolated:  # characters: the tables give every id (measured faster than words here)
            return self._blocks(self._encode_table, texts)
        flags = np.fromiter(map(str.isascii, texts), dtype=bool, count=len(texts))  # (texts,)
        others = np.flatnonzero(~flags).tolist()
        if not others:
            return self._encode_ascii(texts)
        if len(others) == len(texts):
            return self._blocks(self._encode_table, texts)
        # Each side in one call: the larger side encodes all texts with the other side's places left
        # empty (""), whose ids are then filled in: no Python loop over every text to merge them.
        table = functools.partial(self._blocks, self._encode_table)
        if 2 * len(others) <= len(texts):
            major, minor, places = self._encode_ascii, table, others
        else:
            major, minor, places = table, self._encode_ascii, np.flatnonzero(flags).tolist()
        major_texts = list(texts)
        for i in places:
            major_texts[i] = ""
        out = major(major_texts)
        for i, ids in zip(places, minor([texts[i] for i in places]), strict=True):
            out[i] = ids
        return out

    @staticmethod
    def _blocks(encode: Any, texts: list[str]) -> list[list[int]]:
        """``encode`` on blocks of about 256K characters: its numpy arrays stay in the CPU caches."""
        ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))  # (texts,)
        if not len(texts) or ends[-1] <= _TABLE_BLOCK_CHARS:
            return encode(texts)
        cuts = np.searchsorted(
            ends, np.arange(_TABLE_BLOCK_CHARS, ends[-1], _TABLE_BLOCK_CHARS), side="right"
        )
        bounds = [0, *sorted(set(cuts.tolist()) - {0, len(texts)}), len(texts)]
        out: list[list[int]] = []
        for start, end in itertools.pairwise(bounds):
            out += encode(texts[start:end])
        return out

    def _encode_ascii(self, texts: list[str]) -> list[list[int]]:
        """ASCII texts: split on whitespace, look the words up as written (a list per text).

        The cache holds ASCII words as written (``"The"`` beside ``"the"``), each with the ids of its
        normalized form: no lowercased copy of the texts, and one pass over each text. A text's list is
        its words' ids added in place (``reduce(iadd)``: measured faster than chaining the tuples).
        """
        if not texts:
            return []
        joined = " ".join(texts)  # a space is never unsafe: it only separates words, as in a text
        if any(char in joined for char in self.ascii_unsafe):
            return self._encode_table(texts)
        reduce, iadd = functools.reduce, operator.iadd
        cache = self.cache
        get = cache.__getitem__
        missing = cache.missing()
        out = [reduce(iadd, map(get, text.split()), []) for text in texts]
        while missing:  # words met for the first time: learned, then the texts holding them again
            if self._learn(missing, lower=self.lowercase):  # the cache restarted: all words again
                self._learn(joined.split(), lower=self.lowercase)
            missing = cache.missing()  # (again if another thread restarted the cache meanwhile)
            for i in [i for i, ids in enumerate(out) if _MISSING[0] in ids]:
                out[i] = reduce(iadd, map(get, texts[i].split()), [])
        return out

    def _encode_table(self, texts: list[str]) -> list[list[int]]:
        """Any texts: the code point tables normalize and class the characters (numpy).

        Isolated characters (e.g. Chinese) take their ids straight from the table, runs of letters and
        digits are looked up as strings (`_isolated_and_runs`); text that is mostly runs is cut into
        pieces, all strings. Texts holding an unsafe character go through ``encode_rust``.
        """
        n = len(texts)
        if not n:
            return []
        separator = self.sentinel_word
        joined = separator.join(texts)
        if joined.count(separator) != n - 1:  # a text holds the sentinel itself
            return self.encode_rust(texts)
        for char, form in tuple(self.frequent_expansions.items()):  # e.g. "…", before the tables
            if char in joined:
                joined = joined.replace(char, form)
        points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)  # (chars,)
        index = np.minimum(points, _ASTRAL)  # (chars,)
        classes = self.classes[index]  # (chars,)
        expands = classes == _CLASS_EXPANDS
        if expands.any():
            # Longer normalized forms ("…" -> "..."; their characters normalize to themselves): in the text.
            for code in np.unique(index[expands]).tolist():
                joined = joined.replace(chr(code), self.expansions[code])
                if len(self.frequent_expansions) < _FREQUENT_EXPANSIONS:
                    self.frequent_expansions[chr(code)] = self.expansions[code]
            points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            index = np.minimum(points, _ASTRAL)
            classes = self.classes[index]
        pending = classes == _CLASS_PENDING
        if pending.any():
            self._resolve(np.unique(index[pending]))
            classes = self.classes[index]
        patches: dict[int, list[int]] = {}  # texts encoded another way: their ids replace the table's
        unsafe = classes == _CLASS_UNSAFE
        if unsafe.any():
            separators = np.flatnonzero(classes == _CLASS_SEPARATOR)
            holding = np.unique(np.searchsorted(separators, np.flatnonzero(unsafe))).tolist()
            patches.update(zip(holding, self.encode_rust([texts[i] for i in holding]), strict=True))
            classes[unsafe] = _CLASS_SPACE  # their ids are replaced
        other = classes == _CLASS_OTHER
        if other.any() and 2 * np.count_nonzero(other) > np.count_nonzero(classes != _CLASS_SPACE):
            # Mostly letters and digits (e.g. accented European text): every piece a string.
            codes = self.mapped[index]  # (chars,) normalized, whitespace as " "
            codes[classes == _CLASS_SPACE] = 0x20
            around = np.flatnonzero(classes >= _CLASS_ISOLATED)
            spaced = np.insert(codes, np.concatenate([around, around + 1]), 0x20)
            out = self._ids_of_pieces(spaced.tobytes().decode("utf-32-le").split(), n)
        else:
            out = self._isolated_and_runs(index, classes, other)
        for i, ids in patches.items():
            out[i] = ids
        return out

    def _resolve(self, codes: np.ndarray) -> None:
        """The ids of isolated characters met for the first time (code points ``codes``), from the backend:
        one id each, else (several ids) they count as runs of letters."""
        forms = self.mapped[codes].tolist()  # (codes,) each a normalized code point
        distinct = sorted(set(forms))
        if self.unknown_char is not None:  # a character alone: its vocabulary entry, else the unknown ids
            to_id, unknown = self.backend.model.token_to_id, self.unknown_char
            ids = {f: unknown if (i := to_id(chr(f))) is None else [i] for f in distinct}
        else:
            ids = dict(zip(distinct, self._encode_pieces(list(map(chr, distinct))), strict=True))
        values = list(map(ids.__getitem__, forms))
        single = np.fromiter(map(len, values), dtype=np.int64, count=len(values)) == 1  # (codes,)
        self.isolated_ids[codes[single]] = [v[0] for v in itertools.compress(values, single.tolist())]
        self.classes[codes] = np.where(single, _CLASS_ISOLATED, _CLASS_OTHER)

    def _isolated_and_runs(
        self, index: np.ndarray, classes: np.ndarray, other: np.ndarray
    ) -> list[list[int]]:
        """Mostly isolated characters (e.g. Chinese): their ids straight from the table; runs (letters,
        digits) as strings looked up in the cache, spliced in."""
        kept = classes != _CLASS_SPACE  # (chars,)
        if not other.any():
            ids = self.isolated_ids[index[kept]]  # (ids and separators,)
        else:
            starts = other.copy()  # (chars,) the first character of each run
            starts[1:] &= ~other[:-1]
            spaced = np.insert(self.mapped[index[other]], np.flatnonzero(starts[other]), 0x20)
            values = self._piece_values(spaced.tobytes().decode("utf-32-le").split())  # a tuple per run
            lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))  # (runs,)
            run_ids = np.fromiter(
                itertools.chain.from_iterable(values), dtype=np.int32, count=int(lengths.sum())
            )
            units = kept & (starts | ~other)  # (chars,) isolated characters and run starts
            ids = self.isolated_ids[index[units]]  # (units,) a run start: placeholder -2
            # each run's ids go before its placeholder, then the placeholders go
            ids = np.insert(ids, np.repeat(np.flatnonzero(starts[units]), lengths), run_ids)
            ids = ids[ids != -2]  # (ids and separators,)
        ends = np.flatnonzero(ids == -1)  # (texts - 1,)
        flat = ids.tolist()
        return list(map(flat.__getitem__, map(slice, [0, *(ends + 1).tolist()], [*ends.tolist(), len(flat)])))

    def _piece_values(self, pieces: list[str], *, lower: bool = False) -> list[tuple[int, ...]]:
        """Each piece's ids from the cache (pieces not seen before: from the backend, then cached).

        With ``lower``, pieces are ASCII words as written (see `_learn`).
        """
        cache = self.cache
        missing = cache.missing()
        values = list(map(cache.__getitem__, pieces))
        while missing:
            if self._learn(missing, lower=lower):  # the cache restarted: all pieces again
                self._learn(pieces, lower=lower)
            missing = cache.missing()  # (again if another thread restarted the cache meanwhile)
            values = list(map(cache.__getitem__, pieces))
        return values

    def _learn(self, pieces: list[str], *, lower: bool = False) -> bool:
        """Cache the ids of the pieces not in the cache, from the backend; True if the cache restarted
        (it was full), so that pieces learned before may be gone.

        With ``lower``, pieces are ASCII words as written: a new one is encoded lowercased (its normalized
        form; NFKC leaves ASCII alone) and cached as written. New entries go in most frequent first, as
        fresh keys and shared id objects (`_fresh_copies`): lookups of the common pieces then touch few
        memory lines.
        """
        cache = self.cache
        counts = Counter(pieces)
        new = [piece for piece in counts if piece not in cache]
        restarted = len(cache) + len(new) > _PIECE_CACHE_MAX
        if restarted:  # in place: other threads hold this cache object
            cache.clear()
            cache.update(self._empty_cache())
            new = [piece for piece in counts if piece not in cache]  # (not the separator piece)
        new.sort(key=counts.__getitem__, reverse=True)
        encoded = self._encode_pieces([piece.lower() for piece in new] if lower else new)
        ints, singles = self.ints, self.singles
        values = [singles[v[0]] if len(v) == 1 else tuple(map(ints.__getitem__, v)) for v in encoded]
        cache.update(zip(_fresh_copies(new), values, strict=True))
        return restarted

    def _ids_of_pieces(self, pieces: list[str], n: int) -> list[list[int]]:
        """The ids of ``n`` texts from their pieces (the sentinel piece between texts)."""
        return _split_at(list(itertools.chain.from_iterable(self._piece_values(pieces))), -1, n)

    def _encode_pieces(self, pieces: list[str]) -> list[list[int]]:
        """Each piece's ids from the backend (pre-tokenizer and model), many pieces per Rust call."""
        ascii_only = self.ascii_pieces is not None and "".join(pieces).isascii()
        encoder = self.ascii_pieces if ascii_only else self.pieces
        return _joined_encode(encoder, pieces, self.sentinel_word, self.sentinel)

    # ---- Rust side ---------------------------------------------------------------------------------

    def encode_rust(self, texts: list[str]) -> list[list[int]]:
        """The backend's own pipeline, many texts per ``encode_batch_fast`` call (all Rust threads)."""
        out = _joined_encode(self.backend, texts, self.sentinel_word, self.sentinel, strict=False)
        if len(out) == len(texts):
            return out
        # a block holds the sentinel itself: those blocks one text at a time
        return [e.ids for e in self.one_by_one.encode_batch_fast(texts, add_special_tokens=False)]


# Each tokenizer's fast-path state (`RNNTokenizer._fast_path`, `_backend_fast_path`), beside the object
# rather than in its __dict__: it is derived (rebuilt at the first call), grows as texts are met and holds
# a memory address, so in __dict__ it would change pickles and datasets' fingerprint of every `map` that
# calls the tokenizer (datasets hashes a tokenizer's __dict__): cache files would never be reused.
_FAST_STATES: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _fast_state(tokenizer: Any) -> dict[str, Any]:
    """The fast-path state of ``tokenizer`` (a dict, empty until the first call)."""
    state = _FAST_STATES.get(tokenizer)
    if state is None:
        state = _FAST_STATES[tokenizer] = {}
    return state


def _drop_fast_path(tokenizer: Any) -> None:
    """Forgets ``tokenizer``'s fast-path state (lookup tables, the subword pieces' cache): the next call
    rebuilds it, as in a freshly loaded tokenizer (used by the benchmarks and tests)."""
    _FAST_STATES.pop(tokenizer, None)


def _unknown_char_ids(model: models.Model) -> list[int] | None:
    """The ids the model gives a character alone that is not in its vocabulary, when a character alone
    in it is always its own vocabulary entry (else those ids); None when that rule may not hold.

    True of the trainers' BPE (no end-of-word suffix, no byte fallback), WordPiece, Unigram (without byte
    fallback: one unknown id) and WordLevel models; asking the model per character costs ~0.3 us instead
    of ~4 us through the pipeline. The fast path's self-check compares the result with the backend.
    """
    kind = type(model).__name__
    if kind == "BPE" and (model.byte_fallback or model.end_of_word_suffix):
        return None
    if kind == "WordPiece" and model.max_input_chars_per_word < 1:
        return None
    if kind not in ("BPE", "WordPiece", "WordLevel", "Unigram"):
        return None
    probe = next(c for c in _SENTINELS if model.token_to_id(c) is None)  # a noncharacter: never a token
    try:
        unknown = [token.id for token in model.tokenize(probe)]
    except Exception:  # e.g. a WordLevel or WordPiece model without its unknown token
        return None
    return unknown if len(unknown) <= 1 else None


def _joined_encode(
    backend: Tokenizer, texts: list[str], sentinel_word: str, sentinel: int, *, strict: bool = True
) -> list[list[int]]:
    """``texts`` joined around ``sentinel_word`` (an added token), up to 256 a string, encoded and cut apart.

    Per-text costs in Rust (one ``Encoding`` each) dominate for short texts; at least 8 strings when there
    are texts enough, for the Rust threads. With ``strict=False``, returns [] if a text holds the
    sentinel word itself.
    """
    joiner = f"\n{sentinel_word}\n"
    size = max(1, min(_PIECE_BLOCK, len(texts) // 8))
    starts = range(0, len(texts), size)
    joined = [joiner.join(texts[i : i + size]) for i in starts]
    if not strict and sum(map(str.count, joined, itertools.repeat(sentinel_word))) != len(texts) - len(
        joined
    ):
        return []
    out: list[list[int]] = []
    for i, encoding in zip(starts, backend.encode_batch_fast(joined, add_special_tokens=False), strict=True):
        out.extend(_split_at(encoding.ids, sentinel, min(size, len(texts) - i)))
    return out


class _NoBackendError(ValueError):
    """``RNNTokenizer(...)`` was given nothing to build its backend from (see `_Constructor`)."""


class _Constructor(type):
    """The metaclass of `RNNTokenizer`: checks what ``RNNTokenizer(...)`` itself is given.

    transformers' constructor would read a call without a tokenizer as a slow tokenizer to convert (its
    message talks of sentencepiece) and would turn ``vocab=`` into a byte-pair model without
    ``basic_english``'s rules, that encodes ``"Hello, world!"`` as no ids at all. (A metaclass, because
    defining ``__init__`` changes how transformers loads the class; pickling does not come through here.)
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        file = kwargs.get("tokenizer_file")
        if kwargs.get("tokenizer_object") is not None or kwargs.get("gguf_file") is not None:
            pass  # a backend to wrap
        elif file is not None:
            if not os.path.isfile(file):
                raise _NoBackendError(
                    f"{cls.__name__}(tokenizer_file={file!r}): no such file. Pass the path of a tokenizer.json, "
                    f"or load a saved tokenizer's folder with {cls.__name__}.from_pretrained(folder)."
                )
        elif kwargs.get("vocab") is not None or kwargs.get("merges") is not None:
            raise _NoBackendError(
                f"{cls.__name__}(vocab=...) would build a byte-pair model without basic_english's rules "
                f"(no ids at all for 'Hello, world!'). For a vocabulary use {cls.__name__}.from_vocab(vocab) "
                "(tokens in id order, or a token -> id mapping)."
            )
        else:
            given = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
            raise _NoBackendError(
                f"{cls.__name__}({', '.join(given)}) has no tokenizer to wrap. Build one with "
                f"{cls.__name__}.train_from_iterator(texts) or .train_from_dataset(dataset, "
                f"text_column=...), wrap a vocabulary with {cls.__name__}.from_vocab(tokens), or load a "
                f"saved one with {cls.__name__}.from_pretrained(folder_or_repo)."
            )
        return super().__call__(*args, **kwargs)


class RNNTokenizer(TokenizersBackend, metaclass=_Constructor):
    """Word-level tokenizer with torchtext ``basic_english`` semantics, as a Hugging Face fast tokenizer;
    also subword (``bpe``, ``unigram``, ``wordpiece``) and character (``char``) models.

    ``train_from_iterator(texts, model="char")`` (or ``"bpe"``...) trains the other models, for text
    without spaces between words (see the how-to "Non-English text"); everything below about words and
    ``basic_english`` applies to ``model="word"``, the default.

    Build one with [`train_from_iterator`][rnn_textclf.RNNTokenizer.train_from_iterator],
    [`train_from_dataset`][rnn_textclf.RNNTokenizer.train_from_dataset] or
    [`from_vocab`][rnn_textclf.RNNTokenizer.from_vocab]; reload one with `from_pretrained` (or
    `AutoTokenizer.from_pretrained`, which needs neither rnn-textclf nor ``trust_remote_code``).

    Texts are encoded without special tokens around them (no BOS/EOS); unknown words map to the unknown
    token. Special tokens written in a text are ordinary words (``split_special_tokens=True``), as in
    torchtext: ``"<pad>"`` alone maps to the padding id, ``"x<pad>y"`` is one (unknown) word. So a marker
    added with ``add_special_tokens`` (e.g. ``"[URL]"``) is not matched in text (its embedding row would
    never be used); add it with ``add_tokens(["[URL]"])`` instead, which is matched as in any Hugging Face
    tokenizer (then ``model.resize_token_embeddings(len(tokenizer))``).

    Long texts: tokenizers built by rnn-textclf have ``model_max_length=512``
    (``DEFAULT_MODEL_MAX_LENGTH``, saved in tokenizer_config.json; set ``tokenizer.model_max_length`` to
    change it). ``truncation=True`` without ``max_length`` cuts every text to it. Without truncation
    nothing is cut: the RNN reads any length, with memory and time growing linearly (a padded batch
    grows to ``batch_size x`` its longest text), and a warning is logged once for a text longer than
    ``model_max_length``. A 100,000-word text thus gives 100,000 ids, or 512 with ``truncation=True``.

    Odd text: control characters, NUL, emoji, right-to-left and combining marks are ordinary characters
    (exactly as ``basic_english``). A lone surrogate such as ``"\\ud800"`` (not valid Unicode; Python
    allows it, e.g. from ``json.loads``) makes its word the unknown token on the ``"python"``, ``"rust"``
    and ``"auto"`` call paths; the ``"standard"`` path and vocabulary training raise ``ValueError``.

    Attributes:
        call_path: How ``__call__`` encodes plain ``str`` / ``list[str]`` input when the options allow
            (all give identical ids): ``"python"`` applies torchtext's rules with Python's C string
            methods and looks words up in a dict (fastest on few cores); ``"rust"`` sends
            Python-normalized texts, many per call, to the Rust pre-tokenizer and model (scales with
            cores); ``"auto"`` (default) takes ``"rust"`` from 6 Rust threads on, else ``"python"``;
            ``"standard"`` always uses the `transformers` path (needed for ``encodings``:
            ``word_ids()``, offsets). Subword and character models: ``"python"`` normalizes and cuts
            texts with code point tables and looks each piece's ids up in a cache filled by the Rust
            model (see the how-to "Non-English text"); ``"auto"`` always takes it; ``"rust"`` sends
            the texts, many per call, through the backend's own pipeline. The fast paths follow what is
            changed through the tokenizer's API after the first call (added tokens, specials, BPE
            dropout, a subword model's normalizer or pre-tokenizer); a part of ``backend_tokenizer``
            replaced in place by one of the same kind (a word model's normalizer or pre-tokenizer, a
            model of the same size) is not checked on every call: use ``copy.deepcopy(tok)`` after
            such a change (a copy starts without fast-path state), or save and reload.

    Example:
        >>> tok = RNNTokenizer.train_from_iterator(["A cat.", "A dog!"], min_freq=1)
        >>> tok.convert_ids_to_tokens(tok("a cat and a dog")["input_ids"])
        ['a', 'cat', '<unk>', 'a', 'dog']
    """

    model_input_names = ["input_ids", "attention_mask"]  # noqa: RUF012 (transformers convention)
    padding_side = "right"
    truncation_side = "right"
    call_path: CallPath = "auto"

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> Any:
        """``TokenizersBackend.from_pretrained``, with a clear error when the tokenizer files are missing."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except ValueError as err:
            # transformers' message talks about slow tokenizers and sentencepiece, which do not apply.
            if not isinstance(err, _NoBackendError) and "Couldn't instantiate the backend" not in str(err):
                raise
            name = str(pretrained_model_name_or_path)
            offline = _offline_reason(kwargs)
            if offline and not os.path.isdir(name):
                raise OSError(
                    f"{name!r}: its tokenizer.json is not in the local Hub cache and {offline}, so it was not "
                    "downloaded. Load the tokenizer once online (or without that setting), or pass a folder that "
                    "holds it."
                ) from err
            raise OSError(
                f"{name!r} has no tokenizer: tokenizer.json is missing. An rnn-textclf model needs the "
                "tokenizer it was trained with: save it beside the model (tokenizer.save_pretrained(folder)), "
                "push it to the repo (tokenizer.push_to_hub(repo), or model.push_to_hub(repo, "
                "tokenizer=tokenizer)), or pass the tokenizer itself, e.g. pipeline(..., tokenizer=tokenizer)."
            ) from err

    @classmethod
    def train_from_iterator(
        cls,
        iterator: Iterable[str],
        *,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
        pad_token: str = "<pad>",
        unk_token: str = "<unk>",
        normalization: Normalization = "basic_english",
        show_progress: bool = False,
        length: int | None = None,
        model: TokenizerModel = "word",
        lowercase: bool = True,
        split_unsegmented: bool = True,
    ) -> RNNTokenizer:
        """Build the vocabulary from texts and return a tokenizer.

        ``model="word"`` (the default) gives torchtext ``basic_english`` words: they are counted by the
        `tokenizers` Rust trainer while the texts stream past (memory grows with the number of distinct
        words, not with the corpus). The vocabulary is torchtext's: the specials first, in the given
        order, then the words seen at least ``min_freq`` times by decreasing count, ties in code-point
        order of the word; a special that also occurs as a word keeps its special id.

        ``"bpe"``, ``"unigram"`` and ``"wordpiece"`` train subword models with the `tokenizers` library's
        own trainers, and ``"char"`` keeps characters; all four normalize with NFKC (full-width letters
        and digits fold, accents stay: ``"Café"`` is ``"café"``), lowercase (``lowercase=True``) and
        drop whitespace. Subword models first split on whitespace, punctuation and digit runs and, with
        ``split_unsegmented``, make each character of Chinese, Japanese, Thai, Lao, Khmer and Myanmar
        script a unit of its own (with its combining marks), so that text without spaces between words
        gets character units there and subwords elsewhere. ``"char"`` makes every non-space character
        (with its combining marks) a token. The specials come first in every vocabulary, so ``<pad>`` is
        0 and ``<unk>`` 1 with the defaults; the other tokens follow by decreasing frequency in the
        training texts (subword models: in their first 4M characters). A vocabulary that looks like
        whole clauses (see [`check_vocabulary`][rnn_textclf.tokenization.check_vocabulary]) is warned
        about.

        Args:
            iterator: Texts (``str``), any iterable; it is consumed once.
            min_freq: Keep words seen at least this many times (>= 1).
            max_vocab_size: Total size cap, specials included (None: no cap). Must exceed the number of
                specials.
            specials: Tokens placed first in the vocabulary; must contain ``pad_token`` and
                ``unk_token``, without repeats.
            pad_token: Padding token (its id is ``pad_token_id``).
            unk_token: Token for words outside the vocabulary.
            normalization: ``"basic_english"`` (torchtext's rules) or ``"whitespace"`` (``lower()`` and
                ``split()`` only); ``model="word"`` only.
            show_progress: Show a progress bar (tqdm) over the texts.
            length: Number of texts, if known (the progress bar's total).
            model: ``"word"``, ``"bpe"``, ``"unigram"``, ``"wordpiece"`` or ``"char"`` (see above). For the
                subword models ``max_vocab_size`` is the trained vocabulary size (default
                ``DEFAULT_SUBWORD_VOCAB_SIZE``, 8000; at most: when the texts hold more distinct
                characters than fit, BPE and WordPiece keep the most frequent ones (ties in code point
                order) and the others become unknown, and Unigram, which
                needs them all, raises ``ValueError``) and ``min_freq`` the
                minimum count of a merged pair
                (``"unigram"`` has none: it needs ``min_freq=1``); for ``"char"`` they cap and filter
                characters as for words.
            lowercase: Lowercase (subword and character models; words are always lowercased, as
                ``basic_english`` does).
            split_unsegmented: Subword models: one unit per character of scripts written without spaces.

        Returns:
            The tokenizer.

        Raises:
            TypeError: If an item is not a ``str`` (the message names its index).
            TypeError: ``lowercase`` or ``split_unsegmented`` is not a bool.
            ValueError: For an invalid ``min_freq``, ``max_vocab_size``, ``specials``, ``pad_token``,
                ``unk_token`` or ``normalization``.
        """
        specials = _check_training_arguments(
            min_freq, max_vocab_size, specials, pad_token, unk_token, normalization
        )
        if model not in TOKENIZER_MODELS:
            raise ValueError(
                f"model must be one of {list(TOKENIZER_MODELS)}, got {model!r}; for a pretrained tokenizer use "
                f"AutoTokenizer.from_pretrained(...)"
            )
        for name, flag in (("lowercase", lowercase), ("split_unsegmented", split_unsegmented)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        if show_progress:  # transformers' tqdm: honours transformers.utils.logging.disable_progress_bar()
            from transformers.utils.logging import tqdm

            iterator = tqdm(iterator, total=length, desc="Counting words", unit=" texts")
        if model != "word":
            if normalization != "basic_english":
                raise ValueError(
                    f"normalization={normalization!r} applies to model='word' only; model={model!r} normalizes "
                    "with NFKC (and lowercase=True)"
                )
            if model == "unigram" and min_freq != 1:
                raise ValueError(
                    f"min_freq={min_freq} does not apply to model='unigram' (its trainer has no minimum count); "
                    "pass min_freq=1 and limit the vocabulary with max_vocab_size"
                )
            return cls._train_subword(
                iterator,
                model,
                min_freq,
                max_vocab_size,
                specials,
                pad_token,
                unk_token,
                lowercase,
                split_unsegmented,
            )
        if not lowercase:
            raise ValueError(
                "lowercase=False does not apply to model='word' (basic_english always lowercases); use "
                "model='bpe', 'unigram', 'wordpiece' or 'char' to keep case"
            )
        pipeline = _pipeline(normalization)
        python = pipeline.python
        counter = Tokenizer(models.WordLevel({}, unk_token=unk_token))
        counter.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # texts arrive as words_text/rust_text
        trainer = trainers.WordLevelTrainer(
            vocab_size=_TRAINER_MAX_VOCAB, min_frequency=min_freq, special_tokens=[], show_progress=False
        )
        n_texts = [0]
        try:
            counter.train_from_iterator(_chunked(iterator, python, n_texts), trainer=trainer)
        except UnicodeEncodeError as err:
            error = _surrogate_error(err)
            if error is None:
                raise
            raise error from None
        with _gc_paused():
            words = _trained_counts(trainer, counter)
            vocab = _order_vocabulary(words, specials, min_freq, max_vocab_size, python)
        # debug: the CLI states the vocabulary once, in its own "Vocab:" line
        logger.debug("built a vocabulary of %d tokens (%d words seen)", len(vocab), len(words))
        counts = np.fromiter((c for w, c in words.items() if w not in specials), dtype=np.int64)
        _counts_check(counts, n_texts[0]).warn()
        return cls._from_backend_vocab(vocab, pad_token, unk_token, specials, normalization)

    @classmethod
    def _train_subword(
        cls,
        iterator: Iterable[str],
        model: str,
        min_freq: int,
        max_vocab_size: int | None,
        specials: list[str],
        pad_token: str,
        unk_token: str,
        lowercase: bool,
        split_unsegmented: bool,
    ) -> RNNTokenizer:
        if model in SUBWORD_MODELS:
            vocab_size = DEFAULT_SUBWORD_VOCAB_SIZE if max_vocab_size is None else max_vocab_size
        else:
            vocab_size = _TRAINER_MAX_VOCAB if max_vocab_size is None else max_vocab_size
        backend, trainer = _subword_backend_and_trainer(model, vocab_size, min_freq, specials, unk_token)
        backend.normalizer = _subword_normalizer(lowercase)
        backend.pre_tokenizer = _subword_pre_tokenizer(model, split_unsegmented)
        n_texts = [0]
        sample: list[str] = []
        try:
            backend.train_from_iterator(_joined(iterator, n_texts, sample), trainer=trainer)
        except UnicodeEncodeError as err:
            error = _surrogate_error(err)
            if error is None:
                raise
            raise error from None
        except Exception as err:
            if model != "unigram" or "not large enough to contain all chars" not in str(err):
                raise
            raise ValueError(
                f"max_vocab_size={vocab_size} is too small for model='unigram', which needs every distinct "
                "character of the texts in its vocabulary: pass a larger max_vocab_size, or model='bpe', "
                "'wordpiece' or 'char', which keep the most frequent characters within the cap"
            ) from None
        if model in ("bpe", "wordpiece"):
            backend = _alphabet_within_cap(backend, sample, len(specials), vocab_size)
        if model in SUBWORD_MODELS:
            backend = _frequency_ordered(backend, sample, len(specials))
        if model == "unigram" and backend.token_to_id(unk_token) is None:  # no text at all
            backend = Tokenizer(
                models.Unigram([(s, 0.0) for s in specials], unk_id=specials.index(unk_token))
            )
            backend.normalizer = _subword_normalizer(lowercase)
            backend.pre_tokenizer = _subword_pre_tokenizer(model, split_unsegmented)
        backend.post_processor = processors.TemplateProcessing(
            single="$A:0", pair="$A:0 $B:1", special_tokens=[]
        )
        logger.debug(
            "built a %s vocabulary of %d tokens from %d texts", model, backend.get_vocab_size(), n_texts[0]
        )
        tokenizer = cls(
            tokenizer_object=backend,
            pad_token=pad_token,
            unk_token=unk_token,
            extra_special_tokens=[s for s in specials if s not in (pad_token, unk_token)],
            model_max_length=DEFAULT_MODEL_MAX_LENGTH,
            split_special_tokens=True,
            clean_up_tokenization_spaces=False,
            tokenizer_model=model,
        )
        return tokenizer

    @classmethod
    def train_from_dataset(
        cls,
        dataset: datasets.Dataset | datasets.IterableDataset,
        text_column: str = "text",
        *,
        batch_size: int = 1000,
        **kwargs: Any,
    ) -> RNNTokenizer:
        """Build the vocabulary from a column of a `datasets` data set (streamed in batches).

        Args:
            dataset: A ``datasets.Dataset`` or ``datasets.IterableDataset`` (one split, not a
                ``DatasetDict``).
            text_column: The column holding the texts.
            batch_size: Rows read at a time.
            **kwargs: Passed to [`train_from_iterator`][rnn_textclf.RNNTokenizer.train_from_iterator]
                (``min_freq``, ``max_vocab_size``, ``specials``, ...).

        Returns:
            The tokenizer.

        Raises:
            TypeError: For a ``DatasetDict`` or another type, or a non-text value in the column.
            ValueError: If ``text_column`` is missing, or for invalid vocabulary options.
        """
        import datasets

        refuse_split_dict(dataset, "dataset", then="RNNTokenizer.train_from_dataset reads one split.")
        if not isinstance(dataset, (datasets.Dataset, datasets.IterableDataset)):
            raise TypeError(
                f"dataset must be a datasets.Dataset or datasets.IterableDataset, got {type(dataset).__name__}; "
                f"for a plain list of texts use RNNTokenizer.train_from_iterator"
            )
        columns = dataset.column_names
        if columns is not None and text_column not in columns:
            raise ValueError(
                f"text_column {text_column!r} is not a column of the dataset; columns: {columns}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")

        def texts() -> Iterator[str]:
            # a stream without known features: its columns show in the first batch
            source = dataset.select_columns([text_column]) if columns is not None else dataset
            for batch in source.iter(batch_size=batch_size):
                if text_column not in batch:
                    raise ValueError(
                        f"text_column {text_column!r} is not a column of the dataset; columns: {sorted(batch)}"
                    )
                yield from batch[text_column]

        if "length" not in kwargs and isinstance(dataset, datasets.Dataset):
            kwargs["length"] = len(dataset)
        return cls.train_from_iterator(texts(), **kwargs)

    @classmethod
    def from_vocab(
        cls,
        vocab: Sequence[str] | Mapping[str, int],
        *,
        pad_token: str = "<pad>",
        unk_token: str = "<unk>",
        normalization: Normalization = "basic_english",
    ) -> RNNTokenizer:
        """A tokenizer over a given vocabulary (e.g. torchtext's ``vocab.get_itos()``).

        Args:
            vocab: Tokens in id order, or a token -> id mapping with ids ``0..n-1``.
            pad_token: Padding token; must be in ``vocab``.
            unk_token: Unknown-word token; must be in ``vocab``.
            normalization: As in [`train_from_iterator`][rnn_textclf.RNNTokenizer.train_from_iterator].

        Returns:
            The tokenizer.

        Raises:
            ValueError: For repeated tokens, ids that are not ``0..n-1``, or missing pad/unk tokens.
        """
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)}, got {normalization!r}")
        if isinstance(vocab, Mapping):
            ids = sorted(vocab.values())
            if ids != list(range(len(vocab))):
                raise ValueError("vocab ids must be exactly 0..len(vocab)-1 (no gaps, no repeats)")
            tokens = sorted(vocab, key=vocab.__getitem__)
        else:
            tokens = list(vocab)
        bad = _bad_item(tokens, "vocab")
        if bad is not None:
            raise bad
        for i, token in enumerate(tokens):
            if _SURROGATE.search(token):
                raise ValueError(f"vocab[{i}] = {token!r} holds a lone surrogate, which is not valid Unicode")
        if len(set(tokens)) != len(tokens):
            repeated = sorted({t for t in tokens if tokens.count(t) > 1})[:10]
            raise ValueError(f"vocab must not repeat a token (repeated: {repeated})")
        for name, token in (("pad_token", pad_token), ("unk_token", unk_token)):
            if token not in tokens:
                raise ValueError(f"{name} {token!r} is not in the vocabulary; add it or pick another token")
        if pad_token == unk_token:
            raise ValueError(f"pad_token and unk_token must differ, both are {pad_token!r}")
        python = _pipeline(normalization).python
        backend_vocab = {python.to_backend(t): i for i, t in enumerate(tokens)}
        specials = [t for t in tokens if t in (pad_token, unk_token)]
        return cls._from_backend_vocab(backend_vocab, pad_token, unk_token, specials, normalization)

    @classmethod
    def _from_backend_vocab(
        cls,
        vocab: dict[str, int],
        pad_token: str,
        unk_token: str,
        specials: Sequence[str],
        normalization: str,
    ) -> RNNTokenizer:
        pipeline = _pipeline(normalization)
        backend = Tokenizer(models.WordLevel(vocab, unk_token=unk_token))
        backend.normalizer = pipeline.normalizer
        backend.pre_tokenizer = pipeline.pre_tokenizer
        backend.post_processor = processors.TemplateProcessing(
            single="$A:0", pair="$A:0 $B:1", special_tokens=[]
        )
        extra = [s for s in specials if s not in (pad_token, unk_token)]
        return cls(
            tokenizer_object=backend,
            pad_token=pad_token,
            unk_token=unk_token,
            extra_special_tokens=extra,
            model_max_length=DEFAULT_MODEL_MAX_LENGTH,
            split_special_tokens=True,
            clean_up_tokenization_spaces=False,
            normalization=normalization,
        )

    # ---- inspection ----------------------------------------------------------------------------

    @property
    def normalization(self) -> str | None:
        """``"basic_english"`` or ``"whitespace"`` (None for a backend not built by rnn-textclf)."""
        value = self.init_kwargs.get("normalization")
        return value if value in NORMALIZATIONS else None

    @property
    def tokenizer_model(self) -> str | None:
        """``"word"``, ``"bpe"``, ``"unigram"``, ``"wordpiece"`` or ``"char"`` (None for a backend not built by rnn-textclf)."""
        value = self.init_kwargs.get("tokenizer_model")
        if value in TOKENIZER_MODELS:
            return value
        return "word" if self.normalization is not None else None

    def split_words(self, text: str) -> list[str]:
        """The words of ``text`` before the vocabulary lookup, from the Rust pipeline.

        Equal to ``basic_english_tokenize(text)`` (for ``normalization="basic_english"``).

        Args:
            text: One text.

        Returns:
            The words.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}{_type_hint(text)}")
        backend = self._tokenizer
        normalized = backend.normalizer.normalize_str(text) if backend.normalizer is not None else text
        if backend.pre_tokenizer is None:
            words = [normalized] if normalized else []
        else:
            words = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(normalized)]
        python = self._python_side()
        return [python.to_python(w) for w in words] if python is not None else words

    def get_vocab(self) -> dict[str, int]:
        vocab = super().get_vocab()
        fast = self._display()
        if fast is None:
            return vocab
        return {fast.python.to_python(token): i for token, i in vocab.items()}

    def convert_ids_to_tokens(
        self, ids: int | list[int], skip_special_tokens: bool = False
    ) -> str | list[str]:
        tokens = super().convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        fast = self._display()
        if fast is None:
            return tokens
        if isinstance(tokens, str):
            return fast.python.to_python(tokens)
        return [t if t is None else fast.python.to_python(t) for t in tokens]

    def tokenize(
        self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs: Any
    ) -> list[str]:
        # the tokens as `convert_ids_to_tokens` and `get_vocab` show them (a few letters are kept in a
        # marked form in the backend's vocabulary: `_PythonSide`), so that `convert_tokens_to_ids` maps
        # them back to `encode`'s ids
        tokens = super().tokenize(text, pair, add_special_tokens, **kwargs)
        fast = self._display()
        return tokens if fast is None else [fast.python.to_python(t) for t in tokens]

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | list[int]:
        fast = self._display()
        if fast is not None:
            if isinstance(tokens, str):
                tokens = fast.python.to_backend(tokens)
            else:
                tokens = [fast.python.to_backend(t) for t in tokens]
        return super().convert_tokens_to_ids(tokens)

    def _decode(self, token_ids: int | list[int], **kwargs: Any) -> str:
        text = super()._decode(token_ids, **kwargs)
        if _MARK in text:
            python = self._python_side()
            if python is not None:
                text = " ".join(python.to_python(word) for word in text.split(" "))
        return text

    # ---- encoding ------------------------------------------------------------------------------

    def __call__(self, text: Any = None, *args: Any, **kwargs: Any) -> BatchEncoding:
        """Tokenize one text or a batch: ``input_ids``, ``attention_mask`` (and ``length`` if asked).

        Accepts the standard `transformers` options (``truncation``, ``max_length``, ``padding``,
        ``return_tensors``, ``return_length``, ...). Plain ``str`` / ``list[str]`` input with these
        options takes a fast path with identical results; other options use the standard path.

        Raises:
            TypeError: If ``text`` (or an item of it) is not text; the message names the index.
        """
        fast = self.call_path != "standard" or (
            isinstance(text, (list, tuple)) and not text
        )  # [] crashes there
        if not args and fast and isinstance(text, (str, list, tuple)):
            result = self._fast_call(text, kwargs)
            if result is not None:
                return result
        if text is None and kwargs.get("text_target") is None and not args:
            raise TypeError(f"text must be a str or a list of str, got NoneType{_type_hint(None)}")
        if text is not None:
            _check_text_argument(text, "text")
        return super().__call__(text, *args, **kwargs)

    def _encode_plus(self, text: Any, text_pair: Any = None, **kwargs: Any) -> BatchEncoding:
        _check_text_argument(text, "text")
        if text_pair is not None:
            _check_text_argument(text_pair, "text_pair")
        try:
            return super()._encode_plus(text, text_pair, **kwargs)
        except TypeError as err:
            # The Rust backend refuses strings that are not valid Unicode with a message naming no text.
            for name, value in (("text", text), ("text_pair", text_pair)):
                items = [value] if isinstance(value, str) else list(value or ())
                for i, item in enumerate(items):
                    words = [item] if isinstance(item, str) else [w for w in item if isinstance(w, str)]
                    if any(_SURROGATE.search(w) for w in words):
                        where = name if isinstance(value, str) else f"{name}[{i}]"
                        words_model = self.init_kwargs.get("tokenizer_model", "word") == "word"
                        raise ValueError(
                            f"{where} holds a lone surrogate (e.g. from json.loads('\"\\ud800\"')), which is not valid "
                            "Unicode; the tokenizers library cannot encode it. Clean it first, e.g. "
                            "text.encode('utf-8', 'replace').decode('utf-8')"
                            + (
                                ", or use the default call path (which maps its word to the unknown token)."
                                if words_model and self.call_path == "standard"
                                else "."
                            )
                        ) from err
            raise

    def _eventual_warn_about_too_long_sequence(
        self, ids: list[int], max_length: int | None, verbose: bool
    ) -> None:
        """Warns once when a text is longer than ``model_max_length`` and nothing truncates it.

        transformers' warning says this "will result in indexing errors", which is true for position
        embeddings but not for an RNN: the model reads any length, with memory and time growing linearly.
        """
        if max_length is not None or not verbose or not 0 < self.model_max_length < len(ids):
            return
        if not self.deprecation_warnings.get("sequence-length-is-longer-than-the-specified-maximum", False):
            logger.warning(
                "A text has %d tokens, more than model_max_length=%d, and is not truncated. The RNN reads it whole "
                "(memory and time grow with its length; a padded batch grows to batch_size x %d). Pass "
                "truncation=True to cut texts to %d tokens (or max_length=N), or set tokenizer.model_max_length.",
                len(ids),
                self.model_max_length,
                len(ids),
                self.model_max_length,
            )
        self.deprecation_warnings["sequence-length-is-longer-than-the-specified-maximum"] = True

    def _fast_call(self, text: str | Sequence[str], options: dict[str, Any]) -> BatchEncoding | None:
        """The fast path, or None when the options or the backend need the standard path."""
        for key, value in options.items():
            if key in _FAST_CALL_OPTIONS:
                continue
            if key in _FAST_CALL_DEFAULTS and value == _FAST_CALL_DEFAULTS[key]:
                continue
            if key == "split_special_tokens" and bool(value) == bool(self.split_special_tokens):
                continue
            return None
        fast = self._fast_path() or self._backend_fast_path()
        if fast is None:
            return None
        verbose = options.get("verbose", True)
        padding_strategy, truncation_strategy, max_length, _ = self._get_padding_truncation_strategies(
            padding=options.get("padding", False),
            truncation=options.get("truncation"),
            max_length=options.get("max_length"),
            pad_to_multiple_of=options.get("pad_to_multiple_of"),
            verbose=verbose,
        )
        if truncation_strategy == TruncationStrategy.ONLY_SECOND:
            return None
        is_batched = not isinstance(text, str)
        texts = list(text) if is_batched else [text]
        if set(map(type, texts)) - {str}:
            if any(isinstance(item, (list, tuple)) for item in texts):
                return None  # pairs or pre-tokenized words: the standard path
            bad = _bad_item(texts)
            if bad is not None:
                raise bad
        call_path = self.call_path
        if call_path == "auto":
            # Words: Rust from 6 threads on. Subwords and characters: the Python side is faster than the Rust
            # pipeline even on many threads (measured: benchmarks/tokenizer.py --models-only).
            many_threads = isinstance(fast, _FastPath) and _rust_threads() >= _RUST_CALL_MIN_THREADS
            call_path = "rust" if many_threads else "python"
        with _gc_paused():  # millions of small acyclic lists: collector passes would only cost time
            try:
                data = self._fast_outputs(
                    fast, texts, call_path, padding_strategy, truncation_strategy, max_length, options
                )
            except TypeError:
                if isinstance(fast, _FastPath) or not any(_SURROGATE.search(t) for t in texts):
                    raise
                return None  # a lone surrogate: the standard path raises its clear error

        return_tensors = options.get("return_tensors")
        if not is_batched and return_tensors is None:
            # as the standard path: un-batch the lists of lists (a single text's length stays [n])
            data = {k: v[0] if v and isinstance(v[0], list) else v for k, v in data.items()}
        return BatchEncoding(data, tensor_type=return_tensors)

    def _fast_outputs(
        self,
        fast: _FastPath,
        texts: list[str],
        call_path: str,
        padding_strategy: PaddingStrategy,
        truncation_strategy: TruncationStrategy,
        max_length: int | None,
        options: dict[str, Any],
    ) -> dict[str, Any]:
        """input_ids, masks and lengths for the fast path, as the standard path would give them."""
        input_ids = fast.encode_rust(texts) if call_path == "rust" else fast.encode_python(texts)

        if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and max_length is not None:
            if self.truncation_side == "right":
                input_ids = [ids[:max_length] if len(ids) > max_length else ids for ids in input_ids]
            else:
                input_ids = [
                    ids[len(ids) - max_length :] if len(ids) > max_length else ids for ids in input_ids
                ]
        elif input_ids:
            self._eventual_warn_about_too_long_sequence(
                max(input_ids, key=len), max_length, options.get("verbose", True)
            )

        return_attention_mask = options.get("return_attention_mask")
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        return_token_type_ids = options.get("return_token_type_ids")
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names

        lengths = list(map(len, input_ids))
        target = None
        if padding_strategy == PaddingStrategy.LONGEST and input_ids:
            target = max(lengths)
        elif padding_strategy == PaddingStrategy.MAX_LENGTH:
            target = max_length
        pad_to_multiple_of = options.get("pad_to_multiple_of")
        if target is not None and pad_to_multiple_of:
            target = -(-target // pad_to_multiple_of) * pad_to_multiple_of

        data: dict[str, Any] = {}
        if target is None:
            data["input_ids"] = input_ids
            if return_token_type_ids:
                data["token_type_ids"] = list(map([0].__mul__, lengths))
            if return_attention_mask:
                data["attention_mask"] = list(map([1].__mul__, lengths))
        else:
            side = options.get("padding_side") or self.padding_side
            pad_id = self.pad_token_id
            pads = [max(0, target - n) for n in lengths]
            if side == "right":
                data["input_ids"] = [ids + [pad_id] * p for ids, p in zip(input_ids, pads, strict=True)]
                masks = [[1] * n + [0] * p for n, p in zip(lengths, pads, strict=True)]
            else:
                data["input_ids"] = [[pad_id] * p + ids for ids, p in zip(input_ids, pads, strict=True)]
                masks = [[0] * p + [1] * n for n, p in zip(lengths, pads, strict=True)]
            if return_token_type_ids:
                data["token_type_ids"] = [
                    [self.pad_token_type_id] * (n + p) for n, p in zip(lengths, pads, strict=True)
                ]
            if return_attention_mask:
                data["attention_mask"] = masks
            lengths = [n + p for n, p in zip(lengths, pads, strict=True)]
        if options.get("return_length"):
            data["length"] = lengths
        return data

    # ---- fast-path state -----------------------------------------------------------------------

    def _backend_signature(self) -> tuple[Any, ...]:
        """What the fast path depends on and users change through the API, cheap enough for every call.

        The word model's normalizer and pre-tokenizer (the basic_english rules, ~17 us to serialize: as
        much as a short call) are compared in full only when this changes: their kinds (and a normalizer
        Sequence's length) are part of it, but a replacement of the same kind and length on
        ``backend_tokenizer`` after the first call is not seen (save and reload, or ``copy.deepcopy``);
        the subword and character models' are part of their signature (`_backend_fast_path`).
        """
        backend = self._tokenizer
        added = backend.get_added_tokens_decoder()
        post = backend.post_processor
        normalizer = backend.normalizer
        model = backend.model
        return (
            id(backend),
            # a model of another kind, or BPE dropout turned on after the first call (cached pieces would
            # freeze one random draw each): rebuilt, and dropout then takes the backend's own pipeline
            type(model),
            getattr(model, "dropout", None),
            # (~0.3 us) a normalizer or pre-tokenizer replaced by another kind, or by a Sequence of other
            # length (e.g. lowercasing dropped), is seen at once
            type(normalizer),
            len(normalizer) if isinstance(normalizer, normalizers.Sequence) else 0,
            type(backend.pre_tokenizer),
            backend.get_vocab_size(with_added_tokens=False),
            tuple(sorted((i, t.content, t.special) for i, t in added.items())),
            None if post is None else post.num_special_tokens_to_add(False),
            self.split_special_tokens,
            self.normalization,
        )

    def _fast_path(self) -> _FastPath | None:
        """Fast-path state, rebuilt when the backend changed; None when the fast path does not apply."""
        signature = self._backend_signature()
        cached = _fast_state(self).get("fast_path")
        if cached is not None and cached[0] == signature:
            return cached[1]
        fast = self._make_fast_path(signature)
        _fast_state(self)["fast_path"] = (signature, fast)
        return fast

    def _make_fast_path(self, signature: tuple[Any, ...]) -> _FastPath | None:
        normalization = self.normalization
        backend = self._tokenizer
        unk_id = None if self.unk_token is None else backend.token_to_id(str(self.unk_token))
        if normalization is None or backend.model.__class__.__name__ != "WordLevel" or unk_id is None:
            return None
        added = backend.get_added_tokens_decoder().values()
        if any(not token.special for token in added) or (added and not self.split_special_tokens):
            return None
        post = backend.post_processor
        if post is not None and post.num_special_tokens_to_add(False) != 0:
            return None
        if not _has_free_sentinel(backend):
            return None
        pipeline = _pipeline(normalization)
        if (
            _state(backend.normalizer) != pipeline.normalizer_state
            or _state(backend.pre_tokenizer) != pipeline.pre_tokenizer_state
        ):
            logger.info(
                "this tokenizer's pipeline differs from the one this environment builds (Unicode %s here); "
                "using the standard call path",
                unicodedata.unidata_version,
            )
            return None
        return _FastPath(signature, backend, pipeline.python, unk_id)

    def _backend_fast_path(self) -> _BackendFastPath | None:
        """The fast path of rnn-textclf's subword and character tokenizers (None for others)."""
        if self.init_kwargs.get("tokenizer_model") not in ("bpe", "unigram", "wordpiece", "char"):
            return None
        if self._tokenizer.encode_special_tokens != bool(self.split_special_tokens):
            # as the standard call path sets it on every call: a pickled `tokenizers.Tokenizer` (e.g. in
            # datasets.map(num_proc=...) workers) comes back with the flag off
            self._tokenizer.encode_special_tokens = bool(self.split_special_tokens)
        # With the normalizer's and pre-tokenizer's states (~1-2 us here): one replaced in place on
        # backend_tokenizer after the first call is followed, as the standard call path would.
        backend = self._tokenizer
        signature = (*self._backend_signature(), _state(backend.normalizer), _state(backend.pre_tokenizer))
        cached = _fast_state(self).get("backend_fast_path")
        if cached is not None and cached.signature == signature:
            return cached
        added = backend.get_added_tokens_decoder().values()
        post = backend.post_processor
        fast = None
        if (
            not any(not token.special for token in added)
            and (post is None or post.num_special_tokens_to_add(False) == 0)
            and _has_free_sentinel(backend)
        ):
            with _gc_paused():  # tens of thousands of small lists (the tables' ids): no collector passes
                fast = _BackendFastPath(signature, backend, self.init_kwargs["tokenizer_model"])
        _fast_state(self)["backend_fast_path"] = fast
        return fast

    def _python_side(self) -> _PythonSide | None:
        """The Python side, when this backend is the pipeline this environment builds (cached check)."""
        cached = _fast_state(self).get("fast_path")
        fast = cached[1] if cached is not None else self._fast_path()
        return None if fast is None else fast.python

    def _display(self) -> _FastPath | None:
        """The fast-path state when the vocabulary has marked words (display conversions), else None."""
        cached = _fast_state(self).get("fast_path")
        fast = cached[1] if cached is not None else self._fast_path()
        return fast if fast is not None and fast.marked_vocab else None


def _chunked(iterator: Iterable[str], python: _PythonSide, counter: list[int]) -> Iterator[str]:
    """Texts as backend-form words (`_PythonSide.rust_text`), newline-joined a block at a time."""
    for block in _text_blocks(iterator, counter):
        yield python.rust_text("\n".join(python.words_text(block)))


def _trained_counts(trainer: trainers.WordLevelTrainer, counter: Tokenizer) -> dict[str, int]:
    """Word counts from the trainer; falls back to rank order if this tokenizers build hides them."""
    try:
        words = json.loads(trainer.__getstate__())["WordLevelTrainer"]["words"]
        if isinstance(words, dict):
            return words
    except (AttributeError, KeyError, TypeError, ValueError):
        pass
    logger.debug("the WordLevelTrainer does not expose counts; using its order")
    vocab = counter.get_vocab(with_added_tokens=False)
    n = len(vocab)
    return {token: n - i for token, i in vocab.items()}  # strictly decreasing: keeps the trainer's order


def _order_vocabulary(
    words: Mapping[str, int],
    specials: Sequence[str],
    min_freq: int,
    max_vocab_size: int | None,
    python: _PythonSide,
) -> dict[str, int]:
    """torchtext's order: sort by word, then stable sort by count, descending; specials first."""
    special_set = set(specials)
    kept = [(python.to_python(w), w, c) for w, c in words.items() if c >= min_freq]
    kept = [item for item in kept if item[0] not in special_set]
    kept.sort(key=lambda item: item[0])
    kept.sort(key=lambda item: item[2], reverse=True)
    if max_vocab_size is not None:
        kept = kept[: max_vocab_size - len(specials)]
    vocab = {python.to_backend(s): i for i, s in enumerate(specials)}
    for _, backend_word, _ in kept:
        vocab[backend_word] = len(vocab)
    return vocab


__all__ = [
    "DEFAULT_MODEL_MAX_LENGTH",
    "DEFAULT_SPECIALS",
    "DEFAULT_SUBWORD_VOCAB_SIZE",
    "DEFAULT_WORD_VOCAB_SIZE",
    "NORMALIZATIONS",
    "SUBWORD_MODELS",
    "TOKENIZER_CHOICES",
    "TOKENIZER_MODELS",
    "Normalization",
    "RNNTokenizer",
    "TokenizerModel",
    "VocabularyCheck",
    "basic_english_tokenize",
    "build_tokenizer",
    "check_vocabulary",
    "choose_tokenizer",
]
