"""``RNNTrainer``: a thin ``transformers.Trainer`` for recurrent classifiers, and the samplers it uses."""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import copy
import functools
import inspect
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from accelerate.optimizer import AcceleratedOptimizer
from accelerate.utils import DistributedType
from torch import nn
from transformers import Trainer
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_optimizer import is_optimizer_factory
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, IntervalStrategy, has_length
from transformers.training_args import ParallelMode

from ._checks import refuse_split_dict
from .callbacks import EMACallback, EmbeddingFreezeCallback, TimeBudgetCallback, current_epoch
from .collator import _LABEL_KEYS, PackedSequenceCollator, _TokenTable
from .distillation import TEACHER_LOGITS_COLUMN, distillation_loss
from .modeling import SAVING_MARKER, repo_files, stale_weight_files
from .training_args import RNNTrainingArguments

logger = logging.getLogger(__name__)

#: What ``RNNTrainer.save_model`` writes instead of transformers' pickled ``training_args.bin``.
TRAINING_ARGS_JSON = "training_args.json"
#: Suffixes of pickled files (``torch.save``/``pickle``); loading one can run arbitrary code, so no Hub
#: upload of rnn-textclf (``RNNTrainer.push_to_hub``, its pushes during training, ``rnn-textclf push``)
#: carries one.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle")
#: With ``ema_decay``, a checkpoint's ``model.safetensors`` holds the weight average (what was evaluated)
#: and this file the trained weights that ``resume_from_checkpoint`` continues from.
TRAINED_WEIGHTS_NAME = "trained_weights.safetensors"


#: What a Trainer checkpoint needs for an exact resume (each: one of these names); the rest (tokenizer, card,
#: rng state: batches come from ``seed + epoch``) is optional.
_CHECKPOINT_FILES = (
    ("trainer_state.json",),
    ("model.safetensors", "model.safetensors.index.json"),
    ("optimizer.pt",),
    ("scheduler.pt",),
)


def checkpoint_missing(folder: str | os.PathLike) -> list[str]:
    """The files an exact resume needs that the checkpoint ``folder`` lacks (a save cut short by a kill or a
    full disk, or files deleted since); ``[]`` for a complete checkpoint."""
    folder = Path(folder)
    missing = [
        names[0] for names in _CHECKPOINT_FILES if not any((folder / name).is_file() for name in names)
    ]
    if (folder / SAVING_MARKER).is_file():  # its model save was killed while moving files in
        missing.insert(0, "completed model save")
    return missing


def last_complete_checkpoint(folder: str | os.PathLike) -> str | None:
    """The newest complete ``checkpoint-N`` in ``folder`` (incomplete newer ones are skipped, logged), or None."""
    steps = []
    for child in Path(folder).glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        step = child.name[len(PREFIX_CHECKPOINT_DIR) + 1 :]
        if child.is_dir() and step.isdigit():
            steps.append((int(step), child))
    for _, child in sorted(steps, reverse=True):
        missing = checkpoint_missing(child)
        if not missing:
            return str(child)
        logger.warning(
            "%s is incomplete (no %s: its save was cut short, or files were deleted); it is skipped.",
            child,
            ", ".join(missing),
        )
    return None


def _incomplete_checkpoint_error(folder: str | os.PathLike, missing: list[str]) -> ValueError:
    return ValueError(
        f"resume_from_checkpoint={str(folder)!r} is incomplete: it has no {', '.join(missing)} (its save was cut "
        "short by a kill or a full disk, or files were deleted), so training cannot continue exactly where it "
        "stopped. Resume from an earlier checkpoint-N (resume_from_checkpoint=True takes the newest complete one), "
        "or start a new run from its weights (RNNClassifier.from_pretrained(folder)) if they are there."
    )


def check_tokenizer_fits_model(tokenizer: Any, config: Any) -> None:
    """Raises ValueError where ``tokenizer`` is not the one ``config``'s model was built for: more tokens than
    embedding rows, another pad id, or (with word dropout) another unknown id; logs a warning for fewer tokens.
    ``RNNTrainer`` checks at construction, ``rnn-textclf predict``/``evaluate`` at load."""
    vocab_size = getattr(config, "vocab_size", None)
    if tokenizer is not None and isinstance(vocab_size, int) and hasattr(tokenizer, "get_vocab"):
        size = len(tokenizer)
        if size > vocab_size:
            raise ValueError(
                f"The tokenizer has {size:,} tokens but the model's embedding has config.vocab_size="
                f"{vocab_size:,} rows: ids >= {vocab_size:,} would not exist. Pass the tokenizer the model was "
                f"built for, or build the model with RNNClassifierConfig(vocab_size={size}, ...)."
            )
        if size < vocab_size:
            logger.warning(
                "The tokenizer has %s tokens but config.vocab_size is %s: the last %s embedding rows are never "
                "used. Fine if the embedding was padded on purpose; otherwise this is not the tokenizer the "
                "model was built for (ids would mean other words).",
                f"{size:,}",
                f"{vocab_size:,}",
                f"{vocab_size - size:,}",
            )
        pad = getattr(tokenizer, "pad_token_id", None)
        model_pad = getattr(config, "pad_token_id", None)
        if getattr(config, "model_type", None) == "rnn_textclf" and pad is not None and pad != model_pad:
            raise ValueError(
                f"The tokenizer's pad_token_id is {pad} but config.pad_token_id is {model_pad}: the model would "
                f"keep token {model_pad}'s embedding at zero, untrained. Build the model with "
                f"RNNClassifierConfig(pad_token_id={pad}, ...)."
            )
        unk = getattr(tokenizer, "unk_token_id", None)
        dropout = getattr(config, "word_dropout", 0.0)
        if getattr(config, "model_type", None) == "rnn_textclf" and dropout and unk != config.unk_token_id:
            raise ValueError(
                f"The model's word_dropout={dropout} replaces words by config.unk_token_id="
                f"{config.unk_token_id}, but the tokenizer's unk_token_id is {unk}: dropped words would become "
                f"another token. Build the model with RNNClassifierConfig(unk_token_id={unk}, ...)."
            )


# A push during training uploads output_dir in a background thread while training goes on: the next
# checkpoint's save_pretrained stages its files in `.checkpoint-N.saving-*` there and moves them out, so an
# upload that listed them failed (FileNotFoundError, the commit lost) or committed the staging folder. A
# save's marker (left by a killed save) would make the pushed repo refuse to load.
_NEVER_UPLOADED = (".*.saving-*", SAVING_MARKER)


class _PickleFreeUploads:
    """The Trainer's ``HfApi``, with every ``upload_folder`` leaving pickled files behind."""

    def __init__(self, api: Any) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    def upload_folder(self, **kwargs: Any) -> Any:
        ignored = list(kwargs.get("ignore_patterns") or [])
        kwargs["ignore_patterns"] = [
            *ignored,
            *(f"*{suffix}" for suffix in PICKLE_SUFFIXES),
            *_NEVER_UPLOADED,
        ]
        # the repo's weight files that this upload does not replace go in the same commit (`stale_weight_files`)
        folder, where = Path(kwargs["folder_path"]), (kwargs.get("path_in_repo") or "").strip("/")
        uploaded = [
            f"{where}/{p.name}" if where else p.name
            for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() not in PICKLE_SUFFIXES
        ]
        files = repo_files(self._api, kwargs["repo_id"], kwargs.get("revision"), kwargs.get("token"))
        stale = [f[len(where) + 1 :] if where else f for f in stale_weight_files(files, uploaded, where)]
        if stale:
            kwargs["delete_patterns"] = [*(kwargs.get("delete_patterns") or []), *stale]
        return self._api.upload_folder(**kwargs)


