"""Configuration of the recurrent text classifier.

This file imports only ``transformers`` (and the standard library) because ``save_pretrained`` copies it
next to the weights for ``trust_remote_code=True`` loading on machines without rnn-textclf.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Literal

from transformers import PreTrainedConfig

logger = logging.getLogger(__name__)

RNNType = Literal["rnn", "lstm", "gru"]
Nonlinearity = Literal["tanh", "relu"]
Pooling = Literal["last", "mean", "max", "mean_max"]

RNN_TYPES: tuple[str, ...] = ("rnn", "lstm", "gru")
NONLINEARITIES: tuple[str, ...] = ("tanh", "relu")
POOLINGS: tuple[str, ...] = ("last", "mean", "max", "mean_max")
PROBLEM_TYPES: tuple[str, ...] = ("regression", "single_label_classification", "multi_label_classification")

# config.json keys that are not __init__ arguments of RNNClassifierConfig or PreTrainedConfig but are
# expected: written by transformers, by other parts of rnn-textclf, or by older transformers versions.
_EXPECTED_EXTRA_KEYS = frozenset(
    {
        "num_labels",
        "torch_dtype",
        "auto_map",
        "_name_or_path",
        "model_type",
        "transformers_version",
        "architectures",
        "output_attentions",
        "pretrained_vectors",
        "recipe",  # the name of the recipe a model was trained by (rnn_textclf.recipes)
        "distillation",  # rnn-textclf train --teacher: teacher, alpha, temperature (for the model card)
        "rnn_textclf_quantization",
        "tie_word_embeddings",
        "bos_token_id",
        "eos_token_id",
        "sep_token_id",
        "tokenizer_class",
        "finetuning_task",
        "use_cache",
    }
)


class InvalidConfigError(ValueError):
    """A field of an ``RNNClassifierConfig`` (or of a checkpoint's config.json) has a value that is not allowed."""


def _dtype_problem(name: str, value: Any) -> str | None:
    """What is wrong with a ``dtype``/``torch_dtype`` value given by name (torch raised AttributeError)."""
    if isinstance(value, str) and value != "auto":
        import torch

        if not isinstance(getattr(torch, value, None), torch.dtype):
            return f"`{name}` must name a torch dtype such as 'float32' or 'bfloat16', got {value!r}."
    return None


def _check_file_types(config_dict: dict[str, Any], where: str) -> None:
    """Fields of a config.json whose wrong type fails inside transformers or torch with a message that
    names no field (``"vocab_size": "1450"``, ``"dtype": "foo"``): named here, before they are read."""
    problem = None
    for name, minimum in (("vocab_size", 1), ("pad_token_id", 0)):  # (read by transformers' own checks first)
        value = config_dict.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            problem = f"`{name}` must be an integer >= {minimum}, got {value!r}."
    for name in ("dtype", "torch_dtype"):
        problem = _dtype_problem(name, config_dict.get(name)) or problem
    if problem:
        raise InvalidConfigError(
            f"{where} is not a valid rnn-textclf config: {problem} Fix that field in config.json, or upgrade "
            "rnn-textclf if a newer version saved it."
        )


#: Value of ``config.rnn_textclf_quantization`` in a checkpoint written by ``QuantizedRNNClassifier``.
QUANTIZATION_FLAG = "dynamic_int8"

#: The deepest stack a config may ask for: deeper RNN stacks do not train, and torch builds one in time
#: quadratic in its depth, so an untrusted config.json could keep a loader busy for minutes.
MAX_NUM_LAYERS = 64


def _check_int(name: str, value: Any, minimum: int) -> None:
    # bool is a subclass of int: `hidden_size=True` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")


def _check_prob(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1), got {value!r}.")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, allowed))}, got {value!r}.")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")


