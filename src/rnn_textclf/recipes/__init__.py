"""Named, documented training recipes: model config + training arguments + vectors + tokenizer rules, as data.

A [`Recipe`][rnn_textclf.recipes.Recipe] holds everything needed to train a classifier from raw texts:
the ``RNNClassifierConfig`` fields, the word vectors, the tokenizer's rules (normalization, vocabulary
size, truncation) and the training schedule, which it turns into
[`RNNTrainingArguments`][rnn_textclf.RNNTrainingArguments] for [`RNNTrainer`][rnn_textclf.RNNTrainer]
(there is no other training loop). Model selection and early stopping use a validation split carved from
the training data, never the test data.

The recipes that ship live as YAML files beside this module (``bilstm-glove.yaml``, ...); list them with
[`list_recipes`][rnn_textclf.recipes.list_recipes], load one with
[`get_recipe`][rnn_textclf.recipes.get_recipe] (a name or the path of your own YAML/JSON file) and train
with [`train_recipe`][rnn_textclf.recipes.train_recipe]:

```python
from rnn_textclf.recipes import get_recipe, train_recipe, predict

result = train_recipe(get_recipe("bilstm-glove"), train_texts, train_labels, seed=1)
labels = predict(result.model, result.tokenizer, test_texts)
```

Or take the parts and train with your own ``RNNTrainer`` (callbacks, ``report_to``,
``hyperparameter_search``, ``resume_from_checkpoint``, torchrun):

```python
recipe = get_recipe("bilstm-glove")
tokenizer, vectors = recipe.build_tokenizer(train_texts)
model, _ = recipe.build_model(tokenizer, label_names=["neg", "pos"], vectors=vectors, seed=1)
args = recipe.training_arguments("out", seed=1, report_to="tensorboard")
trainer = recipe.trainer(
    model, tokenizer, args,
    train_dataset=recipe.encode(tokenizer, train_texts, train_labels),
    eval_dataset=recipe.encode(tokenizer, val_texts, val_labels),
)
trainer.train()
```

The command line runs the same code: ``rnn-textclf train`` trains by the ``default`` recipe,
``rnn-textclf train --recipe bilstm-glove ...`` by another one.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers import TrainerCallback

from ..callbacks import without_log_dicts

if TYPE_CHECKING:
    from ..configuration import RNNClassifierConfig
    from ..modeling import RNNClassifier
    from ..tokenization import RNNTokenizer
    from ..trainer import RNNTrainer
    from ..training_args import RNNTrainingArguments

logger = logging.getLogger(__name__)

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw")
#: ``schedule`` values and the ``lr_scheduler_type`` each becomes (with ``warmup_steps=warmup_ratio``).
SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine")
_SCHEDULER_TYPES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}
#: ``metric_for_best_model`` values: the validation metric that picks the kept epoch and stops early.
#: ``"auto"``: F1 of the positive class for two classes, macro F1 for more, micro F1 for multi-label data.
SELECTION_METRICS: tuple[str, ...] = ("accuracy", "f1", "macro_f1", "micro_f1", "exact_match", "auto")
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


#: Keys of a recipe's ``distillation`` section and their defaults (the ``--teacher`` options of the CLI).
DISTILLATION_FIELDS: dict[str, Any] = {"alpha": 0.5, "temperature": 1.0, "loss": "kl", "augment": 0}


# YAML 1.1 (PyYAML) reads `1e-3` (an exponent without a dot) as a string; learning rates are written so.
_YAML_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that reads ``1e-3`` as the number it is (recipe and ``--config`` files).

    Raises:
        ValueError: The text is not valid YAML (``yaml.YAMLError`` is no ``ValueError``), with its reason.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # SafeLoader's implicit resolvers, with its float pattern replaced by one that takes `1e-3`
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML_FLOAT, list("-+0123456789."))
    loader = Loader(text)  # a SafeLoader: plain data only, never Python objects
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ValueError(f"{getattr(err, 'problem', None) or err}{where}") from None
    finally:
        loader.dispose()


class InvalidRecipeError(ValueError):
    """A recipe field (or a recipe file) has a value that is not allowed."""


def _whole_if_whole(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def _fail(name: str, value: Any, allowed: str) -> None:
    raise InvalidRecipeError(f"Recipe field `{name}` must be {allowed}, got {value!r}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _token_counts(dataset: Any, vocab_size: int) -> Any:
    """How often each id occurs in a tokenized map-style data set's ``input_ids`` ``(vocab_size,)`` (one pass
    over its Arrow column), for the language model's adaptive softmax; None for a stream (not read twice)."""
    import numpy as np
    import pyarrow.compute as pc

    if not hasattr(dataset, "with_format") or "input_ids" not in (
        getattr(dataset, "column_names", None) or ()
    ):
        return None
    if not hasattr(dataset, "__len__"):  # (an IterableDataset)
        return None
    ids = pc.list_flatten(dataset.with_format("arrow")["input_ids"]).to_numpy(zero_copy_only=False)
    ids = ids[(ids >= 0) & (ids < vocab_size)]
    return np.bincount(ids, minlength=vocab_size)


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
        optimizer: ``"adamw"`` (decoupled weight decay, ``optim="adamw_torch_fused"``) or ``"adam"`` (the same
            optimizer without weight decay, which is Adam exactly; ``weight_decay`` must be 0).
        lr: Peak learning rate (``learning_rate``).
        weight_decay: Weight decay (``weight_decay``; ``RNNTrainer`` applies it to the weight matrices,
            not to biases nor to the embedding).
        schedule: ``"constant"``, ``"linear"`` (warmup then linear decay to 0) or ``"cosine"`` (warmup then
            cosine decay): ``lr_scheduler_type`` ``constant_with_warmup``, ``linear`` or ``cosine``.
            (``"onecycle"`` was dropped with the hand-written loop: no shipped recipe used it.)
        warmup_ratio: Share of the steps spent warming up (``warmup_steps``, a ratio below 1).
        batch_size: Texts per training batch on each process (``per_device_train_batch_size``; batches
            group texts of similar length).
        epochs: Maximum number of epochs (``num_train_epochs``; a fraction trains part of the last one).
        max_length: Truncate texts to this many tokens (``None``: no truncation).
        normalization: How texts are split into words: ``"basic_english"`` (torchtext's rules, for raw
            text) or ``"whitespace"`` (lowercase and split on whitespace only, for text that is already
            tokenized, such as SST's, where ``n't`` and ``'s`` then stay the words GloVe has vectors for
            instead of becoming ``n ' t`` and ``' s``).
        tokenizer: ``None`` (the default): a word vocabulary split by ``normalization``; but a recipe
            without ``vectors`` (or run with ``--vectors none``) on text written without spaces between
            words, as [`choose_tokenizer`][rnn_textclf.tokenization.choose_tokenizer] detects it, gets
            characters instead (logged: a word vocabulary of such text is whole clauses). Otherwise a name
            for [`build_tokenizer`][rnn_textclf.tokenization.build_tokenizer]: ``"auto"`` (chosen from
            the training texts: ``"basic_english"`` for space-separated text, ``"char"`` for Chinese,
            Japanese, Thai... written without spaces; logged), ``"basic_english"``, ``"whitespace"``,
            ``"bpe"``, ``"unigram"``, ``"wordpiece"``, ``"char"``, or a pretrained tokenizer's folder or
            Hub id. Word vectors (``vectors``) need a word tokenizer (or the pretrained tokenizer of a
            transformer whose embeddings they are); ``vectors_vocab`` needs ``None``,
            ``"basic_english"`` or ``"whitespace"``.
        min_freq: Keep words seen at least this many times in the training texts.
        max_vocab_size: Cap of the vocabulary, specials included (``None``: no cap for a word vocabulary
            with ``tokenizer: null``; with a ``tokenizer`` name, that tokenizer's default: 30,000 words,
            8,000 subwords, no cap for characters).
        vectors_vocab: Also give vocabulary rows to the first ``vectors_vocab`` words of ``vectors``
            (GloVe lists its words most frequent first) that the training texts lack, so words first seen
            at test time keep their pretrained vectors instead of becoming ``<unk>``. Added after
            ``max_vocab_size`` applies; ``0`` adds none. Needs ``vectors``.
        word_dropout: Probability of replacing a training token by ``<unk>`` (a regulariser;
            ``RNNClassifierConfig.word_dropout``, active in training mode only).
        label_smoothing: Label smoothing of the cross-entropy loss (``label_smoothing_factor``).
        grad_clip: Clip the gradient norm to this value (``max_grad_norm``; ``None``: no clipping).
        ema_decay: Keep an exponential moving average of the weights (``RNNTrainingArguments.ema_decay``);
            validation, early stopping and the kept model use the averaged weights. ``0`` turns it off;
            typical values 0.99-0.999.
        adversarial_eps: Adversarial training on the word embeddings (Miyato et al. 2017;
            ``RNNTrainingArguments.adversarial_eps``): every step also trains on the batch with each
            text's embedding sequence moved by L2 norm ``adversarial_eps`` along its loss gradient. It
            roughly doubles the time of a step. ``0`` turns it off.
        validation_fraction: Share of the training texts held out (seeded, stratified) for early stopping
            and model selection when no validation set is passed.
        patience: Stop after this many epochs without a better validation metric (``EarlyStoppingCallback``;
            ``None``: never; the best epoch is still the one kept, ``load_best_model_at_end``).
        max_train_seconds: Wall-time budget of training (``RNNTrainingArguments.max_train_seconds``): no
            epoch is started that would end past it (``None``: no budget). Runs that hit it depend on the
            machine's speed; the history says how many epochs ran.
        metric_for_best_model: The validation metric that picks the kept epoch and drives early stopping
            (``metric_for_best_model``): one of ``SELECTION_METRICS``; ``"auto"`` is F1 of the second
            class for two classes, macro F1 for more and micro F1 for multi-label data.
        pretrain_epochs: Epochs of language-model pretraining before the classifier trains (``0``, the
            default: none): the embedding and the RNN first learn to predict each token of the training
            texts from the tokens before it (and, bidirectional, from those after it), which needs no
            labels (Dai & Le 2015; [`RNNLanguageModel`][rnn_textclf.pretraining.RNNLanguageModel]), with
            the recipe's ``lr``, ``batch_size``, ``warmup_ratio`` and ``grad_clip``. Most useful without
            pretrained ``vectors`` (e.g. characters of Chinese text). A bidirectional model needs
            ``num_layers: 1``.
        distillation: ``None`` (the default), or how to distil from a teacher (Tang et al. 2019), a mapping
            with any of ``alpha`` (weight of the teacher's signal vs the labels, ``distillation_alpha``;
            default 0.5, 1.0: teacher only), ``temperature`` (of the ``"kl"`` loss,
            ``distillation_temperature``; 1.0), ``loss`` (``"kl"`` or ``"mse"``; ``"kl"``) and ``augment``
            (teacher-labelled augmented copies added per training text; 0). A recipe with it needs a
            teacher: ``rnn-textclf train --recipe NAME --teacher PATH_OR_REPO`` (whose ``--augment`` and
            ``--distillation-*`` flags win over these values).
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
    epochs: int | float = 10
    max_length: int | None = None
    normalization: str = "basic_english"
    tokenizer: str | None = None
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
    metric_for_best_model: str = "accuracy"
    pretrain_epochs: int = 0
    distillation: dict[str, Any] | None = None

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
        if self.vectors is not None and "embedding_dim" in self.model:
            # (silently dropped: a recipe file without `vectors:` gets glove.6B.50d and its 50 dimensions)
            raise InvalidRecipeError(
                f"Recipe field `model.embedding_dim` ({self.model['embedding_dim']!r}) does not apply with `vectors` "
                f"{self.vectors!r}: the embedding takes the vectors' size. Remove it, or set `vectors: null` to "
                "train an embedding of that size from scratch."
            )
        if self.vectors is None and "embedding_dim" not in self.model:
            raise InvalidRecipeError(
                "Recipe without `vectors` must set `model.embedding_dim` (the size of the trained embedding)."
            )
        if not _is_int(self.freeze_epochs) or self.freeze_epochs < -1:
            _fail("freeze_epochs", self.freeze_epochs, "an integer >= 0, or -1 (never unfreeze)")
        if not _is_number(self.embedding_lr_scale) or not 0 < self.embedding_lr_scale <= 10:
            _fail("embedding_lr_scale", self.embedding_lr_scale, "a number in (0, 10]")
        if self.freeze_epochs == -1 and self.vectors is None:
            raise InvalidRecipeError(
                "Recipe field `freeze_epochs` is -1 (never train the embedding) but `vectors` is null: the "
                "embedding would stay random for the whole run. Name the vectors, or set freeze_epochs to 0."
            )
        if self.freeze_epochs == -1 and self.embedding_lr_scale != 1:
            raise InvalidRecipeError(
                f"Recipe field `embedding_lr_scale` would change nothing with `freeze_epochs: -1` (the embedding "
                f"never trains), got {self.embedding_lr_scale!r}: set it to 1.0, or unfreeze after some epochs."
            )
        if self.optimizer not in OPTIMIZERS:
            _fail("optimizer", self.optimizer, f"one of {', '.join(map(repr, OPTIMIZERS))}")
        if not _is_number(self.lr) or not 0 < self.lr < 1:
            _fail("lr", self.lr, "a number in (0, 1)")
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            _fail("weight_decay", self.weight_decay, "a number >= 0")
        if self.optimizer == "adam" and self.weight_decay:
            raise InvalidRecipeError(
                f"Recipe field `weight_decay` must be 0 with `optimizer: adam`, got {self.weight_decay!r}: "
                "Trainer's AdamW without weight decay is Adam; for weight decay use `optimizer: adamw`."
            )
        if self.schedule not in SCHEDULES:
            _fail("schedule", self.schedule, f"one of {', '.join(map(repr, SCHEDULES))}")
        if self.metric_for_best_model not in SELECTION_METRICS:
            _fail(
                "metric_for_best_model",
                self.metric_for_best_model,
                f"one of {', '.join(map(repr, SELECTION_METRICS))}",
            )
        for name in ("warmup_ratio", "word_dropout", "label_smoothing", "ema_decay"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value < 1:
                _fail(name, value, "a number in [0, 1)")
        from ..tokenization import NORMALIZATIONS

        if self.normalization not in NORMALIZATIONS:
            _fail("normalization", self.normalization, f"one of {', '.join(map(repr, NORMALIZATIONS))}")
        if self.tokenizer is not None and (not isinstance(self.tokenizer, str) or not self.tokenizer):
            from ..tokenization import TOKENIZER_CHOICES

            _fail(
                "tokenizer",
                self.tokenizer,
                f"null, one of {', '.join(map(repr, TOKENIZER_CHOICES))} or a tokenizer folder or Hub id",
            )
        if self.vectors_vocab and self.tokenizer not in (None, "basic_english", "whitespace"):
            raise InvalidRecipeError(
                f"Recipe field `vectors_vocab` is {self.vectors_vocab} but `tokenizer` is {self.tokenizer!r}: "
                "words of the vectors can only be added to a word vocabulary; set `tokenizer` to null, "
                "'basic_english' or 'whitespace', or `vectors_vocab: 0`."
            )
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
        for name in ("batch_size", "min_freq"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                _fail(name, value, "an integer >= 1")
        if not _is_number(self.epochs) or not self.epochs > 0:
            _fail("epochs", self.epochs, "a positive number (whole or fractional epochs)")
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
        if not _is_int(self.pretrain_epochs) or self.pretrain_epochs < 0:
            _fail("pretrain_epochs", self.pretrain_epochs, "an integer >= 0")
        if (
            self.pretrain_epochs
            and self.model.get("bidirectional", False)
            and self.model.get("num_layers", 1) > 1
        ):
            raise InvalidRecipeError(
                f"Recipe field `pretrain_epochs` is {self.pretrain_epochs} but the model is bidirectional with "
                f"num_layers {self.model.get('num_layers')}: a stacked bidirectional RNN cannot be pretrained as a "
                "language model (its upper layers see the token to predict). Use `num_layers: 1`, "
                "`bidirectional: false`, or `pretrain_epochs: 0`."
            )
        self._validate_distillation()
        # The model fields are checked by the config itself (vocab size etc. are placeholders here).
        from ..configuration import RNNClassifierConfig

        try:
            RNNClassifierConfig(vocab_size=10, num_labels=2, **self.model)
        except ValueError as err:
            raise InvalidRecipeError(f"Recipe field `model`: {err}") from None

    def _validate_distillation(self) -> None:
        if self.distillation is None:
            return
        if not isinstance(self.distillation, dict):
            _fail(
                "distillation",
                self.distillation,
                f"null or a mapping with keys {', '.join(DISTILLATION_FIELDS)}",
            )
        unknown = sorted(set(self.distillation) - set(DISTILLATION_FIELDS))
        if unknown:
            raise InvalidRecipeError(
                f"Recipe field `distillation` has unknown keys {unknown}; allowed: {', '.join(DISTILLATION_FIELDS)}."
            )
        from ..distillation import _check_distillation_options

        values = self.distillation_options()
        if values["alpha"] is None:
            _fail("distillation.alpha", None, "a number in [0, 1] (the section turns distillation on)")
        try:
            _check_distillation_options(values["alpha"], values["temperature"], values["loss"])
        except ValueError as err:  # "`distillation_alpha` must be ..." -> the recipe's own key
            message = str(err)
            for key in ("alpha", "temperature", "loss"):
                message = message.replace(f"`distillation_{key}`", f"`distillation.{key}`")
            raise InvalidRecipeError(f"Recipe field {message}") from None
        if not _is_int(values["augment"]) or values["augment"] < 0:
            _fail("distillation.augment", values["augment"], "an integer >= 0")

    def distillation_options(self) -> dict[str, Any]:
        """``distillation`` with its defaults filled in (``alpha``, ``temperature``, ``loss``, ``augment``)."""
        return {**DISTILLATION_FIELDS, **(self.distillation or {})}

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
            values = json.loads(text) if path.suffix.lower() == ".json" else load_yaml(text)
        except ValueError as err:  # (json.JSONDecodeError is one; load_yaml raises one)
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
        """A copy with some fields changed (``model`` entries are merged, not replaced; new ``vectors`` drop
        ``model.embedding_dim``: the vectors give the embedding its size, as ``--vectors`` does)."""
        values = self.to_dict()
        if changes.get("vectors") is not None and "embedding_dim" not in (changes.get("model") or {}):
            values["model"].pop("embedding_dim", None)
        if "model" in changes:
            values["model"] = {**values["model"], **changes.pop("model")}
        values.update(changes)
        return Recipe.from_dict(values)

    # ------------------------------------------------------------------ what the recipe builds
    def selection_metric(self, problem_type: str = "single_label_classification", num_labels: int = 2) -> str:
        """The ``metric_for_best_model`` for this data (``"auto"`` resolved; see ``SELECTION_METRICS``).

        Raises:
            InvalidRecipeError: The metric does not exist for this kind of data (``accuracy``/``f1`` on
                multi-label data, ``micro_f1``/``exact_match`` on single-label data).
        """
        multi = problem_type == "multi_label_classification"
        metric = self.metric_for_best_model
        if metric == "auto":
            return "micro_f1" if multi else ("f1" if num_labels == 2 else "macro_f1")
        allowed = ("exact_match", "micro_f1", "macro_f1") if multi else ("accuracy", "macro_f1", "f1")
        if metric == "f1" and not multi and num_labels != 2:
            allowed = ("accuracy", "macro_f1")
        if metric not in allowed:
            kind = "multi-label" if multi else f"{num_labels}-class"
            _fail(
                "metric_for_best_model",
                metric,
                f"one of {', '.join(map(repr, allowed))} or 'auto' for {kind} data",
            )
        return metric

    def build_tokenizer(
        self, texts: Sequence[str], *, vectors: Any = None, show_progress: bool = False
    ) -> tuple[RNNTokenizer, Any]:
        """The tokenizer learned from the training texts by the recipe's rules, and the recipe's vectors.

        The vocabulary is the words of ``texts`` (``min_freq``, ``max_vocab_size``, ``normalization``),
        then the first ``vectors_vocab`` words of the vectors it lacks.

        Args:
            texts: The training texts (never the validation or test texts).
            vectors: Already loaded ``WordVectors`` to use instead of loading ``self.vectors``.
            show_progress: Show the tokenizer trainer's progress bar.

        Returns:
            ``(tokenizer, vectors)``; ``vectors`` is ``None`` for a recipe without vectors.
        """
        from ..tokenization import RNNTokenizer, build_tokenizer, choose_tokenizer

        choice = self.tokenizer
        if choice is None and self.vectors is None:
            # Nothing ties this recipe to words: text without spaces between words gets characters, as
            # `--tokenizer auto` would give it; space-separated text keeps the recipe's word rules.
            picked, reason = choose_tokenizer(texts)
            if picked != "basic_english":
                logger.info(
                    "Tokenizer: %s (recipe %r has no tokenizer or vectors: %s)", picked, self.name, reason
                )
                choice = picked
        if choice is None:
            tokenizer = RNNTokenizer.train_from_iterator(
                iter(texts),
                min_freq=self.min_freq,
                max_vocab_size=self.max_vocab_size,
                normalization=self.normalization,  # type: ignore[arg-type]  # validated
                show_progress=show_progress,
            )
        else:
            tokenizer = build_tokenizer(
                choice,
                texts,
                min_freq=self.min_freq,
                max_vocab_size=self.max_vocab_size,
                show_progress=show_progress,
            )
        kind = getattr(tokenizer, "tokenizer_model", None)
        if self.vectors is not None and kind not in (None, "word"):
            raise ValueError(
                f"recipe {self.name!r}: the {kind!r} tokenizer (tokenizer: {self.tokenizer!r}) does not fit the "
                f"word vectors {self.vectors!r}: their rows are words. Use a word tokenizer ('basic_english', "
                "'whitespace') or `vectors: null`."
            )
        if self.vectors is None:
            return tokenizer, None
        if vectors is None:
            from ..vectors import load_word_vectors

            # With vectors_vocab the leading words of the file are needed too: read it all.
            vectors = load_word_vectors(
                self.vectors, vocab=None if self.vectors_vocab else tokenizer.get_vocab()
            )
        if self.vectors_vocab:
            itos = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
            known = set(itos)
            added = [w for w in vectors.words[: self.vectors_vocab] if w not in known]
            tokenizer = RNNTokenizer.from_vocab(
                itos + added,
                normalization=tokenizer.normalization or self.normalization,  # type: ignore[arg-type]
            )
            logger.info(
                "vectors_vocab: %d words of the vectors added to the %d-token vocabulary",
                len(added),
                len(itos),
            )
        return tokenizer, vectors

    def model_config(
        self,
        tokenizer: Any,
        *,
        label_names: Sequence[str],
        problem_type: str = "single_label_classification",
        embedding_dim: int | None = None,
    ) -> RNNClassifierConfig:
        """The ``RNNClassifierConfig`` of the recipe for this tokenizer and these labels.

        Args:
            tokenizer: The tokenizer (vocabulary size, pad and unk ids).
            label_names: Class names, index = class id.
            problem_type: ``"single_label_classification"`` or ``"multi_label_classification"``.
            embedding_dim: The vectors' size (overrides ``model["embedding_dim"]``).
        """
        from ..configuration import RNNClassifierConfig

        fields = dict(self.model)
        if embedding_dim is not None:
            fields["embedding_dim"] = int(embedding_dim)
        names = [str(n) for n in label_names]
        word_dropout = self.word_dropout
        if word_dropout and tokenizer.unk_token_id is None:
            # (a byte-level BPE such as GPT-2's has no unknown token: dropped words would have nothing to become)
            logger.warning(
                "recipe %r: word_dropout=%s is off: the tokenizer has no unknown token for dropped words to become",
                self.name,
                word_dropout,
            )
            word_dropout = 0.0
        config = RNNClassifierConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)},
            problem_type=problem_type,
            word_dropout=word_dropout,
            unk_token_id=tokenizer.unk_token_id,
            **fields,
        )
        config.recipe = self.name
        return config

    def build_model(
        self,
        tokenizer: Any,
        *,
        label_names: Sequence[str],
        vectors: Any = None,
        problem_type: str = "single_label_classification",
        seed: int | None = None,
    ) -> tuple[RNNClassifier, Any]:
        """A freshly initialised ``RNNClassifier`` with the recipe's config and its vectors copied in.

        Args:
            tokenizer: The recipe's tokenizer (see ``build_tokenizer``).
            label_names: Class names, index = class id.
            vectors: The vectors from ``build_tokenizer`` (``None`` for a recipe without vectors).
            problem_type: ``"single_label_classification"`` or ``"multi_label_classification"``.
            seed: Seeds the initialisation (``transformers.set_seed``) when given.

        Returns:
            ``(model, coverage)``: the model and the vectors' coverage report (``None`` without vectors).
        """
        from transformers import set_seed

        from ..modeling import RNNClassifier

        if seed is not None:
            set_seed(seed)
        config = self.model_config(
            tokenizer,
            label_names=label_names,
            problem_type=problem_type,
            embedding_dim=None if vectors is None else int(vectors.dim),
        )
        model = RNNClassifier(config)
        coverage = None
        if vectors is not None:
            # freeze_epochs -1 freezes for good (recorded in the config); a positive freeze_epochs is the
            # trainer's schedule (embedding_freeze_epochs), which unfreezes it later.
            coverage = model.load_pretrained_embeddings(
                vectors, tokenizer, freeze=self.freeze_epochs == -1, seed=seed
            )
        return model, coverage

    def encode(self, tokenizer: Any, texts: Sequence[str], labels: Sequence[Any] | None = None) -> Any:
        """A ``datasets.Dataset`` of ``input_ids``, ``length`` (and ``labels``) truncated to ``max_length``."""
        from datasets import Dataset

        encoded = tokenizer(
            list(texts),
            truncation=self.max_length is not None,
            max_length=self.max_length,
            return_length=True,
        )
        columns: dict[str, Any] = {"input_ids": encoded["input_ids"], "length": encoded["length"]}
        if labels is not None:
            columns["labels"] = list(labels) if not isinstance(labels, np.ndarray) else labels.tolist()
        return Dataset.from_dict(columns)

    def training_arguments(
        self,
        output_dir: str | Path,
        *,
        seed: int = 0,
        max_steps: int | None = None,
        metric_for_best_model: str | None = None,
        **overrides: Any,
    ) -> RNNTrainingArguments:
        """The recipe's schedule as [`RNNTrainingArguments`][rnn_textclf.RNNTrainingArguments].

        Evaluation, checkpointing and logging happen once an epoch; the best epoch's weights are loaded at
        the end (``load_best_model_at_end``), training batches group texts of similar length.

        Args:
            output_dir: Trainer's folder for checkpoints.
            seed: Seed of the initialisation, batch order and dropout.
            max_steps: Stop after this many optimizer steps in total (the schedule is then laid out over
                ``max_steps``); ``None``: ``epochs`` epochs.
            metric_for_best_model: The metric key (default ``selection_metric()``, i.e. accuracy unless
                the recipe says otherwise).
            **overrides: Any other ``RNNTrainingArguments`` field (``report_to``, ``save_strategy``,
                ``bf16``, ...); they win over the recipe's values.
        """
        from ..training_args import RNNTrainingArguments

        values: dict[str, Any] = {
            **self._shared_arguments(output_dir, seed),
            "num_train_epochs": self.epochs,
            "max_steps": -1 if max_steps is None else int(max_steps),
            "weight_decay": self.weight_decay,
            "lr_scheduler_type": _SCHEDULER_TYPES[self.schedule],
            "label_smoothing_factor": self.label_smoothing,
            "adversarial_eps": self.adversarial_eps,
            "ema_decay": self.ema_decay,
            "embedding_lr_scale": self.embedding_lr_scale,
            "embedding_freeze_epochs": self.freeze_epochs,
            "max_train_seconds": self.max_train_seconds,
            "eval_strategy": "epoch",
            "save_strategy": "epoch",
            "load_best_model_at_end": True,
            "metric_for_best_model": metric_for_best_model or self.selection_metric(),
            "greater_is_better": True,
            # Every parameter takes part in each forward pass: spare DDP the search for unused ones.
            "ddp_find_unused_parameters": False,
        }
        if self.distillation is not None:  # applies to batches that carry `teacher_logits`
            options = self.distillation_options()
            values["distillation_alpha"] = options["alpha"]
            values["distillation_temperature"] = options["temperature"]
            values["distillation_loss"] = options["loss"]
        values.update(overrides)
        return RNNTrainingArguments(**values)

    def _shared_arguments(self, output_dir: str | Path, seed: int) -> dict[str, Any]:
        """The ``RNNTrainingArguments`` entries of both the classifier's and the pretraining's runs."""
        return {
            "output_dir": str(output_dir),
            "per_device_train_batch_size": self.batch_size,
            "per_device_eval_batch_size": 256,
            "learning_rate": self.lr,
            # Adam without weight decay and AdamW without weight decay are the same update. The fused
            # kernel does the same arithmetic in one pass: 0.39 vs 1.26 ms a step for bilstm-glove on a CPU.
            "optim": "adamw_torch_fused",
            "warmup_steps": self.warmup_ratio,  # below 1: a share of the steps
            "max_grad_norm": 0.0 if self.grad_clip is None else self.grad_clip,  # 0: no clipping
            "logging_strategy": "epoch",
            "train_sampling_strategy": "group_by_length",
            "seed": seed,
            "report_to": "none",
            "use_cpu": not torch.cuda.is_available(),
            "dataloader_pin_memory": torch.cuda.is_available(),  # pinning warns and does nothing on CPU
        }

    def pretrainer(
        self,
        model: Any,
        tokenizer: Any,
        output_dir: str | Path,
        *,
        train_dataset: Any,
        eval_dataset: Any = None,
        seed: int = 0,
        **overrides: Any,
    ) -> RNNTrainer:
        """An [`RNNTrainer`][rnn_textclf.RNNTrainer] that pretrains ``model`` as a language model.

        ``pretrain_epochs`` epochs of [`RNNLanguageModel`][rnn_textclf.pretraining.RNNLanguageModel]
        over the texts of ``train_dataset`` (its labels and teacher logits are not used), with the recipe's
        ``lr``, ``batch_size``, ``warmup_ratio``, ``grad_clip`` and length-grouped batches; the loss on
        ``eval_dataset`` (when given) is evaluated after each epoch. Training it changes ``model``'s
        embedding and RNN in place; nothing is saved.

        Args:
            model: The classifier from ``build_model``.
            tokenizer: Its tokenizer.
            output_dir: Trainer's folder (nothing is written there but logs of the run).
            train_dataset: ``encode(tokenizer, texts, ...)`` of the texts to learn from.
            eval_dataset: The same of held-out texts, or ``None``.
            seed: Seed of the heads' initialisation, batch order and dropout.
            **overrides: Other ``RNNTrainingArguments`` fields (``report_to``, ``disable_tqdm``, ...).
        """
        from transformers import set_seed

        from ..pretraining import RNNLanguageModel
        from ..trainer import RNNTrainer
        from ..training_args import RNNTrainingArguments

        if not self.pretrain_epochs:
            raise InvalidRecipeError(
                f"Recipe {self.name!r} has `pretrain_epochs: 0`: there is nothing to pretrain."
            )

        def texts_only(dataset: Any) -> Any:
            # (a mapped stream knows no columns, a bucket_stream has none: RNNTrainer drops label columns
            # per batch for a model whose forward takes no labels)
            columns = getattr(dataset, "column_names", None) or ()
            drop = [c for c in ("labels", "label", "teacher_logits") if c in columns]
            return dataset.remove_columns(drop) if drop else dataset

        set_seed(seed)
        values: dict[str, Any] = {
            **self._shared_arguments(output_dir, seed),
            "num_train_epochs": self.pretrain_epochs,
            "lr_scheduler_type": "linear",
            "eval_strategy": "no" if eval_dataset is None else "epoch",
            "save_strategy": "no",
            # The classifier's own head takes no part in the language model's loss.
            "ddp_find_unused_parameters": True,
        }
        values.update(overrides)
        return RNNTrainer(
            model=RNNLanguageModel(model, token_counts=_token_counts(train_dataset, model.config.vocab_size)),
            args=RNNTrainingArguments(**values),
            train_dataset=texts_only(train_dataset),
            eval_dataset=None if eval_dataset is None else texts_only(eval_dataset),
            processing_class=tokenizer,
        )

    def pretrain(
        self,
        model: Any,
        tokenizer: Any,
        output_dir: str | Path,
        *,
        train_dataset: Any,
        eval_dataset: Any = None,
        seed: int = 0,
        callbacks: Sequence[Any] = (),
        **overrides: Any,
    ) -> dict[str, Any]:
        """Pretrain ``model``'s embedding and RNN in place (``pretrainer(...).train()``); what it did.

        The summary (without ``seconds``) is also recorded as ``model.config.pretraining``: in
        ``config.json`` and the model card of the model once saved.

        The Trainer prints no log dicts (its progress bars stay unless ``disable_tqdm=True``): the
        losses are in the returned summary, and ``callbacks`` (``TrainerCallback`` s) see every log and
        evaluation. Arguments as for [`pretrainer`][rnn_textclf.recipes.Recipe.pretrainer].

        Returns:
            ``objective``, ``epochs``, ``steps`` (optimizer steps run: with an ``IterableDataset``, pass
            ``max_steps``), ``texts`` (of ``train_dataset``; ``None`` when streamed), ``seconds``, and
            with an ``eval_dataset`` the last evaluation's ``validation_loss`` (cross-entropy per
            predicted token in nats: each evaluation batch's mean, averaged over the batches as
            ``Trainer.evaluate`` does, so it moves slightly with ``per_device_eval_batch_size``) and
            ``validation_perplexity``.
        """
        trainer = self.pretrainer(
            model,
            tokenizer,
            output_dir,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            seed=seed,
            **overrides,
        )
        without_log_dicts(trainer)
        for callback in callbacks:
            trainer.add_callback(callback)
        started = time.perf_counter()
        trainer.train()
        summary: dict[str, Any] = {
            "objective": "language model: next token"
            + ("; previous token for the backward direction" if model.config.bidirectional else ""),
            # what ran: max_steps may end it early (a stream has no epochs: its passes over the data)
            "epochs": _whole_if_whole(round(float(trainer.state.epoch or 0.0), 2)),
            "steps": trainer.state.global_step,
            "texts": len(train_dataset) if hasattr(train_dataset, "__len__") else None,  # (None: streamed)
        }
        losses = [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]
        if losses:
            summary["validation_loss"] = round(float(losses[-1]), 4)
            summary["validation_perplexity"] = round(math.exp(losses[-1]), 2)
        # config.json and the model card say how it was trained (not how long: two runs of one command
        # then write the same config.json)
        model.config.pretraining = dict(summary)
        summary["seconds"] = round(time.perf_counter() - started, 1)
        return summary

    def callbacks(self) -> list[Any]:
        """The recipe's Trainer callbacks: ``EarlyStoppingCallback(patience)`` when ``patience`` is set."""
        from transformers import EarlyStoppingCallback

        return [] if self.patience is None else [EarlyStoppingCallback(early_stopping_patience=self.patience)]

    def trainer(
        self,
        model: Any,
        tokenizer: Any,
        args: Any,
        *,
        train_dataset: Any,
        eval_dataset: Any,
        compute_metrics: Any = None,
        callbacks: Sequence[Any] = (),
        model_init: Any = None,
    ) -> RNNTrainer:
        """An [`RNNTrainer`][rnn_textclf.RNNTrainer] for the recipe: its callbacks plus ``callbacks``.

        Args:
            model: The model from ``build_model`` (``None`` with ``model_init``).
            tokenizer: Its tokenizer (the collator and the saved folder use it).
            args: ``training_arguments(...)``.
            train_dataset: ``encode(tokenizer, texts, labels)`` of the training texts.
            eval_dataset: The same of the validation texts.
            compute_metrics: Default: ``make_compute_metrics`` for the model's problem type and labels.
            callbacks: More ``TrainerCallback``s.
            model_init: For ``hyperparameter_search``: builds the model for a trial.
        """
        from ..metrics import make_compute_metrics
        from ..trainer import RNNTrainer

        if compute_metrics is None:
            config = getattr(model, "config", None)
            compute_metrics = (
                make_compute_metrics(config.problem_type, list(config.id2label.values()))
                if config is not None
                else make_compute_metrics()
            )
        return RNNTrainer(
            model=model,
            model_init=model_init,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            compute_metrics=compute_metrics,
            callbacks=[*self.callbacks(), *callbacks],
        )


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
        pretraining: What the language-model pretraining did (`Recipe.pretrain`'s summary), or ``None``
            when the recipe has ``pretrain_epochs: 0``.
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
    pretraining: dict[str, Any] | None = None


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


class _EpochHistory(TrainerCallback):
    """Keeps ``RecipeResult.history``: one row per epoch's evaluation during training."""

    def __init__(self, recipe_name: str) -> None:
        self.name = recipe_name
        self.rows: list[dict[str, Any]] = []
        self._started = time.perf_counter()
        self._loss = float("nan")

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self._loss = float(logs["loss"])  # the mean training loss since the last log: this epoch's

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict | None = None,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        row = {
            "epoch": len(self.rows) + 1,
            "train_loss": self._loss,
            "validation_accuracy": float((metrics or {}).get("eval_accuracy", float("nan"))),
            "seconds": round(time.perf_counter() - self._started, 2),
            "embeddings_frozen": not model.get_input_embeddings().weight.requires_grad,
        }
        self.rows.append(row)
        logger.info(
            "%s epoch %d: loss %.4f, validation accuracy %.4f (%.1fs)",
            self.name,
            row["epoch"],
            row["train_loss"],
            row["validation_accuracy"],
            row["seconds"],
        )


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
    """Trains a single-label classifier from raw texts by a recipe, with ``RNNTrainer``.

    Steps: hold out a seeded stratified validation split of the training texts (unless a validation set
    is given), build the tokenizer from the remaining training texts, copy the recipe's word vectors into
    the embedding, pretrain the embedding and RNN as a language model for ``pretrain_epochs`` (when
    set; ``pretrain``), train with ``RNNTrainer`` and the recipe's ``training_arguments`` (optimizer,
    schedule, freeze/unfreeze schedule, regularisation), evaluate validation accuracy after every epoch,
    stop early after ``patience`` epochs without improvement, and keep the weights of the best epoch.
    The test data is never seen. Trainer's checkpoints go to a temporary folder that is removed.

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
    from ..data import stratified_split

    started = time.perf_counter()
    if not isinstance(recipe, Recipe):
        recipe = get_recipe(recipe)
    if recipe.distillation is not None:
        raise ValueError(
            f"Recipe {recipe.name!r} distils from a teacher (distillation: {recipe.distillation}), which "
            "train_recipe does not take. Train it with `rnn-textclf train --recipe "
            f"{recipe.name} --teacher PATH_OR_REPO`, or with recipe.trainer(...) on a data set that "
            "add_teacher_logits gave a `teacher_logits` column."
        )
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
    names = list(label_names) if label_names else [str(i) for i in range(num_labels)]
    # accuracy is what RecipeResult reports; "auto" or F1 recipes select on their own metric.
    metric = recipe.selection_metric("single_label_classification", num_labels)

    tokenizer, vectors = recipe.build_tokenizer(texts, vectors=vectors)
    model, _ = recipe.build_model(tokenizer, label_names=names, vectors=vectors, seed=seed)
    train_dataset = recipe.encode(tokenizer, texts, labels)
    eval_dataset = recipe.encode(tokenizer, val_texts, val_labels)
    history = _EpochHistory(recipe.name)
    pretraining = None
    with tempfile.TemporaryDirectory(prefix="rnn-textclf-recipe-") as work:
        if recipe.pretrain_epochs:  # the embedding and RNN learn the training texts first (no labels)
            pretraining = recipe.pretrain(
                model,
                tokenizer,
                Path(work) / "pretraining",
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                seed=seed,
                disable_tqdm=True,
            )
            logger.info(
                "%s: pretrained as a language model, validation loss %.4f",
                recipe.name,
                pretraining["validation_loss"],
            )
        args = recipe.training_arguments(
            work,
            seed=seed,
            max_steps=max_steps,
            metric_for_best_model=metric,
            # Only the best epoch's weights are ever read back: no optimizer state, no other epochs.
            save_strategy="best",
            save_only_model=True,
            save_total_limit=1,
            disable_tqdm=True,
        )
        trainer = recipe.trainer(
            model,
            tokenizer,
            args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            callbacks=[history],
        )
        without_log_dicts(trainer)  # the history logs one line an epoch instead
        trainer.train()
    model = trainer.model
    embedding = model.get_input_embeddings().weight
    model.config.freeze_embeddings = not embedding.requires_grad
    model.eval()
    rows = history.rows
    scores = [row["validation_accuracy"] for row in rows]
    best = int(np.argmax(scores)) if metric == "accuracy" else _best_index(trainer, rows)
    return RecipeResult(
        model=model,
        tokenizer=tokenizer,
        recipe=recipe,
        best_epoch=best + 1,
        best_validation_accuracy=scores[best],
        history=rows,
        train_seconds=time.perf_counter() - started,
        train_rows=len(texts),
        validation_rows=len(val_texts),
        pretraining=pretraining,
    )


def _best_index(trainer: Any, rows: list[dict[str, Any]]) -> int:
    """The epoch (0-based) whose evaluation gave the trainer's best metric (first of equals)."""
    key = f"eval_{trainer.args.metric_for_best_model}"
    evals = [entry[key] for entry in trainer.state.log_history if key in entry]
    return int(np.argmax(evals[: len(rows)]))


__all__ = [
    "DISTILLATION_FIELDS",
    "MODEL_FIELDS",
    "OPTIMIZERS",
    "SCHEDULES",
    "SELECTION_METRICS",
    "InvalidRecipeError",
    "Recipe",
    "RecipeResult",
    "get_recipe",
    "list_recipes",
    "predict",
    "predict_logits",
    "train_recipe",
]
