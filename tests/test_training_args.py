"""RNNTrainingArguments' techniques through RNNTrainer, each checked against an independent computation.

Data: rows of the bundled SMS Spam Collection and of the AG News test CSV (../shared/data).
"""

from __future__ import annotations

import copy
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from datasets import Dataset
from transformers import TrainerCallback, TrainingArguments

from rnn_textclf import (
    PackedSequenceCollator,
    RNNClassifier,
    RNNClassifierConfig,
    RNNTokenizer,
    RNNTrainer,
    RNNTrainingArguments,
)
from rnn_textclf.data import load_sms_spam
from rnn_textclf.trainer import TRAINED_WEIGHTS_NAME

AG_NEWS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ag_news_csv" / "test.csv"


def _tokenize(tokenizer: RNNTokenizer, texts: list[str], labels: list[int]) -> Dataset:
    ds = Dataset.from_dict({"text": texts, "label": labels})
    return ds.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=48, return_length=True), batched=True
    )


@pytest.fixture(scope="module")
def sms():
    """600 training and 200 validation SMS rows, tokenized, and the tokenizer."""
    splits = load_sms_spam(seed=0)
    train, val = splits["train"].select(range(600)), splits["validation"].select(range(200))
    tokenizer = RNNTokenizer.train_from_iterator(iter(train["text"]), min_freq=2)
    return (
        _tokenize(tokenizer, train["text"], train["label"]),
        _tokenize(tokenizer, val["text"], val["label"]),
        tokenizer,
    )


@pytest.fixture(scope="module")
def ag_news():
    """64 AG News rows (4 classes), tokenized, and the tokenizer."""
    with AG_NEWS.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[:64]
    texts = [f"{title} {description}" for _, title, description in rows]
    labels = [int(label) - 1 for label, _, _ in rows]
    tokenizer = RNNTokenizer.train_from_iterator(iter(texts))
    return _tokenize(tokenizer, texts, labels), tokenizer


def make_model(tokenizer: RNNTokenizer, num_labels: int = 2, **kwargs) -> RNNClassifier:
    torch.manual_seed(0)
    fields = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        unk_token_id=tokenizer.unk_token_id,
        num_labels=num_labels,
        embedding_dim=16,
        hidden_size=16,
        rnn_type="gru",
        bidirectional=True,
        pooling="max",
    )
    fields.update(kwargs)
    return RNNClassifier(RNNClassifierConfig(**fields))


def make_args(path, **kwargs) -> RNNTrainingArguments:
    defaults = dict(
        per_device_train_batch_size=32,
        per_device_eval_batch_size=100,
        learning_rate=1e-2,
        num_train_epochs=1,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
        logging_strategy="no",
        seed=0,
    )
    defaults.update(kwargs)
    return RNNTrainingArguments(str(path), **defaults)


def weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


class Recorder(TrainerCallback):
    """The trained weights after every optimizer step and the embedding at every epoch's end."""

    def __init__(self):
        self.after_step: list[dict[str, torch.Tensor]] = []
        self.epoch_end: list[tuple[torch.Tensor, bool, bool]] = []

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.after_step.append(weights(model))

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        weight = model.get_input_embeddings().weight
        self.epoch_end.append((weight.detach().clone(), weight.requires_grad, model.config.freeze_embeddings))


# ---------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("adversarial_eps", -0.5, "[0, 100]"),
        ("adversarial_eps", float("nan"), "[0, 100]"),
        ("ema_decay", 1.0, "[0, 1)"),
        ("ema_decay", True, "[0, 1)"),
        ("embedding_lr_scale", 0, "(0, 10]"),
        ("embedding_lr_scale", 11, "(0, 10]"),
        ("embedding_freeze_epochs", -2, "-1 (never unfreeze)"),
        ("embedding_freeze_epochs", 1.5, "an integer >= 0"),
        ("max_train_seconds", 0, "a positive number"),
        ("max_train_seconds", "10", "a positive number"),
        ("label_smoothing_factor", 1.5, "[0, 1)"),
        ("label_smoothing_factor", -0.5, "[0, 1)"),
        ("max_grad_norm", -1.0, ">= 0 or None"),
    ],
)
def test_out_of_range_values_name_field_value_and_range(tmp_path, field, value, allowed):
    with pytest.raises(ValueError) as err:
        make_args(tmp_path, **{field: value})
    message = str(err.value)
    assert f"`{field}`" in message and repr(value) in message and allowed in message


