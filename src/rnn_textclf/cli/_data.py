"""Data options: reading csv/tsv/jsonl/parquet files or a data set, text columns and label plans."""

from __future__ import annotations

import argparse
import bz2
import contextlib
import csv
import gzip
import lzma
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ._common import CLIError, _info

DATA_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
#: Compressed text files (``train.csv.gz``), read as ``datasets.load_dataset`` reads them.
COMPRESSIONS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _format_suffix(path: Path) -> tuple[str, bool]:
    """``(".csv", True)`` for ``train.csv.gz``: the data format's suffix and whether it is compressed."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSIONS and suffixes[-2] in DATA_FORMATS:
        return suffixes[-2], True
    return (suffixes[-1] if suffixes else ""), False


def _open_data(path: Path, mode: str = "rt") -> Any:
    """``path`` opened for reading (decompressed when its suffix says so); text as UTF-8, a BOM skipped."""
    opener = COMPRESSIONS.get(path.suffix.lower()) if _format_suffix(path)[1] else None
    text = {"newline": "", "encoding": "utf-8-sig", "errors": "replace"} if "t" in mode else {}
    return opener(path, mode, **text) if opener is not None else path.open(mode.replace("t", ""), **text)


class _Once(argparse.Action):
    """A file option given twice: refused (argparse would keep the last one and drop the first file)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        before = getattr(namespace, self.dest, None)
        if before is not None and before != self.default:
            parser.error(
                f"{option_string} is given twice ({before!r}, {values!r}); give one file (join several files "
                "into one first)."
            )
        setattr(namespace, self.dest, values)


def _add_data_options(parser: argparse.ArgumentParser, *, train: bool) -> None:
    group = parser.add_argument_group("data")
    if train:
        group.add_argument(
            "--train-file",
            action=_Once,
            help="training data (.csv, .tsv, .jsonl/.json, .parquet; the text formats also .gz/.bz2/.xz)",
        )
        group.add_argument(
            "--validation-file",
            action=_Once,
            help="validation data, same format (default: 10%% of train)",
        )
        group.add_argument("--test-file", action=_Once, help="test data, same format (reported at the end)")
        group.add_argument("--dataset", help="a datasets.load_dataset name, e.g. fancyzhx/ag_news")
        group.add_argument("--dataset-config", help="the data set's configuration name")
        group.add_argument(
            "--label-column",
            action="append",
            help="label column (default: label); repeat for multi-label 0/1 columns",
        )
    else:
        group.add_argument(
            "--test-file",
            action=_Once,
            required=True,
            help="labelled data (.csv, .tsv, .jsonl/.json, .parquet; the text formats also .gz/.bz2/.xz)",
        )
        group.add_argument(
            "--label-column",
            action="append",
            help="label column (default: label); a multi-label model reads a 0/1 column per label, named as "
            "the labels (the default)",
        )
    group.add_argument(
        "--text-column",
        action="append",
        help="text column (default: text); repeat to join several, e.g. title and description",
    )
    group.add_argument(
        "--csv-column-names",
        type=lambda s: s.split(","),
        help="comma-separated names for a CSV without a header row, e.g. label,title,description",
    )


def _at_most_one_line(path: Path) -> bool:
    """Whether the text file has at most one non-blank line (reads up to the second one)."""
    with _open_data(path, "rb") as handle:
        lines = 0
        for line in handle:
            if line.strip():
                lines += 1
                if lines > 1:
                    return False
    return True


@contextlib.contextmanager
def _reading(split: str, name: str, *errors: type[Exception]) -> Iterator[None]:
    """A file that cannot be read (a broken or cut compressed file, or the reader's own ``errors``) as a
    one-line error naming it."""
    try:
        yield
    except (OSError, EOFError, lzma.LZMAError, zlib.error, *errors) as err:
        raise CLIError(f"could not read --{split}-file {name!r}: {type(err).__name__}: {err}") from None


