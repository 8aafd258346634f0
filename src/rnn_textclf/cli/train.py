"""``rnn-textclf train``: train a classifier on the CLI's data (default or by ``--recipe``) and write its folder."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._common import (
    EXIT_OK,
    CLIError,
    _configure_logging,
    _info,
    _positive_float,
    _positive_int,
    _probability,
    _stdout_to_stderr,
)
from ._data import (
    _add_data_options,
    _check_text_features,
    _encode_labels,
    _joined_texts,
    _label_plan,
    _load_data,
    _text_columns,
)
from ._output import (
    _check_output_dir,
    _plot_confusion,
    _plot_curves,
    _print_report,
    _publish,
    _shared_work_dirs,
    _write_card,
)
from .push import _push

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

#: CLI option -> recipe field (model fields under ``model``).
_MODEL_OPTIONS = (
    "rnn_type",
    "hidden_size",
    "num_layers",
    "bidirectional",
    "pooling",
    "dropout",
    "embedding_dropout",
    "classifier_dropout",
)

_TRAINING_OPTIONS = (
    "vectors",
    "min_freq",
    "max_vocab_size",
    "max_length",
    "batch_size",
    "lr",
    "weight_decay",
)


#: Defaults of the distillation options (``--teacher`` and the options that only apply with it).
DISTILLATION_DEFAULTS: dict[str, Any] = {
    "teacher": None,
    "teacher_revision": None,
    "teacher_batch_size": 64,
    "augment": 0,
    "distillation_alpha": None,
    "distillation_temperature": None,
    "distillation_loss": None,
}


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


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
        if getattr(args, "teacher", None):
            raise CLIError(
                "--teacher cannot be combined with --recipe yet (recipes still train in their own loop); "
                "drop --recipe and give the model options, e.g. --rnn-type lstm --vectors glove.6B.50d."
            )
        return cmd_train_recipe(args)
    output_dir = Path(args.output_dir)
    _check_output_dir(output_dir, args.overwrite)
    started = time.perf_counter()

    import numpy as np
    import torch
    from transformers import EarlyStoppingCallback, TrainerCallback, set_seed
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class _BarsOnly(ProgressCallback):
        """Progress bars without the log dicts that ProgressCallback also prints."""

        def on_log(self, *args: Any, **kwargs: Any) -> None:
            return None

    from accelerate import PartialState

    from ..collator import PackedSequenceCollator
    from ..configuration import RNNClassifierConfig
    from ..metrics import classification_metrics, make_compute_metrics
    from ..modeling import RNNClassifier
    from ..tokenization import RNNTokenizer
    from ..trainer import RNNTrainer
    from ..training_args import RNNTrainingArguments

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
        from ..data import stratified_split

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

    distillation = _distillation_data(args, splits["train"], plan)  # None without --teacher
    tokenizer = RNNTokenizer.train_from_iterator(
        iter(distillation["dataset"]["text"] if distillation else splits["train"]["text"]),
        min_freq=args.min_freq,
        max_vocab_size=args.max_vocab_size,
        show_progress=not args.quiet,
    )
    _info(
        f"Vocab: {len(tokenizer):,} tokens (min_freq={args.min_freq}, max_vocab_size={args.max_vocab_size})."
    )

    from datasets import Dataset

    def encode(name: str) -> Any:
        ds = distillation["dataset"] if distillation and name == "train" else Dataset.from_dict(splits[name])
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
        from ..vectors import load_word_vectors

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
    if distillation:
        config.distillation = distillation["card"]  # config.json and the model card say how it was trained
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
            training_args = RNNTrainingArguments(
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
                **(distillation["arguments"] if distillation else {}),
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
            if distillation:
                report["distillation"] = distillation["card"]
            eval_split = "test" if "test" in encoded else "validation"
            with _stdout_to_stderr():
                prediction = trainer.predict(encoded[eval_split])
            logits = (
                prediction.predictions[0]
                if isinstance(prediction.predictions, tuple)
                else prediction.predictions
            )
            if multi:
                from ..metrics import multilabel_metrics

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


def _distillation_data(
    args: argparse.Namespace, train: dict[str, list[Any]], plan: dict[str, Any]
) -> dict[str, Any] | None:
    """``--teacher``: the transfer set with the teacher's logits, the trainer arguments and the card entry.

    The training texts keep their labels; ``--augment N`` adds N augmented copies of each (Tang et al.
    2019: words masked with the teacher's mask token, n-grams sampled), labelled by the teacher only.
    Returns None without ``--teacher``.
    """
    if not getattr(args, "teacher", None):
        for option in ("augment", "distillation_alpha", "distillation_temperature", "distillation_loss"):
            if getattr(args, option, None) != DISTILLATION_DEFAULTS[option]:
                raise CLIError(f"--{option.replace('_', '-')} needs --teacher (the model to distil from).")
        return None
    if plan["problem_type"] != "single_label_classification":
        raise CLIError(
            f"--teacher distils single-label classifiers; this data is {plan['problem_type']}. Drop --teacher."
        )
    from ..distillation import _load_teacher, add_teacher_logits, build_transfer_set

    alpha = 0.5 if args.distillation_alpha is None else args.distillation_alpha
    temperature = 1.0 if args.distillation_temperature is None else args.distillation_temperature
    loss = args.distillation_loss or "kl"
    try:
        model, teacher_tokenizer, described = _load_teacher(args.teacher, args.teacher_revision)
    except (OSError, ValueError, TypeError) as err:
        raise CLIError(f"--teacher {args.teacher!r}: {str(err).splitlines()[0]}") from None
    augment = args.augment or 0
    transfer = build_transfer_set(
        train["text"],
        train["label"],
        n_copies=augment,
        seed=args.seed,
        mask_token=getattr(teacher_tokenizer, "mask_token", None) or "[MASK]",
    )
    _info(
        f"Distilling from {described}: {len(transfer):,} transfer texts "
        f"({len(train['text']):,} training texts + {len(transfer) - len(train['text']):,} augmented copies)."
    )
    try:
        transfer = add_teacher_logits(
            transfer, (model, teacher_tokenizer), labels=plan["names"], batch_size=args.teacher_batch_size
        )
    except ValueError as err:
        raise CLIError(f"--teacher {args.teacher!r}: {err}") from None
    card = {
        "teacher": described,
        "teacher_num_labels": int(model.config.num_labels),
        "alpha": alpha,
        "temperature": temperature,
        "loss": loss,
        "augment_copies": augment,
        "transfer_rows": len(transfer),
    }
    arguments = {
        "distillation_alpha": alpha,
        "distillation_temperature": temperature,
        "distillation_loss": loss,
    }
    return {"dataset": transfer, "card": card, "arguments": arguments}


def recipe_from_args(args: argparse.Namespace) -> Any:
    """The recipe named by ``args.recipe`` with the options that differ from the CLI defaults applied."""
    from ..recipes import InvalidRecipeError, get_recipe

    try:
        recipe = get_recipe(args.recipe)
    except InvalidRecipeError as err:
        raise CLIError(f"--recipe {args.recipe!r}: {err}") from None
    changes: dict[str, Any] = {}
    model = {o: getattr(args, o) for o in _MODEL_OPTIONS if getattr(args, o) != TRAIN_DEFAULTS[o]}
    if model:
        changes["model"] = model
    if getattr(args, "embedding_dim_given", False):
        if recipe.vectors is not None:
            raise CLIError(
                f"--embedding-dim does not apply to recipe {recipe.name!r}: its size comes from its vectors "
                f"{recipe.vectors!r}; drop --embedding-dim."
            )
        changes.setdefault("model", {})["embedding_dim"] = args.embedding_dim
    for option in _TRAINING_OPTIONS:
        if getattr(args, option) != TRAIN_DEFAULTS[option]:
            changes[option] = getattr(args, option)
    if args.epochs != TRAIN_DEFAULTS["epochs"]:
        if float(args.epochs) != int(args.epochs):
            raise CLIError(f"--epochs must be a whole number with --recipe, got {args.epochs}.")
        changes["epochs"] = int(args.epochs)
    if args.freeze_vectors != TRAIN_DEFAULTS["freeze_vectors"]:
        changes["freeze_epochs"] = -1 if args.freeze_vectors else 0
    try:
        return recipe.replace(**changes) if changes else recipe
    except InvalidRecipeError as err:
        raise CLIError(f"--recipe {args.recipe!r} with the given options: {err}") from None


def cmd_train_recipe(args: argparse.Namespace) -> int:
    """Trains by a recipe on the CLI's data, writes model, tokenizer, card and metrics.json to --output-dir."""
    from ..metrics import classification_metrics
    from ..recipes import predict, train_recipe

    output_dir = Path(args.output_dir)
    _check_output_dir(output_dir, args.overwrite)
    started = time.perf_counter()
    recipe = recipe_from_args(args)
    data = _load_data(args)
    if "train" not in data:
        raise CLIError(f"the data has no 'train' split (splits: {', '.join(data)}).")
    text_columns = _text_columns(args, data["train"].column_names)
    for name in data:
        _check_text_features(data[name], text_columns, name)
    plan = _label_plan(args, data)
    if plan["problem_type"] != "single_label_classification":
        raise CLIError(
            f"--recipe trains single-label classifiers; this data is {plan['problem_type']}. Train it without --recipe."
        )
    splits = {
        name: (_joined_texts(data[name], text_columns, name), _encode_labels(data[name], plan, name))
        for name in data
        if name in ("train", "validation", "test")
    }
    train_texts, train_labels = splits["train"]
    if args.max_train_samples:
        train_texts, train_labels = (
            train_texts[: args.max_train_samples],
            train_labels[: args.max_train_samples],
        )
    validation = splits.get("validation")
    names = plan["names"]
    _info(f"Recipe {recipe.name}: {recipe.description}")
    try:
        result = train_recipe(
            recipe,
            train_texts,
            train_labels,
            label_names=names,
            validation_texts=validation[0] if validation else None,
            validation_labels=validation[1] if validation else None,
            seed=args.seed,
            max_steps=args.max_steps if args.max_steps and args.max_steps > 0 else None,
        )
    except (FileNotFoundError, ValueError) as err:
        raise CLIError(f"--recipe {recipe.name!r}: {str(err).splitlines()[0]}") from None
    for row in result.history:
        _info(
            f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, validation accuracy "
            f"{row['validation_accuracy']:.4f}{' (embedding frozen)' if row['embeddings_frozen'] else ''}"
        )
    eval_split = "test" if "test" in splits else None
    report: dict[str, Any] = {
        "recipe": recipe.to_dict(),
        "model": {
            "rnn_type": result.model.config.rnn_type,
            "parameters": sum(p.numel() for p in result.model.parameters()),
            "vocab_size": len(result.tokenizer),
        },
        "labels": names,
        "train_rows": result.train_rows,
        "validation_rows": result.validation_rows,
        "best_epoch": result.best_epoch,
        "best_validation": {"accuracy": result.best_validation_accuracy},
        "history": result.history,
    }
    if eval_split is None:
        eval_split = "validation"
        report["validation"] = {"accuracy": result.best_validation_accuracy}
    else:
        texts, labels = splits["test"]
        preds = predict(result.model, result.tokenizer, texts, max_length=recipe.max_length)
        report["test"] = classification_metrics(labels, preds, names)
    report["train_seconds"] = round(time.perf_counter() - started, 1)

    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.staging-", dir=output_dir.absolute().parent))
    try:
        result.tokenizer.save_pretrained(staging)
        result.model.save_pretrained(staging)
        recipe.save(staging / "recipe.yaml")
        (staging / "metrics.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
        _publish(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if eval_split == "test":
        _print_report(report, "test", names, False, output_dir)
    else:
        print(
            f"\nrnn-textclf: trained in {report['train_seconds']:.1f} s; best validation accuracy "
            f"{result.best_validation_accuracy:.4f}. Saved to {output_dir}/"
        )
    if args.push_to_hub:
        _push(output_dir, args.push_to_hub)
    return EXIT_OK


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds ``train`` to the sub-command parsers; returns its parser (``--config`` sets its defaults)."""
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
    d = train.add_argument_group("distillation (Tang et al. 2019)")
    d.add_argument(
        "--teacher",
        metavar="PATH_OR_REPO",
        help="distil from this fine-tuned classifier (a folder or Hub repo id with the same labels): the "
        "student learns the teacher's logits on the training texts",
    )
    d.add_argument("--teacher-revision", help="branch, tag or commit of a Hub --teacher")
    d.add_argument("--teacher-batch-size", type=_positive_int, help="texts per teacher forward pass (64)")
    d.add_argument(
        "--augment",
        type=_non_negative_int,
        metavar="N",
        help="add N augmented copies of each training text (words masked, n-grams sampled), teacher-labelled",
    )
    d.add_argument(
        "--distillation-alpha",
        type=_unit_interval,
        help="weight of the teacher's signal vs the labels (default 0.5; 1.0: teacher only)",
    )
    d.add_argument(
        "--distillation-temperature", type=_positive_float, help="softening temperature of the kl loss (1.0)"
    )
    d.add_argument(
        "--distillation-loss",
        choices=["kl", "mse"],
        help="kl on softened probabilities (default) or mse on logits",
    )
    o = train.add_argument_group("output")
    o.add_argument("--output-dir", help="where to write the model (default: ./rnn-textclf-model)")
    o.add_argument("--overwrite", action="store_true", help="replace a non-empty --output-dir")
    o.add_argument("--push-to-hub", metavar="REPO", help="also push the model to this Hub repo")
    o.add_argument("--config", help="a .yaml/.json file with any of these options (flags win)")
    o.add_argument("--quiet", action="store_true", help="no progress output")
    o.add_argument("--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)")
    train.set_defaults(func=cmd_train, **TRAIN_DEFAULTS, **DISTILLATION_DEFAULTS)
    return train