def test_numpy_numbers_are_taken_as_python_numbers(tmp_path):
    # values from a NumPy grid or a tuner: TrainingArguments takes them, and training_args.json holds them
    args = make_args(
        tmp_path,
        ema_decay=np.float32(0.9),
        embedding_lr_scale=np.float32(0.5),
        embedding_freeze_epochs=np.int64(1),
        max_train_seconds=np.int64(60),
        distillation_alpha=np.float32(0.5),
        distillation_temperature=np.float32(2.0),
    )
    saved = json.loads(args.to_json_string())
    assert (saved["ema_decay"], saved["embedding_freeze_epochs"], saved["max_train_seconds"]) == (
        pytest.approx(0.9),
        1,
        60.0,
    )
    assert type(args.embedding_freeze_epochs) is int and type(args.distillation_alpha) is float
    with pytest.raises(
        ValueError, match=r"`embedding_freeze_epochs` must be an integer .* got np.float64\(1.5\)"
    ):
        make_args(tmp_path, embedding_freeze_epochs=np.float64(1.5))
    with pytest.raises(ValueError, match=r"`ema_decay` must be a number .* got np.True_"):
        make_args(tmp_path, ema_decay=np.bool_(True))


def test_defaults_are_off_and_plain_arguments_still_work(sms, tmp_path):
    train, _, tokenizer = sms
    args = make_args(tmp_path)
    assert (args.adversarial_eps, args.ema_decay, args.embedding_lr_scale) == (0.0, 0.0, 1.0)
    assert (args.embedding_freeze_epochs, args.max_train_seconds) == (0, None)
    assert json.loads(args.to_json_string())["ema_decay"] == 0.0  # logged with the other arguments
    plain = TrainingArguments(str(tmp_path), report_to="none", use_cpu=True)
    trainer = RNNTrainer(
        model=make_model(tokenizer), args=plain, train_dataset=train, processing_class=tokenizer
    )
    assert [type(c).__name__ for c in trainer.callback_handler.callbacks] == [
        "DefaultFlowCallback",
        "ProgressCallback",
    ]


def test_combinations_that_cannot_work_are_refused_with_the_reason(sms, tmp_path):
    train, _, tokenizer = sms
    with pytest.raises(ValueError, match=r"ema_decay=0\.99 cannot be used with FSDP: FSDP shards"):
        make_args(tmp_path, ema_decay=0.99, fsdp=True)

    class NoEmbedding(torch.nn.Module):
        def forward(self, input_ids=None, lengths=None, labels=None, attention_mask=None):
            raise AssertionError("never called")

    with pytest.raises(ValueError, match=r"adversarial_eps=1\.0 need a model with an input embedding"):
        RNNTrainer(model=NoEmbedding(), args=make_args(tmp_path, adversarial_eps=1.0))
    # Word dropout must turn words into the tokenizer's <unk>.
    model = make_model(tokenizer, word_dropout=0.1, unk_token_id=tokenizer.unk_token_id + 1)
    with pytest.raises(
        ValueError, match=r"tokenizer's unk_token_id is 1.*RNNClassifierConfig\(unk_token_id=1"
    ):
        RNNTrainer(model=model, args=make_args(tmp_path), train_dataset=train, processing_class=tokenizer)