def _load_files(files: dict[str, str], csv_column_names: list[str] | None) -> Any:
    import datasets

    formats = set()
    for split, name in files.items():
        if not isinstance(name, (str, Path)):  # e.g. a list in a --config file
            raise CLIError(
                f"--{split}-file must be one file path, got {name!r}; give one file (join several files into "
                "one first)."
            )
        path = Path(name)
        if not path.is_file():
            raise CLIError(f"--{split}-file {name!r} does not exist (or is not a file); check the path.")
        suffix, compressed = _format_suffix(path)
        if suffix not in DATA_FORMATS or (compressed and suffix == ".parquet"):
            raise CLIError(
                f"--{split}-file {name!r} has an unknown format {''.join(path.suffixes[-2:]) or '(none)'!r}; "
                f"use one of {', '.join(sorted(DATA_FORMATS))} (the text formats also compressed: "
                f"{', '.join(COMPRESSIONS)})."
            )
        if path.stat().st_size == 0:
            raise CLIError(f"--{split}-file {name!r} is empty: it holds no rows.")
        with _reading(split, name):
            header_only = suffix in (".csv", ".tsv") and not csv_column_names and _at_most_one_line(path)
        if header_only:
            raise CLIError(f"--{split}-file {name!r} holds no rows: a header line alone.")
        if suffix == ".parquet" and _parquet_rows(path, split, name) == 0:
            raise CLIError(f"--{split}-file {name!r} holds no rows (its columns are there, no values).")
        formats.add((DATA_FORMATS[suffix], suffix == ".tsv"))
    if len(formats) > 1:
        raise CLIError("--train-file/--validation-file/--test-file must all have the same format.")
    builder, tsv = formats.pop()
    if csv_column_names and builder != "csv":
        raise CLIError(
            f"--csv-column-names applies to .csv/.tsv files without a header row; the {builder} files here "
            f"name their own columns ({', '.join(map(repr, files.values()))}): drop it."
        )
    kwargs: dict[str, Any] = {}
    if builder == "csv":
        # Cells are text as written: only an empty cell is missing (pandas would also read the texts
        # "NA", "null", "None", "nan", "N/A"... as missing, and a label named "None" as no label).
        kwargs.update(keep_default_na=False, na_values=[""])
        if tsv:
            # Tab-separated lines without quoting (as GLUE's files): a text starting with a quote mark
            # would otherwise open a quoted field that swallows the rows up to the next quote mark.
            kwargs.update(delimiter="\t", quoting=csv.QUOTE_NONE)
        if csv_column_names:
            for split, name in files.items():
                with _reading(split, name):
                    _check_column_count(Path(name), split, csv_column_names, "\t" if tsv else ",")
            kwargs["column_names"] = csv_column_names
        if tsv:
            for split, name in files.items():  # (pandas pads a short row: text fragments as labels)
                with _reading(split, name):
                    _check_tsv_rows(Path(name), split)
        elif not csv_column_names:
            for split, name in files.items():
                with _reading(split, name):
                    _check_first_row(Path(name), split)
    # Small local files load in a blink; their "Generating split" bars would only clutter error output.
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    # datasets logs a file it cannot read ("Failed to read file ...") before raising: the CLI's own error
    # says it in one line
    verbosity = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    try:
        data = datasets.load_dataset(builder, data_files=files, **kwargs)
    except Exception as err:  # the datasets parsers raise many types
        raise _read_error(datasets, builder, files, kwargs, err) from None
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars_were_on:
            datasets.enable_progress_bars()
    return data


