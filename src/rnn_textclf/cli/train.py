"""``rnn-textclf train``: train a classifier on the CLI's data by a recipe (default: ``default``) and write its folder.

One path for every run: the options resolve to a [`Recipe`][rnn_textclf.recipes.Recipe] (the ``default``
recipe, or ``--recipe NAME``, with the options given on the command line or in ``--config`` applied to
it), which builds the tokenizer, the model and the ``RNNTrainingArguments``; ``RNNTrainer`` trains. The
Trainer's checkpoints go to ``<output-dir>.checkpoints/`` (or ``--checkpoint-dir``), which survives a
crash (``--resume-from-checkpoint`` continues from it) and is removed after success unless
``--keep-checkpoints``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._common import (
    EXIT_OK,
    CLIError,
    _configure_logging,
    _info,
    _non_negative_int,
    _positive_float,
    _positive_int,
    _probability,
    _seed,
    _show_defaults,
    _stdout_to_stderr,
    _steps,
    _unit_interval,
)
from ._data import (
    _add_data_options,
    _check_text_features,
    _encode_labels,
    _joined_texts,
    _label_plan,
    _load_data,
    _sample_train_split,
    _say_empty_texts,
    _text_columns,
)
from ._output import (
    _check_output_dir,
    _plot_confusion,
    _plot_curves,
    _print_report,
    _publish,
    _shared_staging_dir,
    _write_card,
)
from .push import _push

#: Defaults of `rnn-textclf train`. The model and training options default to ``None``: the recipe's value
#: (``--recipe``, by default the ``default`` recipe: rnn_textclf/recipes/default.yaml) unless given.
TRAIN_DEFAULTS: dict[str, Any] = {
    "recipe": "default",
    "rnn_type": None,
    "hidden_size": None,
    "num_layers": None,
    "bidirectional": None,
    "pooling": None,
    "embedding_dim": None,
    "dropout": None,
    "embedding_dropout": None,
    "classifier_dropout": None,
    "vectors": None,
    "tokenizer": None,
    "freeze_vectors": None,
    "min_freq": None,
    "max_vocab_size": None,
    "max_length": None,
    "epochs": None,
    "batch_size": None,
    "lr": None,
    "weight_decay": None,
    "seed": 42,
    "output_dir": "rnn-textclf-model",
    "max_train_samples": None,
    "max_steps": -1,
    "checkpoint_dir": None,
    "keep_checkpoints": False,
    "resume_from_checkpoint": None,
}

#: Options that set a field of the recipe's ``model`` (RNNClassifierConfig fields).
_MODEL_OPTIONS = (
    "rnn_type",
    "hidden_size",
    "num_layers",
    "bidirectional",
    "pooling",
    "embedding_dim",
    "dropout",
    "embedding_dropout",
    "classifier_dropout",
)

#: Options that set the recipe field of the same name.
_RECIPE_OPTIONS = (
    "min_freq",
    "max_vocab_size",
    "max_length",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "pretrain_epochs",
)


#: Options that set a key of the recipe's ``distillation`` section (without the ``distillation_`` prefix).
_DISTILLATION_OPTIONS = ("augment", "distillation_alpha", "distillation_temperature", "distillation_loss")


#: Defaults of the distillation options (``--teacher`` and the options that only apply with it). ``None``:
#: the recipe's ``distillation`` value, else ``rnn_textclf.recipes.DISTILLATION_FIELDS``.
DISTILLATION_DEFAULTS: dict[str, Any] = {
    "teacher": None,
    "teacher_revision": None,
    "teacher_batch_size": 64,
    "augment": None,
    "distillation_alpha": None,
    "distillation_temperature": None,
    "distillation_loss": None,
}


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
            from ..recipes import load_yaml

            values = load_yaml(text) or {}
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
    # Options that may repeat (--text-column, --label-column) append to their default in argparse: the file's
    # list is filled in after parsing, so that the command line's flags replace it rather than extend it.
    repeatable = {
        action.dest for action in train_parser._actions if isinstance(action, argparse._AppendAction)
    }
    lists: dict[str, list[str]] = {}
    for key in sorted(repeatable & set(normalised)):
        value = normalised.pop(key)
        value = [value] if isinstance(value, str) else value  # `text_column: title` is a list of one
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise CLIError(
                f"--config {args.config!r}: {key} must be a column name or a list of column names, got {value!r}."
            )
        lists[key] = value
    actions = {action.dest: action for action in train_parser._actions}
    for key, value in normalised.items():
        normalised[key] = _config_value(args.config, key, value, actions[key])
    train_parser.set_defaults(**normalised)
    merged = parser.parse_args(argv)
    for key, value in lists.items():
        if getattr(merged, key) is None:  # not given on the command line
            setattr(merged, key, value)
    return merged


def _config_value(config: str, key: str, value: Any, action: argparse.Action) -> Any:
    """``value`` of ``key`` in the ``--config`` file, checked as its flag's value would be: argparse applies an
    option's ``type`` to string defaults only, so a number, a bool or a list from a file went unchecked
    (``seed: 1.5`` crashed in training; ``overwrite: "no"`` was true and replaced the output folder)."""
    if value is None:
        return None
    where = f"--config {config!r}: {key}"
    flags = "/".join(action.option_strings) or key
    if isinstance(
        action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)
    ):
        if not isinstance(value, bool):
            raise CLIError(f"{where} must be true or false (as {flags}), got {value!r}.")
        return value
    if isinstance(value, bool) and action.nargs == "?" and action.const is True:
        return True if value else None  # (`resume_from_checkpoint: true`, as the flag without a PATH)
    if isinstance(value, (dict, list)) or (isinstance(value, bool) and action.type is not None):
        raise CLIError(f"{where} must be a single value (as {flags} takes), got {value!r}.")
    if action.type is None:
        if not isinstance(value, str):
            raise CLIError(f"{where} must be text (as {flags} takes), got {value!r}.")
        converted = value
    else:
        try:
            converted = action.type(value if isinstance(value, str) else repr(value))
        except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
            raise CLIError(
                f"{where}: {err}" if str(err) else f"{where}: not a valid value, got {value!r}."
            ) from None
    if action.choices is not None and converted not in action.choices:
        raise CLIError(f"{where} must be one of {', '.join(map(repr, action.choices))}, got {value!r}.")
    return converted


def cmd_train(args: argparse.Namespace) -> int:
    """Trains by the recipe the options name; writes model, tokenizer, card, metrics.json and plots."""
    output_dir = Path(args.output_dir)
    _check_output_dir(output_dir, args.overwrite)
    started = time.perf_counter()
    recipe = recipe_from_args(args)
    checkpoint_dir = _checkpoint_dir(args, output_dir)
    resume = _resume_target(args, checkpoint_dir)
    # the checkpoint's config.json, read once: what it distilled, its model's shapes, its pretraining
    resumed = _checkpoint_config(Path(resume)) if resume is not None else None
    if resumed is not None:
        _check_resume_distillation(args, Path(resume), resumed)

    import numpy as np
    import torch
    from accelerate import PartialState
    from transformers import TrainerCallback, set_seed
    from transformers.tokenization_utils_base import VERY_LARGE_INTEGER

    from ..callbacks import without_log_dicts
    from ..metrics import classification_metrics, make_compute_metrics
    from ..recipes import InvalidRecipeError
    from ..trainer import _pause_at_exit_for_collectives

    # Under torchrun / accelerate launch every rank runs this command. Joining the process group first lets
    # rank 0 alone write files and print, while every rank trains on the same data with the same vocab.
    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes > 1:
        # once, where the group is joined: this command's own collectives (the shared tokenizer and
        # staging folder) and the trainer's all end their work before the interpreter does
        _pause_at_exit_for_collectives()
    if not state.is_main_process:
        args.quiet = True
        _configure_logging(quiet=True)
    set_seed(args.seed)
    # a folder of ours, removed whole after success: the default one (also when a resumed run made it), or
    # a --checkpoint-dir that this run makes
    created = not args.checkpoint_dir or not checkpoint_dir.exists()
    with state.main_process_first():  # rank 0 fills the datasets cache, the other ranks then read it
        if state.is_main_process and resume is None:
            _remove_checkpoints(checkpoint_dir, whole=False)  # --overwrite (checked above): start over
        data = _load_data(args)
    if "train" not in data:
        raise CLIError(f"the data has no 'train' split (splits: {', '.join(data)}).")
    text_columns = _text_columns(args, data["train"].column_names)
    for name in data:
        _check_text_features(data[name], text_columns, name)
    if args.dataset:
        _drop_unlabelled_splits(data, (args.label_column or ["label"])[0], args.dataset)
    plan = _label_plan(args, data)
    multi = plan["problem_type"] == "multi_label_classification"
    if multi and recipe.label_smoothing:
        raise CLIError(
            f"recipe {recipe.name!r} smooths labels (label_smoothing {recipe.label_smoothing}), which needs one "
            "class per text; this data is multi-label. Use a recipe with label_smoothing: 0."
        )
    names = plan["names"]
    try:
        best_metric = recipe.selection_metric(plan["problem_type"], len(names))
    except InvalidRecipeError as err:
        raise CLIError(f"--recipe {recipe.name!r}: {err}") from None
    if "validation" not in data:
        # A seeded validation split from train: early stopping never looks at the test split.
        from ..data import stratified_split

        train = data["train"]
        strat = _encode_labels(train, plan, "the train split") if not multi else [0] * len(train)
        share = recipe.validation_fraction
        keep, held = stratified_split(strat, (1.0 - share, share), args.seed)
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
        data["train"] = _sample_train_split(data["train"], plan, args.max_train_samples, args.seed)

    splits: dict[str, dict[str, list[Any]]] = {}
    for name in ("train", "validation", "test"):
        if name in data:
            split = data[name]
            for column in text_columns:
                if column not in split.column_names:
                    raise CLIError(f"--text-column {column!r} is missing from the {name} split.")
            splits[name] = {
                "text": _joined_texts(split, text_columns, name),
                "label": _encode_labels(split, plan, f"the {name} split"),
            }
    # (said once every split is read: a bad-input error stays the one line on stderr)
    _info("Rows: " + ", ".join(f"{name} {len(split['text']):,}" for name, split in splits.items()) + ".")
    for name, split in splits.items():
        _say_empty_texts(split["text"].count(""), name)

    _info(f"Recipe {recipe.name}: {recipe.description}")
    distillation = _distillation_data(args, recipe, splits["train"], plan)  # None without --teacher
    train_texts = distillation["dataset"]["text"] if distillation else splits["train"]["text"]
    try:
        tokenizer, vectors = recipe.build_tokenizer(train_texts, show_progress=not args.quiet)
    except (OSError, ValueError) as err:
        # Name what the user typed (--tokenizer/--vectors) where they did, else the recipe's fields.
        given = [f"--{k} {v!r}" for k, v in (("tokenizer", args.tokenizer), ("vectors", args.vectors)) if v]
        source = ", ".join(given) or (
            f"recipe {recipe.name!r} (tokenizer {recipe.tokenizer!r}, vectors {recipe.vectors!r})"
        )
        # one line: a multi-line message (the places tried for --vectors) joined, not cut at its first line
        message = str(err).strip().replace(":\n- ", ": ").replace("\n- ", "; ").replace("\n", " ")
        raise CLIError(f"{source}: {message}") from None
    if resume is not None:
        tokenizer = _checkpoint_tokenizer(resume, tokenizer)
    elif state.num_processes > 1:
        tokenizer = _rank0_tokenizer(tokenizer)
    _info(f"Vocab: {len(tokenizer):,} tokens ({_describe_tokenizer(tokenizer, recipe)}).")
    model, coverage = recipe.build_model(
        tokenizer, label_names=names, vectors=vectors, problem_type=plan["problem_type"], seed=args.seed
    )
    if resumed is not None:
        _check_resume_model(Path(resume), resumed, model.config)
    if distillation:
        model.config.distillation = distillation[
            "card"
        ]  # config.json and the model card say how it was trained
    if coverage is not None:
        _info(str(coverage))
    n_params = sum(p.numel() for p in model.parameters())
    config = model.config
    _info(
        f"Model: {config.rnn_type} x{config.num_layers}{' bidirectional' if config.bidirectional else ''}, "
        f"{n_params:,} parameters."
    )
    encoded = {
        name: recipe.encode(tokenizer, split["text"], split["label"]) for name, split in splits.items()
    }
    # Language-model pretraining reads the training texts themselves, not the augmented copies of a transfer
    # set (words masked, n-grams cut out: not text to learn a language from, and N times the work).
    pretrain_on = {"train": encoded["train"], "validation": encoded["validation"]}
    if distillation:  # the transfer set (training texts + augmented copies) with the teacher's logits
        transfer = distillation["dataset"]
        encoded["train"] = recipe.encode(tokenizer, transfer["text"], transfer["label"]).add_column(
            "teacher_logits", transfer["teacher_logits"]
        )

    pretraining = None
    if recipe.pretrain_epochs and resume is None:  # a resumed run's checkpoint holds the pretrained weights
        # (Recipe.pretrain records it in config.pretraining; metrics.json also says how long it took)
        pretraining = _pretrain(args, recipe, model, tokenizer, pretrain_on, checkpoint_dir)
    elif recipe.pretrain_epochs:
        _info("Resuming: the language-model pretraining is in the checkpoint's weights already.")
        # and its record in the checkpoint's config.json: config.json, metrics.json and the card keep it
        pretraining = (resumed or {}).get("pretraining")
        if pretraining:
            model.config.pretraining = pretraining

    metric_keys = [
        "loss",
        "eval_loss",
        "eval_accuracy" if not multi else "eval_exact_match",
        f"eval_{best_metric}",
    ]
    metric_keys = list(dict.fromkeys(metric_keys))

    class TableCallback(TrainerCallback):
        """One line on stderr per evaluation (epoch): training loss and the validation metrics."""

        printed_header = False
        train_loss: float | None = None

        def on_log(
            self, _args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if logs and "loss" in logs:
                self.train_loss = logs["loss"]

        def on_evaluate(
            self, _args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kw: Any
        ) -> None:
            if args.quiet or not metrics:
                return
            from tqdm.auto import tqdm

            row = {"epoch": state.epoch, "loss": self.train_loss, **metrics}
            titles = ["epoch", *[k.replace("eval_", "val_") for k in metric_keys]]
            widths = [max(10, len(t)) for t in titles]
            # tqdm.write: the row goes above the training bar instead of into it.
            if not self.printed_header:
                tqdm.write(
                    " | ".join(f"{t:>{w}}" for t, w in zip(titles, widths, strict=True)), file=sys.stderr
                )
                self.printed_header = True
            cells = [f"{row['epoch']:>{widths[0]}.2f}"] + [
                f"{row[k]:>{w}.4f}" if isinstance(row.get(k), (int, float)) else f"{'-':>{w}}"
                for k, w in zip(metric_keys, widths[1:], strict=True)
            ]
            tqdm.write(" | ".join(cells), file=sys.stderr)

    finished = False
    with _shared_staging_dir(state, output_dir) as staging:
        try:
            try:
                training_args = recipe.training_arguments(
                    checkpoint_dir,
                    seed=args.seed,
                    max_steps=args.max_steps if args.max_steps and args.max_steps > 0 else None,
                    metric_for_best_model=best_metric,
                    # The best and the latest epoch: enough to resume and to load the best at the end.
                    save_total_limit=2,
                    disable_tqdm=args.quiet,
                )
                trainer = recipe.trainer(
                    model,
                    tokenizer,
                    training_args,
                    train_dataset=encoded["train"],
                    eval_dataset=encoded["validation"],
                    compute_metrics=make_compute_metrics(plan["problem_type"], names),
                )
            except ValueError as err:  # a technique this setup cannot run (e.g. a freeze schedule under DDP)
                raise CLIError(f"--recipe {recipe.name!r}: {str(err).splitlines()[0]}") from None
            # Trainer prints every log dict; the table above says the same once per epoch.
            without_log_dicts(trainer)  # (progress bars unless --quiet: disable_tqdm)
            # After the bars: the evaluation bar is closed before the epoch's row is written.
            trainer.add_callback(TableCallback())
            if resume is not None:
                _info(f"Resuming from {resume}.")
            with _stdout_to_stderr():
                trainer.train(resume_from_checkpoint=resume)
            history = [dict(entry) for entry in trainer.state.log_history]
            evals = [h for h in history if f"eval_{best_metric}" in h]
            best = next((h for h in evals if h[f"eval_{best_metric}"] == trainer.state.best_metric), None)
            shared = _shareable(recipe)  # (`push` uploads recipe.yaml and metrics.json)
            report: dict[str, Any] = {
                "recipe": shared.to_dict(),
                # what trained beside the recipe: repeat these with `--recipe recipe.yaml` for the same run
                "options": {
                    "seed": args.seed,
                    "max_steps": args.max_steps if args.max_steps and args.max_steps > 0 else None,
                    "max_train_samples": args.max_train_samples,
                },
                "model": {"rnn_type": config.rnn_type, "parameters": n_params, "vocab_size": len(tokenizer)},
                "labels": names,
                "train_rows": len(encoded["train"]),
                "validation_rows": len(encoded["validation"]),
                "processes": training_args.world_size,  # > 1 under torchrun / accelerate launch
                "best_epoch": None if best is None else best["epoch"],
                "best_validation": {best_metric: trainer.state.best_metric},
                "history": history,
            }
            if coverage is not None:
                report["vectors"] = {"name": shared.vectors, "coverage": str(coverage)}
            if distillation:
                report["distillation"] = distillation["card"]
            if pretraining:
                report["pretraining"] = pretraining
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
            trainer.model.config.freeze_embeddings = (
                not trainer.model.get_input_embeddings().weight.requires_grad
            )
            # predict/evaluate and pipeline(truncation=True) then cut texts where training did; a recipe
            # without max_length read whole texts: no limit (transformers' value for none), not the
            # tokenizer's own (a pretrained tokenizer's 512, or whatever its authors set)
            tokenizer.model_max_length = recipe.max_length or VERY_LARGE_INTEGER
            trainer.save_model(str(staging))  # every rank calls it; rank 0 writes
            if state.is_main_process:
                # The card lists the values the run trained with: the recipe's, after the options.
                card_args = argparse.Namespace(
                    **{
                        **vars(args),
                        "epochs": recipe.epochs,
                        "batch_size": recipe.batch_size,
                        "lr": recipe.lr,
                        "min_freq": recipe.min_freq if _trained_here(recipe) else None,
                        "max_length": recipe.max_length,
                    }
                )
                _plot_curves(history, best_metric, staging / "training_curve.png")
                _write_card(
                    trainer.model,
                    staging,
                    card_args,
                    report,
                    eval_split,
                    coverage,
                    name=output_dir.resolve().name,
                )
                shared.save(staging / "recipe.yaml")
                (staging / "metrics.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
                _publish(staging, output_dir)
            finished = True
        finally:
            if state.is_main_process:
                if finished and not args.keep_checkpoints:
                    _remove_checkpoints(checkpoint_dir, whole=created)
                elif not finished and not _has_checkpoint(checkpoint_dir):
                    _remove_checkpoints(checkpoint_dir, whole=created)  # nothing to resume from
                elif not finished:
                    print(
                        f"rnn-textclf: checkpoints kept in {checkpoint_dir}/; continue with "
                        "--resume-from-checkpoint",
                        file=sys.stderr,
                    )

    if not state.is_main_process:
        return EXIT_OK
    _print_report(report, eval_split, names, multi, output_dir)
    if args.push_to_hub:
        _push(output_dir, args.push_to_hub)
    return EXIT_OK


def _pretrain(
    args: argparse.Namespace, recipe: Any, model: Any, tokenizer: Any, encoded: dict[str, Any], folder: Path
) -> dict[str, Any]:
    """``recipe.pretrain_epochs`` of language-model pretraining on the training texts; what it did."""
    import math

    from transformers import TrainerCallback

    epochs = recipe.pretrain_epochs
    _info(
        f"Pretraining the embedding and RNN as a language model for {epochs} epoch{'s' * (epochs != 1)} on "
        f"{len(encoded['train']):,} training texts (each token predicted from the ones before it"
        f"{' and, backwards, from the ones after it' if model.config.bidirectional else ''})."
    )

    class EpochLines(TrainerCallback):
        """One line per epoch: the training loss and the held-out texts' perplexity."""

        loss: float | None = None

        def on_log(self, _args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.loss = logs["loss"]

        def on_evaluate(self, _args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any) -> None:
            if metrics and "eval_loss" in metrics:
                loss = "-" if self.loss is None else f"{self.loss:.4f}"
                _info(
                    f"  pretraining epoch {state.epoch:.0f}/{epochs}: loss {loss}, validation loss "
                    f"{metrics['eval_loss']:.4f} (perplexity {math.exp(metrics['eval_loss']):,.1f})"
                )

    with _stdout_to_stderr():
        summary = recipe.pretrain(
            model,
            tokenizer,
            folder / "pretraining",
            train_dataset=encoded["train"],
            eval_dataset=encoded["validation"],
            seed=args.seed,
            callbacks=[EpochLines()],
            disable_tqdm=args.quiet,
        )
    shutil.rmtree(folder / "pretraining", ignore_errors=True)  # Trainer made it; nothing was saved there
    return summary


def _trained_here(recipe: Any) -> bool:
    """Whether the run trains its tokenizer (min_freq applies), rather than loading a saved one."""
    from ..tokenization import TOKENIZER_CHOICES

    return recipe.tokenizer is None or recipe.tokenizer in TOKENIZER_CHOICES


def _describe_tokenizer(tokenizer: Any, recipe: Any) -> str:
    from ..tokenization import (
        DEFAULT_SUBWORD_VOCAB_SIZE,
        DEFAULT_WORD_VOCAB_SIZE,
        SUBWORD_MODELS,
    )

    model = getattr(tokenizer, "tokenizer_model", None)
    if not _trained_here(recipe):  # loaded as saved
        return f"pretrained {recipe.tokenizer}" + (f", {model}" if model else "")

    name = {"word": getattr(tokenizer, "normalization", None) or "word"}.get(model, model)
    cap = recipe.max_vocab_size
    if cap is None and recipe.tokenizer is None:  # a recipe's own word vocabulary: no cap
        return f"{name}, min_freq={recipe.min_freq}, no max_vocab_size"
    if cap is None:  # build_tokenizer's default for this model
        cap = {"word": DEFAULT_WORD_VOCAB_SIZE}.get(
            model, DEFAULT_SUBWORD_VOCAB_SIZE if model in SUBWORD_MODELS else None
        )
    limit = "no max_vocab_size" if cap is None else f"max_vocab_size={cap}"
    return f"{name}, min_freq={recipe.min_freq}, {limit}"


def _distillation_data(
    args: argparse.Namespace, recipe: Any, train: dict[str, list[Any]], plan: dict[str, Any]
) -> dict[str, Any] | None:
    """``--teacher``: the transfer set with the teacher's logits and the model card's entry.

    The training texts keep their labels; ``--augment N`` adds N augmented copies of each (Tang et al.
    2019: words masked with the teacher's mask token, n-grams sampled), labelled by the teacher only.
    Alpha, temperature, loss and copies: the recipe's ``distillation`` section (with the flags given, see
    `_distillation_section`). Returns None without ``--teacher``.
    """
    if not getattr(args, "teacher", None):
        return None  # recipe_from_args refused distillation options without --teacher
    if plan["problem_type"] != "single_label_classification":
        raise CLIError(
            f"--teacher distils single-label classifiers; this data is {plan['problem_type']}. Drop --teacher."
        )
    from ..distillation import STUDENT_MASK, _load_teacher, add_teacher_logits, build_transfer_set

    # recipe_from_args put the --augment/--distillation-* flags into the recipe's distillation section
    values = recipe.distillation_options()
    alpha, temperature, loss, augment = (values[k] for k in ("alpha", "temperature", "loss", "augment"))
    try:
        model, teacher_tokenizer, described = _load_teacher(args.teacher, args.teacher_revision)
    except (OSError, ValueError, TypeError) as err:
        raise CLIError(f"--teacher {args.teacher!r}: {str(err).splitlines()[0]}") from None
    mask_token = getattr(teacher_tokenizer, "mask_token", None) or "[MASK]"
    transfer = build_transfer_set(
        train["text"], train["label"], n_copies=augment, seed=args.seed, mask_token=mask_token
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
    if augment:
        # The teacher read its own mask token; the student reads one unit in its place, whatever its
        # tokenizer: a character or subword student cut "[MASK]" into 3-6 tokens, the most frequent of its
        # vocabulary, that real text spelling "mask" shared.
        transfer = transfer.map(
            lambda batch: {"text": [t.replace(mask_token, STUDENT_MASK) for t in batch["text"]]}, batched=True
        )
    # A local folder's path says nothing once the model is shared (and may be private): its name, with
    # what the teacher is.
    card = {  # (`described` is the expanded path of a local folder)
        "teacher": os.path.basename(os.path.normpath(described)) if os.path.isdir(described) else described,
        "teacher_architecture": type(model).__name__,
        "teacher_parameters": int(sum(p.numel() for p in model.parameters())),
        "teacher_num_labels": int(model.config.num_labels),
        "alpha": alpha,
        "temperature": temperature,
        "loss": loss,
        "augment_copies": augment,
        "transfer_rows": len(transfer),
    }
    return {"dataset": transfer, "card": card}


def _show_recipe_defaults(parser: argparse.ArgumentParser) -> None:
    """Appends "(default recipe: X)" to the options whose value comes from the recipe, so ``--help`` tells
    what ``rnn-textclf train`` without ``--recipe`` uses."""
    from ..recipes import get_recipe

    recipe = get_recipe("default")
    values = {**recipe.model, **{name: getattr(recipe, name) for name in (*_RECIPE_OPTIONS, "tokenizer")}}
    values["vectors"] = recipe.vectors or "none"
    for action in parser._actions:
        if action.default is not None or action.dest not in values or "default" in (action.help or ""):
            continue
        value = values[action.dest]
        shown = "the tokenizer's own" if value is None else value
        action.help = f"{action.help or ''} (default recipe: {shown})".strip()


def _distillation_section(args: argparse.Namespace, recipe: Any) -> dict[str, Any] | None:
    """The recipe's ``distillation`` section with the ``--augment``/``--distillation-*`` flags given applied
    (with ``--teacher``; a recipe without the section gets its defaults), or None without ``--teacher``:
    then the flags, and a recipe that distils, are refused."""
    given = {o: getattr(args, o, None) for o in _DISTILLATION_OPTIONS}
    given = {o: v for o, v in given.items() if v is not None}
    if not getattr(args, "teacher", None):
        if recipe.distillation is not None:
            raise CLIError(
                f"recipe {recipe.name!r} distils from a teacher (distillation: {recipe.distillation}): pass "
                "--teacher PATH_OR_REPO (a classifier fine-tuned on these labels), or choose a recipe "
                "without distillation."
            )
        if given:
            raise CLIError(
                f"--{next(iter(given)).replace('_', '-')} needs --teacher (the model to distil from)."
            )
        return None
    return {**recipe.distillation_options(), **{o.removeprefix("distillation_"): v for o, v in given.items()}}


def recipe_from_args(args: argparse.Namespace) -> Any:
    """The recipe of ``args.recipe`` (default: ``default``) with the model and training options given applied."""
    from ..recipes import InvalidRecipeError, get_recipe

    name = args.recipe or "default"
    try:
        recipe = get_recipe(name)
    except InvalidRecipeError as err:
        raise CLIError(f"--recipe {name!r}: {err}") from None
    values = recipe.to_dict()
    values["model"].update({o: getattr(args, o) for o in _MODEL_OPTIONS if getattr(args, o) is not None})
    values.update({o: getattr(args, o) for o in _RECIPE_OPTIONS if getattr(args, o) is not None})
    if args.tokenizer is not None:
        _check_tokenizer_option(args)
        values["tokenizer"] = args.tokenizer
    if args.vectors is not None:
        values["vectors"] = None if args.vectors.lower() == "none" else args.vectors
    if values["vectors"] is None and not values["model"].get("embedding_dim"):
        raise CLIError(
            f"--vectors {args.vectors!r}: recipe {recipe.name!r} takes its embedding size from its vectors "
            f"({recipe.vectors!r}); without them pass --embedding-dim N too (e.g. --embedding-dim 100)."
        )
    if values["vectors"] is not None:
        if args.embedding_dim is not None:
            raise CLIError(
                f"--embedding-dim does not apply with the vectors {values['vectors']!r} of recipe {recipe.name!r}: "
                "the embedding's size is theirs; drop --embedding-dim (or pass --vectors none)."
            )
        values["model"].pop("embedding_dim", None)  # the vectors' size
    if args.freeze_vectors is not None:
        if args.freeze_vectors and values["vectors"] is None:
            raise CLIError(
                f"--freeze-vectors keeps pretrained word vectors fixed, but recipe {recipe.name!r} "
                + ("is given --vectors none" if args.vectors is not None else "has none")
                + ": the embedding would stay random for the whole run. Pass --vectors NAME_OR_PATH (e.g. "
                "--vectors glove.6B.100d), or drop --freeze-vectors."
            )
        values["freeze_epochs"] = -1 if args.freeze_vectors else 0
        if args.freeze_vectors:  # (an embedding that never trains has no learning rate to scale)
            values["embedding_lr_scale"] = 1.0
    values["distillation"] = _distillation_section(args, recipe)
    changed = _changed_fields(recipe.to_dict(), values)
    if changed:  # the recipe's own description no longer says what trains (it is logged and saved)
        values["description"] = f"{recipe.description} Changed by the options: {', '.join(changed)}."
    try:
        return recipe.from_dict(values)
    except InvalidRecipeError as err:
        raise CLIError(f"--recipe {name!r} with the given options: {err}") from None


def _shareable(recipe: Any) -> Any:
    """The recipe as the output folder records it (recipe.yaml, metrics.json: ``push`` uploads both): a local
    file or folder given as ``--vectors`` or ``--tokenizer`` by its own name, as config.json and the card
    record them and the data files, so the user's folder layout does not go to the Hub."""
    local = {
        field: Path(value).resolve().name
        for field in ("vectors", "tokenizer")
        if isinstance(value := getattr(recipe, field), str) and os.path.exists(value)
    }
    if not local:
        return recipe
    description = recipe.description
    for field, name in local.items():
        description = description.replace(f"{field}={getattr(recipe, field)}", f"{field}={name}")
    return recipe.replace(description=description, **local)


def _changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``"field=value"`` for each recipe field (and model field) that ``after`` changes from ``before``."""
    changed = []
    for key, value in after.items():
        old = before.get(key)
        if key == "model":
            changed += [f"{k}={'none' if v is None else v}" for k, v in value.items() if old.get(k) != v]
        elif key not in ("name", "description") and value != old:
            changed.append(f"{key}={'none' if value is None else value}")
    return changed


def _check_tokenizer_option(args: argparse.Namespace) -> None:
    """``--tokenizer``: a name in another case, a tokenizer.json file instead of its folder, and vocabulary
    options for a tokenizer that is loaded, not trained, are errors that say what to pass."""
    from ..tokenization import TOKENIZER_CHOICES

    value = args.tokenizer
    if value in TOKENIZER_CHOICES:
        return
    if value.lower() in TOKENIZER_CHOICES and not Path(value).exists():
        raise CLIError(f"--tokenizer {value!r}: did you mean {value.lower()!r}? (names are lowercase)")
    if Path(value).is_file():
        raise CLIError(
            f"--tokenizer {value!r} is a file: pass the folder that holds the tokenizer's files "
            f"({str(Path(value).parent)!r}), or a Hub id"
        )
    given = [
        f"--{o.replace('_', '-')}" for o in ("min_freq", "max_vocab_size") if getattr(args, o) is not None
    ]
    if given:
        raise CLIError(
            f"{' and '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to a tokenizer trained here, but "
            f"--tokenizer {value!r} loads one as it "
            "was saved: drop them (or pass --tokenizer bpe/char/... to train one)"
        )


def _drop_unlabelled_splits(data: Any, column: str, dataset: str) -> None:
    """Leaves out a ``--dataset``'s validation/test split whose class labels are all -1 (unlabelled, as
    GLUE's test splits): nothing to score there. A file the user gives must be labelled (refused later)."""
    for name in [n for n in ("validation", "test") if n in data]:
        split = data[name]
        class_label = column in split.column_names and getattr(split.features[column], "names", None)
        if class_label and len(split) and all(v == -1 for v in split[column]):
            _info(f"The {name} split of {dataset} has no labels (all -1): left out.")
            del data[name]


def _checkpoint_dir(args: argparse.Namespace, output_dir: Path) -> Path:
    """``--checkpoint-dir``, or ``<output-dir>.checkpoints`` beside the output folder.

    The path stays as the user wrote it (relative stays relative): it is the ``output_dir`` recorded in
    ``training_args.json``, which ``push`` uploads, and an absolute one would publish the user's home path.
    """
    if args.checkpoint_dir:
        checkpoints, out = Path(args.checkpoint_dir).resolve(), output_dir.resolve()
        if checkpoints == out or out in checkpoints.parents or checkpoints in out.parents:
            # the checkpoint folder is removed after success, and the output folder replaced whole
            raise CLIError(
                f"--checkpoint-dir {args.checkpoint_dir!r} and --output-dir {str(output_dir)!r} overlap: the "
                "checkpoints are removed after a successful run and the output folder is replaced whole; give "
                "two separate folders (the default is <output-dir>.checkpoints beside it)."
            )
        return Path(args.checkpoint_dir)
    if output_dir.name in ("", "..", "."):  # no name to extend: the folder's own, from its absolute path
        output_dir = output_dir.resolve()
    return output_dir.with_name(f"{output_dir.name}.checkpoints")


def _checkpoint_tokenizer(resume: str, built: Any) -> Any:
    """The tokenizer a checkpoint trained with (saved beside its weights), in place of ``built``, the one
    trained again from the texts: its embedding rows belong to the checkpoint's ids, and the WordPiece and
    Unigram trainers need not give the same vocabulary twice."""
    if not (Path(resume) / "tokenizer.json").is_file():
        return built
    saved = type(built).from_pretrained(resume)
    if saved.get_vocab() != built.get_vocab():
        _info(
            f"Resuming with the checkpoint's tokenizer ({len(saved):,} tokens): the one built from these texts "
            f"and options differs ({len(built):,} tokens). Pass the interrupted run's options: recipe.yaml and "
            "metrics.json record the options given now."
        )
    return saved


def _rank0_tokenizer(tokenizer: Any) -> Any:
    """Rank 0's tokenizer on every rank (DDP): each rank built its own from the same texts, and the
    WordPiece and Unigram trainers need not give the same vocabulary twice; with another one a rank
    would train on other ids (or on an embedding of another size) without a word said."""
    from accelerate.utils import broadcast_object_list

    shared = [tokenizer]
    broadcast_object_list(shared, from_process=0)
    return shared[0]


def _resume_target(args: argparse.Namespace, checkpoint_dir: Path) -> str | None:
    """The checkpoint ``--resume-from-checkpoint [PATH]`` names: PATH itself, or the latest one in it."""
    from transformers.trainer_utils import get_last_checkpoint

    value = args.resume_from_checkpoint
    if value is None:
        if _has_checkpoint(checkpoint_dir) and not args.overwrite:
            raise CLIError(
                f"{str(checkpoint_dir)!r} holds checkpoints of another run (an earlier one, or one still "
                "running): pass --resume-from-checkpoint to continue it, or --overwrite to start over (its "
                "checkpoints are then deleted)."
            )
        return None
    from ..trainer import checkpoint_missing, last_complete_checkpoint

    folder = checkpoint_dir if value is True else Path(value)
    one = folder.is_dir() and (
        folder.name.startswith("checkpoint-") or (folder / "trainer_state.json").is_file()
    )
    if not one:  # a folder of checkpoints: the newest complete one
        last = last_complete_checkpoint(folder) if folder.is_dir() else None
        if last is not None:
            return last
        incomplete = folder.is_dir() and get_last_checkpoint(str(folder)) is not None
        raise CLIError(
            f"--resume-from-checkpoint: {str(folder)!r} holds no "
            + (
                "complete checkpoint (each was cut short or lost files; see the warnings above); train without "
                "--resume-from-checkpoint (and --overwrite)."
                if incomplete
                else "checkpoint (checkpoint-N folders written by an earlier `rnn-textclf train`); check the path "
                "or --checkpoint-dir, or train without --resume-from-checkpoint."
            )
        )
    missing = checkpoint_missing(folder)
    if missing:
        raise CLIError(
            f"--resume-from-checkpoint {str(folder)!r} is incomplete: it has no {', '.join(missing)} (its save was cut "
            "short, or files were deleted); pass the folder that holds it (or --resume-from-checkpoint alone) for the "
            "newest complete checkpoint."
        )
    return str(folder)


def _checkpoint_config(checkpoint: Path) -> dict[str, Any] | None:
    """The checkpoint's config.json, or None when it cannot be read (its own load then says what is wrong)."""
    try:
        saved = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def _check_resume_distillation(args: argparse.Namespace, checkpoint: Path, resumed: dict[str, Any]) -> None:
    """A resumed run distils as the checkpoint's run did (its config.json, ``resumed``, records the teacher),
    or not at all: without --teacher it went on from the hard labels alone, and its card lost the
    distillation."""
    saved = resumed.get("distillation")
    if saved and not args.teacher:
        raise CLIError(
            f"--resume-from-checkpoint {str(checkpoint)!r} is of a run that distils from the teacher "
            f"{saved.get('teacher')!r} (alpha {saved.get('alpha')}): pass the same --teacher and options to "
            "continue it, or train anew without --resume-from-checkpoint."
        )
    if not saved and args.teacher:
        raise CLIError(
            f"--resume-from-checkpoint {str(checkpoint)!r} is of a run without a teacher: resume it without "
            "--teacher, or train anew with --teacher (without --resume-from-checkpoint)."
        )


# The fields that give a model's weights their shapes, by the option that sets each.
_SHAPE_FIELDS = {
    "rnn_type": "--rnn-type",
    "nonlinearity": "nonlinearity (recipe)",
    "embedding_dim": "--embedding-dim (or --vectors)",
    "hidden_size": "--hidden-size",
    "num_layers": "--num-layers",
    "bidirectional": "--bidirectional",
    "pooling": "--pooling",
    "proj_size": "proj_size (recipe)",
    "num_labels": "the label column(s)",
}


def _check_resume_model(checkpoint: Path, resumed: dict[str, Any], config: Any) -> None:
    """The model the options build has the shapes of the checkpoint's (its config.json, ``resumed``): a
    changed --hidden-size failed in torch's load_state_dict with a 34-line traceback, exit 1."""
    differ = [
        f"{option}: {resumed[field]!r} in the checkpoint, {getattr(config, field)!r} now"
        for field, option in _SHAPE_FIELDS.items()
        if field in resumed and resumed[field] != getattr(config, field, None)
    ]
    if differ:
        raise CLIError(
            f"--resume-from-checkpoint {str(checkpoint)!r} holds a model of another shape ({'; '.join(differ)}): "
            "pass the interrupted run's options (its recipe and flags), or train anew without "
            "--resume-from-checkpoint."
        )


def _remove_checkpoints(folder: Path, *, whole: bool) -> None:
    """Deletes the Trainer's ``checkpoint-N`` folders (and ``folder`` itself when ``whole``: it was ours)."""
    if whole:
        shutil.rmtree(folder, ignore_errors=True)
    elif folder.is_dir():
        for child in folder.glob("checkpoint-*"):
            shutil.rmtree(child, ignore_errors=True)


def _has_checkpoint(folder: Path) -> bool:
    from transformers.trainer_utils import get_last_checkpoint

    return folder.is_dir() and get_last_checkpoint(str(folder)) is not None


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds ``train`` to the sub-command parsers; returns its parser (``--config`` sets its defaults)."""
    train = sub.add_parser(
        "train",
        help="train a classifier (default: the embedded SMS spam data)",
        description="Train a classifier. With no data options it trains on the SMS Spam "
        "Collection shipped with the package.",
    )
    _add_data_options(train, train=True)
    m = train.add_argument_group("model (default: the recipe's value)")
    m.add_argument("--rnn-type", choices=["rnn", "lstm", "gru"])
    m.add_argument("--hidden-size", type=_positive_int)
    m.add_argument("--num-layers", type=_positive_int)
    m.add_argument("--bidirectional", action=argparse.BooleanOptionalAction)
    m.add_argument("--pooling", choices=["last", "mean", "max", "mean_max"])
    m.add_argument("--embedding-dim", type=_positive_int, help="size of a trained embedding (no --vectors)")
    m.add_argument("--dropout", type=_probability, help="between stacked layers")
    m.add_argument("--embedding-dropout", type=_probability)
    m.add_argument("--classifier-dropout", type=_probability)
    m.add_argument(
        "--vectors", help="pretrained word vectors, e.g. glove.6B.50d or a path; 'none': no vectors"
    )
    m.add_argument("--freeze-vectors", action=argparse.BooleanOptionalAction, help="keep the vectors fixed")
    m.add_argument(
        "--tokenizer",
        metavar="NAME_OR_PATH",
        help="auto (basic_english for space-separated text, char for Chinese/Japanese/Thai...; the default "
        "recipe's choice), basic_english, whitespace, bpe, unigram, wordpiece, char, or a pretrained tokenizer "
        "folder or Hub id",
    )
    m.add_argument("--min-freq", type=_positive_int, help="drop words seen fewer times in train")
    m.add_argument(
        "--max-vocab-size", type=_positive_int, help="vocabulary cap (default 30000 words, 8000 subwords)"
    )
    m.add_argument("--max-length", type=_positive_int, help="truncate texts to this many tokens")
    t = train.add_argument_group("training (default: the recipe's value)")
    from ..recipes import list_recipes

    t.add_argument(
        "--recipe",
        help=f"train by a named recipe ({', '.join(list_recipes())}; see rnn_textclf.recipes) or a recipe "
        ".yaml/.json file; the model and training options given override its fields (default: the 'default' "
        "recipe)",
    )
    t.add_argument("--epochs", type=_positive_float)
    t.add_argument("--batch-size", type=_positive_int, help="texts per step on each process")
    t.add_argument("--lr", type=_positive_float, help="peak learning rate (AdamW)")
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--seed", type=_seed)
    t.add_argument(
        "--max-train-samples",
        type=_positive_int,
        metavar="N",
        help="train on a seeded sample of N training rows (stratified by class; --seed chooses it)",
    )
    t.add_argument(
        "--max-steps", type=_steps, help="stop after N optimizer steps (overrides --epochs; default: off)"
    )
    t.add_argument(
        "--pretrain-epochs",
        type=_non_negative_int,
        metavar="N",
        help="first train the embedding and RNN for N epochs as a language model on the training texts "
        "(no labels needed; helps most without word vectors, e.g. characters of Chinese text); 0: off",
    )
    c = train.add_argument_group("checkpoints")
    c.add_argument(
        "--checkpoint-dir",
        help="where the Trainer keeps its checkpoints during training (default: <output-dir>.checkpoints); "
        "kept after a crash, removed after success",
    )
    c.add_argument(
        "--keep-checkpoints", action="store_true", help="keep the checkpoint folder after a successful run"
    )
    c.add_argument(
        "--resume-from-checkpoint",
        nargs="?",
        const=True,
        metavar="PATH",
        help="continue an interrupted run (same options) from PATH (a checkpoint-N folder or a folder of them); "
        "without PATH: the latest checkpoint in the checkpoint folder",
    )
    d = train.add_argument_group("distillation (Tang et al. 2019)")
    d.add_argument(
        "--teacher",
        metavar="PATH_OR_REPO",
        help="distil from this fine-tuned classifier (a folder or Hub repo id with the same labels): the "
        "student learns the teacher's logits on the training texts",
    )
    d.add_argument("--teacher-revision", help="branch, tag or commit of a Hub --teacher")
    d.add_argument("--teacher-batch-size", type=_positive_int, help="texts per teacher forward pass")
    d.add_argument(
        "--augment",
        type=_non_negative_int,
        metavar="N",
        help="add N augmented copies of each training text (words masked, n-grams sampled), teacher-labelled "
        "(default: the recipe's distillation.augment, else 0)",
    )
    d.add_argument(
        "--distillation-alpha",
        type=_unit_interval,
        help="weight of the teacher's signal vs the labels (default: the recipe's, else 0.5; 1.0: teacher only)",
    )
    d.add_argument(
        "--distillation-temperature",
        type=_positive_float,
        help="softening temperature of the kl loss (default: the recipe's, else 1.0)",
    )
    d.add_argument(
        "--distillation-loss",
        choices=["kl", "mse"],
        help="kl on softened probabilities or mse on logits (default: the recipe's, else kl)",
    )
    o = train.add_argument_group("output")
    o.add_argument("--output-dir", help="where to write the model (default: ./rnn-textclf-model)")
    o.add_argument(
        "--overwrite", action="store_true", help="replace a non-empty --output-dir (and old checkpoints)"
    )
    o.add_argument("--push-to-hub", metavar="REPO", help="also push the model to this Hub repo")
    o.add_argument("--config", help="a .yaml/.json file with any of these options (flags win)")
    o.add_argument("--quiet", action="store_true", help="no progress output")
    o.add_argument("--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)")
    train.set_defaults(func=cmd_train, **TRAIN_DEFAULTS, **DISTILLATION_DEFAULTS)
    _show_defaults(train)
    _show_recipe_defaults(train)
    return train
