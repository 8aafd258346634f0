"""Knowledge distillation from a transformer (or any classifier) into a recurrent student.

Tang et al. 2019 ("Distilling Task-Specific Knowledge from BERT into Simple Neural Networks") trained a
BiLSTM on a fine-tuned BERT's logits over a *transfer set*: the training texts plus augmented copies
(words masked, n-grams sampled) that the teacher labels. This module holds the three parts:

- [`add_teacher_logits`][rnn_textclf.distillation.add_teacher_logits] runs a teacher over a data set's
  raw texts and stores its logits as a column (cached by ``datasets`` under a fingerprint of the teacher);
- [`augment_texts`][rnn_textclf.distillation.augment_texts] and
  [`build_transfer_set`][rnn_textclf.distillation.build_transfer_set] make the transfer set;
- [`distillation_loss`][rnn_textclf.distillation.distillation_loss] is the loss ``RNNTrainer`` uses when
  ``RNNTrainingArguments(distillation_alpha=...)`` is set and the batch carries ``teacher_logits``.

```python
from rnn_textclf import add_teacher_logits, build_transfer_set

transfer = build_transfer_set(train_texts, train_labels, n_copies=20, mask_token="[MASK]")
transfer = add_teacher_logits(transfer, "path/to/fine-tuned-bert", labels=["negative", "positive"])
```
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import numbers
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import refuse_split_dict

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

DistillationLossKind = Literal["kl", "mse"]
"""``"kl"``: KL divergence between softened probabilities, times ``T**2`` (Hinton et al. 2015).
``"mse"``: mean squared error between the logits (Tang et al. 2019)."""

DISTILLATION_LOSSES: tuple[str, ...] = ("kl", "mse")

#: Column that ``add_teacher_logits`` writes and the collator and trainer look for.
TEACHER_LOGITS_COLUMN = "teacher_logits"

_GENERIC_LABEL = re.compile(r"LABEL_\d+")
# Ideographs and kana: scripts written without spaces, where each character is taken as a word (as BERT's
# BasicTokenizer does for CJK ideographs); everything else is split on whitespace.
_NO_SPACE_CHARS = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef"
)
_DEFAULT_WORD = re.compile(f"[{_NO_SPACE_CHARS}]|[^\\s{_NO_SPACE_CHARS}]+")


# ---------------------------------------------------------------------------------------------- teacher
#: What the CLI's students read in place of the teacher's mask token in augmented copies: one private-use
#: character, a single unit for every tokenizer (words, characters, subwords) that real text does not use.
STUDENT_MASK = "\ue000"


def _weights_digest(model: torch.nn.Module) -> str:
    """A hash of the model's class, config and every weight: two teachers never share a cache entry."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(model).__qualname__.encode())
    config = getattr(model, "config", None)
    if config is not None:
        values = config.to_dict()
        values.pop("_name_or_path", None)
        values.pop("transformers_version", None)
        digest.update(json.dumps(values, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def _tokenizer_digest(tokenizer: Any) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(tokenizer).__qualname__.encode())
    # where long texts are cut and short ones padded: other logits for the same texts
    sides = [getattr(tokenizer, "truncation_side", None), getattr(tokenizer, "padding_side", None)]
    digest.update(json.dumps(sides).encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Without the truncation/padding state: each call with padding=/truncation= rewrites it.
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
        digest.update(json.dumps(state, sort_keys=True).encode())
    else:  # a slow tokenizer: its vocabulary says what it does
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    return digest.hexdigest()


def _load_teacher(teacher: Any, revision: str | None) -> tuple[Any, Any, str]:
    """(model, tokenizer, description) from a folder, a Hub repo id or a (model, tokenizer) pair."""
    if isinstance(teacher, (tuple, list)):
        if len(teacher) != 2:
            raise ValueError(
                f"`teacher` as a sequence must be a (model, tokenizer) pair, got {len(teacher)} items."
            )
        model, tokenizer = teacher
        if not isinstance(model, torch.nn.Module) or not callable(tokenizer):
            raise TypeError(
                "`teacher` as a pair must be (model, tokenizer): a torch model with `.config` and the "
                f"tokenizer it was trained with; got ({type(model).__name__}, {type(tokenizer).__name__})."
            )
        if revision is not None:
            raise ValueError("`revision` applies to a Hub repo id; a (model, tokenizer) pair has none.")
        return model, tokenizer, f"{type(model).__name__} object"
    if not isinstance(teacher, (str, os.PathLike)):
        raise TypeError(
            "`teacher` must be a model folder, a Hub repo id or a (model, tokenizer) pair, got "
            f"{type(teacher).__name__}."
        )
    # rnn_textclf's __init__ (already imported: this module is inside the package) registers the Auto classes.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    name = os.fspath(teacher)
    if name.startswith("~"):
        name = os.path.expanduser(name)  # transformers does not expand it
    local = os.path.isdir(name)
    if not local and (os.path.exists(name) or os.path.isabs(name) or name.startswith((".", "~"))):
        # A path, not a repo id: say so instead of the Hub's repo-id syntax error.
        problem = "is a file, not a model folder" if os.path.exists(name) else "does not exist"
        raise OSError(
            f"`teacher={name!r}` {problem}. Pass the folder a fine-tuned classifier was saved to "
            "(model.save_pretrained + tokenizer.save_pretrained), a Hub repo id such as 'user/model', "
            "or a (model, tokenizer) pair."
        )
    if local and revision is not None:
        raise ValueError(
            f"`revision={revision!r}` applies to a Hub repo id, but `teacher={name!r}` is a local folder; "
            "drop revision= (or check out that revision into the folder)."
        )
    kwargs = {} if revision is None else {"revision": revision}
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            name, output_loading_info=True, **kwargs
        )
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    except OSError as err:
        what = "the folder" if local else "a model folder nor a Hub repo id"
        raise OSError(
            f"`teacher={name!r}`{f' (revision {revision!r})' if revision else ''} could not be loaded as "
            f"{'a teacher from ' + what if local else what}: {str(err).splitlines()[0]}"
        ) from err
    # A base model (BertModel, a sentence-embedding model) loads too, with a newly made, random head:
    # its logits would be noise, different at every load.
    parameters = {key for key, _ in model.named_parameters()}
    random = sorted(set(info.get("missing_keys", ())) & parameters)
    if random:
        architectures = getattr(model.config, "architectures", None) or ["?"]
        raise ValueError(
            f"`teacher={name!r}` is not a fine-tuned classifier: its checkpoint ({', '.join(architectures)}) "
            f"has no weights for {random[:4]}{' ...' if len(random) > 4 else ''}, which would be random. "
            "Fine-tune it on your labels first (AutoModelForSequenceClassification + Trainer, then "
            "save_pretrained), and pass that folder."
        )
    return model, tokenizer, name if revision is None or local else f"{name}@{revision}"


def _label_names(labels: Any) -> list[str] | None:
    if labels is None:
        return None
    id2label = getattr(labels, "id2label", None)  # a config
    if id2label is not None:
        labels = id2label
    if isinstance(labels, Mapping):
        if not all(isinstance(k, (int, np.integer)) or (isinstance(k, str) and k.isdigit()) for k in labels):
            raise ValueError(
                f"`labels` as a dict must be the student's id2label ({{0: 'name', 1: ...}}), got keys "
                f"{list(labels)[:5]}; a label2id? Pass id2label, or the list of names in id order."
            )
        keys = sorted(int(k) for k in labels)
        if keys != list(range(len(keys))):
            raise ValueError(f"`labels` as id2label must map ids 0..n-1 to names, got ids {keys}.")
        return [str(labels[k] if k in labels else labels[str(k)]) for k in keys]
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(
            "`labels` must be the student's label names (a list), its id2label (a dict) or its config, "
            f"got {type(labels).__name__}."
        )
    return [str(name) for name in labels]


def _dataset_label_names(dataset: Any) -> list[str] | None:
    features = getattr(dataset, "features", None) or {}
    for key in ("label", "labels"):
        feature = features.get(key)
        names = getattr(feature, "names", None)
        if names:
            return list(names)
    return None


def check_teacher_labels(teacher_config: Any, student_labels: Any) -> None:
    """Raises ``ValueError`` unless the teacher's classes are the student's, in the same order.

    Names are compared when both sides have real names; when either side has only generic names
    (``LABEL_0``, ``LABEL_1``, ... as transformers makes them up), only the counts are.

    Args:
        teacher_config: The teacher's config (``id2label``, ``num_labels``).
        student_labels: The student's label names, its ``id2label`` or its config.

    Raises:
        ValueError: The classes differ; the message shows both lists.
    """
    student = _label_names(student_labels)
    if student is None:
        return
    count = int(getattr(teacher_config, "num_labels", 0) or 0)
    id2label = getattr(teacher_config, "id2label", None) or {}
    teacher = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(count)]
    generic = all(_GENERIC_LABEL.fullmatch(n) for n in teacher) or all(
        _GENERIC_LABEL.fullmatch(n) for n in student
    )
    if len(teacher) != len(student):
        raise ValueError(
            f"The teacher has {len(teacher)} classes {teacher} but the student has {len(student)} {student}: "
            "its logits cannot teach this classifier. Use a teacher fine-tuned on the same classes."
        )
    if not generic and teacher != student:
        order = (
            " (the same names in another order: the logit columns would be swapped)"
            if sorted(teacher) == sorted(student)
            else ""
        )
        if student == [str(i) for i in range(len(student))]:  # e.g. a CSV whose labels are 0, 1, ...
            remedy = (
                f"The student's labels are the numbers 0..{len(student) - 1}: if number i means the "
                f"teacher's class i ({dict(enumerate(teacher))}), write those names in the label column "
                "(in Python you can instead pass add_teacher_logits(..., labels=the teacher's names)); else "
                "fine-tune the teacher on these labels."
            )
        else:
            remedy = "Fine-tune the teacher with the student's id2label, or give the student the teacher's label order."
        raise ValueError(
            f"The teacher's labels {teacher} differ from the student's {student}{order}. {remedy}"
        )


