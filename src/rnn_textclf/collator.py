"""Dynamic padding into batches ready for ``pack_padded_sequence``, and length bucketing.

The collator turns tokenized rows (``{"input_ids": [...], "label": 3}``) into a right-padded batch plus the
true lengths as an int64 CPU tensor, which is what ``pack_padded_sequence`` needs. Rows are never
reordered: the model packs with ``enforce_sorted=False`` and returns logits in input order, so
predictions always line up with the data set.

``RNNTrainer`` feeds it from a ``_TokenTable``: the data set's token ids as one flat array plus offsets,
read from the Arrow table once per data loader. A batch is then one NumPy gather (``_TokenRows``), not
one Arrow row fetch and one Python list per row.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Sampler
from transformers import BatchEncoding

from .distillation import TEACHER_LOGITS_COLUMN

logger = logging.getLogger(__name__)

LabelKind = Literal["auto", "single_label_classification", "multi_label_classification", "regression"]
_LABEL_KINDS = ("auto", "single_label_classification", "multi_label_classification", "regression")
_LABEL_KEYS = ("labels", "label", "label_ids")


# Rows padded when tokenized carry their pad ids in input_ids: read as text, they would change predictions.
_PADDED_ROWS = (
    "The rows were padded when they were tokenized (their attention_mask holds 0s): PackedSequenceCollator "
    "would read the pad tokens as text. Tokenize without padding (drop padding=... from the tokenizer call in "
    "datasets.map); the collator pads each batch itself."
)


def _refuse_padded_masks(masks: Any) -> None:
    """``ValueError`` when an Arrow list column of attention masks holds a 0 in its rows."""
    import pyarrow as pa

    if not (pa.types.is_list(masks.type) or pa.types.is_large_list(masks.type)):
        return
    start, stop = masks.offsets[0].as_py(), masks.offsets[-1].as_py()
    values = masks.values.slice(start, stop - start)  # a sliced column's rows only
    if len(values) and _is_number(values.type) and int(np.min(values.to_numpy(zero_copy_only=False))) == 0:
        raise ValueError(_PADDED_ROWS)


class _TokenTable(torch.utils.data.Dataset):
    """A tokenized data set held as NumPy columns: token ids flat with row offsets, labels as one array.

    ``__getitems__`` (what a ``DataLoader`` calls with a batch's indices) returns a
    [`_TokenRows`][rnn_textclf.collator._TokenRows] view, which ``PackedSequenceCollator`` pads with one
    gather; ``__getitem__`` returns the row as ``datasets`` would (Python lists and numbers).

    Args:
        values: Every row's ids one after another, ``(total_tokens,)``.
        offsets: Row ``i`` is ``values[offsets[i]:offsets[i + 1]]``, ``(rows + 1,)``.
        scalars: Columns with one number per row (labels), ``(rows,)`` each.
        lists: Other columns of number lists (multi-label rows), ``(values, offsets)`` each.
        lengths: One length per row for samplers (the ``length`` column when there is one).
        input_name: The token id column's name.
    """

    def __init__(
        self,
        values: np.ndarray,
        offsets: np.ndarray,
        *,
        scalars: dict[str, np.ndarray],
        lists: dict[str, tuple[np.ndarray, np.ndarray]],
        lengths: np.ndarray,
        input_name: str = "input_ids",
    ) -> None:
        self.values, self.offsets = values, offsets
        self.scalars, self.lists = scalars, lists
        self.lengths = lengths
        self.input_name = input_name
        self.column_names = [input_name, *scalars, *lists]

    @classmethod
    def from_dataset(
        cls,
        dataset: Any,
        *,
        input_name: str = "input_ids",
        label_column: str | None = None,
        length_column: str | None = "length",
    ) -> _TokenTable | None:
        """Reads ``input_ids`` and the label columns of a ``datasets.Dataset`` into memory, once.

        Columns of number lists become ``(values, offsets)`` (zero-copy where Arrow allows), number columns
        NumPy arrays; other columns are left out (``PackedSequenceCollator`` reads only ids, labels and
        ``teacher_logits``).
        Returns ``None`` (the caller keeps the Arrow data set, and the collator sees its rows and raises
        its usual errors) when a needed column has nulls or another type.

        Args:
            dataset: A map-style ``datasets.Dataset``.
            input_name: The token id column.
            label_column: A label column besides ``labels``/``label``/``label_ids`` (the collator's).
            length_column: The column samplers read lengths from, when present.
        """
        import pyarrow as pa

        columns = dataset.column_names
        if input_name not in columns or len(dataset) == 0:
            return None
        # The ids, the labels and the teacher's logits (distillation): what PackedSequenceCollator reads.
        wanted = [
            input_name,
            *(key for key in (*_LABEL_KEYS, label_column, TEACHER_LOGITS_COLUMN) if key in columns),
        ]
        if length_column is not None and length_column in columns and length_column not in wanted:
            wanted.append(length_column)
        wanted = list(dict.fromkeys(wanted))
        # The masks are only checked (rows padded when tokenized are refused), in the same read.
        mask_read = "attention_mask" in columns and "attention_mask" not in wanted
        # Arrow format, in data-set order (a take only when the data set has an indices mapping).
        table = dataset.select_columns([*wanted, "attention_mask"] if mask_read else wanted).with_format(
            "arrow"
        )[:]
        if mask_read:
            _refuse_padded_masks(table.column("attention_mask").combine_chunks())
        scalars: dict[str, np.ndarray] = {}
        lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in wanted:
            column = table.column(name).combine_chunks()
            if column.null_count:
                return None
            kind = column.type
            if pa.types.is_list(kind) or pa.types.is_large_list(kind):
                values = column.values  # the list offsets already account for a sliced column
                start, stop = column.offsets[0].as_py(), column.offsets[-1].as_py()
                if pa.types.is_null(values.type) and start == stop:  # every list empty: Arrow typed them null
                    values = pa.array([], type=pa.int64())
                elif not _is_number(values.type) or values.slice(start, stop - start).null_count:
                    return None
                lists[name] = (values.to_numpy(zero_copy_only=False), column.offsets.to_numpy())
            elif _is_number(kind):
                scalars[name] = column.to_numpy(zero_copy_only=False)
            else:
                return None
        if input_name not in lists:
            return None
        values, offsets = lists.pop(input_name)
        lengths = (
            scalars[length_column].astype(np.int64)
            if length_column is not None and length_column in scalars
            else np.diff(offsets).astype(np.int64)
        )
        return cls(values, offsets, scalars=scalars, lists=lists, lengths=lengths, input_name=input_name)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        row: dict[str, Any] = {
            self.input_name: self.values[self.offsets[index] : self.offsets[index + 1]].tolist()
        }
        for name, column in self.scalars.items():
            row[name] = column[index].item()
        for name, (values, offsets) in self.lists.items():
            row[name] = values[offsets[index] : offsets[index + 1]].tolist()
        return row

    def __getitems__(self, indices: Sequence[int]) -> _TokenRows:
        return _TokenRows(self, np.asarray(indices, dtype=np.int64))


class _TokenRows(Sequence):
    """The rows ``indices`` of a [`_TokenTable`][rnn_textclf.collator._TokenTable], still as columns.

    A sequence of row dicts for any collator (``rows[i]``, iteration), plus the column accessors
    ``PackedSequenceCollator`` uses to build the batch without a Python loop over the rows.
    """

    def __init__(self, table: _TokenTable, indices: np.ndarray) -> None:
        self.table, self.indices = table, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        return self.table[self.indices[i]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self.table[index] for index in self.indices)

    def has_column(self, name: str) -> bool:
        return name in self.table.column_names

    def token_ids(self, max_length: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Every row's ids (cut to ``max_length``) one after another ``(total,)``, and the lengths ``(batch,)``."""
        table = self.table
        starts = table.offsets[self.indices]  # (batch,)
        lengths = (table.offsets[self.indices + 1] - starts).astype(np.int64)  # (batch,)
        if max_length is not None:
            lengths = np.minimum(lengths, max_length)
        # Position of every kept token in `values`: its row's start plus its place in the row.
        first = np.cumsum(lengths) - lengths  # (batch,) where each row begins in the output
        positions = np.arange(int(lengths.sum())) + np.repeat(starts - first, lengths)  # (total,)
        return table.values[positions].astype(np.int64, copy=False), lengths

    def scalar_column(self, name: str) -> np.ndarray | None:
        """The batch's values of a one-number-per-row column (``None`` when it is not one)."""
        column = self.table.scalars.get(name)
        return None if column is None else column[self.indices]


def _is_number(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _is_accelerator(device: torch.device) -> bool:
    """Whether ``device`` is the available accelerator (the device pinned memory is for)."""
    if device.type == "cuda" and torch.cuda.is_available():
        return True
    accelerator = torch.accelerator.current_accelerator() if hasattr(torch, "accelerator") else None
    return accelerator is not None and device.type == accelerator.type


class PackedBatch(BatchEncoding):
    """A batch whose ``.to(device)`` moves every tensor except ``lengths``.

    ``pack_padded_sequence`` wants the lengths on the CPU; keeping them there means the forward pass never
    copies them back from the accelerator (a device-to-host synchronisation). ``accelerate`` and
    ``BatchEncoding`` users call ``.to()``, so this is where the rule lives.
    """

    def to(self, device: str | torch.device | int, *, non_blocking: bool = False) -> PackedBatch:  # type: ignore[override]
        if isinstance(device, torch.dtype):  # (a cast would turn the ids, lengths and labels into floats)
            raise TypeError(
                f"PackedBatch.to() moves a batch to a device; got the dtype {device}. The token ids, lengths and "
                "class labels must stay integers: cast the model instead (model.to(torch.bfloat16))."
            )
        self.data = {
            key: value.to(device, non_blocking=non_blocking)
            if isinstance(value, torch.Tensor) and key != "lengths"
            else value
            for key, value in self.data.items()
        }
        return self

    def pin_memory(self) -> PackedBatch:
        """Pins the tensors (DataLoader ``pin_memory=True``) so host-to-device copies can be asynchronous."""
        self.data = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in self.data.items()}
        return self


def _batch_rows(positions: list[int], size: int) -> str:
    """``"2 of the batch's 6 rows (batch positions [3, 4])"``: positions in the batch as the sampler drew
    it (shuffled), not data-set row numbers, which a collator never sees."""
    more = ", ..." if len(positions) > 5 else ""
    shown = ", ".join(map(str, positions[:5]))
    return f"{len(positions)} of the batch's {size} rows (batch positions [{shown}{more}])"


class PackedSequenceCollator:
    """Pads tokenized rows into a batch for [`RNNClassifier`][rnn_textclf.RNNClassifier].

    Returns ``input_ids`` ``(batch, seq)`` padded with the tokenizer's pad id, ``attention_mask``,
    ``lengths`` (int64, always on the CPU), ``labels`` when the rows carry ``label``/``labels`` (or
    ``label_column``) and ``teacher_logits`` (float32 ``(batch, num_labels)``, in row order) when they
    carry that column (see [`add_teacher_logits`][rnn_textclf.distillation.add_teacher_logits]). Padding is one vectorised scatter per batch, not a Python loop over tokens.

    Args:
        tokenizer: The tokenizer that made the ids; gives the pad id and the vocab size (ids are checked
            on the CPU, before any copy to an accelerator). ``None`` needs ``pad_token_id``.
        max_length: Truncate each row to at most this many tokens (``None``: no truncation). The batch is
            padded to its longest row, so one very long text costs ``batch_size x its length`` memory; with
            ``None``, a row longer than the tokenizer's ``model_max_length`` (512 for tokenizers built by
            rnn-textclf) logs a warning once. Truncate when tokenizing (``truncation=True``) or set this.
            This cuts the ids as they are, a closing special token too: with a tokenizer that adds one
            (BERT's ``[SEP]``, ``</s>``), truncate when tokenizing instead, as ``pipeline(...,
            truncation=True)`` and ``rnn-textclf predict`` do, so that training and serving see the same.
        pad_to_multiple_of: Round the padded width up to a multiple of this (tensor-core friendly shapes).
        label_column: Name of the label field; by default ``"labels"`` or ``"label"``, whichever is present.
        label_kind: ``"auto"`` makes integer labels int64 (single-label) and float or list labels float32
            (regression / multi-label); the other values force the dtype.
        device: Move the batch there except ``lengths``; for plain DataLoader loops. Copies to the available
            accelerator are pinned and ``non_blocking``. Leave ``None`` with ``Trainer``, which places
            batches itself.
        pad_token_id: Pad id when no tokenizer is given.
        vocab_size: Vocab size for the id check when no tokenizer is given.
        num_labels: When set, integer class ids must lie in ``[0, num_labels)`` (or be -100, ignored) and
            label rows of 2-D labels must have ``num_labels`` columns. Checked on the CPU before any copy
            to an accelerator, where a bad class id is an opaque device-side assert. ``RNNTrainer`` sets it
            from the model's config for classification.

    Example:
        ```python
        collator = PackedSequenceCollator(tokenizer)
        batch = collator([{"input_ids": [5, 7, 9], "label": 1}, {"input_ids": [4], "label": 0}])
        batch["lengths"]  # tensor([3, 1])
        ```
    """

    def __init__(
        self,
        tokenizer: Any = None,
        *,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        label_column: str | None = None,
        label_kind: LabelKind = "auto",
        device: str | torch.device | None = None,
        pad_token_id: int | None = None,
        vocab_size: int | None = None,
        num_labels: int | None = None,
    ) -> None:
        # A bound read from the tokenizer follows it: tokens added later (then resize_token_embeddings) are
        # valid ids, as with DataCollatorWithPadding, which reads the tokenizer at every batch.
        self._vocab_from_tokenizer = tokenizer is not None and vocab_size is None
        if tokenizer is not None:
            pad_token_id = tokenizer.pad_token_id if pad_token_id is None else pad_token_id
            vocab_size = len(tokenizer) if vocab_size is None else vocab_size
        if pad_token_id is None:
            raise ValueError(
                "PackedSequenceCollator needs a pad id: pass the tokenizer (with a pad token) or `pad_token_id=`."
            )
        if vocab_size is not None and not 0 <= int(pad_token_id) < vocab_size:
            raise ValueError(
                f"The pad id {pad_token_id} is outside the vocab [0, {vocab_size}): padding would hold ids the "
                "embedding does not have. Use the tokenizer's pad_token_id (a token of its vocab)."
            )
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            raise ValueError(f"`max_length` must be a positive integer or None, got {max_length!r}.")
        if pad_to_multiple_of is not None and (
            isinstance(pad_to_multiple_of, bool)
            or not isinstance(pad_to_multiple_of, int)
            or pad_to_multiple_of < 1
        ):
            raise ValueError(
                f"`pad_to_multiple_of` must be a positive integer or None, got {pad_to_multiple_of!r}."
            )
        if label_kind not in _LABEL_KINDS:
            raise ValueError(f"`label_kind` must be one of {_LABEL_KINDS}, got {label_kind!r}.")
        if num_labels is not None and (
            isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1
        ):
            raise ValueError(f"`num_labels` must be a positive integer or None, got {num_labels!r}.")
        self.tokenizer = tokenizer
        self.pad_token_id = int(pad_token_id)
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.label_column = label_column
        self.label_kind = label_kind
        self.num_labels = num_labels
        self.device = torch.device(device) if device is not None else None
        # Pinned host memory makes the copy to an accelerator asynchronous; pinning needs that accelerator's
        # runtime (torch raises without one), and a copy to "meta" or another host device gains nothing.
        self._pin = self.device is not None and _is_accelerator(self.device)
        model_max = getattr(tokenizer, "model_max_length", None)
        self._long_row_limit = model_max if isinstance(model_max, int) and model_max < 10**9 else None
        self._warned_long_row = False
        self.reset_stats()

    # ------------------------------------------------------------------ statistics
    def reset_stats(self) -> None:
        """Zeroes the token counters behind [`padding_fraction`][rnn_textclf.PackedSequenceCollator.padding_fraction]."""
        self.real_tokens = 0
        self.padded_tokens = 0

    @property
    def padding_fraction(self) -> float:
        """Share of the positions in the batches made so far (in this process) that were padding."""
        total = self.real_tokens + self.padded_tokens
        return self.padded_tokens / total if total else 0.0

    def _check_ids(self, flat: np.ndarray) -> None:
        """ValueError if a token id is outside ``[0, vocab_size)``."""
        if flat.min() >= 0 and flat.max() < self.vocab_size:
            return
        bad = int(flat.max()) if flat.max() >= self.vocab_size else int(flat.min())
        if self._vocab_from_tokenizer:
            raise ValueError(
                f"Token id {bad} is outside the tokenizer's vocab [0, {self.vocab_size}); were these rows tokenized "
                "with a different tokenizer?"
            )
        raise ValueError(
            f"Token id {bad} is outside the vocab [0, {self.vocab_size}) given as vocab_size={self.vocab_size}; "
            "were these rows tokenized with a tokenizer of more tokens than the model's embedding has?"
        )

    # ------------------------------------------------------------------ collate
    def __call__(self, features: Sequence[Mapping[str, Any]]) -> PackedBatch:
        if isinstance(features, Mapping):
            raise TypeError(
                "PackedSequenceCollator takes a list of rows (dicts), got one dict of columns; "
                "index the data set row by row (a DataLoader does) instead of passing a batch slice."
            )
        if len(features) == 0:
            raise ValueError("PackedSequenceCollator got an empty list of rows.")
        if isinstance(features, _TokenRows) and features.table.input_name == "input_ids":
            # RNNTrainer's in-memory table: one gather for the whole batch.
            flat, lengths = features.token_ids(self.max_length)  # (total_tokens,), (batch,)
        else:
            first = features[0]
            if not isinstance(first, Mapping) or "input_ids" not in first:
                keys = sorted(first) if isinstance(first, Mapping) else type(first).__name__
                raise ValueError(
                    f"Each row needs `input_ids` (tokenize the texts first, e.g. ds.map(lambda b: tokenizer(b['text']), "
                    f"batched=True)); row 0 has {keys}."
                )
            ids_rows = [row["input_ids"] for row in features]
            if "attention_mask" in first and any(
                0 in mask for row in features if (mask := row.get("attention_mask")) is not None
            ):
                raise ValueError(_PADDED_ROWS)
            if self.max_length is not None:
                ids_rows = [ids[: self.max_length] for ids in ids_rows]
            lengths = np.fromiter(map(len, ids_rows), dtype=np.int64, count=len(ids_rows))  # (batch,)
            flat = np.fromiter(
                itertools.chain.from_iterable(ids_rows), dtype=np.int64, count=int(lengths.sum())
            )  # (total_tokens,)
        width = int(lengths.max())
        if self._long_row_limit is not None and width > self._long_row_limit and not self._warned_long_row:
            self._warned_long_row = True
            logger.warning(
                "A row has %d tokens, more than the tokenizer's model_max_length=%d, and the collator does not "
                "truncate (max_length=None): its batch is padded to %d positions, which costs memory and time. "
                "Tokenize with truncation=True (or max_length=...), or pass PackedSequenceCollator(max_length=...). "
                "(Warned once.)",
                width,
                self._long_row_limit,
                width,
            )
        if self.pad_to_multiple_of:
            width = math.ceil(width / self.pad_to_multiple_of) * self.pad_to_multiple_of
        mask = np.arange(width)[None, :] < lengths[:, None]  # (batch, width)
        if flat.size and self.vocab_size is not None and (flat.min() < 0 or flat.max() >= self.vocab_size):
            if self._vocab_from_tokenizer and flat.max() >= self.vocab_size:
                self.vocab_size = len(self.tokenizer)  # tokens added since (re-checked below)
            self._check_ids(flat)
        input_ids = np.full((len(lengths), width), self.pad_token_id, dtype=np.int64)
        # Row-major boolean assignment fills each row's prefix in order: one scatter for the whole batch.
        input_ids[mask] = flat
        self.real_tokens += int(lengths.sum())
        self.padded_tokens += int(mask.size - lengths.sum())

        batch: dict[str, Any] = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask.astype(np.int64)),
            "lengths": torch.from_numpy(lengths),
        }
        labels = self._collect_labels(features)
        if labels is not None:
            batch["labels"] = labels
        has_teacher = (
            features.has_column(TEACHER_LOGITS_COLUMN)
            if isinstance(features, _TokenRows)
            else TEACHER_LOGITS_COLUMN in features[0]
        )
        if has_teacher:
            batch[TEACHER_LOGITS_COLUMN] = self._collect_teacher_logits(features)
        packed = PackedBatch(batch)
        if self.device is not None and self.device.type != "cpu":
            packed = (packed.pin_memory() if self._pin else packed).to(self.device, non_blocking=self._pin)
        return packed

    def _collect_teacher_logits(self, features: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """The rows' ``teacher_logits`` (``add_teacher_logits``) as float32 ``(batch, num_labels)``, in row order."""
        values = [row.get(TEACHER_LOGITS_COLUMN) for row in features]
        missing = [i for i, v in enumerate(values) if v is None]
        if missing:
            raise ValueError(
                f"{_batch_rows(missing, len(features))} have no {TEACHER_LOGITS_COLUMN!r} while others do: run "
                "add_teacher_logits on the whole data set (every row of a batch needs the teacher's logits)."
            )
        if isinstance(values[0], torch.Tensor):
            return torch.stack([v.to(torch.float32) for v in values])
        try:
            array = np.asarray(values, dtype=np.float32)  # (batch, num_labels)
        except ValueError as err:
            raise ValueError(f"Rows of {TEACHER_LOGITS_COLUMN!r} have different widths: {err}") from None
        if array.ndim != 2:
            raise ValueError(
                f"{TEACHER_LOGITS_COLUMN!r} must hold one list of num_labels logits per row, got shape {array.shape}."
            )
        if self.num_labels is not None and array.shape[1] != self.num_labels:
            raise ValueError(
                f"{TEACHER_LOGITS_COLUMN!r} has {array.shape[1]} logits per row but the model has "
                f"num_labels={self.num_labels}: the teacher must have the student's classes."
            )
        return torch.from_numpy(array)

    def _label_key(self, row: Mapping[str, Any]) -> str | None:
        if self.label_column is not None:
            return self.label_column
        for key in _LABEL_KEYS:
            if key in row:
                return key
        return None

    def _collect_labels(self, features: Sequence[Mapping[str, Any]]) -> torch.Tensor | None:
        if isinstance(features, _TokenRows):
            key = self.label_column or next((k for k in _LABEL_KEYS if features.has_column(k)), None)
            column = features.scalar_column(key) if key is not None else None
            if column is not None:
                # The dtypes np.asarray gives the rows' Python numbers, so both paths make the same tensors.
                dtype = (
                    np.bool_
                    if column.dtype == np.bool_
                    else np.float64
                    if column.dtype.kind == "f"
                    else np.int64
                )
                return self._finish_labels(torch.from_numpy(column.astype(dtype, copy=False)), key)
        key = self._label_key(features[0])
        if key is None:
            return None
        missing = [i for i, row in enumerate(features) if key not in row or row[key] is None]
        if missing:
            if self.label_column is not None and len(missing) == len(features):
                raise ValueError(
                    f"`label_column={self.label_column!r}` is not in the rows; they have {sorted(features[0])}."
                )
            raise ValueError(
                f"{_batch_rows(missing, len(features))} have no {key!r} while others do: a batch must be all "
                "labelled or all unlabelled."
            )
        values = [row[key] for row in features]
        sample = values[0]
        if isinstance(sample, torch.Tensor):
            labels = torch.stack([torch.as_tensor(v) for v in values])
        else:
            if isinstance(sample, (str, bytes)) or (
                isinstance(sample, Sequence) and sample and isinstance(sample[0], (str, bytes))
            ):
                raise TypeError(
                    f"Label {sample!r} in column {key!r} is text; labels must be numbers. Map class names to ids "
                    "first, e.g. ds = ds.class_encode_column('label') or ds.map(lambda r: {'label': label2id[r['label']]})."
                )
            try:
                array = np.asarray(values)
            except ValueError as err:  # ragged multi-label lists
                raise ValueError(f"Labels in column {key!r} have different widths: {err}") from None
            if array.dtype == object or not (
                np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
            ):
                bad = next((v for v in values if not isinstance(v, (numbers.Number, Sequence))), values[0])
                raise TypeError(
                    f"Labels in column {key!r} must be numbers, got {type(bad).__name__} {bad!r}."
                )
            labels = torch.from_numpy(array)
        return self._finish_labels(labels, key)

    def _finish_labels(self, labels: torch.Tensor, key: str) -> torch.Tensor:
        """Checks the values and picks the dtype for the label kind."""
        integer = not labels.is_floating_point() and labels.dtype != torch.bool
        if (
            integer
            and labels.dim() == 2
            and labels.shape[1] == 1
            and (self.label_kind == "single_label_classification" or (self.num_labels or 0) > 1)
        ):
            # a class id per row written as a list of one ([3]): (batch, 1) -> (batch,), as transformers'
            # models read such labels (a model of several classes cannot take one 0/1 column per row)
            labels = labels.view(-1)
        self._check_label_values(labels, key)
        kind = self.label_kind
        if kind == "auto":
            integer = not labels.is_floating_point() and labels.dtype != torch.bool
            kind = (
                "single_label_classification"
                if integer and labels.dim() == 1
                else "multi_label_classification"
            )
        if kind == "single_label_classification":
            if labels.is_floating_point() and not torch.equal(labels, labels.round()):
                raise TypeError("Single-label classification needs integer class ids; got fractional labels.")
            return labels.to(torch.int64)
        return labels.to(torch.float32)

    def _check_label_values(self, labels: torch.Tensor, key: str) -> None:
        """Class ids in range and label widths, on the CPU (``num_labels`` set), naming the fix."""
        n = self.num_labels
        if n is None or labels.numel() == 0:
            return
        if labels.dim() == 2 and labels.shape[1] != n:
            raise ValueError(
                f"Labels in column {key!r} have {labels.shape[1]} columns but the model has num_labels={n}: "
                f"multi-label rows need one 0/1 value per label ({n} values)."
            )
        integer = not labels.is_floating_point() and labels.dtype != torch.bool
        if labels.dim() == 1 and not integer and self.label_kind == "auto" and n > 1:
            raise ValueError(
                f"Labels in column {key!r} are {labels.dtype} values (e.g. {labels[0].item()!r}), one per row, but the "
                f"model has num_labels={n} classes: single-label classification needs integer class ids. Cast the "
                f"column, e.g. ds = ds.cast_column({key!r}, datasets.Value('int64')) (a stream without features: "
                f"ds = ds.map(lambda row: {{{key!r}: int(row[{key!r}])}})); for multi-label, give each row a list of "
                f"{n} 0/1 values."
                + (
                    # datasets' CSV reader (pandas) makes a label column with one empty cell floats (None
                    # there): every batch of that file fails here, also those without the empty row
                    " Float class ids usually mean an empty cell in a CSV label column: drop or fill those rows "
                    f"first, e.g. ds = ds.filter(lambda row: row[{key!r}] is not None)."
                    if labels.dtype != torch.bool
                    else ""
                )
            )
        if labels.dim() == 1 and integer and self.label_kind in ("auto", "single_label_classification"):
            bad = (labels < 0) & (labels != -100) | (labels >= n)
            if bool(bad.any()):
                row = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"Label {int(labels[row])} (row {row} of the batch, column {key!r}) is not a class id in "
                    f"[0, {n}) (num_labels={n}; -100 means 'ignore'). Fix the labels, or build the model with "
                    "RNNClassifierConfig(num_labels=...) for all classes."
                )


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length for plain DataLoaders (``DataLoader(ds, batch_sampler=...)``).

    Shuffles the indices, cuts them into pools of ``batch_size * pool_factor``, sorts each pool by length,
    cuts batches and shuffles the batch order: little padding, still random. ``Trainer`` users get the same
    from ``TrainingArguments(train_sampling_strategy="group_by_length")``.

    Args:
        lengths: Token count of every row (e.g. the tokenizer's ``length`` column).
        batch_size: Rows per batch.
        shuffle: Shuffle pools and batch order every epoch (``False``: one global sort, for evaluation).
        drop_last: Drop the last incomplete batch.
        pool_factor: Pool size in batches; larger means less padding and less randomness.
        seed: Base seed; epoch ``e`` uses ``seed + e`` (call ``set_epoch``).
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray | torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        pool_factor: int = 50,
        seed: int = 0,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        if isinstance(pool_factor, bool) or not isinstance(pool_factor, int) or pool_factor < 1:
            raise ValueError(f"`pool_factor` must be a positive integer, got {pool_factor!r}.")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1:
            raise ValueError(f"`lengths` must be one length per row, got shape {self.lengths.shape}.")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.pool_factor = pool_factor
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            batches = [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        else:
            rng = np.random.default_rng(self.seed + self.epoch)
            order = rng.permutation(n)
            pool = self.batch_size * self.pool_factor
            batches = []
            for start in range(0, n, pool):
                chunk = order[start : start + pool]
                chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
                batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
            rng.shuffle(batches)
        for batch in batches:
            if self.drop_last and len(batch) < self.batch_size:
                continue
            yield batch.tolist()


__all__ = ["BucketBatchSampler", "PackedBatch", "PackedSequenceCollator"]
