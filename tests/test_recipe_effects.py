"""What the recipes' techniques do, measured on real TREC rows through RNNTrainer (issue 20, item 4).

tests/test_recipes.py checks that recipes load, validate and run; tests/test_training_args.py checks each
technique of RNNTrainingArguments against an independent computation. Here: a recipe run learns (held-out
accuracy far above the majority class), early stopping fires, the learning rate follows the schedule's
formula at every step (embedding group included), and label smoothing, gradient clipping and word dropout
have their effect on a recipe's training.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from rnn_textclf.recipes import Recipe, get_recipe, predict, predict_logits, train_recipe

TREC_LABELS = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]


def _trec(path: Path, rows: int | None = None) -> tuple[list[str], np.ndarray]:
    with path.open(newline="", encoding="utf-8") as handle:
        data = list(csv.DictReader(handle))[:rows]
    return [r["text"] for r in data], np.array([TREC_LABELS.index(r["label"]) for r in data])


@pytest.fixture(scope="module")
def trec(shared_data: Path) -> dict:
    train_texts, train_labels = _trec(shared_data / "trec" / "trec_train.csv")
    test_texts, test_labels = _trec(shared_data / "trec" / "trec_test.csv")
    return {"train": (train_texts, train_labels), "test": (test_texts, test_labels)}


@pytest.fixture(scope="module")
def glove():
    from rnn_textclf import load_word_vectors

    return load_word_vectors("glove.6B.50d")


def _small(**changes) -> Recipe:
    """The default recipe made small for seconds on one core, its other techniques off unless asked for."""
    fields = {
        "name": "small",
        "batch_size": 32,
        "min_freq": 1,
        "max_vocab_size": None,
        "schedule": "constant",
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "word_dropout": 0.0,
        "label_smoothing": 0.0,
        "grad_clip": None,
        "ema_decay": 0.0,
        "adversarial_eps": 0.0,
        "patience": None,
        "max_train_seconds": None,
        **changes,
    }
    fields["model"] = {"hidden_size": 32, **changes.get("model", {})}
    return get_recipe("bilstm-glove").replace(**fields)


def _parts(recipe: Recipe, texts, labels, glove, tmp_path: Path, callbacks=(), **overrides):
    """A recipe's RNNTrainer over ``texts`` (validation: the last 10%), as train_recipe builds it."""
    split = len(texts) * 9 // 10
    tokenizer, vectors = recipe.build_tokenizer(texts[:split], vectors=glove)
    model, _ = recipe.build_model(tokenizer, label_names=TREC_LABELS, vectors=vectors, seed=0)
    values = {
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "disable_tqdm": True,
        **overrides,
    }
    args = recipe.training_arguments(tmp_path, seed=0, **values)
    trainer = recipe.trainer(
        model,
        tokenizer,
        args,
        train_dataset=recipe.encode(tokenizer, texts[:split], labels[:split]),
        eval_dataset=recipe.encode(tokenizer, texts[split:], labels[split:]),
        callbacks=list(callbacks),
    )
    return trainer, tokenizer


# ------------------------------------------------------------------------------------------ learning


def test_a_recipe_run_learns_far_above_the_majority_class(trec, glove):
    texts, labels = trec["train"]
    test_texts, test_labels = trec["test"]
    result = train_recipe(_small(epochs=3), texts[:2000], labels[:2000], seed=0, vectors=glove)
    predicted = np.asarray(predict(result.model, result.tokenizer, test_texts))  # class ids
    accuracy = float((predicted == test_labels).mean())
    majority = float(np.bincount(test_labels).max() / len(test_labels))  # DESC, 0.276
    print(f"TREC held-out accuracy {accuracy:.3f} (majority class {majority:.3f})")
    assert accuracy > majority + 0.3, (accuracy, majority)
    assert len(np.unique(predicted)) >= 5  # not one or two classes for everything
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    # The validation accuracy of the kept epoch is its history entry (selection on validation, not test).
    assert result.best_validation_accuracy == max(r["validation_accuracy"] for r in result.history)


# ------------------------------------------------------------------------------------ early stopping


def test_early_stopping_fires_after_patience_epochs_without_improvement(trec, glove):
    texts, labels = trec["train"]
    # A learning rate so small that nothing changes: validation accuracy never improves after epoch 1.
    frozen = _small(epochs=6, lr=1e-9)
    stopped = train_recipe(frozen.replace(patience=2), texts[:400], labels[:400], seed=0, vectors=glove)
    assert [row["epoch"] for row in stopped.history] == [1, 2, 3]  # epoch 1, then 2 without improvement
    assert stopped.best_epoch == 1
    assert len({row["validation_accuracy"] for row in stopped.history}) == 1
    full = train_recipe(frozen, texts[:400], labels[:400], seed=0, vectors=glove)  # patience None
    assert [row["epoch"] for row in full.history] == [1, 2, 3, 4, 5, 6]


# ------------------------------------------------------------------------------------- LR schedules


class _LearningRates(TrainerCallback):
    """The learning rate of each parameter group as used by every optimizer step."""

    def __init__(self) -> None:
        self.steps: list[list[float]] = []
        self.embedding_group: int | None = None

    def on_optimizer_step(self, args, state, control, optimizer=None, model=None, **kwargs):
        # Called after optimizer.step() and before lr_scheduler.step(): these are the rates just used.
        if self.embedding_group is None:
            embedding = model.get_input_embeddings().weight
            self.embedding_group = next(
                i for i, g in enumerate(optimizer.param_groups) if any(p is embedding for p in g["params"])
            )
        self.steps.append([group["lr"] for group in optimizer.param_groups])