def _check_text_column(dataset: Any, text_column: str) -> None:
    import datasets

    refuse_split_dict(dataset, "dataset", then="Add the column to each split you train on.")
    if not isinstance(dataset, (datasets.Dataset, datasets.IterableDataset)):
        raise TypeError(
            f"`dataset` must be a datasets.Dataset or IterableDataset, got {type(dataset).__name__}; "
            "e.g. datasets.Dataset.from_dict({'text': texts})."
        )
    columns = dataset.column_names
    if columns is not None and text_column not in columns:
        raise ValueError(
            f"`text_column={text_column!r}` is not a column of the data set; its columns are {columns}. "
            "Pass text_column= with the column that holds the raw texts."
        )


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class _TeacherRunner:
    """The ``datasets.map`` function: the teacher's logits for one batch of raw texts, in row order."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        text_column: str,
        column: str,
        batch_size: int,
        max_length: int,
        device: torch.device,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.text_column = text_column
        self.column = column
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.num_labels = int(model.config.num_labels)
        self.calls = 0  # teacher forward passes, for tests and logging

    def __call__(self, batch: Mapping[str, list[Any]]) -> dict[str, np.ndarray]:
        if self.text_column not in batch:
            raise ValueError(
                f"`text_column={self.text_column!r}` is not a column of the data set; its rows have "
                f"{sorted(batch)}. Pass text_column= with the column that holds the raw texts."
            )
        texts = batch[self.text_column]
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(
                f"Column {self.text_column!r} must hold texts (str); a row of this batch has "
                f"{type(texts[bad]).__name__} {texts[bad]!r}. Fill or drop missing texts first."
            )
        out = np.empty((len(texts), self.num_labels), dtype=np.float32)  # (rows, num_labels)
        # Length-sorted chunks: each teacher batch pads to a similar length (padding costs the most on CPU).
        order = np.argsort(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
        self.model.eval()
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                rows = order[start : start + self.batch_size]
                encoded = self.tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                encoded = {k: v.to(self.device) for k, v in encoded.items() if k != "length"}
                logits = self.model(**encoded).logits  # (chunk, num_labels)
                out[rows] = logits.float().cpu().numpy()
                self.calls += 1
        return {self.column: out}


#: Labelled rows below which the teacher's agreement with the labels is not judged (too few to tell).
_AGREEMENT_MIN_ROWS = 20


def check_teacher_agreement(logits: Any, labels: Any, described: str = "") -> float | None:
    """How often the teacher's top class is the row's label, on the labelled rows (label >= 0).

    Raises a ``ValueError`` when another order of the teacher's classes agrees with the labels far better
    (at least 0.2 more, and getting right at least half of the rows that always answering the most common
    label gets wrong): its classes are then in another order than the data's, which the names cannot show
    when they are the generic ``LABEL_i``, and the student would learn inverted targets. Warns when the
    teacher does no better than always answering the most common label (e.g. a classification head that
    was never trained).

    Args:
        logits: ``(rows, num_labels)`` teacher logits.
        labels: ``(rows,)`` class ids of the data (``-100``: an unlabelled row, skipped).
        described: The teacher's folder, repo id or class, for messages.

    Returns:
        The agreement (0 to 1), or ``None`` with fewer than 20 labelled rows (nothing is judged).
    """
    scores = np.asarray(logits, dtype=np.float32)
    ids = np.asarray(labels)
    k = scores.shape[1] if scores.ndim == 2 else 0
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or not k:
        return None
    kept = (ids >= 0) & (ids < k)
    if int(kept.sum()) < _AGREEMENT_MIN_ROWS:
        return None
    predicted, truth = scores[kept].argmax(axis=1), ids[kept]
    confusion = np.zeros((k, k), dtype=np.int64)  # (teacher class, data label)
    np.add.at(confusion, (predicted, truth), 1)
    n = int(confusion.sum())
    agreement = float(np.trace(confusion)) / n
    majority = float(confusion.sum(axis=0).max()) / n
    # a one-to-one mapping of teacher classes to labels: the best of all orders up to 7 classes; beyond,
    # greedy (the largest cell first, its row and column then taken), one-to-one so that it is an order
    if k <= 7:
        best = max(itertools.permutations(range(k)), key=lambda perm: confusion[range(k), perm].sum())
    else:
        chosen = [-1] * k
        free = confusion.astype(np.float64)
        for _ in range(k):
            i, j = np.unravel_index(int(free.argmax()), free.shape)
            chosen[int(i)] = int(j)
            free[i, :], free[:, j] = -1.0, -1.0
        best = tuple(chosen)
    mapped = float(confusion[range(k), best].sum()) / n
    logger.info(
        "The teacher's top class is the data's label on %.1f%% of %d labelled rows.", 100 * agreement, n
    )
    # (a mapping must also explain most of what always answering the most common label gets wrong: a bad
    # teacher answering the rare class everywhere is no sign of another order)
    if best != tuple(range(k)) and mapped >= agreement + 0.2 and mapped >= (1 + majority) / 2:
        moved = {i: j for i, j in enumerate(best) if i != j}
        raise ValueError(
            f"The teacher{f' ({described})' if described else ''}: its classes look like they are in another "
            "order than the data's labels: its top "
            f"class is the row's label on {agreement:.0%} of {n} labelled rows, but on {mapped:.0%} if its "
            f"class i meant label j for {moved} (teacher class -> data label). Fine-tune the teacher on these "
            "labels in this order, or renumber the data's labels (and the names) to the teacher's order."
        )
    if agreement <= majority:
        logger.warning(
            "The teacher%s: its top class is the data's label on %.0f%% of %d labelled rows, no better than always "
            "answering the most common label (%.0f%%): is it fine-tuned on these classes (a classification "
            "head that was never trained gives about that)?",
            f" ({described})" if described else "",
            100 * agreement,
            n,
            100 * majority,
        )
    return agreement


def add_teacher_logits(
    dataset: datasets.Dataset | datasets.IterableDataset,
    teacher: Any,
    *,
    text_column: str = "text",
    batch_size: int = 64,
    column: str = TEACHER_LOGITS_COLUMN,
    revision: str | None = None,
    device: str | torch.device | None = None,
    labels: Any = None,
    max_length: int | None = None,
    load_from_cache_file: bool | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """Adds the teacher's logits for every row's raw text as a float column (``(num_labels,)`` per row).

    The teacher reads the raw text with its own tokenizer (never the student's), in eval mode without
    gradients, ``batch_size`` texts at a time (sorted by length inside each ``datasets.map`` batch, so
    little padding), on the GPU when there is one. It runs through ``datasets.map(batched=True)``, so on a
    data set with cache files (``load_dataset``, ``load_from_disk``) the column is computed once and
    reloaded after; the cache key is the data set's fingerprint plus a hash of the teacher's class,
    config and weights and of its tokenizer, so another teacher (or a retrained one in the same folder)
    never reuses it. An in-memory data set (``Dataset.from_dict``) has no cache files and is recomputed,
    as every ``map`` on it is. On a streaming ``IterableDataset`` the map is lazy: the teacher runs as
    rows are read.

    Args:
        dataset: One split (``Dataset`` or ``IterableDataset``) with a raw-text column.
        teacher: A model folder, a Hub repo id (with ``revision``) or a ``(model, tokenizer)`` pair; any
            ``AutoModelForSequenceClassification`` model (a fine-tuned BERT, an ``RNNClassifier``, ...).
            A pair's model is put in eval mode and moved to ``device``.
        text_column: Column of raw texts.
        batch_size: Texts per teacher forward pass.
        column: Name of the new column. ``PackedSequenceCollator`` and ``RNNTrainer`` read
            ``"teacher_logits"`` (the default); another name is for your own use.
        revision: Branch, tag or commit of a Hub ``teacher``.
        device: Where the teacher runs (default: ``"cuda"`` when available, else the CPU).
        labels: The student's label names (a list), ``id2label`` (a dict) or config; checked against the
            teacher's ``id2label`` (names, or only the count when either side's names are the generic
            ``LABEL_0``, ...). ``None``: the data set's ``ClassLabel`` names of ``label``/``labels`` when
            it has them, else no check.
        max_length: Truncate texts to this many teacher tokens (default: the tokenizer's
            ``model_max_length``, capped at the model's ``max_position_embeddings``).
        load_from_cache_file: Passed to ``Dataset.map`` (``False`` recomputes).

    Returns:
        The data set with the ``column`` of float32 logits (rows in the data set's order).

    Raises:
        ValueError: ``text_column`` is missing (the message lists the columns), ``column`` exists
            already, the teacher's classes differ from the student's (the message shows both), the
            teacher is no fine-tuned single-label classifier (a checkpoint without its classification
            head, a multi-label or regression model), ``max_length`` exceeds its positions, or (a
            map-style data set with a ``label`` column of class ids) another order of the teacher's
            classes fits the labels far better (`check_teacher_agreement`). With no names to compare
            (no ``labels``, no ``ClassLabel``), a warning shows the teacher's ``id2label``.
        TypeError: The data set is a ``DatasetDict`` (pick a split).
        OSError: ``teacher`` is neither a loadable folder nor a Hub repo id.

    Example:
        ```python
        ds = load_dataset("csv", data_files="train.csv")["train"]
        ds = add_teacher_logits(ds, "my-finetuned-minilm", labels=["ham", "spam"])
        ds[0]["teacher_logits"]  # [3.1, -2.7]
        ```
    """
    import datasets

    _check_text_column(dataset, text_column)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if not isinstance(column, str) or not column:
        raise ValueError(f"`column` must be a non-empty column name, got {column!r}.")
    if dataset.column_names is not None and column in dataset.column_names:
        raise ValueError(
            f"The data set already has a column {column!r}: remove it first (dataset.remove_columns({column!r})) "
            "or pass another column= name."
        )
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
    ):
        raise ValueError(f"`max_length` must be a positive integer or None, got {max_length!r}.")
    model, tokenizer, described = _load_teacher(teacher, revision)
    config = getattr(model, "config", None)
    if config is None or not getattr(config, "num_labels", None):
        raise ValueError(
            f"The teacher {described} has no config.num_labels: it must be a sequence classifier."
        )
    problem_type = getattr(config, "problem_type", None)
    if problem_type in ("multi_label_classification", "regression") or int(config.num_labels) < 2:
        raise ValueError(
            f"The teacher {described} is a {problem_type or 'one-output'} model "
            f"(num_labels={config.num_labels}); distillation needs a single-label classifier whose logits "
            "are softmax scores over 2 or more classes."
        )
    student_labels = labels if labels is not None else _dataset_label_names(dataset)
    check_teacher_labels(config, student_labels)
    if student_labels is None:
        teacher_names = [str(n) for n in (getattr(config, "id2label", None) or {}).values()]
        if teacher_names and not all(_GENERIC_LABEL.fullmatch(n) for n in teacher_names):
            logger.warning(
                "The teacher's classes %s were not checked against the data's labels (no labels= and no "
                "ClassLabel names): make sure label i of the data means the teacher's class i, or pass "
                "labels= (the student's label names) to check it.",
                dict(sorted((int(k), v) for k, v in config.id2label.items())),
            )
    positions = getattr(config, "max_position_embeddings", None)
    if max_length is not None and isinstance(positions, int) and 0 < positions < max_length:
        raise ValueError(
            f"`max_length={max_length}` is more than the teacher's {positions} positions "
            f"(config.max_position_embeddings); pass max_length <= {positions}, or None for the default."
        )
    if max_length is None:
        limits = [
            value
            for value in (
                getattr(tokenizer, "model_max_length", None),
                getattr(config, "max_position_embeddings", None),
            )
            if isinstance(value, int) and 0 < value < 10**9
        ]
        max_length = min(limits) if limits else 512
    device = _default_device() if device is None else torch.device(device)
    model.to(device)
    model.eval()
    runner = _TeacherRunner(
        model,
        tokenizer,
        text_column=text_column,
        column=column,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
    )
    map_batch = max(batch_size * 16, 1000)  # length-sorting window: many teacher batches per map batch
    value = datasets.List(datasets.Value("float32"), length=runner.num_labels)
    if isinstance(dataset, datasets.IterableDataset):
        features = None
        if dataset.features is not None:
            features = dataset.features.copy()
            features[column] = value
        return dataset.map(runner, batched=True, batch_size=map_batch, features=features)
    teacher_id = f"{_weights_digest(model)}-{_tokenizer_digest(tokenizer)}"
    fingerprint = hashlib.blake2b(
        json.dumps([dataset._fingerprint, teacher_id, text_column, column, max_length]).encode(),
        digest_size=16,
    ).hexdigest()
    features = dataset.features.copy()
    features[column] = value
    logger.info("Teacher %s on %d rows (batch %d, %s).", described, len(dataset), batch_size, device)
    out = dataset.map(
        runner,
        batched=True,
        batch_size=map_batch,
        features=features,
        new_fingerprint=fingerprint,
        load_from_cache_file=load_from_cache_file,
        desc="teacher logits",
    )
    label_column = next((c for c in ("label", "labels") if c in out.column_names), None)
    if label_column is not None:
        check_teacher_agreement(
            out.with_format("numpy")[column], out.with_format("numpy")[label_column], described
        )
    return out


# ---------------------------------------------------------------------------------------------- augmentation
def _word_spans(texts: Sequence[str], tokenizer: Any) -> list[list[tuple[int, int]]]:
    """Character spans of each text's words: the tokenizer's words, or the default splitting."""
    if tokenizer is None:
        return [[m.span() for m in _DEFAULT_WORD.finditer(t)] for t in texts]
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"`tokenizer` must be a fast tokenizer (offsets and word ids), got {type(tokenizer).__name__}."
        )
    encoded = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False)
    spans: list[list[tuple[int, int]]] = []
    for i in range(len(texts)):
        words: dict[int, list[int]] = {}
        for word, (start, end) in zip(encoded.word_ids(i), encoded["offset_mapping"][i], strict=True):
            if word is None or end <= start:
                continue
            span = words.setdefault(word, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
        spans.append(sorted((a, b) for a, b in words.values()))
    return spans


def augment_texts(
    texts: Sequence[str],
    *,
    n_copies: int,
    p_mask: float = 0.1,
    p_ngram: float = 0.25,
    ngram_range: tuple[int, int] = (1, 5),
    seed: int = 0,
    mask_token: str = "[MASK]",
    tokenizer: Any = None,
) -> list[str]:
    """Augmented copies of texts for a distillation transfer set (Tang et al. 2019, section 3.3).

    Each copy of a text replaces every word, independently with probability ``p_mask``, by
    ``mask_token``; then, with probability ``p_ngram``, keeps only a random n-gram of the result
    (``n`` uniform in ``ngram_range``, capped at the text's word count). The characters between
    words are kept, so the copy reads like the original. Tang et al.'s POS-guided word replacement is
    not done. The copies carry no label: the teacher labels them.

    Words: with ``tokenizer`` (any fast tokenizer: the student's ``RNNTokenizer``, the teacher's), a
    word is what that tokenizer calls a word (its ``word_ids``), so masking follows the same rules as
    the model that reads the text, in any language it handles. Without it, words are runs of
    non-whitespace characters, except that each CJK ideograph and each kana character is a word of its
    own (as BERT's basic tokenizer splits Chinese); for other scripts written without spaces (Thai,
    Khmer, ...) pass a tokenizer that splits them, or a whole unspaced clause counts as one word.

    ``mask_token``: Tang et al. use BERT's ``"[MASK]"``, which a BERT-family teacher reads as its mask
    token; ``RNNTokenizer``'s ``basic_english`` and ``whitespace`` rules keep it one word
    (``"[mask]"``) that gets its own embedding row when the student's vocabulary is built from the
    transfer set. Use the teacher tokenizer's ``mask_token``.

    Args:
        texts: The texts to copy.
        n_copies: Copies per text (Tang et al.: 20 on SST-2).
        p_mask: Probability of masking each word.
        p_ngram: Probability of cutting a copy down to an n-gram.
        ngram_range: Smallest and largest ``n`` (inclusive).
        seed: Seed of the random choices: the same arguments give the same copies.
        mask_token: The text put in place of a masked word.
        tokenizer: A fast tokenizer whose words are used (see above); ``None``: the default splitting.

    Returns:
        ``len(texts) * n_copies`` texts: the copies of ``texts[i]`` at ``[i * n_copies, (i + 1) * n_copies)``.
        A copy may equal its original (nothing drawn) or another copy;
        [`build_transfer_set`][rnn_textclf.distillation.build_transfer_set] drops such duplicates.

    Raises:
        ValueError: An argument is out of range (the message names it and what is allowed).
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"`texts` must be a list of str, got {type(texts).__name__}.")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"`texts[{bad}]` must be a str, got {type(texts[bad]).__name__} {texts[bad]!r}.")
    if isinstance(n_copies, bool) or not isinstance(n_copies, int) or n_copies < 0:
        raise ValueError(f"`n_copies` must be an integer >= 0, got {n_copies!r}.")
    for name, p in (("p_mask", p_mask), ("p_ngram", p_ngram)):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"`{name}` must be a probability in [0, 1], got {p!r}.")
    low, high = ngram_range if isinstance(ngram_range, (tuple, list)) and len(ngram_range) == 2 else (0, -1)
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
        raise ValueError(
            f"`ngram_range` must be (min_n, max_n) with 1 <= min_n <= max_n, got {ngram_range!r}."
        )
    if not isinstance(mask_token, str) or not mask_token:
        raise ValueError(f"`mask_token` must be a non-empty str, got {mask_token!r}.")
    if n_copies == 0 or not texts:
        return []
    spans = _word_spans(texts, tokenizer)
    counts = np.fromiter(map(len, spans), dtype=np.int64, count=len(spans))  # (texts,)
    offsets = np.concatenate([[0], np.cumsum(counts)])  # word w of text i is flat index offsets[i] + w
    rng = np.random.default_rng(seed)
    copies: list[list[str]] = [[] for _ in texts]
    for _ in range(n_copies):
        # All random draws of one round at once (one vectorised call each), then per-text string assembly.
        masked = rng.random(int(offsets[-1])) < p_mask  # (total words,)
        cut = rng.random(len(texts)) < p_ngram  # (texts,)
        n = rng.integers(low, high + 1, size=len(texts))  # (texts,)
        start_u = rng.random(len(texts))  # (texts,)
        for i, text in enumerate(texts):
            words = spans[i]
            if not words:
                copies[i].append(text)
                continue
            first, last = 0, len(words)  # the words kept: [first, last)
            if cut[i]:
                size = min(int(n[i]), len(words))
                first = int(start_u[i] * (len(words) - size + 1))
                last = first + size
            flags = masked[offsets[i] + first : offsets[i] + last]
            begin = 0 if first == 0 else words[first][0]
            end = len(text) if last == len(words) else words[last - 1][1]
            pieces, position = [], begin
            for (a, b), hide in zip(words[first:last], flags, strict=True):
                if hide:
                    pieces.append(text[position:a])
                    pieces.append(mask_token)
                    position = b
            pieces.append(text[position:end])
            copies[i].append("".join(pieces))
    return [copy for per_text in copies for copy in per_text]


