"""The ``rnn-textclf`` command line: train, evaluate, predict and push recurrent text classifiers.

Progress goes to stderr, results to stdout. Bad input ends with one line on stderr saying what is wrong and
how to fix it, and exit status 2; nothing in an existing output folder is overwritten without
``--overwrite``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("rnn_textclf.cli")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

DATA_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}

#: Defaults of `rnn-textclf train`; tuned so the embedded SMS spam default trains in well under 2 minutes.
TRAIN_DEFAULTS: dict[str, Any] = {
    "rnn_type": "lstm",
    "hidden_size": 64,
    "num_layers": 1,
    "bidirectional": True,
    "pooling": "max",
    "embedding_dim": 64,
    "dropout": 0.0,
    "embedding_dropout": 0.1,
    "classifier_dropout": 0.2,
    "vectors": None,
    "freeze_vectors": False,
    "min_freq": 1,
    "max_vocab_size": 30000,
    "max_length": 256,
    "epochs": 6,
    "batch_size": 32,
    "lr": 3e-3,
    "weight_decay": 0.0,
    "seed": 42,
    "output_dir": "rnn-textclf-model",
    "max_train_samples": None,
    "max_steps": -1,
}


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------- helpers
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Training libraries print progress to stdout; keep stdout for results."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _configure_threads(threads: int | None) -> None:
    """One torch thread unless asked otherwise.

    The CLI's recurrent models are small: a second intra-op thread gains little on a quiet machine, and on a
    busy one OpenMP threads that spin-wait for a core made the default training 8x slower (230 s vs 30 s).
    ``--threads N`` or ``OMP_NUM_THREADS`` choose otherwise.
    """
    import torch

    if threads is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return
        threads = 1
    torch.set_num_threads(threads)


def _configure_logging(quiet: bool) -> None:
    import transformers

    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr, force=True)
    logging.getLogger("rnn_textclf").setLevel(level)
    transformers.logging.set_verbosity_error()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets

    datasets.logging.set_verbosity_error()
    if quiet:
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()


def _info(message: str) -> None:
    logger.info(message)


# ---------------------------------------------------------------------------------------------- data
def _load_files(files: dict[str, str], csv_column_names: list[str] | None) -> Any:
    import datasets

    formats = set()
    for split, name in files.items():
        path = Path(name)
        if not path.is_file():
            raise CLIError(f"--{split}-file {name!r} does not exist (or is not a file); check the path.")
        suffix = path.suffix.lower()
        if suffix not in DATA_FORMATS:
            raise CLIError(
                f"--{split}-file {name!r} has an unknown format {suffix or '(none)'!r}; "
                f"use one of {', '.join(sorted(DATA_FORMATS))}."
            )
        formats.add((DATA_FORMATS[suffix], suffix == ".tsv"))
    if len(formats) > 1:
        raise CLIError("--train-file/--validation-file/--test-file must all have the same format.")
    builder, tsv = formats.pop()
    kwargs: dict[str, Any] = {}
    if builder == "csv":
        if tsv:
            kwargs["delimiter"] = "\t"
        if csv_column_names:
            kwargs["column_names"] = csv_column_names
    # Small local files load in a blink; their "Generating split" bars would only clutter error output.
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(builder, data_files=files, **kwargs)
    except Exception as err:  # the datasets parsers raise many types
        raise CLIError(f"could not read {', '.join(files.values())}: {str(err).splitlines()[0]}") from None
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()


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
    from .data import load_sms_spam

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
        row, value = next(((i, v) for i, v in enumerate(split[name]) if v is not None), (0, None))
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


def _label_plan(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    """Decides single- vs multi-label and the label names from the training split."""
    train = data["train"]
    label_columns = args.label_column or ["label"]
    missing = [c for c in label_columns if c not in train.column_names]
    if missing:
        raise CLIError(
            f"--label-column {missing[0]!r} is not in the data; columns are {', '.join(train.column_names)}."
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
        mapping = None
    else:
        values = train[column]
        if any(v is None for v in values):
            raise CLIError(
                f"--label-column {column!r} has empty values in the train split; fill or drop them."
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
        names = [str(v) for v in uniques]
        mapping = {v: i for i, v in enumerate(uniques)}
    if len(names) < 2:
        raise CLIError(
            f"--label-column {column!r} has only one class ({names[0] if names else 'none'}) in the train split; "
            "a classifier needs at least two."
        )
    return {
        "problem_type": "single_label_classification",
        "columns": [column],
        "names": names,
        "mapping": mapping,
    }


def _encode_labels(split: Any, plan: dict[str, Any], split_name: str) -> list[Any]:
    if plan["problem_type"] == "multi_label_classification":
        rows = list(zip(*(split[c] for c in plan["columns"]), strict=True))
        return [[float(v) for v in row] for row in rows]
    column = plan["columns"][0]
    values = split[column]
    if plan["mapping"] is None:
        return list(values)
    mapping = plan["mapping"]
    unknown = sorted({str(v) for v in values if v not in mapping})
    if unknown:
        raise CLIError(
            f"the {split_name} split has labels {unknown[:5]} that the train split lacks; "
            f"known labels: {', '.join(plan['names'])}."
        )
    return [mapping[v] for v in values]


# ---------------------------------------------------------------------------------------------- output
def _check_output_dir(path: Path, overwrite: bool) -> None:
    if path.exists() and not path.is_dir():
        raise CLIError(f"--output-dir {str(path)!r} is a file; choose a folder.")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise CLIError(
            f"--output-dir {str(path)!r} exists and is not empty; pass --overwrite to replace it or choose "
            "another --output-dir."
        )


@contextlib.contextmanager
def _shared_work_dirs(state: Any, output_dir: Path) -> Iterator[tuple[str, Path]]:
    """Trainer's working folder and the staging folder: made by rank 0, the same paths on every rank.

    Both sit beside ``output_dir`` (shared storage in a multi-node run), so every rank loads the best
    checkpoint that rank 0 saved. Rank 0 removes the working folder at the end.
    """
    parent = output_dir.absolute().parent
    paths: list[Any] = [None, None]
    if state.is_main_process:
        paths = [
            tempfile.mkdtemp(prefix=f".{output_dir.name}.work-", dir=parent),
            tempfile.mkdtemp(prefix=f".{output_dir.name}.staging-", dir=parent),
        ]
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(paths)
    try:
        yield paths[0], Path(paths[1])
    finally:
        if state.is_main_process:
            shutil.rmtree(paths[0], ignore_errors=True)


def _publish(staging: Path, target: Path) -> None:
    """Moves the finished staging folder to the target, replacing it only at the very end."""
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(backup)
    staging.rename(target)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def _print_metrics_table(rows: list[dict[str, Any]], keys: list[str], stream: Any) -> None:
    header = ["epoch", *keys]
    print(" | ".join(f"{h:>10}" for h in header), file=stream)
    print("-+-".join("-" * 10 for _ in header), file=stream)
    for row in rows:
        cells = [f"{row.get('epoch', 0):>10.0f}"]
        for key in keys:
            value = row.get(key)
            cells.append(f"{value:>10.4f}" if isinstance(value, (int, float)) else f"{'-':>10}")
        print(" | ".join(cells), file=stream)


def _plot_confusion(cm: list[list[int]], names: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.asarray(cm)
    size = max(3.5, 0.8 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    limit = matrix.max() / 2 if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                color="white" if matrix[i, j] > limit else "black",
            )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_curves(history: list[dict[str, Any]], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["epoch"], h["loss"]) for h in history if "loss" in h]
    evals = [h for h in history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot(*zip(*train, strict=True), marker="o", label="train loss")
    if evals:
        ax.plot(
            [h["epoch"] for h in evals], [h["eval_loss"] for h in evals], marker="o", label="validation loss"
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if evals and f"eval_{metric}" in evals[0]:
        other = ax.twinx()
        other.plot(
            [h["epoch"] for h in evals],
            [h[f"eval_{metric}"] for h in evals],
            color="green",
            marker="s",
            label=f"validation {metric}",
        )
        other.set_ylabel(metric)
        other.legend(loc="center right")
    ax.legend(loc="upper right")
    ax.set_title("training curve")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- commands
def _merge_config_file(
    parser: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str]
) -> argparse.Namespace:
    """Values of ``--config FILE`` become the train command's defaults; flags on the command line win."""
    if not args.config:
        return args
    path = Path(args.config)
    if not path.is_file():
        raise CLIError(f"--config {args.config!r} does not exist.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        elif path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            raise CLIError(f"--config {args.config!r} must be a .yaml, .yml or .json file.")
    except (ValueError, ImportError) as err:
        raise CLIError(f"--config {args.config!r} is not valid: {str(err).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise CLIError(f"--config {args.config!r} must hold a mapping of option names to values.")
    train_parser = parser.train_parser
    known = {action.dest for action in train_parser._actions}
    normalised = {key.replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(normalised) - known - {"help", "config"})
    if unknown:
        raise CLIError(f"--config {args.config!r} has unknown keys {unknown}; use the train options' names.")
    train_parser.set_defaults(**normalised)
    return parser.parse_args(argv)


def cmd_train(args: argparse.Namespace) -> int:
    if getattr(args, "recipe", None):
        from .recipes._cli import cmd_train_recipe

        return cmd_train_recipe(args)
    output_dir = Path(args.output_dir)
    _check_output_dir(output_dir, args.overwrite)
    started = time.perf_counter()

    import numpy as np
    import torch
    from transformers import EarlyStoppingCallback, TrainerCallback, TrainingArguments, set_seed
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class _BarsOnly(ProgressCallback):
        """Progress bars without the log dicts that ProgressCallback also prints."""

        def on_log(self, *args: Any, **kwargs: Any) -> None:
            return None

    from accelerate import PartialState

    from .collator import PackedSequenceCollator, RNNTrainer
    from .configuration import RNNClassifierConfig
    from .metrics import classification_metrics, make_compute_metrics
    from .modeling import RNNClassifier
    from .tokenization import RNNTokenizer

    # Under torchrun / accelerate launch every rank runs this command. Joining the process group first lets
    # rank 0 alone write files and print, while every rank trains on the same data with the same vocab.
    state = PartialState(cpu=not torch.cuda.is_available())
    if not state.is_main_process:
        args.quiet = True
        _configure_logging(quiet=True)
    set_seed(args.seed)
    with state.main_process_first():  # rank 0 fills the datasets cache, the other ranks then read it
        data = _load_data(args)
    if "train" not in data:
        raise CLIError(f"the data has no 'train' split (splits: {', '.join(data)}).")
    text_columns = _text_columns(args, data["train"].column_names)
    for name in data:
        _check_text_features(data[name], text_columns, name)
    plan = _label_plan(args, data)
    if "validation" not in data:
        # A seeded validation split from train: early stopping never looks at the test split.
        from .data import stratified_split

        train = data["train"]
        if plan["problem_type"] == "single_label_classification":
            strat = _encode_labels(train, plan, "train")
        else:
            strat = [0] * len(train)
        keep, held = stratified_split(strat, (0.9, 0.1), args.seed)
        if len(held) == 0 or len(keep) == 0:
            raise CLIError(
                f"the train split has only {len(train)} rows, too few to hold out a validation split; "
                "pass more data or a --validation-file."
            )
        data["validation"] = train.select(held)
        data["train"] = train.select(keep)
        _info(
            f"No validation split given: holding out {len(held)} seeded stratified train rows for validation."
        )
    if args.max_train_samples:
        data["train"] = data["train"].select(range(min(args.max_train_samples, len(data["train"]))))

    splits: dict[str, dict[str, list[Any]]] = {}
    for name in ("train", "validation", "test"):
        if name in data:
            split = data[name]
            for column in text_columns:
                if column not in split.column_names:
                    raise CLIError(f"--text-column {column!r} is missing from the {name} split.")
            splits[name] = {
                "text": _joined_texts(split, text_columns, name),
                "label": _encode_labels(split, plan, name),
            }

    tokenizer = RNNTokenizer.train_from_iterator(
        iter(splits["train"]["text"]),
        min_freq=args.min_freq,
        max_vocab_size=args.max_vocab_size,
        show_progress=not args.quiet,
    )
    _info(
        f"Vocab: {len(tokenizer):,} tokens (min_freq={args.min_freq}, max_vocab_size={args.max_vocab_size})."
    )

    from datasets import Dataset

    def encode(name: str) -> Any:
        ds = Dataset.from_dict(splits[name])
        return ds.map(
            lambda batch: tokenizer(
                batch["text"], truncation=True, max_length=args.max_length, return_length=True
            ),
            batched=True,
            remove_columns=["text"],
            desc=f"tokenizing {name}",
        )

    encoded = {name: encode(name) for name in splits}

    vectors = None
    embedding_dim = args.embedding_dim
    if args.vectors:
        from .vectors import load_word_vectors

        try:
            vectors = load_word_vectors(args.vectors, vocab=tokenizer.get_vocab())
        except (FileNotFoundError, ValueError) as err:
            raise CLIError(f"--vectors {args.vectors!r}: {str(err).splitlines()[0]}") from None
        if args.embedding_dim_given and args.embedding_dim != vectors.dim:
            raise CLIError(
                f"--embedding-dim {args.embedding_dim} differs from the {vectors.dim}-d --vectors {args.vectors!r}; "
                "drop --embedding-dim or pick vectors of that size."
            )
        embedding_dim = vectors.dim

    names = plan["names"]
    config = RNNClassifierConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        problem_type=plan["problem_type"],
        rnn_type=args.rnn_type,
        embedding_dim=embedding_dim,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        bidirectional=args.bidirectional,
        pooling=args.pooling,
        dropout=args.dropout,
        embedding_dropout=args.embedding_dropout,
        classifier_dropout=args.classifier_dropout,
    )
    model = RNNClassifier(config)
    coverage = None
    if vectors is not None:
        coverage = model.load_pretrained_embeddings(vectors, tokenizer, freeze=args.freeze_vectors)
        _info(str(coverage))
    n_params = sum(p.numel() for p in model.parameters())
    _info(
        f"Model: {args.rnn_type} x{args.num_layers}{' bidirectional' if args.bidirectional else ''}, "
        f"{n_params:,} parameters."
    )

    multi = plan["problem_type"] == "multi_label_classification"
    best_metric = "micro_f1" if multi else ("f1" if len(names) == 2 else "macro_f1")
    history: list[dict[str, Any]] = []
    metric_keys = [
        "loss",
        "eval_loss",
        "eval_accuracy" if not multi else "eval_exact_match",
        f"eval_{best_metric}",
    ]
    metric_keys = list(dict.fromkeys(metric_keys))

    class TableCallback(TrainerCallback):
        printed_header = False

        def on_log(
            self, _args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if logs:
                history.append(dict(logs, epoch=logs.get("epoch", state.epoch)))

        def on_evaluate(
            self, _args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kw: Any
        ) -> None:
            if args.quiet or not metrics:
                return
            train_loss = next((h["loss"] for h in reversed(history) if "loss" in h), None)
            row = {"epoch": state.epoch, "loss": train_loss, **metrics}
            if not self.printed_header:
                print(
                    "\n"
                    + " | ".join(
                        f"{h:>10}" for h in ["epoch", *[k.replace("eval_", "val_") for k in metric_keys]]
                    ),
                    file=sys.stderr,
                )
                self.printed_header = True
            cells = [f"{row['epoch']:>10.2f}"] + [
                f"{row[k]:>10.4f}" if isinstance(row.get(k), (int, float)) else f"{'-':>10}"
                for k in metric_keys
            ]
            print(" | ".join(cells), file=sys.stderr)

    with _shared_work_dirs(state, output_dir) as (work, staging):
        try:
            training_args = TrainingArguments(
                output_dir=work,
                per_device_train_batch_size=args.batch_size,
                per_device_eval_batch_size=256,
                learning_rate=args.lr,
                weight_decay=args.weight_decay,
                num_train_epochs=args.epochs,
                max_steps=args.max_steps,
                eval_strategy="epoch",
                save_strategy="epoch",
                logging_strategy="epoch",
                save_total_limit=2,
                load_best_model_at_end=True,
                metric_for_best_model=best_metric,
                greater_is_better=True,
                train_sampling_strategy="group_by_length",
                seed=args.seed,
                report_to="none",
                disable_tqdm=args.quiet,
                use_cpu=not torch.cuda.is_available(),
                dataloader_pin_memory=torch.cuda.is_available(),  # pinning warns and does nothing on CPU
                save_only_model=True,
                # Every parameter takes part in each forward pass: spare DDP the search for unused ones.
                ddp_find_unused_parameters=False,
            )
            trainer = RNNTrainer(
                model=model,
                args=training_args,
                train_dataset=encoded["train"],
                eval_dataset=encoded["validation"],
                data_collator=PackedSequenceCollator(tokenizer),
                processing_class=tokenizer,
                compute_metrics=make_compute_metrics(plan["problem_type"], names),
                callbacks=[TableCallback(), EarlyStoppingCallback(early_stopping_patience=3)],
            )
            # Trainer prints every log dict; the table above says the same once per epoch.
            trainer.remove_callback(PrinterCallback)
            trainer.remove_callback(ProgressCallback)
            if not args.quiet:
                trainer.add_callback(_BarsOnly())
            with _stdout_to_stderr():
                trainer.train()
            report: dict[str, Any] = {
                "model": {"rnn_type": args.rnn_type, "parameters": n_params, "vocab_size": len(tokenizer)},
                "labels": names,
                "train_rows": len(encoded["train"]),
                "validation_rows": len(encoded["validation"]),
                "processes": training_args.world_size,  # > 1 under torchrun / accelerate launch
                "best_validation": {best_metric: trainer.state.best_metric},
                "history": history,
            }
            if coverage is not None:
                report["vectors"] = {"name": args.vectors, "coverage": str(coverage)}
            eval_split = "test" if "test" in encoded else "validation"
            with _stdout_to_stderr():
                prediction = trainer.predict(encoded[eval_split])
            logits = (
                prediction.predictions[0]
                if isinstance(prediction.predictions, tuple)
                else prediction.predictions
            )
            if multi:
                from .metrics import multilabel_metrics

                final = multilabel_metrics(prediction.label_ids, 1 / (1 + np.exp(-logits)))
            else:
                final = classification_metrics(prediction.label_ids, logits.argmax(-1), names)
            if not multi and state.is_main_process:
                _plot_confusion(
                    final["confusion_matrix"], names, staging / "confusion_matrix.png", f"{eval_split} split"
                )
            report[eval_split] = final
            report["train_seconds"] = round(time.perf_counter() - started, 1)
            trainer.save_model(str(staging))  # every rank calls it; rank 0 writes
            if state.is_main_process:
                _plot_curves(history, best_metric, staging / "training_curve.png")
                _write_card(trainer.model, staging, args, report, eval_split, coverage)
                (staging / "metrics.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
                _publish(staging, output_dir)
        except BaseException:
            if state.is_main_process:
                shutil.rmtree(staging, ignore_errors=True)
            raise

    if not state.is_main_process:
        return EXIT_OK
    _print_report(report, eval_split, names, multi, output_dir)
    if args.push_to_hub:
        _push(output_dir, args.push_to_hub)
    return EXIT_OK


def _write_card(
    model: Any, folder: Path, args: argparse.Namespace, report: dict[str, Any], split: str, coverage: Any
) -> None:
    from .modelcard import write_model_card

    if args.dataset:
        data = f"`{args.dataset}`" + (f" ({args.dataset_config})" if args.dataset_config else "")
    elif args.train_file:
        data = f"`{Path(args.train_file).name}`"
    else:
        data = "the SMS Spam Collection v.1 (embedded in rnn-textclf), seeded stratified 80/10/10 split"
    info: dict[str, Any] = {
        "training_data": f"{data}; {report['train_rows']:,} training and {report['validation_rows']:,} validation rows.",
        "hyperparameters": {
            k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "min_freq", "max_length", "seed")
        },
        "metrics": {k: v for k, v in report[split].items() if isinstance(v, float)},
        "eval_data": f"the {split} split",
        "training_results": [
            {k: v for k, v in row.items() if isinstance(v, (int, float))}
            for row in report["history"]
            if "eval_loss" in row
        ],
    }
    if args.dataset:
        info["datasets"] = [args.dataset]
    if coverage is not None:
        info["vectors"] = coverage
    if not args.dataset and not args.train_file:
        from .data import SMS_SPAM_CITATION

        info["citation"] = SMS_SPAM_CITATION
    write_model_card(model, folder, if_exists="replace", **info)


def _print_report(
    report: dict[str, Any], split: str, names: list[str], multi: bool, output_dir: Path
) -> None:
    final = report[split]
    out = sys.stdout
    print(f"\nrnn-textclf: trained in {report['train_seconds']:.1f} s; {split} split results:", file=out)
    if multi:
        for key, value in final.items():
            print(f"  {key:<12} {value:.4f}", file=out)
    else:
        print(f"  accuracy     {final['accuracy']:.4f}", file=out)
        print(f"  macro F1     {final['macro_f1']:.4f}", file=out)
        print(f"  {'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}", file=out)
        for name in names:
            row = final["per_class"][name]
            print(
                f"  {name:<14}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10}",
                file=out,
            )
    print(f"Saved model, tokenizer, model card, metrics.json and plots to {output_dir}/", file=out)


def _load_for_inference(args: argparse.Namespace) -> tuple[Any, Any]:
    """The model as asked: float, dynamic int8 (``--quantize``) or onnxruntime (``--onnx``)."""
    if args.quantize and args.onnx:
        raise CLIError("use either --quantize or --onnx, not both.")
    model, tokenizer = _load_model_and_tokenizer(args.model)
    if args.quantize:
        from .export import quantize_dynamic

        try:
            model = quantize_dynamic(model)
        except ValueError as err:
            raise CLIError(f"--quantize: {str(err).splitlines()[0]}") from None
    elif args.onnx:
        from .export import OnnxClassifier, export_onnx

        existing = Path(args.model) / "model.onnx"
        try:
            if existing.is_file():
                model = OnnxClassifier(existing)
            else:
                # Export once into a temporary file; `export_onnx` checks it against the model.
                folder = Path(tempfile.mkdtemp(prefix="rnn-textclf-onnx-"))
                model = OnnxClassifier(export_onnx(model, folder / "model.onnx"))
        except ImportError:
            raise CLIError('--onnx needs onnx and onnxruntime: pip install "rnn-textclf[export]"') from None
        except ValueError as err:
            raise CLIError(f"--onnx: {str(err).splitlines()[0]}") from None
    return model, tokenizer


def _load_model_and_tokenizer(name: str) -> tuple[Any, Any]:
    from transformers import AutoTokenizer

    from .modeling import RNNClassifier

    path = Path(name)
    if path.exists() and not (path / "config.json").is_file():
        raise CLIError(
            f"MODEL {name!r} is not a saved rnn-textclf model (no config.json); pass the --output-dir of a "
            "training run or a Hub repo id."
        )
    try:
        model = RNNClassifier.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise CLIError(f"could not load MODEL {name!r}: {str(err).splitlines()[0]}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise CLIError(
            f"could not load the tokenizer of MODEL {name!r}: {str(err).splitlines()[0]}"
        ) from None
    model.eval()
    return model, tokenizer


def predict_texts(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    top_k: int = 1,
    max_length: int | None = 512,
) -> list[dict[str, Any]]:
    """Classifies texts in input order: label, score and the top-k labels with scores."""
    import torch

    from .collator import PackedSequenceCollator

    collator = PackedSequenceCollator(tokenizer)
    multi = model.config.problem_type == "multi_label_classification"
    id2label = model.config.id2label
    results: list[dict[str, Any]] = []
    k = min(top_k, model.config.num_labels)
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        enc = tokenizer(chunk, truncation=max_length is not None, max_length=max_length)
        batch = collator([{"input_ids": ids} for ids in enc["input_ids"]])
        with torch.no_grad():
            logits = model(**batch).logits
        scores = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
        top = scores.topk(k, dim=-1)
        for text, values, indices in zip(chunk, top.values.tolist(), top.indices.tolist(), strict=True):
            ranked = [
                {"label": id2label[i], "score": round(v, 6)} for v, i in zip(values, indices, strict=True)
            ]
            results.append(
                {"text": text, "label": ranked[0]["label"], "score": ranked[0]["score"], "top_k": ranked}
            )
    return results


def cmd_predict(args: argparse.Namespace) -> int:
    texts = list(args.texts)
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise CLIError(f"--file {args.file!r} does not exist.")
        texts.extend(line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines())
    if not texts and not args.file:
        if sys.stdin is None or sys.stdin.isatty():
            raise CLIError("no texts: pass them as arguments, with --file F (one per line), or on stdin.")
        texts = [line.rstrip("\n") for line in sys.stdin]
    model, tokenizer = _load_for_inference(args)
    for row in predict_texts(model, tokenizer, texts, batch_size=args.batch_size, top_k=args.top_k):
        print(json.dumps(row, ensure_ascii=False))
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .metrics import classification_metrics

    model, tokenizer = _load_for_inference(args)
    data = _load_files({"test": args.test_file}, args.csv_column_names)["test"]
    text_columns = _text_columns(args, data.column_names)
    label_column = args.label_column or "label"
    if label_column not in data.column_names:
        raise CLIError(
            f"--label-column {label_column!r} is not in {args.test_file!r}; columns are "
            f"{', '.join(data.column_names)}."
        )
    texts = _joined_texts(data, text_columns, "test")
    label2id = {str(k): v for k, v in model.config.label2id.items()}
    labels = []
    for row, value in enumerate(data[label_column]):
        key = str(value)
        if key not in label2id:
            raise CLIError(
                f"label {value!r} in row {row} is not one of the model's labels ({', '.join(label2id)})."
            )
        labels.append(label2id[key])
    preds = predict_texts(model, tokenizer, texts, batch_size=args.batch_size)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    pred_ids = [label2id[str(p["label"])] for p in preds]
    metrics = classification_metrics(labels, pred_ids, names)
    metrics["rows"] = len(labels)
    if args.json == "-":
        print(json.dumps(metrics, indent=2))
        return EXIT_OK
    print(f"rows {len(labels)}  accuracy {metrics['accuracy']:.4f}  macro F1 {metrics['macro_f1']:.4f}")
    print(f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name in names:
        row = metrics["per_class"][name]
        print(
            f"{name:<14}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2) + "\n")
    return EXIT_OK


def _push(folder: Path, repo: str) -> None:
    model, tokenizer = _load_model_and_tokenizer(str(folder))
    try:
        url = model.push_to_hub(repo)
        tokenizer.push_to_hub(repo)
    except Exception as err:  # huggingface_hub raises many HTTP error types
        raise CLIError(f"could not push to {repo!r}: {str(err).splitlines()[0]} (is HF_TOKEN set?)") from None
    print(f"Pushed {folder} to {repo} ({url})")


def cmd_push(args: argparse.Namespace) -> int:
    _push(Path(args.model), args.repo)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------- parser
def _add_data_options(parser: argparse.ArgumentParser, *, train: bool) -> None:
    group = parser.add_argument_group("data")
    if train:
        group.add_argument("--train-file", help="training data (.csv, .tsv, .jsonl/.json, .parquet)")
        group.add_argument("--validation-file", help="validation data, same format (default: 10%% of train)")
        group.add_argument("--test-file", help="test data, same format (reported at the end)")
        group.add_argument("--dataset", help="a datasets.load_dataset name, e.g. fancyzhx/ag_news")
        group.add_argument("--dataset-config", help="the data set's configuration name")
        group.add_argument(
            "--label-column",
            action="append",
            help="label column (default: label); repeat for multi-label 0/1 columns",
        )
    else:
        group.add_argument(
            "--test-file", required=True, help="labelled data (.csv, .tsv, .jsonl/.json, .parquet)"
        )
        group.add_argument("--label-column", help="label column (default: label)")
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


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fast CPU inference")
    group.add_argument(
        "--quantize", action="store_true", help="run the LSTM/GRU and classifier in dynamic int8"
    )
    group.add_argument(
        "--onnx",
        action="store_true",
        help="run with onnxruntime (MODEL/model.onnx, or exported on the fly; needs the export extra)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnn-textclf",
        description="Train, evaluate, run and share RNN/LSTM/GRU text classifiers (Hugging Face compatible).",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"rnn-textclf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train a classifier (default: the embedded SMS spam data)",
        description="Train a classifier. With no data options it trains on the SMS Spam "
        "Collection shipped with the package.",
    )
    _add_data_options(train, train=True)
    m = train.add_argument_group("model")
    m.add_argument("--rnn-type", choices=["rnn", "lstm", "gru"])
    m.add_argument("--hidden-size", type=_positive_int)
    m.add_argument("--num-layers", type=_positive_int)
    m.add_argument("--bidirectional", action=argparse.BooleanOptionalAction)
    m.add_argument("--pooling", choices=["last", "mean", "max", "mean_max"])
    m.add_argument("--embedding-dim", type=_positive_int)
    m.add_argument("--dropout", type=_probability, help="between stacked layers")
    m.add_argument("--embedding-dropout", type=_probability)
    m.add_argument("--classifier-dropout", type=_probability)
    m.add_argument("--vectors", help="pretrained word vectors, e.g. glove.6B.50d or a path")
    m.add_argument("--freeze-vectors", action=argparse.BooleanOptionalAction, help="keep the vectors fixed")
    m.add_argument("--min-freq", type=_positive_int, help="drop words seen fewer times in train")
    m.add_argument("--max-vocab-size", type=_positive_int)
    m.add_argument("--max-length", type=_positive_int, help="truncate texts to this many tokens")
    t = train.add_argument_group("training")
    t.add_argument("--epochs", type=_positive_float)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--lr", type=_positive_float, help="learning rate (AdamW)")
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--max-train-samples", type=_positive_int, help="use only the first N training rows")
    t.add_argument("--max-steps", type=int, help="stop after N optimizer steps (overrides --epochs)")
    t.add_argument(
        "--recipe",
        help="train by a named recipe (bilstm-glove, lecture-rnn; see rnn_textclf.recipes) or a recipe "
        ".yaml/.json file; options that differ from their defaults override the recipe's fields",
    )
    o = train.add_argument_group("output")
    o.add_argument("--output-dir", help="where to write the model (default: ./rnn-textclf-model)")
    o.add_argument("--overwrite", action="store_true", help="replace a non-empty --output-dir")
    o.add_argument("--push-to-hub", metavar="REPO", help="also push the model to this Hub repo")
    o.add_argument("--config", help="a .yaml/.json file with any of these options (flags win)")
    o.add_argument("--quiet", action="store_true", help="no progress output")
    o.add_argument("--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)")
    train.set_defaults(func=cmd_train, **TRAIN_DEFAULTS)
    parser.train_parser = train  # `--config FILE` sets this sub-parser's defaults

    evaluate = sub.add_parser("evaluate", help="score a trained model on labelled data")
    evaluate.add_argument("model", help="a model folder or Hub repo id")
    _add_data_options(evaluate, train=False)
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)
    evaluate.add_argument(
        "--json", metavar="PATH", help="also write the metrics as JSON ('-': print JSON only)"
    )
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.add_argument(
        "--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)"
    )
    _add_inference_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="classify texts (arguments, --file or stdin) to JSON lines")
    predict.add_argument("model", help="a model folder or Hub repo id")
    predict.add_argument("texts", nargs="*", help="texts to classify")
    predict.add_argument("--file", help="a text file, one text per line")
    predict.add_argument("--top-k", type=_positive_int, default=1)
    predict.add_argument("--batch-size", type=_positive_int, default=256)
    predict.add_argument("--quiet", action="store_true")
    predict.add_argument(
        "--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)"
    )
    _add_inference_options(predict)
    predict.set_defaults(func=cmd_predict)

    push = sub.add_parser("push", help="upload a trained model folder to a Hub repo")
    push.add_argument("model", help="a model folder")
    push.add_argument("repo", help="the Hub repo id, e.g. acme/spam-lstm")
    push.add_argument("--quiet", action="store_true")
    push.add_argument("--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)")
    push.set_defaults(func=cmd_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rnn-textclf``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "train":
            args = _merge_config_file(parser, args, argv)
            args.embedding_dim_given = any(a.startswith("--embedding-dim") for a in argv)
        _configure_logging(args.quiet)
        _configure_threads(args.threads)
        return args.func(args)
    except CLIError as err:
        print(f"rnn-textclf: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rnn-textclf: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # `python -m rnn_textclf.cli` runs this file as `__main__`, a second copy of the module; run the imported
    # `rnn_textclf.cli` instead so that there is one CLIError class (other modules raise that one).
    from rnn_textclf.cli import main as _main

    raise SystemExit(_main())