def test_options_that_would_change_nothing_are_refused(sms, tmp_path):
    # each trained bit-identically to a plain run, and was saved in training_args.json as if applied
    with pytest.raises(
        ValueError, match=r"`distillation_alpha` is None .* distillation_temperature=4\.0 would change"
    ):
        make_args(tmp_path, distillation_temperature=4.0)
    with pytest.raises(ValueError, match=r"distillation_loss='mse' would change nothing"):
        make_args(tmp_path, distillation_loss="mse")
    with pytest.raises(
        ValueError, match=r"`distillation_temperature` must be 1\.0 with distillation_loss='mse'"
    ):
        make_args(tmp_path, distillation_alpha=0.5, distillation_loss="mse", distillation_temperature=2.0)
    assert (
        make_args(tmp_path, distillation_alpha=0.5, distillation_temperature=2.0).distillation_temperature
        == 2
    )
    # an optimizer of one's own is used as given: the embedding's own learning rate cannot apply
    train, _, tokenizer = sms
    model = make_model(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with pytest.raises(ValueError, match=r"embedding_lr_scale=0\.1\) .* an optimizer was given"):
        RNNTrainer(  # (refused when the trainer is built, not at train())
            model=model,
            args=make_args(tmp_path, embedding_lr_scale=0.1),
            train_dataset=train,
            processing_class=tokenizer,
            optimizers=(optimizer, None),
        )
    trainer = RNNTrainer(
        model=model,
        args=make_args(tmp_path),
        train_dataset=train,
        processing_class=tokenizer,
        optimizers=(optimizer, None),
    )
    trainer.args.embedding_lr_scale = 0.1  # (as a hyperparameter_search trial would)
    with pytest.raises(ValueError, match=r"embedding_lr_scale=0\.1\) .* an optimizer was given"):
        trainer.train()
    # an embedding learning-rate scale for an embedding that never trains
    with pytest.raises(
        ValueError, match=r"`embedding_lr_scale` would change nothing with embedding_freeze_epochs=-1"
    ):
        make_args(tmp_path, embedding_freeze_epochs=-1, embedding_lr_scale=0.1)
    # label smoothing on a regression model failed deep in transformers (gather() dtype) at the first step
    regression = make_model(tokenizer, num_labels=1)
    with pytest.raises(ValueError, match=r"label_smoothing_factor=0\.1 smooths class labels.*regression"):
        RNNTrainer(
            model=regression,
            args=make_args(tmp_path, label_smoothing_factor=0.1),
            train_dataset=train,
            processing_class=tokenizer,
        )


# ---------------------------------------------------------------------------------------------- adversarial
def _reference_gradients(model, batch, eps: float, smoothing: float) -> dict[str, torch.Tensor]:
    """Gradients of clean + adversarial loss, computed with torch.autograd and no RNNTrainer code."""
    params = dict(model.named_parameters())
    trainable = {n: p for n, p in params.items() if p.requires_grad}
    embedding = model.get_input_embeddings()
    target = batch["labels"]
    leaf: dict[str, torch.Tensor] = {}

    def take_leaf(module, args, output):
        leaf["x"] = output.detach().requires_grad_(True)
        return leaf["x"]

    def loss_of(extra=None):
        handle = embedding.register_forward_hook(
            take_leaf if extra is None else (lambda m, a, out: out + extra)
        )
        try:
            logits = model(input_ids=batch["input_ids"], lengths=batch["lengths"]).logits
        finally:
            handle.remove()
        return torch.nn.functional.cross_entropy(logits, target, label_smoothing=smoothing)

    clean = loss_of()
    *clean_grads, wrt_embedded = torch.autograd.grad(
        clean, [*trainable.values(), leaf["x"]], allow_unused=True
    )
    # The embedding's own gradient flows through the leaf: chain it back by hand (rows = token ids).
    delta = eps * wrt_embedded / wrt_embedded.flatten(1).norm(dim=1).clamp(min=1e-12)[:, None, None]
    adversarial = loss_of(delta)
    adv_grads = torch.autograd.grad(adversarial, list(trainable.values()), allow_unused=True)
    grads = {}
    for (name, p), g1, g2 in zip(trainable.items(), clean_grads, adv_grads, strict=True):
        grads[name] = (torch.zeros_like(p) if g1 is None else g1) + (
            torch.zeros_like(p) if g2 is None else g2
        )
    if embedding.weight.requires_grad:  # the clean pass's embedding gradient, via the leaf
        grads["embeddings.weight"] = grads["embeddings.weight"].index_put(
            (batch["input_ids"].flatten(),), wrt_embedded.flatten(0, 1), accumulate=True
        )
    return grads


@pytest.mark.parametrize("frozen", [False, True])
def test_adversarial_step_equals_two_pass_reference_with_accumulation_and_smoothing(
    ag_news, tmp_path, frozen
):
    train, tokenizer = ag_news
    eps, lr, smoothing = 0.5, 0.1, 0.1
    model = make_model(tokenizer, num_labels=4, freeze_embeddings=frozen)
    start = copy.deepcopy(model)
    args = make_args(
        tmp_path,
        adversarial_eps=eps,
        label_smoothing_factor=smoothing,
        gradient_accumulation_steps=2,
        per_device_train_batch_size=16,
        max_steps=1,
        optim="sgd",
        learning_rate=lr,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
    )
    trainer = RNNTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    batches = []
    step = trainer.training_step

    def recording_step(model, inputs, num_items_in_batch=None):
        batches.append({k: v.clone() for k, v in inputs.items()})
        return step(model, inputs, num_items_in_batch)

    trainer.training_step = recording_step
    trainer.train()
    assert len(batches) == 2  # two micro-batches, one optimizer step

    start.train()  # dropout is 0: the passes are deterministic
    expected = weights(start)
    for batch in batches:
        for name, grad in _reference_gradients(start, batch, eps, smoothing).items():
            expected[name] -= lr * grad / 2  # the mean over the accumulated micro-batches
    got = weights(trainer.model)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
    # The adversarial pass changed the update: without it the step differs.
    clean_only = weights(start)
    for batch in batches:
        grads = _reference_gradients(start, batch, 0.0, smoothing)  # eps 0: the same batch twice
        for name, grad in grads.items():
            clean_only[name] -= lr * grad / 4
    assert not torch.allclose(got["classifier.weight"], clean_only["classifier.weight"], atol=1e-6)
    embedding = trainer.model.get_input_embeddings()
    assert not embedding._forward_hooks and not embedding._forward_pre_hooks
    if frozen:
        torch.testing.assert_close(embedding.weight, start.get_input_embeddings().weight, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------- EMA
def _independent_average(steps: list[dict[str, torch.Tensor]], start: dict[str, torch.Tensor], decay: float):
    average = {n: w.clone() for n, w in start.items()}
    history = []
    for k, trained in enumerate(steps):
        d = min(decay, (1 + k) / (10 + k))
        average = {n: d * average[n] + (1 - d) * trained[n] for n in average}
        history.append(average)
    return history


def test_ema_evaluates_saves_and_ends_with_the_average_and_resumes_exactly(sms, tmp_path):
    train, val, tokenizer = sms
    decay = 0.9
    settings = dict(
        ema_decay=decay, num_train_epochs=2, eval_strategy="epoch", save_strategy="epoch", learning_rate=5e-3
    )
    model = make_model(tokenizer)
    start = weights(model)
    recorder = Recorder()
    trainer = RNNTrainer(
        model=model,
        args=make_args(tmp_path / "full", **settings),
        train_dataset=train,
        eval_dataset=val,
        processing_class=tokenizer,
        callbacks=[recorder],
    )
    trainer.train()
    steps_per_epoch = len(recorder.after_step) // 2
    averages = _independent_average(recorder.after_step, start, decay)
    # The model after train() is the average, not the last trained weights.
    final = weights(trainer.model)
    for name, value in averages[-1].items():
        torch.testing.assert_close(final[name], value, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(
        final["classifier.weight"], recorder.after_step[-1]["classifier.weight"], atol=1e-4
    )

    # Checkpoint after epoch 1: model.safetensors = the average (what was evaluated), plus the trained weights.
    checkpoint = tmp_path / "full" / f"checkpoint-{steps_per_epoch}"
    saved = safetensors.torch.load_file(str(checkpoint / "model.safetensors"))
    trained = safetensors.torch.load_file(str(checkpoint / TRAINED_WEIGHTS_NAME))
    for name in start:
        torch.testing.assert_close(saved[name], averages[steps_per_epoch - 1][name], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            trained[name], recorder.after_step[steps_per_epoch - 1][name], rtol=0, atol=0
        )
    # The logged evaluation of epoch 1 is the averaged model's: re-evaluate the checkpoint without EMA.
    logged = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
    reloaded = RNNTrainer(
        model=RNNClassifier.from_pretrained(checkpoint),
        args=make_args(tmp_path / "check"),
        eval_dataset=val,
        processing_class=tokenizer,
    )
    assert reloaded.evaluate()["eval_loss"] == pytest.approx(logged[0], rel=1e-5)
    with_trained = RNNClassifier.from_pretrained(checkpoint)
    with_trained.load_state_dict(trained, strict=False)
    reloaded.model = with_trained
    assert reloaded.evaluate()["eval_loss"] != pytest.approx(logged[0], rel=1e-4)

    # Resume from epoch 1's checkpoint: the same final (averaged) weights as the uninterrupted run.
    resumed = RNNTrainer(
        model=make_model(tokenizer),
        args=make_args(tmp_path / "full", **settings),
        train_dataset=train,
        eval_dataset=val,
        processing_class=tokenizer,
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    after = weights(resumed.model)
    for name in final:
        torch.testing.assert_close(after[name], final[name], rtol=0, atol=1e-7)


def test_ema_predict_during_training_uses_the_average_as_evaluate(sms, tmp_path):
    train, val, tokenizer = sms
    seen = []

    class Both(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            seen.append((trainer.predict(val).metrics["test_loss"], trainer.evaluate(val)["eval_loss"]))

    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=make_args(tmp_path, ema_decay=0.9, learning_rate=5e-3),
        train_dataset=train,
        processing_class=tokenizer,
        callbacks=[Both()],
    )
    trainer.train()
    ((predicted, evaluated),) = seen
    assert predicted == pytest.approx(evaluated, rel=1e-6)


def test_ema_with_load_best_model_at_end_keeps_the_best_average(sms, tmp_path):
    train, val, tokenizer = sms
    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=make_args(
            tmp_path,
            ema_decay=0.9,
            num_train_epochs=2,
            eval_strategy="epoch",
            save_strategy="epoch",
            load_best_model_at_end=True,
            metric_for_best_model="loss",
        ),
        train_dataset=train,
        eval_dataset=val,
        processing_class=tokenizer,
    )
    trainer.train()
    best = safetensors.torch.load_file(str(Path(trainer.state.best_model_checkpoint) / "model.safetensors"))
    final = weights(trainer.model)
    for name, value in best.items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0)
    assert trainer.evaluate()["eval_loss"] == pytest.approx(trainer.state.best_metric, rel=1e-5)
    trainer.save_model(tmp_path / "saved")
    saved = safetensors.torch.load_file(str(tmp_path / "saved" / "model.safetensors"))
    torch.testing.assert_close(saved["classifier.weight"], best["classifier.weight"], rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------- embedding lr
def test_embedding_lr_scale_in_the_groups_and_the_update(sms, tmp_path):
    train, _, tokenizer = sms
    updates = {}
    for scale in (1.0, 0.25):
        model = make_model(tokenizer)
        start = weights(model)
        trainer = RNNTrainer(
            model=model,
            args=make_args(
                tmp_path / str(scale),
                embedding_lr_scale=scale,
                optim="sgd",
                learning_rate=0.5,
                lr_scheduler_type="constant",
                weight_decay=0.01,
                max_steps=1,
                max_grad_norm=0.0,
            ),
            train_dataset=train,
            processing_class=tokenizer,
        )
        trainer.train()
        groups = trainer.optimizer.param_groups
        embedding = model.get_input_embeddings().weight
        (group,) = [g for g in groups if any(p is embedding for p in g["params"])]
        assert group["lr"] == pytest.approx(0.5 * scale) and group["weight_decay"] == 0.0  # never decayed
        assert (group["params"] == [embedding]) == (scale != 1.0)  # own group unless at the full rate
        assert groups[0]["weight_decay"] == 0.01 and groups[0]["lr"] == pytest.approx(0.5)
        updates[scale] = {n: w - start[n] for n, w in weights(model).items()}
    # Same batch, same gradient: the embedding moved a quarter as far, the rest the same.
    full, scaled = updates[1.0], updates[0.25]
    assert full["embeddings.weight"].abs().sum() > 0
    torch.testing.assert_close(
        scaled["embeddings.weight"], 0.25 * full["embeddings.weight"], rtol=1e-4, atol=1e-7
    )
    torch.testing.assert_close(scaled["classifier.weight"], full["classifier.weight"], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    ("optimizer_cls", "kwargs", "rate"),
    [(torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}, 0.05), (torch.optim.Adam, {}, 1e-3)],
)
def test_embedding_lr_scale_scales_the_rate_of_optimizer_cls_and_kwargs(
    sms, tmp_path, optimizer_cls, kwargs, rate
):
    # The other groups get the optimizer's own lr (or its default), as in Trainer; the embedding's was
    # learning_rate * scale (1e-4 of theirs here), not a tenth of theirs.
    train, _, tokenizer = sms
    model = make_model(tokenizer)
    trainer = RNNTrainer(
        model=model,
        args=make_args(tmp_path, embedding_lr_scale=0.1, learning_rate=5e-5),
        train_dataset=train,
        processing_class=tokenizer,
        optimizer_cls_and_kwargs=(optimizer_cls, kwargs),
    )
    optimizer = trainer.create_optimizer()
    embedding = model.get_input_embeddings().weight
    (group,) = [g for g in optimizer.param_groups if any(p is embedding for p in g["params"])]
    assert group["lr"] == pytest.approx(0.1 * rate)
    assert all(g["lr"] == pytest.approx(rate) for g in optimizer.param_groups if g is not group)


# ---------------------------------------------------------------------------------------------- freeze
@pytest.mark.parametrize("freeze_epochs", [1, -1])
def test_freeze_schedule_keeps_the_embedding_then_trains_it(sms, tmp_path, freeze_epochs):
    train, _, tokenizer = sms
    model = make_model(tokenizer)
    start = model.get_input_embeddings().weight.detach().clone()
    recorder = Recorder()
    trainer = RNNTrainer(
        model=model,
        args=make_args(tmp_path, embedding_freeze_epochs=freeze_epochs, num_train_epochs=2),
        train_dataset=train,
        processing_class=tokenizer,
        callbacks=[recorder],
    )
    trainer.train()
    (first, first_grad, first_config), (second, second_grad, second_config) = recorder.epoch_end
    torch.testing.assert_close(first, start, rtol=0, atol=0)  # frozen in epoch 1
    assert not first_grad and first_config
    embedding = model.get_input_embeddings().weight
    assert any(p is embedding for g in trainer.optimizer.param_groups for p in g["params"])
    if freeze_epochs == 1:
        assert (second - start).abs().max() > 1e-3  # trained in epoch 2
        assert second_grad and not second_config and not model.config.freeze_embeddings
    else:
        torch.testing.assert_close(second, start, rtol=0, atol=0)
        assert not second_grad and second_config and model.config.freeze_embeddings


def test_best_model_from_a_frozen_epoch_says_its_embedding_is_frozen(sms, tmp_path, caplog):
    # load_best_model_at_end loads a checkpoint's weights only: the config kept the last (unfrozen) epoch's
    # freeze_embeddings=False for an embedding that never trained.
    train, val, tokenizer = sms
    model = make_model(tokenizer)
    start = model.get_input_embeddings().weight.detach().clone()
    calls = []

    def first_is_best(prediction):  # epoch 1 (frozen) scores best, whatever was learned
        calls.append(1)
        return {"order": -len(calls)}

    trainer = RNNTrainer(
        model=model,
        args=make_args(
            tmp_path,
            embedding_freeze_epochs=1,
            num_train_epochs=2,
            eval_strategy="epoch",
            save_strategy="epoch",
            load_best_model_at_end=True,
            metric_for_best_model="order",
            greater_is_better=True,
        ),
        train_dataset=train,
        eval_dataset=val,
        processing_class=tokenizer,
        compute_metrics=first_is_best,
    )
    trainer.train()
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-19")  # (600 rows / 32: 19 steps an epoch)
    embedding = model.get_input_embeddings().weight
    torch.testing.assert_close(embedding.detach(), start, rtol=0, atol=0)
    assert model.config.freeze_embeddings and not embedding.requires_grad
    trainer.save_model(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["freeze_embeddings"] is True
    # A schedule longer than the run is said to be one.
    caplog.clear()
    with caplog.at_level("WARNING", logger="rnn_textclf.callbacks"):
        RNNTrainer(
            model=make_model(tokenizer),
            args=make_args(tmp_path / "long", embedding_freeze_epochs=3, num_train_epochs=2, max_steps=2),
            train_dataset=train,
            processing_class=tokenizer,
        ).train()
    assert "embedding_freeze_epochs=3 covers the whole run" in caplog.text


def test_hyperparameter_search_can_switch_optional_techniques_off_again(sms, tmp_path):
    # Trainer casts a trial's value to the type of the field's current one: float(None) crashed the trial
    # that switched max_train_seconds back off after one that set it.
    train, val, tokenizer = sms
    seen = []

    class RecordArgs(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen.append((args.max_train_seconds, args.distillation_alpha))

    values = iter([(600.0, None), (None, None), (300, None)])
    trainer = RNNTrainer(
        args=make_args(tmp_path, max_steps=2, max_train_seconds=900.0, eval_strategy="no"),
        train_dataset=train.select(range(64)),
        eval_dataset=val.select(range(50)),  # (each trial ends with an evaluation)
        processing_class=tokenizer,
        model_init=lambda trial=None: make_model(tokenizer),
        callbacks=[RecordArgs()],
    )

    def space(trial):
        budget, _ = next(values)
        trial.suggest_float("learning_rate", 1e-3, 1e-2)
        return {"max_train_seconds": budget}

    trainer.hyperparameter_search(
        hp_space=space, backend="optuna", n_trials=3, compute_objective=lambda m: 0.0
    )
    assert seen == [(600.0, None), (None, None), (300.0, None)]
    assert all(type(budget) in (float, type(None)) for budget, _ in seen)


# ---------------------------------------------------------------------------------------------- time budget
class SlowSteps(TrainerCallback):
    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_step_begin(self, args, state, control, **kwargs):
        time.sleep(self.seconds)


def test_time_budget_stops_after_an_evaluated_epoch(sms, tmp_path):
    train, val, tokenizer = sms
    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=make_args(tmp_path, max_train_seconds=1.5, num_train_epochs=20, eval_strategy="epoch"),
        train_dataset=train.select(range(64)),
        eval_dataset=val.select(range(50)),
        processing_class=tokenizer,
        callbacks=[SlowSteps(0.3)],  # 2 steps an epoch: >= 0.6 s each
    )
    started = time.monotonic()
    trainer.train()
    # Each epoch takes >= 0.6 s: after epoch 2 (>= 1.2 s) another would pass 1.5 s. Under heavy load an
    # epoch may take longer and it stops after the first.
    assert 1 <= trainer.state.epoch <= 2
    assert time.monotonic() - started < 20
    evaluations = [h for h in trainer.state.log_history if "eval_loss" in h]
    assert evaluations[-1]["step"] == trainer.state.global_step  # the last trained step was evaluated


def test_time_budget_stops_within_a_long_epoch_and_evaluates(sms, tmp_path):
    train, val, tokenizer = sms
    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=make_args(
            tmp_path,
            max_train_seconds=1e-3,
            per_device_train_batch_size=8,
            eval_strategy="steps",
            eval_steps=1000,
            save_strategy="steps",
            save_steps=1000,
        ),
        train_dataset=train,
        eval_dataset=val.select(range(50)),
        processing_class=tokenizer,
    )
    trainer.train()
    assert trainer.state.global_step == 1  # of 75 in the epoch
    evaluations = [h for h in trainer.state.log_history if "eval_loss" in h]
    assert [h["step"] for h in evaluations] == [1]
    assert (tmp_path / "checkpoint-1" / "model.safetensors").is_file()


# ---------------------------------------------------------------------------------------------- word dropout
def test_word_dropout_replaces_about_p_of_the_real_tokens_in_training_only(sms):
    train, _, tokenizer = sms
    p = 0.2
    model = make_model(tokenizer, word_dropout=p)
    batch = PackedSequenceCollator(tokenizer)([train[i] for i in range(256)])
    ids, lengths = batch["input_ids"], batch["lengths"]
    real = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
    assert (ids[real] == tokenizer.unk_token_id).float().mean() < 0.2  # some <unk> already (min_freq=2)
    seen = {}
    model.get_input_embeddings().register_forward_pre_hook(lambda m, a: seen.update(ids=a[0].clone()))

    torch.manual_seed(1)
    model.train()
    model(input_ids=ids, lengths=lengths)
    dropped = (seen["ids"] != ids) & real
    assert ((seen["ids"] != ids) & ~real).sum() == 0  # padding is never replaced
    assert torch.all(seen["ids"][dropped] == tokenizer.unk_token_id)
    fraction = dropped.sum().item() / real.sum().item()  # ~4,000 tokens: sd of the fraction ~0.006
    assert abs(fraction - p * (1 - (ids[real] == tokenizer.unk_token_id).float().mean().item())) < 0.03
    model(input_ids=ids, lengths=lengths)
    assert not torch.equal(seen["ids"] != ids, dropped)  # a new draw per batch

    model.eval()
    model(input_ids=ids, lengths=lengths)
    assert torch.equal(seen["ids"], ids)  # never in evaluation


def test_adversarial_pass_sees_the_same_dropped_words(sms, tmp_path):
    train, _, tokenizer = sms
    model = make_model(tokenizer, word_dropout=0.3)
    seen = []
    model.get_input_embeddings().register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    trainer = RNNTrainer(
        model=model,
        args=make_args(tmp_path, adversarial_eps=1.0, max_steps=2),
        train_dataset=train,
        processing_class=tokenizer,
    )
    trainer.train()
    assert len(seen) == 4  # clean and adversarial pass of 2 steps
    for clean, adversarial in (seen[0:2], seen[2:4]):
        assert torch.equal(clean, adversarial)
        real = clean[clean != tokenizer.pad_token_id]
        assert (real == tokenizer.unk_token_id).float().mean() > 0.3  # 0.3 dropped + the <unk> already there


def test_word_dropout_config_validates_and_old_configs_load(tmp_path, sms):
    _, _, tokenizer = sms
    with pytest.raises(ValueError, match=r"`word_dropout` must be a float in \[0, 1\), got 1\.0"):
        make_model(tokenizer, word_dropout=1.0)
    with pytest.raises(ValueError, match=r"`word_dropout=0\.1` needs `unk_token_id`"):
        make_model(tokenizer, word_dropout=0.1, unk_token_id=None)
    with pytest.raises(ValueError, match=r"`unk_token_id` must differ from pad_token_id=0"):
        make_model(tokenizer, unk_token_id=0)
    model = make_model(tokenizer, word_dropout=0.1)
    model.save_pretrained(tmp_path / "new")
    loaded = RNNClassifier.from_pretrained(tmp_path / "new")
    assert (loaded.config.word_dropout, loaded.config.unk_token_id) == (0.1, tokenizer.unk_token_id)
    # A config.json written before these fields existed loads with word dropout off.
    config = json.loads((tmp_path / "new" / "config.json").read_text())
    del config["word_dropout"], config["unk_token_id"]
    (tmp_path / "new" / "config.json").write_text(json.dumps(config))
    old = RNNClassifier.from_pretrained(tmp_path / "new")
    assert (old.config.word_dropout, old.config.unk_token_id) == (0.0, None)
    np.testing.assert_array_equal(
        old.classifier.weight.detach().numpy(), loaded.classifier.weight.detach().numpy()
    )


# ---------------------------------------------------------------------------------------------- DDP
@pytest.mark.slow  # ~55 s each on 2 shared cores (three interpreter start-ups and gloo)
@pytest.mark.parametrize("distill", [False, True], ids=["labels", "distillation"])
def test_adversarial_and_ema_under_torchrun_ddp_match_one_process(tmp_path, distill):
    """2 gloo processes x 16 rows = one process x 32 rows, with adversarial_eps, ema_decay and a scaled
    embedding lr: the clean pass runs without gradient synchronisation, the adversarial pass reduces the
    sum; each text's perturbation only needs its own gradient, so it is the same as on one process. With
    distillation too: each row's teacher term is its own, so the mean over 2 x 16 rows is the mean over 32."""
    from test_distributed import free_port, run

    worker = Path(__file__).with_name("techniques_ddp_worker.py")
    common = ["--data", str(AG_NEWS), *(["--distill"] if distill else [])]
    run(
        [sys.executable, str(worker), *common, "--batch-size", "32", "--output-dir", str(tmp_path / "one")],
        tmp_path,
    )
    run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            str(worker),
            *common,
            "--batch-size",
            "16",
            "--output-dir",
            str(tmp_path / "ddp"),
        ],
        tmp_path,
    )
    one = json.loads((tmp_path / "one" / "summary.json").read_text())
    ddp = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert (one["world_size"], ddp["world_size"]) == (1, 2)
    assert one["global_step"] == ddp["global_step"] == 8
    # two passes a step (clean + adversarial); every one distilled when the column is there
    assert one["loss_calls"] == ddp["loss_calls"] == 16
    assert one["distilled_calls"] == ddp["distilled_calls"] == (16 if distill else 0)
    a = safetensors.torch.load_file(str(tmp_path / "one" / "model.safetensors"))
    b = safetensors.torch.load_file(str(tmp_path / "ddp" / "model.safetensors"))
    # Measured: the weights differ by ~1e-6 (summation order).
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
    assert one["classifier_change"] > 1e-3  # it trained