def _parquet_rows(path: Path, split: str, name: str) -> int:
    """Rows of a Parquet file, from its footer (reads no data)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with _reading(split, name, pa.ArrowException):  # (ArrowInvalid for a file that is no Parquet)
        return pq.ParquetFile(path).metadata.num_rows


def _format_hint(builder: str) -> str:
    """What a file of this kind must look like, closing a read error."""
    if builder == "json":
        return (
            "UTF-8 JSON: one object per line in a .jsonl, a list of objects or an object of columns in a "
            ".json; each column one type"
        )
    if builder == "parquet":
        return "each column one type"
    return "UTF-8 text; each column one type; ',' separating a .csv, a tab a .tsv"


def _read_error(
    datasets: Any, builder: str, files: dict[str, str], kwargs: dict[str, Any], err: Exception
) -> CLIError:
    """What failed in one ``load_dataset`` of all files: the file that does not read alone, or the column
    whose type differs between files (datasets reads them with the first file's types)."""

    def cause_of(error: Exception) -> str:
        # datasets wraps the parser's error ("An error occurred while generating the dataset")
        cause = error.__cause__ or error
        words = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {words[0] if words else ''}"

    def unreadable(split: str, name: str, error: Exception, hint: str = "") -> CLIError:
        # datasets' own words for a file that parses to no rows (a .json holding [] or {})
        if f'Instruction "{split}" corresponds to no data' in str(error):
            return CLIError(f"--{split}-file {name!r} holds no rows.")
        return CLIError(f"could not read --{split}-file {name!r}: {cause_of(error)}{hint}")

    features = {}
    for split, name in files.items() if len(files) > 1 else ():
        try:
            features[split] = datasets.load_dataset(builder, data_files={split: name}, **kwargs)[
                split
            ].features
        except Exception as alone:
            return unreadable(split, name, alone)
    for column in features.get("train", {}):
        for split, found in features.items():
            if column not in found:
                return CLIError(
                    f"column {column!r} of --train-file {files['train']!r} is missing from --{split}-file "
                    f"{files[split]!r} (its columns: {', '.join(map(repr, found))}): every file must have the same columns "
                    "(',' separating a .csv, a tab a .tsv)."
                )
        types = {split: str(getattr(f[column], "dtype", f[column])) for split, f in features.items()}
        if len(set(types.values())) > 1:
            found = ", ".join(f"{types[split]} in --{split}-file {files[split]!r}" for split in types)
            return CLIError(
                f"column {column!r} holds different types in the files ({found}): every file must hold the same "
                "kind of values in a column (e.g. labels all names or all numbers)."
            )
    # (after the missing ones: a file with another separator reads as one extra column)
    for split, found in features.items():
        extra = [column for column in found if column not in features.get("train", found)]
        if extra:
            return CLIError(
                f"--{split}-file {files[split]!r} has column{'s' if len(extra) > 1 else ''} "
                f"{', '.join(map(repr, extra))} that --train-file {files['train']!r} has not (its columns: "
                f"{', '.join(map(repr, features['train']))}): every file must have the same columns; drop "
                "the extra ones."
            )
    if len(files) == 1:
        ((split, name),) = files.items()
        return unreadable(split, name, err, f" ({_format_hint(builder)})")
    return CLIError(
        f"could not read {', '.join(files.values())}: {cause_of(err)} (every file must have the same columns; "
        f"{_format_hint(builder)})"
    )


def _check_tsv_rows(path: Path, split: str) -> None:
    """Every line of a .tsv has as many tab-separated fields as its first (blank lines aside).

    A .tsv is read without quoting, so a text holding a tab or a line break (a pandas ``to_csv(sep="\\t")``
    quotes those) breaks its row into pieces, which pandas would pad into rows of text fragments.
    """
    width = None
    with _open_data(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.count("\t") + 1
            if width is None:
                width = fields
            elif fields != width:
                raise CLIError(
                    f"line {number} of --{split}-file {str(path)!r} has {fields} tab-separated field"
                    f"{'s' if fields != 1 else ''}, the first line {width}: a .tsv is read without quoting, "
                    "so a text holding a tab or a line break breaks its row. Write the data as .csv (quoted "
                    "fields) or .jsonl, or take the tabs and line breaks out of the texts."
                )


def _check_column_count(path: Path, split: str, names: list[str], delimiter: str) -> None:
    """``--csv-column-names`` must name each column of the first line (pandas would shift or pad them)."""
    with _open_data(path) as handle:
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        first = next(csv.reader(handle, delimiter=delimiter, quoting=quoting), [])
    if first and len(first) != len(names):
        raise CLIError(
            f"--csv-column-names gives {len(names)} names ({','.join(names)}) but the first row of --{split}-file "
            f"{str(path)!r} has {len(first)} columns; give one name per column."
        )


def _check_first_row(path: Path, split: str) -> None:
    """The first row of a .csv has no more fields than its header.

    pandas reads a header one field short of every row as "the first column is the index", so a first
    text holding an unquoted comma shifted every column ("hello, there,spam": text " there", no label) and
    the CLI blamed empty labels; from the second row on, pandas says the line itself.
    """
    with _open_data(path) as handle:
        rows = csv.reader(handle)
        header = next(rows, [])
        first = next((row for row in rows if row), None)
    if first is not None and len(first) > len(header):
        raise CLIError(
            f"the first row of --{split}-file {str(path)!r} has {len(first)} comma-separated fields, its header "
            f'{len(header)} ({",".join(header)}): quote a text that holds a comma ("hello, there"), as '
            "csv.writer and pandas' to_csv do."
        )


def _load_data(args: argparse.Namespace) -> Any:
    """Returns a DatasetDict with train (+ validation, + test) splits."""
    import datasets

    if args.dataset and args.train_file:
        raise CLIError("use either --dataset or --train-file, not both.")
    if args.dataset:
        try:
            data = datasets.load_dataset(args.dataset, args.dataset_config)
        except Exception as err:
            raise CLIError(
                f"could not load --dataset {args.dataset!r}: {str(err).splitlines()[0]} "
                "(no network? download it once, or pass --train-file)"
            ) from None
        return data
    if args.train_file:
        files = {"train": args.train_file}
        if args.validation_file:
            files["validation"] = args.validation_file
        if args.test_file:
            files["test"] = args.test_file
        return _load_files(files, args.csv_column_names)
    if args.validation_file or args.test_file:
        raise CLIError("--validation-file/--test-file need --train-file.")
    from ..data import load_sms_spam

    _info("No data given: training on the embedded SMS Spam Collection (Almeida & Gómez Hidalgo, 2011).")
    return load_sms_spam(seed=args.seed)


def _text_columns(args: argparse.Namespace, columns: Sequence[str]) -> list[str]:
    wanted = args.text_column or ["text"]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise CLIError(
            f"--text-column {missing[0]!r} is not in the data; columns are {', '.join(columns)}. "
            "Pass --text-column NAME (repeat it to join several columns)."
        )
    return wanted


def _check_text_features(split: Any, text_columns: list[str], split_name: str) -> None:
    """Rejects text columns that hold numbers or other non-text values, naming the first one."""
    for name in text_columns:
        if name not in split.column_names:
            raise CLIError(f"--text-column {name!r} is missing from the {split_name} split.")
        if getattr(split.features[name], "dtype", None) in ("string", "large_string"):
            continue
        values = split[name]
        row, value = next(
            ((i, v) for i, v in enumerate(values) if v is not None and not isinstance(v, str)),
            next(((i, v) for i, v in enumerate(values) if v is not None), (0, None)),
        )
        raise CLIError(
            f"--text-column {name!r} holds a non-text value {value!r} ({type(value).__name__}) in row {row} of "
            f"the {split_name} split; choose a text column."
        )


def _joined_texts(split: Any, text_columns: list[str], split_name: str) -> list[str]:
    columns = [split[c] for c in text_columns]
    texts = []
    for row, values in enumerate(zip(*columns, strict=True)):
        for name, value in zip(text_columns, values, strict=True):
            if value is not None and not isinstance(value, str):
                raise CLIError(
                    f"--text-column {name!r} holds a non-text value {value!r} ({type(value).__name__}) in row "
                    f"{row} of the {split_name} split; choose a text column."
                )
        texts.append(" ".join(v for v in values if v))
    return texts


def _say_empty_texts(empty: int, split_name: str) -> None:
    """Says (stderr) how many rows have an empty text: kept and read as such, never dropped."""
    if empty:
        _info(
            f"{empty:,} row{'s' if empty > 1 else ''} of the {split_name} split {'have' if empty > 1 else 'has'} "
            "an empty text (an empty cell or a missing key): kept, as empty texts."
        )


def _refuse_repeated_columns(columns: Sequence[str]) -> None:
    """A label column given twice would be two outputs of one name (a multi-label model of one label)."""
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise CLIError(
            f"--label-column {repeated[0]!r} is given more than once; give each label column once (several "
            "different ones make a multi-label model)."
        )


def _label_plan(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    """Decides single- vs multi-label and the label names from the training split."""
    train = data["train"]
    label_columns = args.label_column or ["label"]
    _refuse_repeated_columns(label_columns)
    missing = [c for c in label_columns if c not in train.column_names]
    if missing:
        raise CLIError(
            f"--label-column {missing[0]!r} is not in the data; columns are {', '.join(map(repr, train.column_names))}."
        )
    if len(label_columns) > 1:
        return {
            "problem_type": "multi_label_classification",
            "columns": label_columns,
            "names": label_columns,
        }
    column = label_columns[0]
    feature = train.features[column]
    if getattr(feature, "names", None):
        names = list(feature.names)
    else:
        values = train[column]
        empty = [i for i, v in enumerate(values) if v is None]
        if empty:
            raise CLIError(
                f"--label-column {column!r} has empty values in the train split ({_rows(empty)}); fill or "
                "drop them."
            )
        if any(isinstance(v, (list, tuple)) for v in values):
            raise CLIError(
                f"--label-column {column!r} holds lists; for multi-label data give one 0/1 column per label "
                "(repeat --label-column)."
            )
        if any(isinstance(v, float) and not float(v).is_integer() for v in values):
            raise CLIError(
                f"--label-column {column!r} holds fractional numbers; the CLI trains classifiers "
                "(use the Python API with problem_type='regression' for regression)."
            )
        uniques = sorted(set(values), key=lambda v: (isinstance(v, str), v))
        if len(uniques) > 20 and len(uniques) > 0.9 * len(values):  # (a class per row: no label column)
            raise CLIError(
                f"--label-column {column!r} has {len(uniques):,} different values in {len(values):,} train rows: "
                f"it looks like a text or id column, not classes (e.g. {str(uniques[0])[:40]!r}); columns are "
                f"{', '.join(train.column_names)}. Pass --label-column NAME (and --text-column NAME)."
            )
        _refuse_mixed_types(column, values, "the train split")
        names = list(dict.fromkeys(map(_label_name, uniques)))
        stripped: dict[str, str] = {}
        for name in names:
            other = stripped.setdefault(name.strip(), name)
            if other != name:
                raise CLIError(
                    f"--label-column {column!r} has labels {other!r} and {name!r}, which differ only in spaces "
                    "around them: they would be two classes. Strip the spaces in the file."
                )
    if len(names) < 2:
        raise CLIError(
            f"--label-column {column!r} has only one class ({names[0] if names else 'none'}) in the train split; "
            "a classifier needs at least two."
        )
    return {
        "problem_type": "single_label_classification",
        "columns": [column],
        "names": names,
    }


def _refuse_mixed_types(column: str, values: Sequence[Any], where: str) -> None:
    """Labels written both as text and as numbers (a JSON Lines file with ``"1"`` and ``0``)."""
    text = next((i for i, v in enumerate(values) if isinstance(v, str)), None)
    number = next((i for i, v in enumerate(values) if v is not None and not isinstance(v, str)), None)
    if text is not None and number is not None:
        raise CLIError(
            f"--label-column {column!r} in {where} holds both text and numbers ({values[text]!r} in row {text}, "
            f"{values[number]!r} in row {number}); write every label the same way."
        )


def _rows(rows: Sequence[int]) -> str:
    """``"rows 4, 8"``: the first five of ``rows`` for an error message (``", ..."`` when there are more)."""
    return f"rows {', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''}"


def _encode_labels(
    split: Any, plan: dict[str, Any], where: str, whose: str = "the train split's"
) -> list[Any]:
    """Each row's label as the model reads it: a class id, or (multi-label) a list of 0.0/1.0, one per
    column of ``plan["columns"]``. ``where`` (``"the test split"``, a file) and ``whose`` name the data and
    the labels in errors."""
    if plan["problem_type"] == "multi_label_classification":
        rows = list(zip(*(split[c] for c in plan["columns"]), strict=True))
        empty = [i for i, row in enumerate(rows) if None in row]
        if empty:
            raise CLIError(
                f"--label-column {', '.join(plan['columns'])}: empty values in {where} ({_rows(empty)}); fill "
                "them with 0 or 1."
            )
        # (a 2 or "yes" would be a loss target or a metric nobody meant). One word in a CSV column makes
        # the whole column text: "0" and "1" are then fine, the word is what to name (not the first "0").
        ok = (0, 1, "0", "1", "0.0", "1.0")
        bad = [
            (i, c, v)
            for i, row in enumerate(rows)
            for c, v in zip(plan["columns"], row, strict=True)
            if v not in ok
        ]
        if bad:
            row, column, value = bad[0]
            raise CLIError(
                f"--label-column {', '.join(plan['columns'])}: multi-label columns hold 0 or 1, but {where} has "
                f"{value!r} in row {row} (column {column!r})."
            )
        return [[float(v) for v in row] for row in rows]  # ("1" too)
    label2id = {name: i for i, name in enumerate(plan["names"])}
    return _label_ids(split, plan["columns"][0], label2id, where, whose).tolist()


def _label_name(value: Any) -> str:
    """The class name a label value stands for: ``str(value)``, and a whole float as an int (``1.0`` is
    ``"1"``: a label column with an empty cell, or written ``1.0``, reads as floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _label_ids(data: Any, column: str, label2id: dict[str, int], where: str, whose: str) -> Any:
    """The class id of every row's label, ``(rows,)`` int64, mapped on the Arrow column; the one reader
    of single-label columns (train's splits and ``evaluate``), so both read a value as the same class.

    Each distinct value is looked up once (by `_label_name`; a ClassLabel column's ids by its names); the
    rows are then mapped by index, without a Python list of the labels. ``where`` (``"the test split"``)
    and ``whose`` (``"the model's"``) name the data and the labels in errors.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = data.with_format("arrow")[column]
    if isinstance(values.type, pa.BaseExtensionType):
        # datasets' Json: a JSON Lines column of values of several types ("1" and 0 read back as 1 and 0)
        python = list(data[column])
        _refuse_mixed_types(column, python, where)
        try:
            values = pa.array(python)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise CLIError(
                f"--label-column {column!r} in {where} holds values of mixed kinds; write every label the same "
                "way (a name or a whole number)."
            ) from None
    if pa.types.is_nested(values.type):  # (lists: the usual layout of multi-label data)
        raise CLIError(
            f"--label-column {column!r} in {where} holds {values.type} values, not one class per row; "
            "for multi-label data give one 0/1 column per label (repeat --label-column) and a model trained "
            "on them."
        )
    if values.null_count:
        empty = np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))
        raise CLIError(
            f"--label-column {column!r} has empty values in {where} ({_rows(empty.tolist())}); fill or drop them."
        )
    # A ClassLabel column holds ids of its own names; -1 marks an unlabelled row.
    class_names = getattr(data.features[column], "names", None)
    distinct = pc.unique(values)
    positions = pc.index_in(values, value_set=distinct).to_numpy(zero_copy_only=False)  # (rows,)
    ids = np.empty(len(distinct), dtype=np.int64)  # (distinct,)
    unlabelled: list[int] = []
    unknown: dict[int, str] = {}  # index among the distinct values -> its class name
    for j, value in enumerate(distinct.to_pylist()):
        if class_names is None:
            key = _label_name(value)
        elif 0 <= value < len(class_names):
            key = class_names[value]
        else:
            unlabelled.append(j)
            continue
        if key not in label2id:
            unknown[j] = key
            continue
        ids[j] = label2id[key]
    names = ", ".join(label2id)
    if unlabelled:
        rows = np.flatnonzero(np.isin(positions, unlabelled))
        value = distinct[int(positions[rows[0]])].as_py()
        raise CLIError(
            f"{where} has {len(rows):,} rows without a class (label {value} in row {rows[0]}; -1 marks an "
            f"unlabelled row, as in a benchmark's test split); {whose} classes are 0..{len(label2id) - 1} "
            f"({names}). Give labelled data, or use `rnn-textclf predict` for unlabelled texts."
        )
    if unknown:
        row = int(np.flatnonzero(np.isin(positions, list(unknown)))[0])
        first = int(positions[row])
        # a ClassLabel's id is shown as its name (the model's labels are names)
        shown = {j: unknown[j] if class_names is not None else distinct[j].as_py() for j in unknown}
        others = [v for j, v in shown.items() if j != first]
        raise CLIError(
            f"label {shown[first]!r} in row {row} of {where} is not one of {whose} labels"
            f"{f' (nor are {others[:5]})' if others else ''}; {whose} labels are {names}."
        )
    return ids[positions]


def _train_sample_indices(labels: Sequence[Any], n: int, seed: int, plan: dict[str, Any]) -> list[int]:
    """Rows for ``--max-train-samples n``: a seeded sample, stratified by class for single-label data.

    The first ``n`` rows of a file sorted by label would hold one class only (and train a model that always
    says it). Each class gets its share of ``n`` (largest remainders; at least one row while ``n`` allows), the
    rows within a class drawn by ``seed``. Multi-label rows are drawn uniformly. A sample with a single class
    is refused like a one-class file.

    Returns:
        Sorted row indices (file order), ``len == min(n, len(labels))``.
    """
    import numpy as np

    total = len(labels)
    if n >= total:
        return list(range(total))
    rng = np.random.default_rng(seed)
    if plan["problem_type"] != "single_label_classification":
        return sorted(rng.choice(total, size=n, replace=False).tolist())
    codes = np.asarray(labels)
    classes, counts = np.unique(codes, return_counts=True)
    exact = counts * n / total  # (classes,)
    take = np.minimum(np.maximum(np.floor(exact), 1 if n >= len(classes) else 0), counts).astype(int)
    # Hand out what is left by largest remainder (or take back what the one-row minimum overspent).
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    while take.sum() < n:
        for i in order:
            if take.sum() < n and take[i] < counts[i]:
                take[i] += 1
    for i in np.argsort(-take, kind="stable"):
        while take.sum() > n and take[i] > 1:
            take[i] -= 1
    chosen = [rng.permutation(np.flatnonzero(codes == c))[:k] for c, k in zip(classes, take, strict=True)]
    rows = np.sort(np.concatenate(chosen))
    present = [str(plan["names"][int(c)]) for c, k in zip(classes, take, strict=True) if k > 0]
    if len(present) < 2:
        raise CLIError(
            f"--max-train-samples {n} leaves only one class ({present[0] if present else 'none'}) in the "
            f"training subset; a classifier needs at least two. Pass a larger --max-train-samples "
            f"(at least {len(classes)}, one row per class)."
        )
    return rows.tolist()


def _sample_train_split(split: Any, plan: dict[str, Any], n: int, seed: int) -> Any:
    """``split`` cut to ``--max-train-samples n`` rows by ``_train_sample_indices``."""
    if n >= len(split):
        return split
    rows = _train_sample_indices(_encode_labels(split, plan, "the train split"), n, seed, plan)
    _info(
        f"--max-train-samples {n}: training on a seeded{' stratified' if plan['problem_type'] == 'single_label_classification' else ''} "
        f"sample of {len(rows):,} of the {len(split):,} train rows (--seed {seed})."
    )
    return split.select(rows)
