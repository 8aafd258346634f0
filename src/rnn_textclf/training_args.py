"""``RNNTrainingArguments``: ``TrainingArguments`` plus the training techniques of the recipes.

The way ``Seq2SeqTrainingArguments`` extends ``TrainingArguments`` for generation, this class adds the
options that [`RNNTrainer`][rnn_textclf.RNNTrainer] implements for recurrent text classifiers. Every
option defaults to "off", so ``RNNTrainingArguments(...)`` without them trains exactly like
``TrainingArguments(...)``. What transformers already has is used as is: ``label_smoothing_factor``,
``max_grad_norm``, ``lr_scheduler_type`` + ``warmup_steps`` (a float below 1 is a ratio of the steps),
``optim``, and ``EarlyStoppingCallback`` with ``load_best_model_at_end`` + ``metric_for_best_model``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from transformers import TrainingArguments

from .distillation import _check_distillation_options

#: The fields ``RNNTrainingArguments`` adds to ``TrainingArguments`` (the techniques of ``RNNTrainer``).
RNN_TRAINING_FIELDS: tuple[str, ...] = (
    "adversarial_eps",
    "ema_decay",
    "embedding_lr_scale",
    "embedding_freeze_epochs",
    "max_train_seconds",
    "distillation_alpha",
    "distillation_temperature",
    "distillation_loss",
)


def _is_number(value: Any) -> bool:
    # numbers.Real: NumPy scalars too (a grid or a tuner's values), as TrainingArguments takes them
    return (
        isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    )


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"RNNTrainingArguments `{name}` must be {allowed}, got {value!r}.")


@dataclass
class RNNTrainingArguments(TrainingArguments):
    r"""``transformers.TrainingArguments`` plus the training techniques of [`RNNTrainer`][rnn_textclf.RNNTrainer].

    Every ``TrainingArguments`` option works as documented by transformers. The fields below are added;
    each defaults to off. Values are checked when the arguments are created: a bad one raises
    ``ValueError`` naming the field, the value and what is allowed, and a technique that cannot work with
    another option (DeepSpeed or FSDP) is refused with the reason.

    Args:
        adversarial_eps (`float`, defaults to 0.0): Adversarial training on the word embeddings
            (Miyato, Dai & Goodfellow 2017, "Adversarial Training Methods for Semi-Supervised Text
            Classification"). Each training step first back-propagates the loss of the batch, then moves
            each text's embedding sequence by L2 norm ``adversarial_eps`` along the gradient of the loss with
            respect to it (the direction that raises its loss most), runs the batch again and
            back-propagates that loss too: the gradients of both add up. A step takes about twice as long.
            It works with a frozen embedding (the perturbation is added to the embedding's output) and
            composes with gradient accumulation, ``label_smoothing_factor`` and DDP. The logged loss is the
            clean one. ``0`` turns it off; in [0, 100]. The shipped recipes use 1.0 (the paper uses 5.0
            for embeddings normalised to unit variance). Needs a model with ``get_input_embeddings()``.
        ema_decay (`float`, defaults to 0.0): Keep an exponential moving average of the weights (Polyak
            averaging, Polyak & Juditsky 1992, in the form of TensorFlow's ``ExponentialMovingAverage``
            with ``num_updates``), updated after every optimizer step with decay
            ``min(ema_decay, (1 + step) / (10 + step))`` (``step`` counts the optimizer steps before this
            one, so early averages are not dominated by the random initialisation). Evaluation,
            ``load_best_model_at_end``'s choice, ``save_model`` and the model after ``train()`` all use the
            averaged weights; training itself continues from the trained ones. A checkpoint's
            ``model.safetensors`` holds the average (what was evaluated) and ``trained_weights.safetensors``
            the weights training goes on from, so ``resume_from_checkpoint`` is exact. ``0`` turns it off;
            in [0, 1), typically 0.99-0.999.
        embedding_lr_scale (`float`, defaults to 1.0): The embedding's learning rate as a fraction of
            ``learning_rate`` (the schedule scales both alike), e.g. 0.1 to fine-tune pretrained vectors
            gently (Howard & Ruder 2018, "Universal Language Model Fine-tuning", discriminative learning
            rates). ``RNNTrainer`` never applies weight decay to the embedding, whatever this value: decay
            would shrink every word's vector at every step, most of all the rare words' that get few
            gradients. In (0, 10]; another value than 1 with ``embedding_freeze_epochs=-1`` would change
            nothing and is refused.
        embedding_freeze_epochs (`int`, defaults to 0): Freeze-then-unfreeze schedule of the embedding
            (gradual unfreezing, Howard & Ruder 2018): ``N > 0`` keeps the embedding frozen for the first
            ``N`` epochs and fine-tunes it afterwards (it is in the optimizer from the start, with no
            optimizer state until its first gradient); ``-1`` keeps it frozen for the whole run; ``0``
            applies no schedule: the embedding trains unless the model itself was frozen
            (``config.freeze_embeddings``, as ``load_pretrained_embeddings(freeze=True)`` sets it). The
            model's ``config.freeze_embeddings`` always tells the state the embedding is in. ``N > 0`` is
            refused with more than one process: DDP registers the parameters that need gradients when it
            wraps the model, so an embedding unfrozen later would not be averaged across processes.
        max_train_seconds (`float | None`, defaults to None): Wall-clock budget of one ``train()`` call, in
            seconds. After each epoch, training stops when another epoch at the pace of the last one would
            end past the budget; within an epoch it stops once the budget is spent (for runs whose first
            epoch is longer than the budget). Training always stops after an evaluation (when
            ``eval_strategy`` is not ``"no"``) and a save (when ``save_strategy`` is ``"steps"`` or
            ``"epoch"``), so ``load_best_model_at_end`` keeps the best model. A resumed run gets the budget
            again. Runs that hit it depend on the machine's speed. ``None`` turns it off; a positive number.
        distillation_alpha (`float | None`, defaults to None): Knowledge distillation (Hinton, Vinyals &
            Dean 2015, "Distilling the Knowledge in a Neural Network"; Tang et al. 2019, "Distilling
            Task-Specific Knowledge from BERT into Simple Neural Networks"): on batches that carry a
            ``teacher_logits`` column (see [`add_teacher_logits`][rnn_textclf.distillation.add_teacher_logits])
            the loss is ``alpha * teacher term + (1 - alpha) * hard-label loss``. ``1.0`` trains on the
            teacher alone, so texts without a label can be used; rows whose label is ``-100`` (augmented
            copies, unlabelled texts) get the teacher term only whatever ``alpha``. The hard term keeps
            ``label_smoothing_factor``. Batches without the column (a plain validation set) get the
            ordinary loss. ``None`` turns it off (the column is then ignored, with a warning); in [0, 1].
            Single-label classification only.
        distillation_temperature (`float`, defaults to 1.0): Softening temperature ``T > 0`` of the ``"kl"``
            teacher term, which is multiplied by ``T**2`` so its gradients keep their scale (Hinton et al.).
            Another value without ``distillation_alpha``, or with ``distillation_loss="mse"``, would change
            nothing and is refused.
        distillation_loss (`str`, defaults to ``"kl"``): The teacher term: ``"kl"``, the KL divergence from
            the teacher's softened probabilities to the student's (Hinton et al.), or ``"mse"``, the mean
            squared error between the logits (Tang et al.; ``distillation_temperature`` does not apply).
            ``"mse"`` needs ``distillation_alpha``.

    ``label_smoothing_factor`` (in [0, 1)) and ``max_grad_norm`` (>= 0 or None), two of
    ``TrainingArguments``' own fields that transformers takes unchecked, are checked here too.

    Example:
        ```python
        >>> from rnn_textclf import RNNTrainingArguments
        >>> args = RNNTrainingArguments("out", adversarial_eps=1.0, ema_decay=0.999, report_to="none")
        ```
    """

    adversarial_eps: float = field(
        default=0.0,
        metadata={
            "help": "Adversarial training on the word embeddings (Miyato et al. 2017): L2 norm of each text's "
            "perturbation along its loss gradient; 0 turns it off."
        },
    )
    ema_decay: float = field(
        default=0.0,
        metadata={
            "help": "Exponential moving average of the weights, decay min(ema_decay, (1+step)/(10+step)); "
            "evaluation and saving use the average; 0 turns it off."
        },
    )
    embedding_lr_scale: float = field(
        default=1.0,
        metadata={"help": "The embedding's learning rate as a fraction of learning_rate (no weight decay)."},
    )
    embedding_freeze_epochs: int = field(
        default=0,
        metadata={
            "help": "Keep the embedding frozen for this many epochs, then fine-tune it; -1: never unfreeze; "
            "0: no schedule."
        },
    )
    max_train_seconds: float | None = field(
        default=None,
        metadata={
            "help": "Wall-clock budget in seconds: stop (after an evaluation) when another epoch would pass it."
        },
    )

    distillation_alpha: float | None = field(
        default=None,
        metadata={
            "help": "Knowledge distillation: weight of the teacher's logits vs the hard labels on batches with "
            "teacher_logits (1.0: teacher only; None: off)."
        },
    )
    distillation_temperature: float = field(
        default=1.0, metadata={"help": "Softening temperature T of the 'kl' distillation loss (times T^2)."}
    )
    distillation_loss: Literal["kl", "mse"] = field(
        default="kl",
        metadata={
            "help": "Teacher term: 'kl' on softened probabilities (Hinton et al.) or 'mse' on logits (Tang et al.)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.validate_techniques()

    def validate_techniques(self) -> None:
        """Checks the fields this class adds (``RNNTrainer`` calls it again when ``train()`` starts, after
        ``hyperparameter_search`` may have set them); raises ``ValueError`` naming field, value and range."""
        if not _is_number(self.adversarial_eps) or not 0 <= self.adversarial_eps <= 100:
            _fail("adversarial_eps", self.adversarial_eps, "a number in [0, 100] (0 turns it off)")
        if not _is_number(self.ema_decay) or not 0 <= self.ema_decay < 1:
            _fail("ema_decay", self.ema_decay, "a number in [0, 1) (0 turns it off; typical 0.99-0.999)")
        if not _is_number(self.embedding_lr_scale) or not 0 < self.embedding_lr_scale <= 10:
            _fail("embedding_lr_scale", self.embedding_lr_scale, "a number in (0, 10]")
        freeze = self.embedding_freeze_epochs
        if not _is_integer(freeze) or freeze < -1:
            _fail(
                "embedding_freeze_epochs",
                freeze,
                "an integer >= 0 (epochs with the embedding frozen; 0: no schedule) or -1 (never unfreeze)",
            )
        if freeze == -1 and _is_number(self.embedding_lr_scale) and self.embedding_lr_scale != 1:
            raise ValueError(
                f"RNNTrainingArguments `embedding_lr_scale` would change nothing with embedding_freeze_epochs=-1 "
                f"(the embedding never trains), got {self.embedding_lr_scale!r}: set it to 1.0, or unfreeze the "
                "embedding after some epochs (embedding_freeze_epochs=N > 0), which then trains at the scaled rate."
            )
        if self.max_train_seconds is not None and (
            not _is_number(self.max_train_seconds) or self.max_train_seconds <= 0
        ):
            _fail("max_train_seconds", self.max_train_seconds, "a positive number of seconds or None")
        _check_distillation_options(
            self.distillation_alpha, self.distillation_temperature, self.distillation_loss
        )
        # two of TrainingArguments' own technique fields, which transformers takes unchecked
        smoothing = self.label_smoothing_factor
        if not _is_number(smoothing) or not 0 <= smoothing < 1:
            _fail("label_smoothing_factor", smoothing, "a number in [0, 1) (0 turns it off)")
        clip = self.max_grad_norm
        if clip is not None and (not _is_number(clip) or not 0 <= clip < math.inf):
            _fail("max_grad_norm", clip, "a number >= 0 or None (0 or None: no clipping)")
        # NumPy scalars become Python numbers: training_args.json (to_json_string) cannot hold them
        for name in ("adversarial_eps", "ema_decay", "embedding_lr_scale", "distillation_temperature"):
            setattr(self, name, float(getattr(self, name)))
        self.embedding_freeze_epochs = int(freeze)
        for name in ("max_train_seconds", "distillation_alpha"):
            if getattr(self, name) is not None:
                setattr(self, name, float(getattr(self, name)))
        self._refuse_sharded_training()

    def active_techniques(self) -> list[str]:
        """``"name=value"`` of each technique that is switched on (the time budget aside), e.g.
        ``["adversarial_eps=1.0", "ema_decay=0.999"]``: what DeepSpeed and FSDP refuse."""
        active = []
        for name, off in (
            ("adversarial_eps", 0.0),
            ("ema_decay", 0.0),
            ("embedding_lr_scale", 1.0),
            ("embedding_freeze_epochs", 0),
        ):
            if getattr(self, name) != off:
                active.append(f"{name}={getattr(self, name)!r}")
        return active

    def _refuse_sharded_training(self) -> None:
        # DeepSpeed ZeRO and FSDP shard (and flatten) the parameters: the weight average, the embedding's
        # parameter group, its freezing and the hook on its output all need the whole embedding and
        # weights on every process. The time budget works with any backend.
        backend = "DeepSpeed" if self.deepspeed else "FSDP" if self.fsdp else None
        active = self.active_techniques()
        if backend and active:
            raise ValueError(
                f"RNNTrainingArguments {', '.join(active)} cannot be used with {backend}: {backend} shards the "
                "parameters, and these techniques need each process to hold the whole model (the weight average, "
                "the embedding's parameter group, freeze and output). Train with DDP (torchrun, or accelerate "
                f"without {backend}), or turn these options off."
            )


__all__ = ["RNN_TRAINING_FIELDS", "RNNTrainingArguments"]