# Set while an RNNTrainer push runs in this thread (threads and contexts of their own start unset).
_PICKLE_FREE: contextvars.ContextVar[bool] = contextvars.ContextVar("rnn_textclf_pickle_free", default=False)
_DISPATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _uploads_without_pickles() -> Iterator[None]:
    """While it is open, this thread's ``Trainer`` Hub uploads (``push_to_hub``, ``_push_from_checkpoint``)
    skip pickles.

    Both call ``transformers.trainer.hf_api().upload_folder`` on ``output_dir``, where ``Trainer`` may have
    written ``training_args.bin`` with ``torch.save`` just before (``_push_from_checkpoint`` does, every
    save); a background push calls ``upload_folder`` here too, and only runs the upload later. The name is
    replaced once per process by a function that gives ``_PickleFreeUploads`` only where this context is
    open (a context variable): swapping it per call reached other threads' Trainers, and two concurrent
    pushes left it swapped for good.
    """
    import transformers.trainer as hf_trainer

    with _DISPATCH_LOCK:
        if not getattr(hf_trainer.hf_api, "_rnn_textclf_dispatch", False):
            shared = hf_trainer.hf_api

            @functools.wraps(shared, updated=())
            def hf_api() -> Any:
                api = shared()
                return _PickleFreeUploads(api) if _PICKLE_FREE.get() else api

            hf_api._rnn_textclf_dispatch = True  # type: ignore[attr-defined]
            hf_trainer.hf_api = hf_api
    token = _PICKLE_FREE.set(True)
    try:
        yield
    finally:
        _PICKLE_FREE.reset(token)


