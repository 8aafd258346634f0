"""Named, documented training recipes: model config + vectors + the training schedule, in one place.

A [`Recipe`][rnn_textclf.recipes.Recipe] holds everything needed to train a classifier from raw texts:
the ``RNNClassifierConfig`` fields, the word vectors, the embedding freeze/unfreeze schedule, the
optimizer, learning-rate schedule, batch size, epochs, truncation length, regularisation and early
stopping on a validation split carved from the training data (never the test data).

The recipes that ship live as YAML files beside this module (``bilstm-glove.yaml``, ...); list them with
[`list_recipes`][rnn_textclf.recipes.list_recipes], load one with
[`get_recipe`][rnn_textclf.recipes.get_recipe] (a name or the path of your own YAML/JSON file) and train
with [`train_recipe`][rnn_textclf.recipes.train_recipe]:

```python
from rnn_textclf.recipes import get_recipe, train_recipe, predict

result = train_recipe(get_recipe("bilstm-glove"), train_texts, train_labels, seed=1)
labels = predict(result.model, result.tokenizer, test_texts)
```

The command line runs the same code: ``rnn-textclf train --recipe bilstm-glove ...``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw")
SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine", "onecycle")
#: Fields of ``RNNClassifierConfig`` a recipe may set (the rest follow from the tokenizer and labels).
MODEL_FIELDS: tuple[str, ...] = (
    "rnn_type",
    "hidden_size",
    "num_layers",
    "bidirectional",
    "pooling",
    "dropout",
    "embedding_dropout",
    "classifier_dropout",
    "embedding_dim",
    "nonlinearity",
    "proj_size",
    "initializer_range",
)


class InvalidRecipeError(ValueError):
    """A recipe field (or a recipe file) has a value that is not allowed."""


def _fail(name: str, value: Any, allowed: str) -> None:
    raise InvalidRecipeError(f"Recipe field `{name}` must be {allowed}, got {value!r}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class Recipe:
    """A complete, named training recipe.

    Args:
        name: Short name (the YAML file's stem for shipped recipes).
        description: What the recipe is for and where it comes from.
        model: ``RNNClassifierConfig`` fields (see ``MODEL_FIELDS``); ``vocab_size``, ``num_labels`` and
            ``pad_token_id`` come from the data and are not set here.
        vectors: Pretrained word vectors for ``load_word_vectors`` (e.g. ``"glove.6B.50d"``), or ``None``
            for a randomly initialised embedding of ``model["embedding_dim"]``.
        freeze_epochs: Epochs trained with the embedding frozen before it is fine-tuned; ``0`` fine-tunes
            from the start, ``-1`` never unfreezes (the embedding stays the pretrained vectors).
        embedding_lr_scale: The embedding's learning rate as a fraction of ``lr`` once unfrozen.
        optimizer: ``"adam"`` or ``"adamw"`` (decoupled weight decay; never applied to the embedding).
        lr: Peak learning rate.
        weight_decay: Weight decay of the non-embedding parameters.
        schedule: ``"constant"``, ``"linear"`` (warmup then linear decay to 0), ``"cosine"`` (warmup then
            cosine decay) or ``"onecycle"`` (``torch.optim.lr_scheduler.OneCycleLR``).
        warmup_ratio: Share of the steps spent warming up (``"linear"`` and ``"cosine"``).
        batch_size: Texts per training batch (batches group texts of similar length).
        epochs: Maximum number of epochs.
        max_length: Truncate texts to this many tokens (``None``: no truncation).
        normalization: How texts are split into words: ``"basic_english"`` (torchtext's rules, for raw
            text) or ``"whitespace"`` (lowercase and split on whitespace only, for text that is already
            tokenized, such as SST's, where ``n't`` and ``'s`` then stay the words GloVe has vectors for
            instead of becoming ``n ' t`` and ``' s``).
        min_freq: Keep words seen at least this many times in the training texts.
        max_vocab_size: Cap of the vocabulary, specials included (``None``: no cap).
        vectors_vocab: Also give vocabulary rows to the first ``vectors_vocab`` words of ``vectors``
            (GloVe lists its words most frequent first) that the training texts lack, so words first seen
            at test time keep their pretrained vectors instead of becoming ``<unk>``. Added after
            ``max_vocab_size`` applies; ``0`` adds none. Needs ``vectors``.
        word_dropout: Probability of replacing a training token by ``<unk>`` (a regulariser).
        label_smoothing: Label smoothing of the cross-entropy loss.
        grad_clip: Clip the gradient norm to this value (``None``: no clipping).
        ema_decay: Keep an exponential moving average of the weights, updated after every optimizer step
            with decay ``min(ema_decay, (1 + step) / (10 + step))``; validation, early stopping and the
            returned model use the averaged weights. It smooths the noise of the last steps (a cheap
            relative of checkpoint averaging). ``0`` turns it off; typical values 0.99-0.999.
        adversarial_eps: Adversarial training on the word embeddings (Miyato et al. 2017): every step
            also trains on the batch with each text's embedding sequence moved by L2 norm
            ``adversarial_eps`` in the direction that raises its loss most (the loss gradient), and the
            two losses are summed. It roughly doubles the time of a step. ``0`` turns it off; the
            paper's value is 5.0 for unit-variance embeddings.
        validation_fraction: Share of the training texts held out (seeded, stratified) for early stopping
            and model selection when no validation set is passed.
        patience: Stop after this many epochs without a better validation accuracy (``None``: never; the
            best epoch is still the one kept).
        max_train_seconds: Wall-time budget of the whole ``train_recipe`` call: no epoch is started that,
            at the speed of the last one, would end past it (``None``: no budget). Runs that hit it depend
            on the machine's speed; the history says how many epochs ran.
    """

    name: str
    description: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    vectors: str | None = "glove.6B.50d"
    freeze_epochs: int = 0
    embedding_lr_scale: float = 1.0
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_ratio: float = 0.0
    batch_size: int = 64
    epochs: int = 10
    max_length: int | None = None
    normalization: str = "basic_english"
    min_freq: int = 1
    max_vocab_size: int | None = None
    vectors_vocab: int = 0
    word_dropout: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    ema_decay: float = 0.0
    adversarial_eps: float = 0.0
    validation_fraction: float = 0.1
    patience: int | None = None
    max_train_seconds: float | None = None

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Checks every field; raises ``InvalidRecipeError`` naming the field, the value and what is allowed."""
        if not isinstance(self.name, str) or not self.name:
            _fail("name", self.name, "a non-empty string")
        if not isinstance(self.model, dict):
            _fail("model", self.model, "a mapping of RNNClassifierConfig fields")
        unknown = sorted(set(self.model) - set(MODEL_FIELDS))
        if unknown:
            raise InvalidRecipeError(
                f"Recipe field `model` has unknown keys {unknown}; allowed: {', '.join(MODEL_FIELDS)}."
            )
        if self.vectors is not None and (not isinstance(self.vectors, str) or not self.vectors):
            _fail("vectors", self.vectors, "a vectors name or path (e.g. 'glove.6B.50d') or null")
        if self.vectors is None and "embedding_dim" not in self.model:
            raise InvalidRecipeError(
                "Recipe without `vectors` must set `model.embedding_dim` (the size of the trained embedding)."
            )
        if not _is_int(self.freeze_epochs) or self.freeze_epochs < -1:
            _fail("freeze_epochs", self.freeze_epochs, "an integer >= 0, or -1 (never unfreeze)")
        if not _is_number(self.embedding_lr_scale) or not 0 < self.embedding_lr_scale <= 10:
            _fail("embedding_lr_scale", self.embedding_lr_scale, "a number in (0, 10]")
        if self.optimizer not in OPTIMIZERS:
            _fail("optimizer", self.optimizer, f"one of {', '.join(map(repr, OPTIMIZERS))}")
        if not _is_number(self.lr) or not 0 < self.lr < 1:
            _fail("lr", self.lr, "a number in (0, 1)")
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            _fail("weight_decay", self.weight_decay, "a number >= 0")
        if self.schedule not in SCHEDULES:
            _fail("schedule", self.schedule, f"one of {', '.join(map(repr, SCHEDULES))}")
        for name in ("warmup_ratio", "word_dropout", "label_smoothing", "ema_decay"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value < 1:
                _fail(name, value, "a number in [0, 1)")
        from ..tokenization import NORMALIZATIONS

        if self.normalization not in NORMALIZATIONS:
            _fail("normalization", self.normalization, f"one of {', '.join(map(repr, NORMALIZATIONS))}")
        if not _is_number(self.adversarial_eps) or not 0 <= self.adversarial_eps <= 100:
            _fail("adversarial_eps", self.adversarial_eps, "a number in [0, 100]")
        if not _is_number(self.validation_fraction) or not 0 < self.validation_fraction < 1:
            _fail("validation_fraction", self.validation_fraction, "a number in (0, 1)")
        if not _is_int(self.vectors_vocab) or self.vectors_vocab < 0:
            _fail("vectors_vocab", self.vectors_vocab, "an integer >= 0")
        if self.vectors_vocab and self.vectors is None:
            raise InvalidRecipeError(
                f"Recipe field `vectors_vocab` is {self.vectors_vocab} but `vectors` is null: words can "
                "only be added from pretrained vectors; set `vectors` or `vectors_vocab: 0`."
            )
        for name in ("batch_size", "epochs", "min_freq"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                _fail(name, value, "an integer >= 1")
        if self.max_length is not None and (not _is_int(self.max_length) or self.max_length < 1):
            _fail("max_length", self.max_length, "an integer >= 1 or null")
        if self.max_vocab_size is not None and (not _is_int(self.max_vocab_size) or self.max_vocab_size < 3):
            _fail("max_vocab_size", self.max_vocab_size, "an integer >= 3 or null")
        if self.grad_clip is not None and (not _is_number(self.grad_clip) or self.grad_clip <= 0):
            _fail("grad_clip", self.grad_clip, "a positive number or null")
        if self.patience is not None and (not _is_int(self.patience) or self.patience < 1):
            _fail("patience", self.patience, "an integer >= 1 or null")
        if self.max_train_seconds is not None and (
            not _is_number(self.max_train_seconds) or self.max_train_seconds <= 0
        ):
            _fail("max_train_seconds", self.max_train_seconds, "a positive number of seconds or null")
        # The model fields are checked by the config itself (vocab size etc. are placeholders here).
        from ..configuration import RNNClassifierConfig

        try:
            RNNClassifierConfig(vocab_size=10, num_labels=2, **self.model)
        except ValueError as err:
            raise InvalidRecipeError(f"Recipe field `model`: {err}") from None

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data (the YAML/JSON file's content)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Recipe:
        """Builds a recipe from plain data; unknown keys raise ``InvalidRecipeError`` listing the allowed ones."""
        if not isinstance(values, dict):
            raise InvalidRecipeError(f"A recipe must be a mapping of field names to values, got {values!r}.")
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise InvalidRecipeError(f"Unknown recipe fields {unknown}; allowed: {', '.join(allowed)}.")
        if "name" not in values:
            raise InvalidRecipeError("A recipe needs a `name`.")
        return cls(**copy.deepcopy(values))

    @classmethod
    def from_file(cls, path: str | Path) -> Recipe:
        """Loads a recipe from a ``.yaml``/``.yml`` or ``.json`` file (``name`` defaults to the file's stem)."""
        path = Path(path)
        if path.suffix.lower() not in (".yaml", ".yml", ".json"):
            raise InvalidRecipeError(f"Recipe file {str(path)!r} must be a .yaml, .yml or .json file.")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix.lower() == ".json":
                values = json.loads(text)
            else:
                import yaml

                values = yaml.safe_load(text)
        except ValueError as err:  # yaml.YAMLError and json.JSONDecodeError are ValueErrors
            raise InvalidRecipeError(
                f"Recipe file {str(path)!r} is not valid: {str(err).splitlines()[0]}"
            ) from None
        if isinstance(values, dict):
            values.setdefault("name", path.stem)
        try:
            return cls.from_dict(values)
        except InvalidRecipeError as err:
            raise InvalidRecipeError(f"Recipe file {str(path)!r}: {err}") from None

    def save(self, path: str | Path) -> None:
        """Writes the recipe as YAML (``.yaml``/``.yml``) or JSON (``.json``)."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        else:
            import yaml

            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (``model`` entries are merged, not replaced)."""
        values = self.to_dict()
        if "model" in changes:
            values["model"] = {**values["model"], **changes.pop("model")}
        values.update(changes)
        return Recipe.from_dict(values)


# ---------------------------------------------------------------------------------------------- registry
def _shipped() -> dict[str, Any]:
    return {
        entry.name.rsplit(".", 1)[0]: entry
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".yaml")
    }


def list_recipes() -> list[str]:
    """Names of the recipes that ship with rnn-textclf."""
    return sorted(_shipped())


def get_recipe(name_or_path: str | Path) -> Recipe:
    """A shipped recipe by name (``"bilstm-glove"``) or a recipe file (``.yaml``/``.yml``/``.json``).

    Raises:
        InvalidRecipeError: Neither a shipped recipe nor an existing recipe file; the message lists the
            shipped names.
    """
    shipped = _shipped()
    key = str(name_or_path)
    if key in shipped:
        with resources.as_file(shipped[key]) as path:
            return Recipe.from_file(path)
    path = Path(key)
    if path.is_file():
        return Recipe.from_file(path)
    raise InvalidRecipeError(
        f"Unknown recipe {key!r}: not a shipped recipe ({', '.join(sorted(shipped))}) nor an existing "
        ".yaml/.yml/.json file."
    )


# ---------------------------------------------------------------------------------------------- training
@dataclass
class RecipeResult:
    """What [`train_recipe`][rnn_textclf.recipes.train_recipe] returns.

    Attributes:
        model: The trained ``RNNClassifier`` (weights of the best validation epoch), in eval mode.
        tokenizer: Its ``RNNTokenizer``, built from the training texts.
        recipe: The recipe that was run.
        best_epoch: 1-based epoch whose weights were kept.
        best_validation_accuracy: Validation accuracy of that epoch.
        history: One dict per epoch (``epoch``, ``train_loss``, ``validation_accuracy``, ``seconds``,
            ``embeddings_frozen``).
        train_seconds: Wall time of the whole call (tokenizer, vectors, training, validation).
        train_rows: Texts trained on (after the validation hold-out).
        validation_rows: Texts used for early stopping.
    """

    model: Any
    tokenizer: Any
    recipe: Recipe
    best_epoch: int
    best_validation_accuracy: float
    history: list[dict[str, Any]]
    train_seconds: float
    train_rows: int
    validation_rows: int


def _lr_lambda(schedule: str, total: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine

    return factor


def _check_labels(labels: Sequence[int], num_labels: int, what: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"`{what}` must be a flat sequence of integer class ids, got dtype {array.dtype}.")
    if array.size and (array.min() < 0 or array.max() >= num_labels):
        raise ValueError(
            f"`{what}` must hold class ids in [0, {num_labels}), got values from {array.min()} to {array.max()}."
        )
    return array.astype(np.int64)


def _batches(ids: list[list[int]], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def predict_logits(
    model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 256, max_length: int | None = None
) -> np.ndarray:
    """Logits ``(len(texts), num_labels)`` of a model for raw texts, in input order.

    Texts are batched by length (little padding); rows come back in the order of ``texts``.
    """
    from ..collator import PackedSequenceCollator

    ids = tokenizer(list(texts), truncation=max_length is not None, max_length=max_length)["input_ids"]
    return _logits_for_ids(model, ids, PackedSequenceCollator(tokenizer), batch_size)


@torch.no_grad()
def _logits_for_ids(model: Any, ids: list[list[int]], collator: Any, batch_size: int) -> np.ndarray:
    was_training = model.training
    model.eval()
    out = np.zeros((len(ids), model.config.num_labels), dtype=np.float32)
    for rows in _batches(ids, batch_size):
        batch = collator([{"input_ids": ids[i]} for i in rows])
        out[rows] = model(input_ids=batch["input_ids"], lengths=batch["lengths"]).logits.float().numpy()
    model.train(was_training)
    return out


def predict(
    model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 256, max_length: int | None = None
) -> np.ndarray:
    """Predicted class ids for raw texts (argmax of [`predict_logits`][rnn_textclf.recipes.predict_logits])."""
    return predict_logits(model, tokenizer, texts, batch_size=batch_size, max_length=max_length).argmax(-1)


def _adversarial_hook(state: dict[str, torch.Tensor], output: torch.Tensor) -> torch.Tensor | None:
    """Forward hook of the embedding layer for ``adversarial_eps`` (see ``train_recipe``)."""
    if "delta" in state:  # adversarial pass: move the embeddings along the loss gradient
        return output + state["delta"]
    if not torch.is_grad_enabled():  # validation
        return None
    if not output.requires_grad:  # frozen embedding: a leaf to take the gradient at
        output = output.detach().requires_grad_(True)
    else:
        output.retain_grad()
    state["embedded"] = output
    return output


def train_recipe(
    recipe: Recipe | str,
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    *,
    num_labels: int | None = None,
    label_names: Sequence[str] | None = None,
    validation_texts: Sequence[str] | None = None,
    validation_labels: Sequence[int] | None = None,
    seed: int = 0,
    vectors: Any = None,
    max_steps: int | None = None,
) -> RecipeResult:
    """Trains a single-label classifier from raw texts by a recipe.

    Steps: hold out a seeded stratified validation split of the training texts (unless a validation set
    is given), build the tokenizer from the remaining training texts, copy the recipe's word vectors into
    the embedding, train with the recipe's optimizer, schedule, freeze/unfreeze schedule and
    regularisation, evaluate validation accuracy after every epoch, stop early after ``patience`` epochs
    without improvement, and keep the weights of the best epoch. The test data is never seen.

    Args:
        recipe: A [`Recipe`][rnn_textclf.recipes.Recipe] or the name/path for
            [`get_recipe`][rnn_textclf.recipes.get_recipe].
        train_texts: Training texts.
        train_labels: Their class ids in ``[0, num_labels)``.
        num_labels: Number of classes (default: ``max(train_labels) + 1`` or ``len(label_names)``).
        label_names: Class names, index = class id (stored in ``config.id2label``).
        validation_texts: A validation set for early stopping (default: carved from the training texts).
        validation_labels: Its class ids.
        seed: Seed of the validation split, the initialisation, the batch order and dropout.
        vectors: Already loaded ``WordVectors`` to use instead of loading ``recipe.vectors`` (saves the
            load when training several times).
        max_steps: Stop after this many optimizer steps in total (for quick checks); the schedule is then
            laid out over ``max_steps``.

    Returns:
        A [`RecipeResult`][rnn_textclf.recipes.RecipeResult].
    """
    from ..collator import BucketBatchSampler, PackedSequenceCollator
    from ..configuration import RNNClassifierConfig
    from ..data import stratified_split
    from ..modeling import RNNClassifier
    from ..tokenization import RNNTokenizer

    started = time.perf_counter()
    if not isinstance(recipe, Recipe):
        recipe = get_recipe(recipe)
    if isinstance(train_texts, str) or len(train_texts) != len(train_labels):
        raise ValueError(
            f"`train_texts` must be a sequence of texts as long as `train_labels`, got "
            f"{type(train_texts).__name__} of length {len(train_texts)} and {len(train_labels)} labels."
        )
    if max_steps is not None and (not _is_int(max_steps) or max_steps < 1):
        raise ValueError(f"`max_steps` must be a positive integer or None, got {max_steps!r}.")
    if num_labels is None:
        num_labels = len(label_names) if label_names else int(np.max(train_labels)) + 1
    labels = _check_labels(train_labels, num_labels, "train_labels")
    texts = list(train_texts)
    if (validation_texts is None) != (validation_labels is None):
        raise ValueError("Pass both `validation_texts` and `validation_labels`, or neither.")
    if validation_texts is None:
        keep, held = stratified_split(
            labels, (1.0 - recipe.validation_fraction, recipe.validation_fraction), seed
        )
        val_texts = [texts[i] for i in held]
        val_labels = labels[held]
        texts = [texts[i] for i in keep]
        labels = labels[keep]
    else:
        val_texts = list(validation_texts)
        val_labels = _check_labels(validation_labels, num_labels, "validation_labels")
    if not texts or not val_texts:
        raise ValueError(
            f"Too few texts to train and validate: {len(texts)} training and {len(val_texts)} validation rows."
        )

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    tokenizer = RNNTokenizer.train_from_iterator(
        iter(texts),
        min_freq=recipe.min_freq,
        max_vocab_size=recipe.max_vocab_size,
        normalization=recipe.normalization,  # type: ignore[arg-type]  # validated
    )
    if recipe.vectors is not None and vectors is None:
        from ..vectors import load_word_vectors

        # With vectors_vocab the leading words of the file are needed too: read it all.
        vectors = load_word_vectors(
            recipe.vectors, vocab=None if recipe.vectors_vocab else tokenizer.get_vocab()
        )
    if recipe.vectors_vocab and vectors is not None:
        itos = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        known = set(itos)
        added = [w for w in vectors.words[: recipe.vectors_vocab] if w not in known]
        tokenizer = RNNTokenizer.from_vocab(
            itos + added,
            normalization=recipe.normalization,  # type: ignore[arg-type]  # validated
        )
        logger.info(
            "vectors_vocab: %d words of the vectors added to the %d-token vocabulary", len(added), len(itos)
        )
    truncate = recipe.max_length is not None
    train_ids = tokenizer(texts, truncation=truncate, max_length=recipe.max_length)["input_ids"]
    val_ids = tokenizer(val_texts, truncation=truncate, max_length=recipe.max_length)["input_ids"]

    model_fields = dict(recipe.model)
    if vectors is not None:
        model_fields["embedding_dim"] = int(vectors.dim)
    names = list(label_names) if label_names else [str(i) for i in range(num_labels)]
    config = RNNClassifierConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=num_labels,
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        problem_type="single_label_classification",
        **model_fields,
    )
    model = RNNClassifier(config)
    if vectors is not None:
        # The coverage report is logged by WordVectors.align (with the vectors' source).
        model.load_pretrained_embeddings(vectors, tokenizer, freeze=recipe.freeze_epochs != 0, seed=seed)
    model.config.recipe = recipe.name
    embedding = model.get_input_embeddings().weight
    if recipe.freeze_epochs != 0:
        embedding.requires_grad_(False)

    others = [p for n, p in model.named_parameters() if p is not embedding]
    groups = [
        {"params": others, "weight_decay": recipe.weight_decay, "lr": recipe.lr},
        # Always in the optimizer: while frozen it has no gradient and the optimizer skips it.
        {"params": [embedding], "weight_decay": 0.0, "lr": recipe.lr * recipe.embedding_lr_scale},
    ]
    optimizer_cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_cls(groups, lr=recipe.lr)
    steps_per_epoch = math.ceil(len(train_ids) / recipe.batch_size)
    total_steps = max_steps or steps_per_epoch * recipe.epochs
    if recipe.schedule == "onecycle":
        scheduler: Any = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in groups], total_steps=total_steps
        )
    else:
        warmup = int(recipe.warmup_ratio * total_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_lambda(recipe.schedule, total_steps, warmup)
        )

    collator = PackedSequenceCollator(tokenizer)
    sampler = BucketBatchSampler([len(x) for x in train_ids], recipe.batch_size, seed=seed)
    label_tensor = torch.from_numpy(labels)
    unk_id = tokenizer.unk_token_id
    pad_id = tokenizer.pad_token_id
    best_state, best_acc, best_epoch, since_best = None, -1.0, 0, 0
    history: list[dict[str, Any]] = []
    step = 0
    # Views of the parameters (sharing their storage) for the in-place average and swaps below.
    weights = [p.detach() for p in model.parameters()]
    # The moving average of the weights (ema_decay), kept beside the trained ones.
    averaged = [w.clone() for w in weights] if recipe.ema_decay else []
    # Adversarial training: a hook on the embedding layer keeps its output (for the loss gradient with
    # respect to it) on the clean pass and adds the perturbation on the adversarial pass.
    adversarial: dict[str, torch.Tensor] = {}
    hook = (
        model.get_input_embeddings().register_forward_hook(
            lambda module, args, output: _adversarial_hook(adversarial, output)
        )
        if recipe.adversarial_eps
        else None
    )
    for epoch in range(1, recipe.epochs + 1):
        epoch_start = time.perf_counter()
        if recipe.freeze_epochs > 0 and epoch == recipe.freeze_epochs + 1:
            embedding.requires_grad_(True)
            model.config.freeze_embeddings = False
        model.train()
        sampler.set_epoch(epoch - 1)
        total_loss, seen = 0.0, 0
        for rows in sampler:
            batch = collator([{"input_ids": train_ids[i]} for i in rows])
            input_ids = batch["input_ids"]
            if recipe.word_dropout:
                drop = torch.rand(input_ids.shape, generator=generator) < recipe.word_dropout
                input_ids = input_ids.masked_fill(drop & (input_ids != pad_id), unk_id)
            logits = model(input_ids=input_ids, lengths=batch["lengths"]).logits
            target = label_tensor[rows]
            loss = torch.nn.functional.cross_entropy(logits, target, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if hook is not None:
                grad = adversarial.pop("embedded").grad  # (batch, seq, emb); zero at padding
                norm = grad.flatten(1).norm(dim=1).clamp(min=1e-12)[:, None, None]  # one norm per text
                adversarial["delta"] = recipe.adversarial_eps * grad / norm
                adv_logits = model(input_ids=input_ids, lengths=batch["lengths"]).logits
                del adversarial["delta"]
                torch.nn.functional.cross_entropy(
                    adv_logits, target, label_smoothing=recipe.label_smoothing
                ).backward()  # gradients add up with the clean pass's
            if recipe.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            scheduler.step()
            if averaged:
                decay = min(recipe.ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    torch._foreach_lerp_(averaged, weights, 1.0 - decay)
            total_loss += loss.item() * len(rows)
            seen += len(rows)
            step += 1
            if max_steps is not None and step >= max_steps:
                break
        if averaged:  # validate (and keep) the averaged weights; training goes on from the trained ones
            trained = [w.clone() for w in weights]
            with torch.no_grad():
                torch._foreach_copy_(weights, averaged)
        val_pred = _logits_for_ids(model, val_ids, collator, 256).argmax(-1)
        val_acc = float((val_pred == val_labels).mean())
        row = {
            "epoch": epoch,
            "train_loss": total_loss / max(1, seen),
            "validation_accuracy": val_acc,
            "seconds": round(time.perf_counter() - epoch_start, 2),
            "embeddings_frozen": not embedding.requires_grad,
        }
        history.append(row)
        logger.info(
            "%s epoch %d: loss %.4f, validation accuracy %.4f (%.1fs)",
            recipe.name,
            epoch,
            row["train_loss"],
            val_acc,
            row["seconds"],
        )
        improved = val_acc > best_acc
        if improved:
            best_acc, best_epoch, since_best = val_acc, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        if averaged:
            with torch.no_grad():
                torch._foreach_copy_(weights, trained)
        if not improved:
            since_best += 1
            if recipe.patience is not None and since_best >= recipe.patience:
                logger.info("%s: early stop after epoch %d (best epoch %d)", recipe.name, epoch, best_epoch)
                break
        if max_steps is not None and step >= max_steps:
            break
        if recipe.max_train_seconds is not None and epoch < recipe.epochs:
            elapsed = time.perf_counter() - started
            if elapsed + (time.perf_counter() - epoch_start) > recipe.max_train_seconds:
                logger.info(
                    "%s: stopping after epoch %d: another epoch would pass max_train_seconds=%s",
                    recipe.name,
                    epoch,
                    recipe.max_train_seconds,
                )
                break
    if hook is not None:
        hook.remove()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.config.freeze_embeddings = not embedding.requires_grad
    model.eval()
    return RecipeResult(
        model=model,
        tokenizer=tokenizer,
        recipe=recipe,
        best_epoch=best_epoch,
        best_validation_accuracy=best_acc,
        history=history,
        train_seconds=time.perf_counter() - started,
        train_rows=len(texts),
        validation_rows=len(val_texts),
    )


__all__ = [
    "MODEL_FIELDS",
    "OPTIMIZERS",
    "SCHEDULES",
    "InvalidRecipeError",
    "Recipe",
    "RecipeResult",
    "get_recipe",
    "list_recipes",
    "predict",
    "predict_logits",
    "train_recipe",
]
