"""``rnn-textclf train --recipe NAME|FILE``: the CLI's data handling and outputs around ``train_recipe``.

The data options (``--train-file``, ``--dataset``, ``--text-column``, ...), ``--seed``,
``--max-train-samples``, ``--max-steps`` and the output options work as without a recipe. Model and
training options come from the recipe; an option whose value differs from the CLI's default (given as a
flag or through ``--config``) overrides the matching recipe field, so
``rnn-textclf train --recipe bilstm-glove --epochs 3`` is the recipe with 3 epochs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from . import InvalidRecipeError, Recipe, get_recipe, predict, train_recipe

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


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The recipe named by ``args.recipe`` with the options that differ from the CLI defaults applied."""
    from ..cli import TRAIN_DEFAULTS, CLIError

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
    from .. import cli
    from ..metrics import classification_metrics

    output_dir = Path(args.output_dir)
    cli._check_output_dir(output_dir, args.overwrite)
    started = time.perf_counter()
    recipe = recipe_from_args(args)
    data = cli._load_data(args)
    if "train" not in data:
        raise cli.CLIError(f"the data has no 'train' split (splits: {', '.join(data)}).")
    text_columns = cli._text_columns(args, data["train"].column_names)
    for name in data:
        cli._check_text_features(data[name], text_columns, name)
    plan = cli._label_plan(args, data)
    if plan["problem_type"] != "single_label_classification":
        raise cli.CLIError(
            f"--recipe trains single-label classifiers; this data is {plan['problem_type']}. Train it without --recipe."
        )
    splits = {
        name: (cli._joined_texts(data[name], text_columns, name), cli._encode_labels(data[name], plan, name))
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
    cli._info(f"Recipe {recipe.name}: {recipe.description}")
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
        raise cli.CLIError(f"--recipe {recipe.name!r}: {str(err).splitlines()[0]}") from None
    for row in result.history:
        cli._info(
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
        cli._publish(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if eval_split == "test":
        cli._print_report(report, "test", names, False, output_dir)
    else:
        print(
            f"\nrnn-textclf: trained in {report['train_seconds']:.1f} s; best validation accuracy "
            f"{result.best_validation_accuracy:.4f}. Saved to {output_dir}/"
        )
    if args.push_to_hub:
        cli._push(output_dir, args.push_to_hub)
    return cli.EXIT_OK