class _EmbeddingPerturbation:
    """Hooks on the input embedding for ``adversarial_eps`` (see ``RNNTrainer.training_step``).

    Clean pass: keeps the token ids the embedding got (after the model's word dropout) and its output, as
    a tensor whose gradient autograd keeps (a new leaf when the embedding is frozen). Adversarial pass
    (after ``perturb``): feeds the embedding the same ids and adds the perturbation to its output.
    """

    def __init__(self, embedding: nn.Module) -> None:
        self.ids: Any = None
        self.embedded: torch.Tensor | None = None
        self.delta: torch.Tensor | None = None
        self._handles = [
            embedding.register_forward_pre_hook(self._before),
            embedding.register_forward_hook(self._after),
        ]

    def _before(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if self.delta is None:
            self.ids = args[0]
            return None
        return (self.ids, *args[1:])  # the same words as the clean pass (word dropout is random)

    def _after(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        if self.delta is not None:
            return output + self.delta
        if not output.requires_grad:  # frozen embedding: a leaf to take the gradient at
            output = output.detach().requires_grad_(True)
        else:
            output.retain_grad()
        self.embedded = output
        return output

    def perturb(self, eps: float) -> bool:
        """Sets the perturbation from the clean pass's gradient; False when there is none."""
        grad = self.embedded.grad if self.embedded is not None else None  # (batch, seq, emb); 0 at padding
        self.embedded = None
        if grad is None:
            return False
        norm = grad.flatten(1).norm(dim=1).clamp(min=1e-12)[:, None, None]  # one L2 norm per text
        self.delta = eps * grad / norm
        return True

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self.ids = self.embedded = self.delta = None


# Techniques whose "off" value is None (RNNTrainingArguments), which hyperparameter_search trials may set.
_OPTIONAL_TECHNIQUES = ("max_train_seconds", "distillation_alpha")


class _FloatOrOff(float):
    """A float whose type, called on a value, gives a plain float, or None for None (held with
    ``float.__new__(_FloatOrOff, x)``; see `RNNTrainer._hp_search_setup`)."""

    def __new__(cls, value: Any) -> Any:
        return None if value is None else float(value)


def _base_learning_rate(optimizer_cls: Any, optimizer_kwargs: Mapping[str, Any]) -> float:
    """The learning rate the optimizer gives the groups without their own: its ``lr`` option, else its
    class's default (``optimizer_cls_and_kwargs=(torch.optim.Adam, {})``: 0.001), as in ``Trainer``."""
    lr = optimizer_kwargs.get("lr")
    if lr is None:
        with contextlib.suppress(TypeError, ValueError):  # (no signature to read)
            parameter = inspect.signature(optimizer_cls).parameters.get("lr")
            if parameter is not None and parameter.default is not inspect.Parameter.empty:
                lr = parameter.default
    if isinstance(lr, torch.Tensor) and lr.numel() == 1:
        lr = lr.item()
    if not isinstance(lr, (int, float)) or isinstance(lr, bool):
        raise ValueError(
            f"RNNTrainingArguments embedding_lr_scale scales the optimizer's learning rate, but "
            f"{getattr(optimizer_cls, '__name__', optimizer_cls)!r} was given no `lr` and has no numeric default "
            f"(got {lr!r}). Put 'lr' in the optimizer's keyword arguments, or set embedding_lr_scale=1.0."
        )
    return float(lr)


def _input_embedding(model: Any) -> nn.Module | None:
    """The model's input embedding module, or None when it has none."""
    getter = getattr(model, "get_input_embeddings", None)
    if getter is None:
        return None
    try:
        embedding = getter()
    except NotImplementedError:
        return None
    return embedding if isinstance(embedding, nn.Module) and hasattr(embedding, "weight") else None


class _EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """transformers' ``LengthGroupedSampler`` whose order depends only on ``seed + epoch``.

    The stock sampler draws each epoch's order from the global torch RNG when the epoch starts. A run
    resumed in epoch ``e > 0`` starts its first epoch from another RNG state than the interrupted run
    had at that point, so it would train on other batches. Seeding per epoch (``set_epoch``, which the
    Trainer's data loader calls) makes the order of every epoch reproducible on its own.
    """

    def __init__(self, batch_size: int, *, lengths: list[int], seed: int) -> None:
        # A list of ints: the stock sampler sorts with `lengths[i]` as key, and indexing (or iterating) a
        # `datasets` column, what `Trainer` passes, fetches a row from the Arrow table per index, every
        # epoch; its slice `[:]` is one read.
        lengths = np.asarray(lengths[:], dtype=np.int64).tolist()
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        self.generator.manual_seed(self.seed + self.epoch)
        return super().__iter__()


def _refuse_checkpoint_pushes(args: Any) -> None:
    """``push_to_hub`` with a ``hub_strategy`` that uploads checkpoint folders: a ``ValueError`` that says why."""
    strategy = str(getattr(getattr(args, "hub_strategy", None), "value", getattr(args, "hub_strategy", "")))
    if getattr(args, "push_to_hub", False) and strategy in ("checkpoint", "all_checkpoints"):
        raise ValueError(
            f"hub_strategy={strategy!r} uploads the Trainer's checkpoint folders (optimizer.pt, scheduler.pt, "
            "rng_state.pth: pickles, which run code when loaded) to the Hub; RNNTrainer pushes models without "
            "pickles. Use hub_strategy='every_save' (the model at every save) or 'end' (the default), and "
            "resume from the local checkpoints in output_dir (resume_from_checkpoint=True)."
        )


class _StepOnlyAcceleratedOptimizer(AcceleratedOptimizer):
    """accelerate's optimizer wrapper for the case ``RNNTrainer`` gives it: no gradient scaler, no XLA, no LOMO.

    ``AcceleratedOptimizer.step`` asks ``importlib`` twice per step whether the ``lomo_optim`` package is
    installed (about 0.35 ms per step here: 2% of a lecture-size epoch); in this case the rest of it is
    one line, kept here. Only instances that match are switched to this class (see
    ``RNNTrainer.create_scheduler``); any other wrapper keeps accelerate's step.
    """

    def step(self, closure: Any = None) -> None:
        if self.gradient_state.sync_gradients:
            self.optimizer.step(closure)


# Seconds the interpreter waits, without the GIL, before it finalizes a process that trained under a
# process group (see _pause_at_exit_for_collectives).
_EXIT_PAUSE_S = 0.05


@functools.cache
def _pause_at_exit_for_collectives() -> None:
    """Makes the interpreter's exit wait a moment without the GIL, once per process, so that the process
    group's worker threads drop their last work while Python can still serve them.

    Under torchrun (gloo) a rank now and then died with SIGABRT ("terminate called without an active
    exception") after its last line, and the launcher failed the run (2 of 72 runs of
    tests/techniques_ddp_worker.py here, 2 processes on 2 cores; once in CI). A stack dump of the same
    race caught as a hang (``py-spy dump --native``) showed why: a ``pt_gloo_runloop`` thread, done with
    ``Trainer``'s last all-gather (``store_flos`` gathers a tensor made in Python), was releasing that
    tensor's Python object and waited for the GIL, which the main thread held without a pause to the end.
    Once the interpreter finalizes, Python ends such a thread inside a C++ destructor, which aborts the
    process. An ``atexit`` handler runs before finalization, and ``time.sleep`` releases the GIL (runs of
    that script interleaved, with and without it: 0 of 30 and 2 of 30 aborted). Called by every
    ``RNNTrainer`` made under a process group, and by ``rnn-textclf train`` where it joins the group.
    """
    atexit.register(time.sleep, _EXIT_PAUSE_S)


def _takes_labels(model: Any) -> bool:
    """Whether ``model``'s forward takes ``labels`` (a classifier; RNNLanguageModel's targets are its inputs)."""
    return "labels" in inspect.signature(getattr(model, "forward", model)).parameters


class RNNTrainer(Trainer):
    """A thin ``transformers.Trainer`` for recurrent classifiers.

    Differences from ``Trainer``, each for a reason:

    - Evaluation and prediction always run in data-set order. In transformers 5.x,
      ``train_sampling_strategy="group_by_length"`` also makes ``Trainer`` evaluate with a
      ``LengthGroupedSampler``, so ``Trainer.predict(ds).predictions[i]`` no longer belongs to ``ds[i]``.
      ``RNNTrainer`` groups only the training batches by length.
    - The tokenizer's ``length`` column (``tokenizer(..., return_length=True)``) survives
      ``remove_unused_columns`` so the length-grouped sampler reads it instead of measuring every row.
    - ``lengths`` stay on the CPU when batches move to the accelerator, so packing needs no
      device-to-host copy. Under multi-GPU DDP they go to the model as a NumPy array: DDP moves every
      tensor argument to its GPU, and the model would have to copy the lengths back at every step.
    - With no ``data_collator`` it uses [`PackedSequenceCollator`][rnn_textclf.PackedSequenceCollator]:
      built from the ``processing_class`` (the tokenizer) when there is one, else from the model's
      ``config.pad_token_id`` and ``config.vocab_size`` (``Trainer``'s default collator cannot batch
      texts of different lengths).
    - The tokenizer and the model must agree: a tokenizer with more tokens than ``config.vocab_size``
      (ids the embedding does not have) or another pad id raises ``ValueError`` here, not an opaque
      error mid-training; a smaller tokenizer logs a warning (fine for an embedding padded to a round
      size, a silent mismatch otherwise). A ``PackedSequenceCollator`` gets the model's ``num_labels``
      so bad class ids are caught on the CPU.
    - Knowledge distillation: with ``RNNTrainingArguments(distillation_alpha=...)``, batches that carry a
      ``teacher_logits`` column (kept through ``remove_unused_columns``) train on the teacher's signal
      (see ``compute_loss``).
    - ``train_sampling_strategy="group_by_length"`` shuffles each epoch from ``(data_seed or seed) +
      epoch`` instead of the global RNG, so ``resume_from_checkpoint`` replays exactly the batches of
      an uninterrupted run (transformers' sampler would draw a resumed epoch's order from another RNG state).
    - The ``label_column`` of a ``PackedSequenceCollator`` (e.g. ``"topic"``) survives
      ``remove_unused_columns`` too, so the collator finds the labels it was told to read.
    - ``save_model`` (and each checkpoint) writes the training arguments as ``training_args.json``, not the
      pickled ``training_args.bin``: a model folder meant to be shared holds no pickle. No Hub upload
      carries one either: ``push_to_hub`` and the pushes during training (``hub_strategy="every_save"``)
      leave any ``.bin``/``.pt``/``.pth``/``.pkl`` file in ``output_dir`` behind, and
      ``hub_strategy="checkpoint"``/``"all_checkpoints"``, which upload the Trainer's checkpoint folders
      (``optimizer.pt``, ``scheduler.pt``, ``rng_state.pth``: pickles), are refused with ``push_to_hub``;
      checkpoints stay local.
    - Without an accelerator, batches are not pinned (``dataloader_pin_memory`` is turned off): pinning
      does nothing on the CPU, and torch's ``DataLoader`` warns about it on every run.
    - The input embedding never gets weight decay and is always in the optimizer (learning rate
      ``learning_rate * embedding_lr_scale``), even while frozen, so it can be unfrozen later. Decay would shrink every word's vector at every step, most of all the rare words'.

    With [`RNNTrainingArguments`][rnn_textclf.RNNTrainingArguments] it also trains with the techniques of
    the recipes, each off by default: adversarial training on the embeddings (``adversarial_eps``,
    in ``training_step``), a moving average of the weights that evaluation and saving use
    (``ema_decay``), an embedding learning-rate scale (``embedding_lr_scale``), a freeze-then-unfreeze
    schedule of the embedding (``embedding_freeze_epochs``) and a wall-clock budget
    (``max_train_seconds``). The callbacks behind them ([`rnn_textclf.callbacks`][rnn_textclf.callbacks])
    are added from the arguments (again when ``train()`` starts, so ``hyperparameter_search`` can tune
    them). With a plain ``TrainingArguments`` they are all off. Word dropout is a model option:
    ``RNNClassifierConfig(word_dropout=...)``.

    Speed: with a ``PackedSequenceCollator``, a ``datasets.Dataset``'s token ids and labels are read
    into NumPy arrays once per data loader, and each batch is one gather from them (not one Arrow row
    fetch and one Python list per row); the sampler gets the lengths as one array. The first
    ``train()`` skips the full garbage collection ``Trainer`` runs to free what an earlier run prepared
    (there is none yet). The gradient norm that ``Trainer`` logs is computed only for the optimizer
    steps whose log can read it (not at every step), the parameter count behind ``total_flos`` is
    counted once per model (not at every step), and accelerate's optimizer wrapper skips its per-step
    package lookup where it has nothing to do (no scaler, no XLA, no LOMO).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse_checkpoint_pushes(kwargs.get("args", args[1] if len(args) > 1 else None))
        refuse_split_dict(
            kwargs.get("train_dataset", args[3] if len(args) > 3 else None),
            "train_dataset",
            then="(eval_dataset may be a dict of splits; train_dataset is one.)",
        )
        collator_given = kwargs.get("data_collator") is not None or (len(args) > 2 and args[2] is not None)
        if not collator_given and kwargs.get("processing_class") is not None:
            kwargs["data_collator"] = PackedSequenceCollator(kwargs["processing_class"])
        self._ema: EMACallback | None = None
        self._freeze: EmbeddingFreezeCallback | None = None
        self._budget: TimeBudgetCallback | None = None
        self._ema_resume: dict[str, torch.Tensor] | None = None
        self._epoch_last_update: int | None = None
        self._parameter_count: tuple[nn.Module, int] | None = None
        self._reported_pushes: set[Any] = set()  # failed pushes already logged (`_report_failed_pushes`)
        super().__init__(*args, **kwargs)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            _pause_at_exit_for_collectives()
        config = getattr(self.model, "config", None)
        if (
            not collator_given
            and self.processing_class is None
            and isinstance(getattr(config, "pad_token_id", None), int)
        ):
            # Without a tokenizer Trainer would stack rows with its default_data_collator, which fails on
            # texts of different lengths ("expected sequence of length 9 at dim 1 (got 10)"); the model's
            # config knows the pad id and the vocab size the collator needs.
            self.data_collator = PackedSequenceCollator(
                pad_token_id=config.pad_token_id, vocab_size=getattr(config, "vocab_size", None)
            )
        self._warned_unused_teacher = False
        self._check_tokenizer_matches_model()
        self._refuse_training_without_labels(custom_loss=kwargs.get("compute_loss_func") is not None)
        self._no_pin_memory_without_accelerator()
        self._configure_techniques()
        if self.optimizer is not None and _input_embedding(self.model) is not None:
            self._refuse_lr_scale_with_given_optimizer()  # (again in create_optimizer: a trial may set it)

    def _refuse_training_without_labels(self, *, custom_loss: bool) -> None:
        """A training set whose label column has another name (``category``) failed at the first step with
        transformers' "The model did not return a loss": name the column and the two fixes now."""
        columns = getattr(self.train_dataset, "column_names", None)
        if not columns or custom_loss or type(self).compute_loss is not RNNTrainer.compute_loss:
            return
        if not _takes_labels(self.model):
            return  # (a language model: no labels)
        collator = self.data_collator
        wanted = {*_LABEL_KEYS, TEACHER_LOGITS_COLUMN, *(self.args.label_names or [])}
        if isinstance(collator, PackedSequenceCollator):
            wanted.add(collator.label_column)
        if wanted & set(columns):
            return
        known = {"text", "input_ids", "attention_mask", "length", "token_type_ids", "special_tokens_mask"}
        other = [c for c in columns if c not in known]
        fix = (
            f"rename yours (dataset.rename_column({other[0]!r}, 'label')) or pass "
            f"data_collator=PackedSequenceCollator(tokenizer, label_column={other[0]!r})"
            if other
            else "add one (class ids in a 'label' column)"
        )
        raise ValueError(
            f"train_dataset has no label column ('label' or 'labels'; its columns are {columns}): {fix}."
        )

    def _no_pin_memory_without_accelerator(self) -> None:
        # TrainingArguments pins batches by default; without an accelerator torch's DataLoader pins nothing
        # and warns on every run ("'pin_memory' argument is set as true but no accelerator is found").
        if self.args.dataloader_pin_memory and not torch.accelerator.is_available():
            self.args.dataloader_pin_memory = False

    # ------------------------------------------------------------------ per-step cost
    def create_scheduler(self, *args: Any, **kwargs: Any) -> Any:
        # Trainer creates the scheduler right after accelerate wraps the optimizer; torch's LR scheduler then
        # binds the wrapper's step method, so its class is settled here, before.
        self._cheaper_steps()
        return super().create_scheduler(*args, **kwargs)

    def _run_epoch(self, *args: Any, **kwargs: Any) -> Any:
        self._epoch_last_update = self._last_update_of_epoch(kwargs)
        return super()._run_epoch(*args, **kwargs)

    def _cheaper_steps(self) -> None:
        """accelerate's optimizer wrapper without its per-step package lookup, where that changes nothing."""
        optimizer, accelerator = self.optimizer, self.accelerator
        if (
            type(optimizer) is AcceleratedOptimizer
            and optimizer.scaler is None
            and accelerator.distributed_type != DistributedType.XLA
            and not getattr(accelerator, "has_lomo_optimizer", False)
        ):
            optimizer.__class__ = _StepOnlyAcceleratedOptimizer

    def _last_update_of_epoch(self, kwargs: Mapping[str, Any]) -> int | None:
        """The global step the epoch ``Trainer._run_epoch`` starts will end at; None when unknown.

        ``_run_epoch`` runs the updates ``range(num_update_steps_trained, num_update_steps_per_epoch)``,
        where ``num_update_steps_trained`` is non-zero only when resuming inside this epoch.
        """
        try:
            loader, per_epoch = kwargs["train_dataloader"], kwargs["num_update_steps_per_epoch"]
            epoch, epochs_trained = kwargs["epoch"], kwargs["epochs_trained"]
            resume, skipped = kwargs["resume_from_checkpoint"], kwargs["steps_trained_in_current_epoch"]
        except KeyError:  # another transformers version: log the norm at every step, as Trainer does
            return None
        if not has_length(loader):  # an iterable data set may end the epoch at any step
            return None
        trained = 0
        if epoch == epochs_trained and resume is not None and skipped > 0 and not self.args.ignore_data_skip:
            trained = skipped // self.args.gradient_accumulation_steps
        return self.state.global_step + per_epoch - trained

    def _grad_norm_read_after_this_step(self) -> bool:
        """Whether a log after the optimizer step being taken can read its gradient norm.

        Mirrors ``DefaultFlowCallback``: steps logging logs at every ``logging_steps``-th step (and the
        first with ``logging_first_step``); epoch logging logs when the epoch ends, which is its last
        step, ``max_steps``, or a stop decided at an evaluation or by the time budget. Callbacks from
        outside transformers and rnn-textclf may ask for a log at any step: then it is every step.
        """
        args, state = self.args, self.state
        step = state.global_step + 1  # the global step this optimizer step makes
        if self._budget is not None or any(
            not type(callback).__module__.startswith(("transformers.", "rnn_textclf."))
            for callback in self.callback_handler.callbacks
        ):
            return True
        if step == 1 and args.logging_first_step:
            return True
        if args.logging_strategy == IntervalStrategy.STEPS:
            return step % state.logging_steps == 0
        if args.logging_strategy == IntervalStrategy.EPOCH:
            evaluates = args.eval_strategy == IntervalStrategy.STEPS and step % state.eval_steps == 0
            return evaluates or step >= state.max_steps or self._epoch_last_update in (None, step)
        return False

    def _get_grad_norm(self, model: nn.Module, grad_norm: Any = None) -> Any:
        # Trainer computes the norm of every gradient at every optimizer step only to log it; that is a pass
        # over all parameters (and accelerate's wrappers) per step for a value most steps never show.
        if grad_norm is None and not self._grad_norm_read_after_this_step():
            return None
        return super()._get_grad_norm(model, grad_norm=grad_norm)

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """``Trainer.floating_point_ops`` (6 x tokens x parameters), with the parameters counted once per model."""
        model = self.model
        main_input = getattr(model, "main_input_name", "input_ids")
        if main_input not in inputs or not hasattr(model, "num_parameters"):
            return super().floating_point_ops(inputs)
        if self._parameter_count is None or self._parameter_count[0] is not model:
            self._parameter_count = (model, model.num_parameters(exclude_embeddings=True))
        return 6 * inputs[main_input].numel() * self._parameter_count[1]

    # ------------------------------------------------------------------ techniques (RNNTrainingArguments)
    def _technique(self, name: str, off: Any) -> Any:
        """A technique's value from the arguments (``off`` for a plain ``TrainingArguments``)."""
        return getattr(self.args, name, off)

    def _refuse_lr_scale_with_given_optimizer(self) -> None:
        scale = self._technique("embedding_lr_scale", 1.0)
        if scale != 1.0:
            raise ValueError(
                f"RNNTrainingArguments(embedding_lr_scale={scale!r}) gives the embedding its own learning rate "
                "through the optimizer RNNTrainer builds, but an optimizer was given (optimizers=(...)), "
                "whose parameter groups are used as they are. Either leave optimizers= out (set optim= / "
                "optim_args= for the optimizer class), or give the embedding's weight its own group in "
                "your optimizer and set embedding_lr_scale=1.0."
            )

    def _configure_techniques(self) -> None:
        """Checks the techniques against the model and setup, and adds, updates or removes their callbacks."""
        validate = getattr(self.args, "validate_techniques", None)
        if validate is not None:
            validate()
        freeze = self._technique("embedding_freeze_epochs", 0)
        decay = self._technique("ema_decay", 0.0)
        budget = self._technique("max_train_seconds", None)
        active = self.args.active_techniques() if isinstance(self.args, RNNTrainingArguments) else []
        # All but the weight average act on the input embedding.
        needs_embedding = [a for a in active if not a.startswith("ema_decay=")]
        model = self.model
        config = getattr(model, "config", None)
        problem = getattr(config, "problem_type", None)
        if (self.args.label_smoothing_factor or 0) > 0 and (
            problem == "regression" or (problem is None and getattr(config, "num_labels", 2) == 1)
        ):
            raise ValueError(
                f"label_smoothing_factor={self.args.label_smoothing_factor} smooths class labels, but this model "
                "is a regression model (real-valued targets): set label_smoothing_factor=0."
            )
        if (
            needs_embedding
            and model is not None
            and _input_embedding(self.accelerator.unwrap_model(model)) is None
        ):
            raise ValueError(
                f"RNNTrainingArguments {', '.join(needs_embedding)} need a model with an input embedding "
                f"(get_input_embeddings() returning an nn.Embedding), but {type(model).__name__} has none. "
                "Turn these options off for this model."
            )
        # The arguments refuse an explicit deepspeed/fsdp; this also catches them set by an accelerate config.
        backend = "DeepSpeed" if self.is_deepspeed_enabled else "FSDP" if self.is_fsdp_enabled else None
        if backend and active:
            raise ValueError(
                f"RNNTrainingArguments {', '.join(active)} cannot be used with {backend}: it shards the parameters, "
                "and these techniques need each process to hold the whole model. Train with DDP or turn them off."
            )
        if freeze > 0 and self.args.parallel_mode == ParallelMode.DISTRIBUTED and self.args.world_size > 1:
            raise ValueError(
                f"RNNTrainingArguments embedding_freeze_epochs={freeze} cannot be used with {self.args.world_size} "
                "processes: DDP registers the parameters that need gradients when it wraps the model, so an "
                "embedding unfrozen later would not be averaged across processes (the copies would drift apart). "
                "Use embedding_freeze_epochs=0 (fine-tune from the start) or -1 (never unfreeze), or train on one process."
            )
        self._ema = self._set_callback(self._ema, EMACallback, decay if decay else None, "decay")
        self._freeze = self._set_callback(
            self._freeze, EmbeddingFreezeCallback, freeze or None, "freeze_epochs"
        )
        self._budget = self._set_callback(self._budget, TimeBudgetCallback, budget, "max_seconds")
        if self._ema is not None and self._ema_resume is not None:
            self._ema.resume_from(self._ema_resume)
        self._ema_resume = None

    def _set_callback(self, current: Any, cls: type, value: Any, attribute: str) -> Any:
        """The callback ``cls(value)`` in the handler (``current`` updated in place), or none when ``value`` is None."""
        if value is None:
            if current is not None:
                self.remove_callback(current)
            return None
        if current is None:
            current = cls(value)
            self.add_callback(current)
        else:
            setattr(current, attribute, type(getattr(current, attribute))(value))
        return current

    def _averaged_weights(self) -> contextlib.AbstractContextManager[None]:
        """The ``ema_decay`` average swapped into the model (during training), else nothing."""
        return self._ema.swapped_in() if self._ema is not None else contextlib.nullcontext()

    def _hp_search_setup(self, trial: Any) -> None:
        # Trainer casts a trial's value to the type of the field's current value (float(None) for a
        # trial that switches max_train_seconds / distillation_alpha back off after one that set them): those
        # two fields are held in a float type that gives None back for None while the trial is applied.
        held = [
            name
            for name in _OPTIONAL_TECHNIQUES
            if isinstance(self.args, RNNTrainingArguments) and getattr(self.args, name) is not None
        ]
        for name in held:
            setattr(self.args, name, float.__new__(_FloatOrOff, getattr(self.args, name)))
        try:
            super()._hp_search_setup(trial)
        finally:
            for name in held:  # the ones the trial left alone: a plain float again
                if type(getattr(self.args, name)) is _FloatOrOff:
                    setattr(self.args, name, float(getattr(self.args, name)))

    def _inner_training_loop(self, *args: Any, **kwargs: Any) -> Any:
        # After model_init and hyperparameter_search's trial arguments, before the optimizer and callbacks run.
        self._configure_techniques()
        return super()._inner_training_loop(*args, **kwargs)

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        """``Trainer.training_step``, twice per batch with ``adversarial_eps`` (Miyato et al. 2017).

        The clean pass back-propagates the batch's loss as usual (with label smoothing and the loss
        scaling of gradient accumulation, through ``self.accelerator.backward``), keeping the gradient of
        the loss with respect to the embedding's output ``(batch, seq, emb)``. Each text's slice of it,
        scaled to L2 norm ``adversarial_eps``, is added to the embedding's output in a second pass over the
        same token ids (the same word dropout), whose loss is back-propagated too: the gradients add up.
        Under DDP the clean pass does not synchronise; the second pass reduces the sum. Returns the clean
        loss (what is logged). The hooks are removed before it returns, also on errors.
        """
        eps = self._technique("adversarial_eps", 0.0)
        if not eps:
            return super().training_step(model, inputs, num_items_in_batch)
        embedding = _input_embedding(self.accelerator.unwrap_model(model))
        if embedding is None:  # model_init gave a model without one: refused in _configure_techniques
            raise ValueError(
                "adversarial_eps needs a model with an input embedding (get_input_embeddings())."
            )
        inputs = self._prepare_inputs(inputs)  # once: both passes read the same tensors on the device
        perturbation = _EmbeddingPerturbation(embedding)
        try:
            with self.accelerator.no_sync(model):
                loss = super().training_step(model, copy.copy(inputs), num_items_in_batch)
            if perturbation.perturb(eps):
                super().training_step(model, copy.copy(inputs), num_items_in_batch)
        finally:
            perturbation.remove()
        return loss

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """``Trainer.create_optimizer`` with the input embedding in a parameter group of its own.

        Groups: the weights with ``weight_decay``, the biases without, and the embedding with learning
        rate ``learning_rate * embedding_lr_scale`` and no weight decay (in the biases' group when the scale
        is 1; with ``optimizer_cls_and_kwargs``, the scale applies to its ``lr``, or to the optimizer's
        default when it gives none, the rate of the other groups), in the optimizer even while frozen (a parameter without a gradient is skipped by the optimizer, its state starts at its
        first gradient). The optimizer class and its options come from ``optim``/``optim_args`` (or
        ``optimizer_cls_and_kwargs``) as in ``Trainer``. Optimizers that build their own parameter lists
        (GaLore, LOMO, ...) get ``Trainer``'s groups; with ``embedding_lr_scale`` or
        ``embedding_freeze_epochs`` they are refused. An optimizer given as ``optimizers=(optimizer, ...)`` is
        used as it is (its groups, its weight decay, the embedding's too); with ``embedding_lr_scale`` it is
        refused (``embedding_freeze_epochs`` works: it acts through ``requires_grad``).

        It also applies ``embedding_freeze_epochs`` for the epoch training starts in, because it runs
        before the model is wrapped for DDP, which registers the parameters that need gradients.
        """
        opt_model = self.model if model is None else model
        unwrapped = self.accelerator.unwrap_model(opt_model)
        if self._freeze is not None:
            self._freeze.apply(unwrapped, current_epoch(self.state))
        embedding = _input_embedding(unwrapped)
        if self.optimizer is not None and embedding is not None:
            self._refuse_lr_scale_with_given_optimizer()
        if self.optimizer is not None or embedding is None:
            return super().create_optimizer(model)
        if self.optimizer_cls_and_kwargs is not None:
            optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
        else:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        optimizer_kwargs = dict(optimizer_kwargs)
        if is_optimizer_factory(optimizer_cls) or {"params", "model", "optimizer_dict"} & set(
            optimizer_kwargs
        ):
            scale = self._technique("embedding_lr_scale", 1.0)
            freeze = self._technique("embedding_freeze_epochs", 0)
            if scale != 1.0 or freeze != 0:
                raise ValueError(
                    f"optim={self.args.optim!r} builds its own parameter groups, so RNNTrainingArguments "
                    f"embedding_lr_scale={scale!r} / embedding_freeze_epochs={freeze!r} cannot give the embedding "
                    "its own. Use an optimizer that takes parameter groups (e.g. optim='adamw_torch') or turn "
                    "these options off."
                )
            return super().create_optimizer(model)
        weight = embedding.weight
        scale = self._technique("embedding_lr_scale", 1.0)
        decay_names = set(self.get_decay_parameter_names(opt_model))
        rest = [(name, p) for name, p in opt_model.named_parameters() if p is not weight and p.requires_grad]
        no_decay = [p for name, p in rest if name not in decay_names]
        groups = [
            {
                "params": [p for name, p in rest if name in decay_names],
                "weight_decay": self.args.weight_decay,
            },
            # At the full learning rate the embedding joins the other undecayed parameters: one group
            # (one fused/foreach optimizer call) fewer per step.
            {"params": [*no_decay, weight] if scale == 1.0 else no_decay, "weight_decay": 0.0},
        ]
        if scale != 1.0:
            base = _base_learning_rate(optimizer_cls, optimizer_kwargs)
            groups.append({"params": [weight], "weight_decay": 0.0, "lr": base * scale})
        # Group 0 stays the one the Trainer logs the learning rate of (the decayed weights).
        self.optimizer = optimizer_cls([g for g in groups if g["params"]], **optimizer_kwargs)
        return self.optimizer

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """``Trainer.evaluate``; during training with ``ema_decay``, of the averaged weights."""
        with self._averaged_weights():
            return super().evaluate(*args, **kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """``Trainer.predict``; during training with ``ema_decay`` (e.g. from a callback), of the averaged
        weights, as ``evaluate``."""
        with self._averaged_weights():
            return super().predict(*args, **kwargs)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """``Trainer.save_model``; during training with ``ema_decay``, of the averaged weights.

        After training the model holds the average anyway (or the best checkpoint's, itself an average).
        """
        with self._averaged_weights():
            super().save_model(output_dir, _internal_call=_internal_call)

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        if self._ema is not None and self._ema.active and self.args.should_save:
            # Written before the Trainer's files: a checkpoint with a trainer_state.json has it.
            folder = os.path.join(
                self._get_output_dir(trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            )
            os.makedirs(folder, exist_ok=True)
            trained = {
                name: p.detach().cpu().contiguous()
                for name, p in self.accelerator.unwrap_model(model).named_parameters()
            }
            partial = os.path.join(folder, f".{TRAINED_WEIGHTS_NAME}.partial")
            safetensors.torch.save_file(trained, partial, metadata={"format": "pt"})
            os.replace(partial, os.path.join(folder, TRAINED_WEIGHTS_NAME))
        super()._save_checkpoint(model, trial)

    def _load_best_model(self) -> None:
        super()._load_best_model()
        best = self.state.best_model_checkpoint
        if self._freeze is None or best is None:
            return
        # Trainer loads the best checkpoint's weights only: with embedding_freeze_epochs its embedding may be
        # one that never trained (a frozen epoch's), which its config.json says; the model's config and
        # requires_grad (still the last epoch's) follow it, so a saved model tells its embedding's state.
        try:
            frozen = json.loads((Path(best) / "config.json").read_text(encoding="utf-8")).get(
                "freeze_embeddings"
            )
        except (OSError, ValueError):
            return
        model = self.accelerator.unwrap_model(self.model)
        embedding = _input_embedding(model)
        if isinstance(frozen, bool) and embedding is not None:
            embedding.weight.requires_grad_(not frozen)
            if hasattr(getattr(model, "config", None), "freeze_embeddings"):
                model.config.freeze_embeddings = frozen

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        trained_file = os.path.join(resume_from_checkpoint, TRAINED_WEIGHTS_NAME)
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        if not os.path.isfile(trained_file):
            if self._technique("ema_decay", 0.0):
                logger.warning(
                    "%s has no %s (it was not saved with ema_decay): the weight average starts again from the "
                    "checkpoint's weights.",
                    resume_from_checkpoint,
                    TRAINED_WEIGHTS_NAME,
                )
            return
        # model.safetensors (just loaded) is the average; training continues from the trained weights.
        named = dict(target.named_parameters())
        average = {name: p.detach().clone() for name, p in named.items()}
        trained = safetensors.torch.load_file(trained_file, device="cpu")
        missing = sorted(set(named) - set(trained))
        if missing:
            raise ValueError(
                f"{trained_file} lacks the parameters {missing}: it was saved for another model. Resume from a "
                "checkpoint of this model."
            )
        with torch.no_grad():
            for name, param in named.items():
                param.copy_(trained[name])
        if self._technique("ema_decay", 0.0):
            self._ema_resume = average
        else:
            logger.warning(
                "%s holds a weight average (it was saved with ema_decay) but ema_decay is 0 now: training continues "
                "from the trained weights and the average is dropped.",
                resume_from_checkpoint,
            )

    def _check_tokenizer_matches_model(self) -> None:
        config = getattr(self.model, "config", None)
        tokenizer = self.processing_class
        check_tokenizer_fits_model(tokenizer, config)
        collator = self.data_collator
        num_labels = getattr(config, "num_labels", None)
        # The collator checks label ids against the model's classes. A value set by an earlier RNNTrainer
        # (the same collator reused with another model) follows this model; one the user set stays.
        if isinstance(collator, PackedSequenceCollator) and (
            collator.num_labels is None or getattr(collator, "_num_labels_from_model", False)
        ):
            classes = getattr(config, "problem_type", None) != "regression" and isinstance(num_labels, int)
            collator.num_labels = num_labels if classes and num_labels > 1 else None
            collator._num_labels_from_model = collator.num_labels is not None

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """``Trainer.train``; see the class notes for what differs."""
        # A checkpoint cut short (no trainer_state.json: a traceback deep in Trainer; no optimizer.pt or
        # scheduler.pt: Trainer silently starts them afresh, another run) is refused by name, and
        # resume_from_checkpoint=True takes the newest complete checkpoint.
        resume = args[0] if args else kwargs.get("resume_from_checkpoint")
        if resume is True:
            last = last_complete_checkpoint(self.args.output_dir)
            if last is None and any(Path(self.args.output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*")):
                raise ValueError(
                    f"resume_from_checkpoint=True: no checkpoint-N in output_dir {self.args.output_dir!r} is "
                    "complete (each lacks files an exact resume needs; see the warnings above)."
                )
            resume = last if last is not None else resume
        elif isinstance(resume, (str, os.PathLike)) and os.path.isdir(resume):
            missing = checkpoint_missing(resume)
            if missing:
                raise _incomplete_checkpoint_error(resume, missing)
        if args:
            args = (resume, *args[1:])
        elif "resume_from_checkpoint" in kwargs:
            kwargs["resume_from_checkpoint"] = resume
        accelerator = self.accelerator
        prepared = ("_models", "_optimizers", "_schedulers", "_dataloaders", "deepspeed_engine_wrapped")
        if not any(getattr(accelerator, name, None) for name in prepared):
            # The training loop starts with accelerator.free_memory(): forget what an earlier run prepared,
            # then gc.collect(), a full pass over every Python object in the process (0.1-0.3 s with
            # transformers and a data set loaded: 5-10% of a short epoch). Nothing was prepared yet, so
            # the first call does nothing; later runs (another train(), auto_find_batch_size retries,
            # hyperparameter_search trials) free as usual.
            original = accelerator.free_memory

            def free_memory(*objects: Any) -> list[None]:
                accelerator.free_memory = original
                return [None] * len(objects)

            accelerator.free_memory = free_memory
        try:
            return super().train(*args, **kwargs)
        finally:
            accelerator.__dict__.pop("free_memory", None)

    def _remove_unused_columns(self, dataset: Any, description: str | None = None) -> Any:
        """``Trainer``'s column removal, then the rows the collator reads as an in-memory ``_TokenTable``.

        Only for a ``PackedSequenceCollator`` as is (it reads ``input_ids`` and the label column, nothing
        else); any other collator, or columns the table cannot hold (nulls, text), keep the Arrow rows.
        """
        dataset = super()._remove_unused_columns(dataset, description=description)
        collator = self.data_collator
        if (
            isinstance(collator, PackedSequenceCollator)
            and type(collator).__call__ is PackedSequenceCollator.__call__
        ):
            table = _TokenTable.from_dataset(
                dataset, label_column=collator.label_column, length_column=self.args.length_column_name
            )
            if table is not None:
                return table
        return dataset

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        if train_dataset is None:
            train_dataset = self.train_dataset
        if self.args.train_sampling_strategy == "group_by_length" and isinstance(train_dataset, _TokenTable):
            # Lengths from the table: one array, no pass over the rows.
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return _EpochSeededLengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                lengths=train_dataset.lengths.tolist(),
                seed=seed,
            )
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler and sampler.generator is None:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return _EpochSeededLengthGroupedSampler(sampler.batch_size, lengths=sampler.lengths, seed=seed)
        return sampler

    def _get_eval_sampler(self, eval_dataset: Any) -> torch.utils.data.Sampler | None:
        if self.args.train_sampling_strategy == "group_by_length" and eval_dataset is not None:
            if self.args.world_size <= 1:
                return torch.utils.data.SequentialSampler(eval_dataset)
            # Distributed: accelerate shards sequentially and gathers the results back in order.
            return None
        return super()._get_eval_sampler(eval_dataset)

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            super()._set_signature_columns_if_needed()
            # A collator told to read the labels from another column (label_column="topic") needs it.
            label_column = getattr(self.data_collator, "label_column", None)
            # The lengths are for PackedSequenceCollator; another collator (DataCollatorWithPadding) would
            # hand them to forward(), as Trainer would not.
            extra = [TEACHER_LOGITS_COLUMN]
            if isinstance(self.data_collator, PackedSequenceCollator):
                extra.append(self.args.length_column_name)
            if not _takes_labels(self.model):
                # A model without labels (RNNLanguageModel: the next tokens are its targets) on a
                # classification data set: its label column goes with the other unused columns.
                label_columns = {*_LABEL_KEYS, label_column}
                self._signature_columns = [c for c in self._signature_columns if c not in label_columns]
            elif isinstance(label_column, str):
                extra.append(label_column)
            for name in extra:
                if name not in self._signature_columns:
                    self._signature_columns.append(name)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        """``Trainer.compute_loss``, or the distillation loss when the batch carries ``teacher_logits``.

        With ``args.distillation_alpha`` set and ``teacher_logits`` in the batch (a data set with
        [`add_teacher_logits`][rnn_textclf.distillation.add_teacher_logits]'s column), the loss is
        [`distillation_loss`][rnn_textclf.distillation.distillation_loss] (``distillation_temperature``,
        ``distillation_loss``; the hard term keeps ``label_smoothing_factor``). Evaluation batches
        without the column (a plain validation set) get the ordinary loss; a *training* batch without it
        while ``distillation_alpha`` is set raises ``ValueError`` (the teacher was forgotten). On an
        evaluation set that carries the column, ``eval_loss`` is the distillation loss.
        """
        teacher = None
        if isinstance(inputs, Mapping) and TEACHER_LOGITS_COLUMN in inputs:
            teacher = inputs[TEACHER_LOGITS_COLUMN]
            # A new dict, not a pop: the adversarial pass of training_step reuses the batch after this one.
            inputs = {k: v for k, v in inputs.items() if k != TEACHER_LOGITS_COLUMN}
        alpha = getattr(self.args, "distillation_alpha", None)
        if teacher is None and alpha is not None and model.training:
            raise ValueError(
                f"distillation_alpha={alpha} is set but the training batches have no {TEACHER_LOGITS_COLUMN!r}: "
                "add the teacher's logits to the training data with add_teacher_logits(train_dataset, teacher) "
                "(a custom data collator must pass the column through), or leave distillation_alpha unset "
                "to train on the labels alone."
            )
        if teacher is None or alpha is None:
            if teacher is not None and not self._warned_unused_teacher:
                self._warned_unused_teacher = True
                logger.warning(
                    "The batches carry %r but distillation_alpha is None: the teacher's logits are ignored. "
                    "Set RNNTrainingArguments(distillation_alpha=...) to distil.",
                    TEACHER_LOGITS_COLUMN,
                )
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        config = getattr(self.model, "config", None)
        if getattr(config, "problem_type", None) not in (None, "single_label_classification"):
            raise ValueError(
                f"Distillation needs a single-label classifier; this model's problem_type is "
                f"{config.problem_type!r}. Train it without teacher_logits or distillation_alpha."
            )
        labels = inputs.pop("labels", None)  # inputs is this method's own dict here
        outputs = model(**inputs)
        smoothing = float(self.args.label_smoothing_factor or 0.0)
        loss = distillation_loss(
            outputs["logits"],
            teacher,
            labels,
            alpha=float(alpha),
            temperature=float(getattr(self.args, "distillation_temperature", 1.0)),
            kind=getattr(self.args, "distillation_loss", "kl"),
            hard_loss=(
                (
                    lambda logits, target: F.cross_entropy(
                        logits, target, label_smoothing=smoothing, reduction="none"
                    )
                )
                if smoothing
                else None
            ),
        )
        return (loss, outputs) if return_outputs else loss

    def create_model_card(self, **kwargs: Any) -> None:
        """Writes rnn-textclf's model card (not transformers' generic one) to ``args.output_dir/README.md``.

        The card has the Trainer's hyperparameters, evaluation results and ``model-index`` metadata
        (as ``Trainer.create_model_card``) plus the model's architecture, tokenizer and usage, with
        ``library_name: rnn-textclf``. ``RNNTrainer.push_to_hub`` calls it before uploading.

        Args:
            **kwargs: ``Trainer.create_model_card``'s arguments (``language``, ``license``, ``tags``,
                ``model_name``, ``finetuned_from``, ``tasks``, ``dataset_tags``, ``dataset``,
                ``dataset_args``) and any ``rnn_textclf.modelcard.CARD_INFO_KEYS`` field.
        """
        from .modelcard import write_trainer_model_card

        write_trainer_model_card(self, **kwargs)

    def push_to_hub(self, *args: Any, **kwargs: Any) -> Any:
        """``Trainer.push_to_hub`` (model, tokenizer, rnn-textclf's card), uploading no pickled file.

        ``output_dir`` goes up without its checkpoint folders (as in ``Trainer``) and without any ``.bin``,
        ``.pt``, ``.pth``, ``.pkl`` or ``.pickle`` file in it; the training arguments go up as
        ``training_args.json``.

        Args:
            *args: ``Trainer.push_to_hub``'s arguments (``commit_message``, ``blocking``, ``token``...).
            **kwargs: ``Trainer.push_to_hub``'s keyword arguments, and ``create_model_card``'s.

        Returns:
            What ``Trainer.push_to_hub`` returns (the commit, or a future with ``blocking=False``).
        """
        with _uploads_without_pickles():
            return super().push_to_hub(*args, **kwargs)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        running = getattr(self, "push_in_progress", None)
        if self.args.hub_always_push and running is not None and not running.is_done():
            # Trainer would copy this checkpoint's weights over the files the last upload is still sending
            # (it hashed them first: "sha256 mismatch", and that commit was lost): wait for it instead
            logger.info("Waiting for the last push to the Hub to finish before the next (hub_always_push).")
            running.wait_until_done()
        self._report_failed_pushes()
        # Trainer skips this push while the last one is still uploading (unless hub_always_push): then
        # output_dir, which that upload is reading in a background thread, is left alone.
        pushing = (
            self.is_world_process_zero()
            and self.args.hub_strategy != "end"
            and (running is None or running.is_done())
        )
        folder = Path(self.args.output_dir)
        if pushing:
            # Written before the upload starts, as it reads the folder later. Trainer copies a fixed list
            # of the checkpoint's files (config, weights) into output_dir: config.json's auto_map also needs
            # the code files (configuration.py, modeling.py), or a commit made during training does not load
            # with trust_remote_code. The arguments go as JSON: Trainer's training_args.bin is a pickle.
            for code in Path(checkpoint_folder).glob("*.py"):
                shutil.copy(code, folder / code.name)
            (folder / TRAINING_ARGS_JSON).write_text(self.args.to_json_string() + "\n", encoding="utf-8")
        with _uploads_without_pickles():
            super()._push_from_checkpoint(checkpoint_folder)
        if self.is_world_process_zero():
            (folder / TRAINING_ARGS_NAME).unlink(missing_ok=True)  # uploads skip it (a pickle)

    def _finish_current_push(self) -> None:
        super()._finish_current_push()
        self._report_failed_pushes()

    def _report_failed_pushes(self) -> None:
        """Logs a warning for each push made during training that failed (Trainer never looks: the commit is
        lost without a word). Each is reported once."""
        running = getattr(self, "push_in_progress", None)
        for job in running.jobs if running is not None else []:
            if job in self._reported_pushes or not job.done() or job.cancelled() or job.exception() is None:
                continue
            self._reported_pushes.add(job)
            logger.warning(
                "A push to the Hub repo %r failed, so its commit is not there: %s: %s",
                self.hub_model_id,
                type(job.exception()).__name__,
                job.exception(),
            )

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """``Trainer._save`` with the training arguments as ``training_args.json``, not a pickle.

        ``Trainer`` writes ``training_args.bin`` with ``torch.save`` into every folder ``save_model`` fills
        (the model folder a user shares, and each checkpoint); transformers never reads it back (resuming
        uses ``trainer_state.json``), so it is replaced by the same arguments as JSON
        (``TrainingArguments.to_json_string()``) and no pickle is left in a model folder.
        """
        super()._save(output_dir, state_dict=state_dict)
        if not self.args.should_save:
            return
        folder = Path(output_dir if output_dir is not None else self.args.output_dir)
        (folder / TRAINING_ARGS_JSON).write_text(self.args.to_json_string() + "\n", encoding="utf-8")
        (folder / TRAINING_ARGS_NAME).unlink(missing_ok=True)
        # Trainer saves the model (its card written then) before the tokenizer: describe the tokenizer too.
        # A generated card that already describes one is kept (create_model_card's, with the training
        # results and model-index: rewriting it lost them; Trainer.save_model never touches README.md).
        writer = getattr(type(self.model), "model_card_writer", None)
        if writer is not None and (folder / "tokenizer.json").is_file() and (folder / "README.md").is_file():
            from .modelcard import GENERATED_MARKER, TOKENIZER_UNKNOWN

            card = (folder / "README.md").read_text(encoding="utf-8")
            if GENERATED_MARKER in card and TOKENIZER_UNKNOWN in card:
                writer(self.model, folder, model_name=folder.resolve().name, tokenizer=folder)

    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        lengths = inputs.get("lengths") if isinstance(inputs, Mapping) else None
        if isinstance(lengths, torch.Tensor) and lengths.device.type == "cpu":
            rest = type(inputs)({k: v for k, v in inputs.items() if k != "lengths"})
            prepared = super()._prepare_inputs(rest)
            # DDP with device_ids (one GPU per process) moves tensor arguments, not NumPy arrays.
            ddp_moves_tensors = bool(getattr(self.model_wrapped, "device_ids", None))
            prepared["lengths"] = lengths.numpy() if ddp_moves_tensors else lengths
            return prepared
        return super()._prepare_inputs(inputs)


__all__ = ["TRAINED_WEIGHTS_NAME", "RNNTrainer"]