def _expected_factor(schedule: str, step: int, warmup: int, total: int) -> float:
    """The schedules' formulas written out: linear warmup from 0, then constant, linear or cosine decay."""
    if step < warmup:
        return step / warmup
    progress = (step - warmup) / (total - warmup)
    return {"constant": 1.0, "linear": 1.0 - progress, "cosine": 0.5 * (1.0 + math.cos(math.pi * progress))}[
        schedule
    ]


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_learning_rate_follows_the_schedule_formula_at_every_step(trec, glove, tmp_path, schedule):
    texts, labels = trec["train"]
    total, lr, scale = 16, 4e-3, 0.25
    recipe = _small(schedule=schedule, warmup_ratio=0.25, lr=lr, embedding_lr_scale=scale, freeze_epochs=0)
    rates = _LearningRates()
    trainer, _ = _parts(
        recipe, texts[:600], labels[:600], glove, tmp_path, callbacks=[rates], max_steps=total
    )
    trainer.train()
    assert len(rates.steps) == total
    warmup = math.ceil(0.25 * total)  # warmup_ratio is a share of the steps, rounded up
    assert warmup == 4
    for step, groups in enumerate(rates.steps):
        expected = lr * _expected_factor(schedule, step, warmup, total)
        for index, got in enumerate(groups):
            want = expected * (scale if index == rates.embedding_group else 1.0)
            assert got == pytest.approx(want, rel=1e-6, abs=1e-12), (step, index, got, want)
    assert rates.steps[0][0] == 0.0 and rates.steps[warmup][0] == pytest.approx(lr)  # warmup from 0 to peak
    assert len(rates.steps[0]) >= 2  # the embedding has its own group at scale != 1


# ------------------------------------------------------------------------------ regulariser effects


def test_label_smoothing_caps_the_confidence_on_the_training_texts(trec, glove):
    texts, labels = trec["train"]
    texts, labels = texts[:600], labels[:600]
    eps, k = 0.3, len(TREC_LABELS)
    cap = 1 - eps + eps / k  # the probability of the true class that minimises the smoothed loss
    confidence = {}
    for smoothing in (0.0, eps):
        result = train_recipe(
            _small(epochs=8, lr=5e-3, label_smoothing=smoothing, validation_fraction=0.1),
            texts,
            labels,
            seed=0,
            vectors=glove,
        )
        probs = torch.from_numpy(predict_logits(result.model, result.tokenizer, texts)).softmax(-1)
        confidence[smoothing] = float(probs.max(-1).values.mean())
    print(f"mean top probability on the training texts: {confidence} (cap {cap:.3f})")
    assert confidence[eps] < cap + 0.02
    assert confidence[0.0] > cap + 0.05  # without smoothing the same run grows far more confident


class _GradientNorms(TrainerCallback):
    """The gradient norm each optimizer step applies (after any clipping)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        grads = [p.grad.detach().flatten() for p in model.parameters() if p.grad is not None]
        self.norms.append(float(torch.cat(grads).norm()))


@pytest.mark.parametrize("grad_clip", [None, 0.05])
def test_gradient_clipping_bounds_the_applied_gradient(trec, glove, tmp_path, grad_clip):
    texts, labels = trec["train"]
    norms = _GradientNorms()
    trainer, _ = _parts(
        _small(grad_clip=grad_clip),
        texts[:600],
        labels[:600],
        glove,
        tmp_path,
        callbacks=[norms],
        max_steps=6,
        logging_strategy="steps",
        logging_steps=1,
    )
    trainer.train()
    before = [row["grad_norm"] for row in trainer.state.log_history if "grad_norm" in row]  # pre-clip norms
    assert len(before) == len(norms.norms) == 6
    assert min(before) > 0.05 * 4  # every step's gradient is well above the clip value
    if grad_clip is None:
        assert norms.norms == pytest.approx(before, rel=1e-4)  # applied as computed
    else:
        assert norms.norms == pytest.approx([grad_clip] * 6, rel=1e-3)  # scaled down to the clip norm


def test_word_dropout_of_a_recipe_reaches_the_recurrent_layer_in_training_only(trec, glove, tmp_path):
    texts, labels = trec["train"]
    p = 0.3
    seen: list[torch.Tensor] = []
    trainer, tokenizer = _parts(
        _small(word_dropout=p), texts[:600], labels[:600], glove, tmp_path, max_steps=8
    )
    model = trainer.model
    assert (model.config.word_dropout, model.config.unk_token_id) == (p, tokenizer.unk_token_id)
    hook = model.get_input_embeddings().register_forward_hook(
        lambda m, args, out: seen.append(args[0].clone())
    )
    try:
        trainer.train()
        training = torch.cat([ids[ids != tokenizer.pad_token_id] for ids in seen])
        seen.clear()
        predict_logits(model, tokenizer, texts[:540])  # the training texts again, in evaluation mode
        evaluation = torch.cat([ids[ids != tokenizer.pad_token_id] for ids in seen])
    finally:
        hook.remove()
    # Every word of the training texts is in the vocabulary: any <unk> the model reads was dropped out.
    share = float((training == tokenizer.unk_token_id).float().mean())
    n = len(training)
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n), (share, n)
    assert int((evaluation == tokenizer.unk_token_id).sum()) == 0