def build_transfer_set(
    texts: Sequence[str],
    labels: Sequence[int] | None = None,
    *,
    n_copies: int = 0,
    unlabelled_texts: Sequence[str] | None = None,
    drop_duplicates: bool = True,
    text_column: str = "text",
    label_column: str = "label",
    **augment_options: Any,
) -> datasets.Dataset:
    """The transfer set of Tang et al. 2019: training texts, augmented copies and extra unlabelled texts.

    Rows, in order: ``texts`` with their ``labels``; then ``n_copies`` augmented copies of each text
    ([`augment_texts`][rnn_textclf.distillation.augment_texts]); then ``unlabelled_texts``. Copies and
    unlabelled texts get the label ``-100`` (no hard label: with teacher logits they are trained on the
    teacher's signal alone). Add the teacher's column with
    [`add_teacher_logits`][rnn_textclf.distillation.add_teacher_logits].

    Args:
        texts: The labelled training texts.
        labels: Their class ids (``None``: every row is unlabelled).
        n_copies: Augmented copies per text (0: none).
        unlabelled_texts: More texts without labels, if you have them.
        drop_duplicates: Drop copies equal to a training text or to an earlier copy (Tang et al. discard
            duplicates); training and unlabelled texts are kept as given.
        text_column: Name of the text column.
        label_column: Name of the label column (int64; ``-100`` for rows without a label).
        **augment_options: ``augment_texts`` options (``p_mask``, ``p_ngram``, ``ngram_range``,
            ``seed``, ``mask_token``, ``tokenizer``).

    Returns:
        A ``datasets.Dataset`` with ``text_column`` and ``label_column``.
    """
    from datasets import Dataset, Features, Value

    if text_column == label_column:
        raise ValueError(
            f"`text_column` and `label_column` are both {text_column!r}; give the two columns different names."
        )
    for name, value in (("texts", texts), ("unlabelled_texts", unlabelled_texts)):
        if isinstance(value, (str, bytes)):
            raise TypeError(
                f"`{name}` must be a list of texts, got a single {type(value).__name__}; wrap it in a list."
            )
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"`texts[{bad}]` must be a str, got {type(texts[bad]).__name__}.")
    if labels is not None:
        labels = list(labels)
        bad = next((i for i, v in enumerate(labels) if not _is_class_id(v)), None)
        if bad is not None:
            raise ValueError(
                f"`labels[{bad}]` must be a class id (an integer >= 0, or -100 for no label), got "
                f"{labels[bad]!r}; map label names to ids first (e.g. with the config's label2id)."
            )
        labels = [int(v) for v in labels]
        if len(labels) != len(texts):
            raise ValueError(f"`labels` has {len(labels)} values for {len(texts)} texts.")
    copies = augment_texts(texts, n_copies=n_copies, **augment_options)
    if drop_duplicates and copies:
        seen = set(texts)
        kept = []
        for copy in copies:
            if copy not in seen:
                seen.add(copy)
                kept.append(copy)
        logger.info(
            "Transfer set: %d of %d augmented copies kept (duplicates dropped).", len(kept), len(copies)
        )
        copies = kept
    extra = list(unlabelled_texts) if unlabelled_texts is not None else []
    bad = next((i for i, t in enumerate(extra) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"`unlabelled_texts[{bad}]` must be a str, got {type(extra[bad]).__name__}.")
    hard = labels if labels is not None else [-100] * len(texts)
    all_texts = texts + copies + extra
    all_labels = hard + [-100] * (len(copies) + len(extra))
    features = Features({text_column: Value("string"), label_column: Value("int64")})
    return Dataset.from_dict({text_column: all_texts, label_column: all_labels}, features=features)


def _is_class_id(value: Any) -> bool:
    """An integer class id (numpy integers and integral floats such as 1.0 included), or -100."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return value >= 0 or value == -100
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return value >= 0 or value == -100
    return False


# ---------------------------------------------------------------------------------------------- loss
def distillation_loss(
    logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    alpha: float,
    temperature: float = 1.0,
    kind: DistillationLossKind = "kl",
    hard_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``alpha * teacher term + (1 - alpha) * hard-label term``; rows without a label get the teacher term only.

    The teacher term is, per row, ``T**2 * KL(softmax(teacher / T) || softmax(student / T))``
    (``kind="kl"``, Hinton et al. 2015; the ``T**2`` keeps its gradient scale independent of ``T``) or
    the mean squared error between the logits (``kind="mse"``, Tang et al. 2019; ``temperature`` does
    not apply). The hard term is the cross-entropy with the labels (or ``hard_loss``). A row whose label
    is ``-100`` (an augmented copy, an unlabelled text) has weight 1 on the teacher term and none on
    the hard term; labelled rows are weighted ``alpha`` and ``1 - alpha``. The result is the mean over
    the rows.

    Args:
        logits: The student's logits ``(batch, num_labels)``.
        teacher_logits: The teacher's ``(batch, num_labels)``.
        labels: Class ids ``(batch,)`` with ``-100`` for no label, or ``None`` (no hard labels).
        alpha: Weight of the teacher term in ``[0, 1]``; 1.0 trains on the teacher alone.
        temperature: Softening temperature ``T > 0`` of ``"kl"``.
        kind: ``"kl"`` or ``"mse"``.
        hard_loss: Per-row hard-label loss ``(logits, labels) -> (batch,)`` instead of the
            cross-entropy (e.g. one with label smoothing). It gets every row, unlabelled rows with class
            0 in place of ``-100``; their values are discarded, so it must only be per-row.

    Returns:
        A scalar loss.
    """
    if teacher_logits.shape != logits.shape:
        raise ValueError(
            f"teacher_logits have shape {tuple(teacher_logits.shape)} but the student's logits "
            f"{tuple(logits.shape)}: the teacher must have the student's {logits.shape[-1]} classes."
        )
    student = logits.float()  # (batch, num_labels)
    teacher = teacher_logits.to(student.device, torch.float32)
    if kind == "kl":
        log_p = F.log_softmax(student / temperature, dim=-1)
        log_q = F.log_softmax(teacher / temperature, dim=-1)
        soft = (log_q.exp() * (log_q - log_p)).sum(-1) * temperature**2  # (batch,)
    elif kind == "mse":
        soft = (student - teacher).pow(2).mean(-1)  # (batch,)
    else:
        raise ValueError(f"`kind` must be one of {DISTILLATION_LOSSES}, got {kind!r}.")
    if labels is None or alpha >= 1.0:
        return soft.mean()
    labels = labels.to(student.device)
    has_label = labels != -100  # (batch,)
    # Every row's hard loss, unlabelled rows against class 0 and then masked out: no boolean indexing or
    # `.any()`, which would each wait for the accelerator (a device-to-host synchronisation every step).
    targets = labels.masked_fill(~has_label, 0)  # (batch,)
    per_row = (
        hard_loss(student, targets)
        if hard_loss is not None
        else F.cross_entropy(student, targets, reduction="none")
    )  # (batch,)
    hard = torch.where(has_label, per_row, torch.zeros_like(per_row))
    weight = torch.where(has_label, torch.full_like(soft, alpha), torch.ones_like(soft))
    return (weight * soft + (1.0 - alpha) * hard).mean()


def _check_distillation_options(alpha: Any, temperature: Any, kind: Any) -> None:
    """Validation shared by ``RNNTrainingArguments``: names the field, the value and what is allowed."""
    # numbers.Real: NumPy scalars too; bools are no weights
    if alpha is not None and (
        isinstance(alpha, (bool, np.bool_))
        or not isinstance(alpha, numbers.Real)
        or not 0 <= alpha <= 1
        or math.isnan(alpha)
    ):
        raise ValueError(f"`distillation_alpha` must be None (off) or a number in [0, 1], got {alpha!r}.")
    if (
        isinstance(temperature, (bool, np.bool_))
        or not isinstance(temperature, numbers.Real)
        or not 0 < temperature < math.inf
    ):
        raise ValueError(f"`distillation_temperature` must be a finite number > 0, got {temperature!r}.")
    if kind not in DISTILLATION_LOSSES:
        raise ValueError(f"`distillation_loss` must be one of {DISTILLATION_LOSSES}, got {kind!r}.")
    # options that would change nothing: refused rather than saved as if they had been applied
    if alpha is None and (temperature != 1.0 or kind != "kl"):
        given = (
            f"distillation_temperature={temperature!r}"
            if temperature != 1.0
            else f"distillation_loss={kind!r}"
        )
        raise ValueError(
            f"`distillation_alpha` is None (distillation off), so {given} would change nothing: set "
            "distillation_alpha (e.g. 0.5) to distil, or leave that option at its default."
        )
    if kind == "mse" and temperature != 1.0:
        raise ValueError(
            f"`distillation_temperature` must be 1.0 with distillation_loss='mse' (the temperature softens the "
            f"'kl' loss only; mse compares the raw logits), got {temperature!r}."
        )


__all__ = [
    "DISTILLATION_LOSSES",
    "STUDENT_MASK",
    "TEACHER_LOGITS_COLUMN",
    "add_teacher_logits",
    "augment_texts",
    "build_transfer_set",
    "check_teacher_agreement",
    "check_teacher_labels",
    "distillation_loss",
]