def _check_label_fields(kwargs: dict[str, Any]) -> None:
    """Types of the standard label fields, checked before PreTrainedConfig uses them (its errors name no field)."""
    if kwargs.get("num_labels") is not None:
        _check_int("num_labels", kwargs["num_labels"], 1)
    for name, example in (("id2label", '{"0": "neg", "1": "pos"}'), ("label2id", '{"neg": 0, "pos": 1}')):
        value = kwargs.get(name)
        if value is not None and not isinstance(value, dict):
            raise ValueError(
                f"`{name}` must be a mapping such as {example}, got {type(value).__name__} {value!r}."
            )
    for key in kwargs.get("id2label") or {}:
        if isinstance(key, bool) or not (isinstance(key, int) or (isinstance(key, str) and key.isdigit())):
            raise ValueError(f"`id2label` keys must be class ids 0, 1, ..., got {key!r}.")
    for label, index in (kwargs.get("label2id") or {}).items():
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"`label2id` values must be integer class ids, got {label!r}: {index!r}.")


class RNNClassifierConfig(PreTrainedConfig):
    r"""Configuration of an [`RNNClassifier`][rnn_textclf.RNNClassifier].

    Every hyperparameter of the model lives here, so a checkpoint's ``config.json`` fully describes it.
    Values are validated when the config is created: a wrong value raises ``ValueError`` naming the field,
    the value and what is allowed.

    Args:
        vocab_size (`int`, defaults to 20000): Number of rows of the embedding (the tokenizer's vocab size).
        embedding_dim (`int`, defaults to 100): Size of each word embedding (50/100/200/300 for GloVe).
        hidden_size (`int`, defaults to 128): Hidden state size of each recurrent layer and direction.
        num_layers (`int`, defaults to 1): Number of stacked recurrent layers (at most ``MAX_NUM_LAYERS``, 64).
        rnn_type (`Literal["rnn", "lstm", "gru"]`, defaults to `"rnn"`): Recurrent cell: Elman RNN, LSTM or GRU.
        nonlinearity (`Literal["tanh", "relu"]`, defaults to `"tanh"`): Non-linearity of the Elman RNN; only
            allowed to differ from `"tanh"` when ``rnn_type="rnn"``.
        bidirectional (`bool`, defaults to `False`): Run a second RNN right-to-left and concatenate both.
        dropout (`float`, defaults to 0.0): Dropout between stacked recurrent layers (needs ``num_layers > 1``
            to have an effect, as in ``torch.nn.RNN``).
        embedding_dropout (`float`, defaults to 0.0): Dropout on the word embeddings.
        classifier_dropout (`float`, defaults to 0.0): Dropout on the pooled features before the classifier.
        pooling (`Literal["last", "mean", "max", "mean_max"]`, defaults to `"last"`): How the packed outputs
            become one vector per text. ``"last"``: the true last state of each text (for bidirectional: the
            forward final state and the backward state at position 0, concatenated); ``"mean"``/``"max"``:
            mean or max over the real tokens only; ``"mean_max"``: both, concatenated.
        proj_size (`int`, defaults to 0): LSTM projection size (``torch.nn.LSTM(proj_size=...)``); 0 disables it.
            Only allowed with ``rnn_type="lstm"`` and must be smaller than ``hidden_size``.
        pad_token_id (`int`, defaults to 0): Id of the padding token; its embedding row is kept at zero.
        freeze_embeddings (`bool`, defaults to `False`): Keep the embedding fixed during training (set by
            ``load_pretrained_embeddings(freeze=True)`` so a reloaded checkpoint trains the same way).
        initializer_range (`float`, defaults to 0.1): Std of the normal init of the embedding and classifier.
        word_dropout (`float`, defaults to 0.0): In training mode only, replace each real (non-padding) token
            by ``unk_token_id`` with this probability before the embedding, a new draw per batch: the model
            learns not to rely on single words (word dropout, Iyyer et al. 2015, "Deep Unordered
            Composition Rivals Syntactic Methods for Text Classification"; Dai & Le 2015). Evaluation and
            inference never drop words. In [0, 1); needs ``unk_token_id``. The shipped recipes use 0.1.
        unk_token_id (`int`, *optional*): Id of the unknown-word token (``tokenizer.unk_token_id``), what
            ``word_dropout`` replaces tokens by. ``RNNTrainer`` checks it against the tokenizer.

    Keyword Args:
        num_labels (`int`, defaults to 2): Number of outputs of the classifier head.
        id2label (`dict[int, str]`): Label name of each output, the standard ``transformers`` field.
        label2id (`dict[str, int]`): The inverse of ``id2label``.
        problem_type (`str`): ``"single_label_classification"``, ``"multi_label_classification"`` or
            ``"regression"``. The loss follows it exactly as transformers' sequence-classification heads do.

    Example:
        ```python
        >>> from rnn_textclf import RNNClassifierConfig, RNNClassifier
        >>> config = RNNClassifierConfig(vocab_size=1000, num_labels=4, rnn_type="lstm", bidirectional=True)
        >>> model = RNNClassifier(config)
        ```
    """

    model_type = "rnn_textclf"

    def __init__(
        self,
        vocab_size: int = 20000,
        embedding_dim: int = 100,
        hidden_size: int = 128,
        num_layers: int = 1,
        rnn_type: RNNType = "rnn",
        nonlinearity: Nonlinearity = "tanh",
        bidirectional: bool = False,
        dropout: float = 0.0,
        embedding_dropout: float = 0.0,
        classifier_dropout: float = 0.0,
        pooling: Pooling = "last",
        proj_size: int = 0,
        pad_token_id: int = 0,
        freeze_embeddings: bool = False,
        initializer_range: float = 0.1,
        word_dropout: float = 0.0,
        unk_token_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn_type = rnn_type
        self.nonlinearity = nonlinearity
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.classifier_dropout = classifier_dropout
        self.pooling = pooling
        self.proj_size = proj_size
        self.pad_token_id = pad_token_id
        self.freeze_embeddings = freeze_embeddings
        self.initializer_range = initializer_range
        self.word_dropout = word_dropout
        self.unk_token_id = unk_token_id
        try:
            # read by transformers' own checks in super().__init__ first, which name no field ("'<' not
            # supported between 'int' and 'str'", torch's AttributeError for dtype="bfloat17")
            _check_int("vocab_size", vocab_size, 1)
            _check_int("pad_token_id", pad_token_id, 0)
            for name in ("dtype", "torch_dtype"):
                problem = _dtype_problem(name, kwargs.get(name))
                if problem:
                    raise ValueError(problem)
            _check_label_fields(kwargs)
        except ValueError as err:
            raise InvalidConfigError(str(err)) from None
        super().__init__(**kwargs)
        try:
            self._validate_fields()
        except ValueError as err:
            raise InvalidConfigError(str(err)) from None

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path: Any, **kwargs: Any) -> tuple[dict, dict]:
        """``PreTrainedConfig.get_config_dict`` that refuses the config of another kind of model.

        transformers only warns when a ``config.json`` of another ``model_type`` is loaded into this
        class, and the load then fails on some unrelated field; rnn-textclf says what is wrong instead.
        """
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if not isinstance(config_dict, dict):
            raise InvalidConfigError(
                f"The config.json of {str(pretrained_model_name_or_path)!r} must hold a JSON object of fields, got "
                f"a {type(config_dict).__name__}. Fix config.json, or save the model again."
            )
        model_type = config_dict.get("model_type")
        if model_type is not None and model_type != cls.model_type:
            raise InvalidConfigError(
                f"{str(pretrained_model_name_or_path)!r} is not an rnn-textclf model: its config.json has "
                f"model_type={model_type!r}, not {cls.model_type!r}. Load it with "
                "transformers.AutoModelForSequenceClassification.from_pretrained (or the class made for "
                f"{model_type!r}), or pass the path or repo id of a checkpoint saved by RNNClassifier."
            )
        return config_dict, kwargs

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> Any:
        """``PreTrainedConfig.from_dict`` (every load of a config.json, ``AutoConfig`` included) that names
        unknown fields in a warning and says where to fix an invalid one.
        """
        if not isinstance(config_dict, dict):
            raise InvalidConfigError(
                f"A config must be a mapping of fields (a config.json's JSON object), got a "
                f"{type(config_dict).__name__}."
            )
        source = kwargs.get("name_or_path") or config_dict.get("_name_or_path")
        where = f"The config.json of {str(source)!r}" if source else "This config"
        _check_file_types(config_dict, where)
        known = set(cls().to_dict()) | _EXPECTED_EXTRA_KEYS
        unknown = sorted(key for key in config_dict if key not in known)
        if unknown:
            logger.warning(
                "%s has fields that rnn-textclf does not use: %s. They are kept as attributes but change nothing. "
                "If a newer rnn-textclf saved this model, upgrade; if they are typos of real fields, fix them in "
                "config.json.",
                where,
                ", ".join(unknown),
            )
        try:
            result = super().from_dict(config_dict, **kwargs)
            # transformers sets keyword overrides (`from_pretrained(path, pooling="max")`) after __init__ has
            # validated the file's values: check them too, or a typo would fail later in torch, or be saved.
            config = result[0] if isinstance(result, tuple) else result
            _check_label_fields({"id2label": config.id2label, "label2id": config.label2id})
            config._validate_fields()
        except ValueError as err:  # (InvalidConfigError included)
            if "is not a valid rnn-textclf config" in str(err) or "keyword override" in str(err):
                raise
            # the first field the message names that was given as a keyword override (transformers' own
            # messages name several: `problem_type="single_label_classification"` requires `num_labels > 1`)
            field = next((f for f in re.findall(r"`(\w+)", str(err)) if f in kwargs), None)
            if field is not None:
                raise InvalidConfigError(
                    f"The keyword override {field}={kwargs[field]!r} given with "
                    f"{where[0].lower()}{where[1:]} is not valid: {err}"
                ) from None
            raise InvalidConfigError(
                f"{where} is not a valid rnn-textclf config: {err} Fix that field in config.json, or upgrade "
                "rnn-textclf if a newer version saved it."
            ) from None
        return result

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, **kwargs: Any) -> Any:
        """``PreTrainedConfig.from_pretrained`` whose errors about a bad field name the checkpoint."""
        kwargs.setdefault("name_or_path", str(pretrained_model_name_or_path))  # as AutoConfig passes it
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except InvalidConfigError as err:
            if str(pretrained_model_name_or_path) in str(err):
                raise
            raise InvalidConfigError(
                f"The config.json of {str(pretrained_model_name_or_path)!r} is not a valid rnn-textclf config: "
                f"{err} Fix that field in config.json, or upgrade rnn-textclf if a newer version saved it."
            ) from err

    def validate(self) -> None:
        """Checks every field as ``__init__`` does, also those set after it (``config.pooling = "max"``).

        transformers calls it before writing config.json (``save_pretrained``), and
        ``RNNClassifier.save_pretrained`` before writing anything, so that an invalid value is never saved;
        ``RNNClassifier(config)`` calls it before building the model.
        (A valid value that does not fit the weights, such as another ``rnn_type`` or ``num_labels`` set
        on a built model, is not caught here: build the model from the config instead.)

        Raises:
            InvalidConfigError: Naming the field, its value and what is allowed.
        """
        try:
            _check_label_fields({"id2label": self.id2label, "label2id": self.label2id})
            self._validate_fields()
        except ValueError as err:
            raise InvalidConfigError(
                f"This config is not valid (was a field set after it was built?): {err}"
            ) from None

    def save_pretrained(
        self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs: Any
    ) -> None:
        """``PreTrainedConfig.save_pretrained``, validated before the folder is made (transformers makes it
        first)."""
        self.validate()
        super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    def _validate_fields(self) -> None:
        _check_int("vocab_size", self.vocab_size, 1)
        _check_int("embedding_dim", self.embedding_dim, 1)
        _check_int("hidden_size", self.hidden_size, 1)
        _check_int("num_layers", self.num_layers, 1)
        if self.num_layers > MAX_NUM_LAYERS:
            # torch builds a stack in time quadratic in its depth (minutes for a crafted config.json's
            # 100,000 layers, before any check of the weights), and such stacks do not train
            raise ValueError(f"`num_layers` must be at most {MAX_NUM_LAYERS}, got {self.num_layers}.")
        _check_choice("rnn_type", self.rnn_type, RNN_TYPES)
        _check_choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        if self.nonlinearity != "tanh" and self.rnn_type != "rnn":
            raise ValueError(
                f"`nonlinearity={self.nonlinearity!r}` is only allowed with rnn_type='rnn' "
                f"(got rnn_type={self.rnn_type!r}); LSTM and GRU have fixed gates."
            )
        _check_bool("bidirectional", self.bidirectional)
        _check_prob("dropout", self.dropout)
        _check_prob("embedding_dropout", self.embedding_dropout)
        _check_prob("classifier_dropout", self.classifier_dropout)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_int("proj_size", self.proj_size, 0)
        if self.proj_size:
            if self.rnn_type != "lstm":
                raise ValueError(
                    f"`proj_size={self.proj_size}` is only allowed with rnn_type='lstm' "
                    f"(got rnn_type={self.rnn_type!r}); use proj_size=0."
                )
            if self.proj_size >= self.hidden_size:
                raise ValueError(
                    f"`proj_size` must be smaller than hidden_size={self.hidden_size}, got {self.proj_size}."
                )
        _check_int("pad_token_id", self.pad_token_id, 0)
        if self.pad_token_id >= self.vocab_size:
            raise ValueError(
                f"`pad_token_id` must be a valid id below vocab_size={self.vocab_size}, got {self.pad_token_id}."
            )
        _check_bool("freeze_embeddings", self.freeze_embeddings)
        if isinstance(self.initializer_range, bool) or not isinstance(self.initializer_range, (int, float)):
            raise ValueError(f"`initializer_range` must be a positive float, got {self.initializer_range!r}.")
        if not 0 < self.initializer_range < 1e30:  # (NaN fails too; above, float32 weights overflow)
            raise ValueError(
                f"`initializer_range` must be a positive float below 1e30 (the std of the normal init), got "
                f"{self.initializer_range!r}."
            )
        quantization = getattr(self, "rnn_textclf_quantization", None)
        if quantization is not None and quantization != QUANTIZATION_FLAG:
            # (written by QuantizedRNNClassifier.save_pretrained; another value is another tool's format)
            raise ValueError(
                f"`rnn_textclf_quantization` must be {QUANTIZATION_FLAG!r} (a QuantizedRNNClassifier's save) or "
                f"absent, got {quantization!r}."
            )
        _check_prob("word_dropout", self.word_dropout)
        if self.unk_token_id is not None:
            _check_int("unk_token_id", self.unk_token_id, 0)
            if self.unk_token_id >= self.vocab_size:
                raise ValueError(
                    f"`unk_token_id` must be a valid id below vocab_size={self.vocab_size}, got {self.unk_token_id}."
                )
            if self.unk_token_id == self.pad_token_id:
                raise ValueError(
                    f"`unk_token_id` must differ from pad_token_id={self.pad_token_id}: a dropped word would become "
                    "padding, whose embedding stays zero."
                )
        if self.word_dropout and self.unk_token_id is None:
            raise ValueError(
                f"`word_dropout={self.word_dropout}` needs `unk_token_id` (the id dropped words become): pass "
                "RNNClassifierConfig(unk_token_id=tokenizer.unk_token_id, ...), or word_dropout=0."
            )
        _check_int("num_labels", self.num_labels, 1)
        if sorted(self.id2label) != list(range(self.num_labels)):
            raise ValueError(
                f"`id2label` must name each class id 0..{self.num_labels - 1} once, got keys {sorted(self.id2label)}."
            )
        if self.problem_type is not None:
            _check_choice("problem_type", self.problem_type, PROBLEM_TYPES)
        if self.problem_type == "single_label_classification" and self.num_labels == 1:
            # transformers' rule, checked there in __init__ only: here also for keyword overrides
            # (from_pretrained(path, num_labels=1)) and fields set later, before they are saved
            raise ValueError(
                '`num_labels=1` does not fit `problem_type="single_label_classification"`, which needs '
                "num_labels > 1. Use num_labels=2 for binary classification; for a single-output regression "
                'head set problem_type="regression" as well (to load a classifier with one: config = '
                'RNNClassifierConfig.from_pretrained(path); config.problem_type = "regression"; '
                "config.num_labels = 1; RNNClassifier.from_pretrained(path, config=config, "
                "ignore_mismatched_sizes=True))."
            )

    @property
    def num_directions(self) -> int:
        """2 for a bidirectional RNN, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def rnn_output_size(self) -> int:
        """Size of one time step of the RNN's output (all directions concatenated)."""
        return (self.proj_size or self.hidden_size) * self.num_directions

    @property
    def pooled_size(self) -> int:
        """Size of the pooled text vector that feeds the classifier."""
        return self.rnn_output_size * (2 if self.pooling == "mean_max" else 1)


__all__ = ["InvalidConfigError", "RNNClassifierConfig"]
