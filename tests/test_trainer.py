"""End-to-end training with transformers' Trainer on real AG News rows (the canonical test CSV)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict, concatenate_datasets
from transformers import Trainer, TrainerCallback, TrainingArguments

from rnn_textclf import PackedSequenceCollator, RNNClassifier, RNNClassifierConfig, RNNTokenizer, RNNTrainer
from rnn_textclf.data import stratified_split
from rnn_textclf.metrics import make_compute_metrics


@pytest.fixture(scope="module")
def ag_news(shared_data: Path):
    """2,000 train / 500 test rows of AG News, tokenized with a length column, plus the tokenizer."""
    with (shared_data / "ag_news_csv" / "test.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    texts = [f"{title} {description}" for _, title, description in rows]
    labels = [int(label) - 1 for label, _, _ in rows]
    train_idx, test_idx, _ = stratified_split(labels, (2000 / 7600, 500 / 7600, 5100 / 7600), seed=0)
    tokenizer = RNNTokenizer.train_from_iterator((texts[i] for i in train_idx), min_freq=2)

    def make(idx):
        ds = Dataset.from_dict({"text": [texts[i] for i in idx], "label": [labels[i] for i in idx]})
        return ds.map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=128, return_length=True), batched=True
        )

    return make(train_idx), make(test_idx), tokenizer


def make_model(tokenizer, **kwargs) -> RNNClassifier:
    torch.manual_seed(0)
    config = RNNClassifierConfig(
        **{
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "num_labels": 4,
            "embedding_dim": 32,
            "hidden_size": 32,
            "rnn_type": "gru",
            "bidirectional": True,
            "pooling": "max",
            **kwargs,
        }
    )
    return RNNClassifier(config)


def args(tmp_path, **kwargs) -> TrainingArguments:
    defaults = dict(
        per_device_train_batch_size=32,
        per_device_eval_batch_size=64,
        learning_rate=5e-3,
        num_train_epochs=1,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        save_strategy="no",
        seed=0,
    )
    defaults.update(kwargs)
    return TrainingArguments(str(tmp_path), **defaults)


def test_rnn_trainer_learns_with_length_grouping_and_predicts_in_order(ag_news, tmp_path):
    train, test, tokenizer = ag_news
    assert "length" in train.column_names and "text" in train.column_names  # default remove_unused_columns
    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=args(tmp_path, train_sampling_strategy="group_by_length", num_train_epochs=2),
        train_dataset=train,
        eval_dataset=test,
        processing_class=tokenizer,  # collator defaults to PackedSequenceCollator(tokenizer)
        compute_metrics=make_compute_metrics(),
    )
    assert isinstance(trainer.data_collator, PackedSequenceCollator)
    trainer.train()
    # The training batches really were grouped by length: little padding. (transformers' sampler sorts
    # within "megabatches" of min(n // (4 * batch), 50) batches: 15 here, hence not lower.)
    lengths = np.array(train["length"])
    random_batches = np.random.default_rng(0).permutation(len(lengths))[:1984].reshape(-1, 32)
    random_padding = 1 - lengths[random_batches].sum() / (lengths[random_batches].max(1) * 32).sum()
    assert random_padding > 0.3
    assert trainer.data_collator.padding_fraction < 0.12
    metrics = trainer.evaluate()
    assert metrics["eval_accuracy"] > 0.6  # chance is 0.25

    prediction = trainer.predict(test)
    assert np.array_equal(prediction.label_ids, np.array(test["label"]))
    # predictions[i] belongs to test[i]: compare with the model run on each row alone
    model = trainer.model.eval()
    for i in [0, 7, 123, 499]:
        ids = torch.tensor([test[i]["input_ids"]])
        with torch.no_grad():
            alone = model(input_ids=ids).logits[0].numpy()
        np.testing.assert_allclose(prediction.predictions[i], alone, atol=1e-5)


def test_without_a_tokenizer_the_collator_comes_from_the_model_config(ag_news, tmp_path):
    # Trainer(model, args, train_dataset) on tokenized rows, no tokenizer: Trainer's default_data_collator
    # fails on texts of different lengths; RNNTrainer pads with the model's pad id instead.
    train, test, tokenizer = ag_news
    model = make_model(tokenizer)
    trainer = RNNTrainer(model=model, args=args(tmp_path, num_train_epochs=2), train_dataset=train)
    collator = trainer.data_collator
    assert isinstance(collator, PackedSequenceCollator)
    assert (collator.pad_token_id, collator.vocab_size) == (
        model.config.pad_token_id,
        model.config.vocab_size,
    )
    trainer.train()
    prediction = trainer.predict(test)
    assert np.array_equal(prediction.label_ids, np.array(test["label"]))  # data-set order
    accuracy = float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())
    assert accuracy > 0.6  # chance is 0.25
    # Rows padded with the model's pad id: a text's logits do not depend on its batch.
    model = trainer.model.eval()
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([test[5]["input_ids"]])).logits[0].numpy()
    np.testing.assert_allclose(prediction.predictions[5], alone, atol=1e-5)
    # The vocab size is checked on the CPU, before any step.
    bad = test.select(range(4)).map(lambda row: {"input_ids": [*row["input_ids"], len(tokenizer)]})
    with pytest.raises(ValueError, match=f"{len(tokenizer)}"):
        trainer.predict(bad)
    # A collator given positionally (Trainer's third argument) is kept.
    mine = PackedSequenceCollator(tokenizer)
    assert RNNTrainer(make_model(tokenizer), args(tmp_path), mine).data_collator is mine


def test_plain_trainer_keeps_order_with_default_sampling(ag_news, tmp_path):
    _, test, tokenizer = ag_news
    # Shuffle the lengths hard: sort by length descending, then interleave.
    order = np.argsort([-n for n in test["length"]])
    shuffled = test.select(np.concatenate([order[::2], order[1::2]]))
    trainer = Trainer(
        model=make_model(tokenizer), args=args(tmp_path), data_collator=PackedSequenceCollator(tokenizer)
    )
    prediction = trainer.predict(shuffled)
    assert np.array_equal(prediction.label_ids, np.array(shuffled["label"]))
    model = trainer.model.eval()
    with torch.no_grad():
        for i in [0, 1, 250, 499]:
            alone = model(input_ids=torch.tensor([shuffled[i]["input_ids"]])).logits[0].numpy()
            np.testing.assert_allclose(prediction.predictions[i], alone, atol=1e-5)


def test_plain_trainer_with_group_by_length_reorders_and_rnn_trainer_does_not(ag_news, tmp_path):
    """The transformers 5.x behaviour that RNNTrainer exists for."""
    _, test, tokenizer = ag_news
    grouped = args(tmp_path, train_sampling_strategy="group_by_length")
    plain = Trainer(
        model=make_model(tokenizer), args=grouped, data_collator=PackedSequenceCollator(tokenizer)
    )
    ours = RNNTrainer(
        model=make_model(tokenizer), args=grouped, data_collator=PackedSequenceCollator(tokenizer)
    )
    labels = np.array(test["label"])
    assert not np.array_equal(plain.predict(test).label_ids, labels)
    assert np.array_equal(ours.predict(test).label_ids, labels)


def test_best_model_at_end_and_save_then_reload(ag_news, tmp_path):
    train, test, tokenizer = ag_news
    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=args(
            tmp_path / "run",
            num_train_epochs=2,
            eval_strategy="epoch",
            save_strategy="epoch",
            load_best_model_at_end=True,
            metric_for_best_model="accuracy",
            train_sampling_strategy="group_by_length",
        ),
        train_dataset=train.select(range(600)),
        eval_dataset=test,
        processing_class=tokenizer,
        compute_metrics=make_compute_metrics(),
    )
    trainer.train()
    assert trainer.state.best_model_checkpoint is not None
    before = trainer.predict(test).predictions
    trainer.save_model(str(tmp_path / "final"))
    reloaded = RNNClassifier.from_pretrained(tmp_path / "final")
    reloaded_tok = RNNTokenizer.from_pretrained(tmp_path / "final")
    assert reloaded_tok.get_vocab() == tokenizer.get_vocab()
    after = RNNTrainer(model=reloaded, args=args(tmp_path / "eval"), processing_class=reloaded_tok).predict(
        test
    )
    np.testing.assert_allclose(after.predictions, before, atol=1e-6)


def test_empty_texts_train_and_predict(ag_news, tmp_path):
    _, _, tokenizer = ag_news
    ds = Dataset.from_dict(
        {"text": ["", "   ", "stocks rally", "the team won the final"], "label": [0, 1, 2, 1]}
    )
    ds = ds.map(lambda b: tokenizer(b["text"]), batched=True)
    assert ds[0]["input_ids"] == [] and ds[1]["input_ids"] == []
    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=args(tmp_path, per_device_train_batch_size=2),
        train_dataset=ds,
        processing_class=tokenizer,
    )
    trainer.train()
    prediction = trainer.predict(ds)
    assert prediction.predictions.shape == (4, 4) and np.isfinite(prediction.predictions).all()


def test_saved_folders_hold_training_args_as_json_and_no_pickle_and_resume_works(ag_news, tmp_path):
    # transformers' Trainer writes training_args.bin (torch.save) into every saved folder; a model folder
    # meant to be shared must hold no pickle. Resuming from a checkpoint must still work without it.
    import json
    import warnings

    train, test, tokenizer = ag_news
    run_args = args(tmp_path / "run", num_train_epochs=2, save_strategy="epoch", use_cpu=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = RNNTrainer(
            model=make_model(tokenizer),
            args=run_args,
            train_dataset=train.select(range(300)),
            processing_class=tokenizer,
        )
        trainer.train()
    if not torch.accelerator.is_available():
        assert not [w for w in caught if "pin_memory" in str(w.message)]  # item 11: no pinning on the CPU
        assert trainer.args.dataloader_pin_memory is False
    trainer.save_model(str(tmp_path / "final"))
    for folder in [tmp_path / "final", *sorted((tmp_path / "run").glob("checkpoint-*"))]:
        names = {p.name for p in folder.iterdir()}
        assert "training_args.bin" not in names, folder
        saved = json.loads((folder / "training_args.json").read_text())
        assert saved["learning_rate"] == 5e-3 and saved["num_train_epochs"] == 2
    final = {p.name for p in (tmp_path / "final").iterdir()}
    assert not [n for n in final if n.endswith((".bin", ".pt", ".pth", ".pkl"))], final
    # the card describes the tokenizer Trainer saves after the model (was "from the model's config" only)
    card = (tmp_path / "final" / "README.md").read_text()
    assert "| Tokenizer model | WordLevel |" in card and "from the model's config" not in card
    # Resume from the first checkpoint: the second epoch replays to the same weights.
    first = sorted((tmp_path / "run").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[0]
    resumed = RNNTrainer(
        model=make_model(tokenizer),
        args=args(tmp_path / "run", num_train_epochs=2, save_strategy="no"),
        train_dataset=train.select(range(300)),
        processing_class=tokenizer,
    )
    resumed.train(resume_from_checkpoint=str(first))
    np.testing.assert_allclose(
        resumed.predict(test).predictions, trainer.predict(test).predictions, atol=1e-5, rtol=0
    )
    # A checkpoint cut short (a kill or a full disk mid-save): named, not a FileNotFoundError deep in Trainer
    # (no trainer_state.json) or a silent fresh optimizer and schedule (no optimizer.pt: another run).
    import shutil

    from rnn_textclf.trainer import last_complete_checkpoint

    newest = max((tmp_path / "run").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    cut = tmp_path / "run" / "checkpoint-99999"
    shutil.copytree(newest, cut)
    (cut / "optimizer.pt").unlink()
    with pytest.raises(ValueError, match=r"checkpoint-99999' is incomplete: it has no optimizer.pt"):
        resumed.train(resume_from_checkpoint=str(cut))
    (cut / "trainer_state.json").unlink()
    with pytest.raises(ValueError, match=r"is incomplete: it has no trainer_state.json, optimizer.pt"):
        resumed.train(resume_from_checkpoint=str(cut))
    assert last_complete_checkpoint(tmp_path / "run") == str(newest)  # resume_from_checkpoint=True takes it


@pytest.mark.parametrize("strategy", ["checkpoint", "all_checkpoints"])
def test_hub_strategies_that_upload_checkpoints_are_refused(ag_news, tmp_path, strategy):
    # They upload optimizer.pt, scheduler.pt and rng_state.pth (pickles); refused before any repo is made.
    train, _, tokenizer = ag_news
    hub_args = args(tmp_path, push_to_hub=True, hub_model_id="acme/x", hub_strategy=strategy)
    with pytest.raises(ValueError, match=f"hub_strategy='{strategy}'.*pickles.*'every_save'"):
        RNNTrainer(make_model(tokenizer), hub_args, train_dataset=train, processing_class=tokenizer)
    with pytest.raises(ValueError, match=f"hub_strategy='{strategy}'"):
        RNNTrainer(model=make_model(tokenizer), args=hub_args, processing_class=tokenizer)
    # Without push_to_hub the strategy does nothing, and nothing is refused.
    RNNTrainer(
        model=make_model(tokenizer), args=args(tmp_path, hub_strategy=strategy), processing_class=tokenizer
    )


class _HeldHub:
    """Stands in for ``transformers.trainer.hf_api()``: a push made during training (``run_as_future``) stays
    in flight until ``release`` is set, then lists the files it would upload (its ignore patterns applied)."""

    def __init__(self) -> None:
        import concurrent.futures
        import threading

        self.release = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.uploads: list[tuple[str, list[str]]] = []
        self.folder_then: dict[str, int] = {}

    def __call__(self) -> _HeldHub:
        return self

    def create_repo(self, repo_id: str, **kwargs):
        from types import SimpleNamespace

        return SimpleNamespace(repo_id=repo_id)

    def list_repo_files(self, repo_id: str, **kwargs) -> list[str]:
        return []

    def upload_folder(
        self, *, folder_path, commit_message, ignore_patterns=None, run_as_future=False, **kwargs
    ):
        from huggingface_hub.utils import filter_repo_objects

        folder = Path(folder_path)
        if run_as_future and not self.folder_then:
            # (training_args.bin aside: it is a pickle, never uploaded, and goes)
            self.folder_then = {
                p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file() and p.suffix != ".bin"
            }

        def upload() -> None:
            if run_as_future:
                self.release.wait(60)
            found = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
            self.uploads.append(
                (commit_message, sorted(filter_repo_objects(found, ignore_patterns=ignore_patterns)))
            )

        return self.pool.submit(upload) if run_as_future else upload()


def test_pushes_during_training_upload_no_staging_folder_and_leave_an_uploading_folder_alone(
    ag_news, tmp_path, monkeypatch
):
    # hub_strategy="every_save" uploads output_dir in a background thread while training goes on. The next
    # checkpoint's save_pretrained stages in output_dir/.checkpoint-N.saving-*: an upload that listed it
    # failed when the files moved out (FileNotFoundError in CI: the commit lost) or pushed the staging
    # folder; a killed save's folder and marker are left there too (the marker would make the repo refuse
    # to load). And a push skipped because the last one is still uploading must not rewrite its files.
    import transformers.trainer as hf_trainer

    from rnn_textclf.modeling import SAVING_MARKER

    hub = _HeldHub()
    monkeypatch.setattr(hf_trainer, "hf_api", hub)
    train, _, tokenizer = ag_news
    out = tmp_path / "run"
    (out / ".checkpoint-9.saving-abc").mkdir(parents=True)
    (out / ".checkpoint-9.saving-abc" / "model.safetensors").write_bytes(b"killed mid-save")
    (out / SAVING_MARKER).write_text("a killed save\n")

    class Release(TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):
            # the step-2 and step-3 saves happened while the step-1 push was in flight: they left it alone
            now = {name: (out / name).stat().st_mtime_ns for name in hub.folder_then}
            hub.folder_then_changed = sorted(name for name, ns in hub.folder_then.items() if now[name] != ns)
            hub.release.set()

    hub_args = args(
        out,
        push_to_hub=True,
        hub_model_id="acme/held",
        hub_strategy="every_save",
        save_strategy="steps",
        save_steps=1,
        max_steps=3,
    )
    trainer = RNNTrainer(
        make_model(tokenizer),
        hub_args,
        train_dataset=train.select(range(96)),
        processing_class=tokenizer,
        callbacks=[Release()],
    )
    trainer.train()
    trainer.push_to_hub()
    assert [title for title, _ in hub.uploads] == ["Training in progress, step 1", "End of training"]
    assert {"configuration.py", "modeling.py", "training_args.json"} <= set(hub.folder_then)
    assert hub.folder_then_changed == []
    for _, files in hub.uploads:
        assert {"config.json", "model.safetensors", "configuration.py", "training_args.json"} <= set(files)
        assert not [f for f in files if "saving" in f or f.startswith("checkpoint-") or f.endswith(".bin")], (
            files
        )


def test_hub_always_push_waits_for_the_last_upload_and_failed_pushes_are_logged(
    ag_news, tmp_path, monkeypatch, caplog
):
    # hub_always_push: Trainer copied the next checkpoint's weights over the files the last upload was
    # still sending (hashed first: "sha256 mismatch", the commit lost). And Trainer never looks at a
    # push's outcome: a failed one went without a word.
    import logging
    import time

    import transformers.trainer as hf_trainer

    hub = _HeldHub()
    hub.release.set()
    rewritten: list[str] = []
    upload = hub.upload_folder

    def slow_upload(*, folder_path, commit_message, run_as_future=False, **kwargs):
        if not run_as_future:
            return upload(folder_path=folder_path, commit_message=commit_message, **kwargs)
        weights = Path(folder_path) / "model.safetensors"

        def send() -> None:
            before = weights.stat().st_mtime_ns
            time.sleep(0.3)  # a slow network: training goes on meanwhile
            if weights.stat().st_mtime_ns != before:
                rewritten.append(commit_message)
            if commit_message.endswith("step 1"):
                raise ConnectionError("the Hub went away")

        return hub.pool.submit(send)

    monkeypatch.setattr(hub, "upload_folder", slow_upload)
    monkeypatch.setattr(hf_trainer, "hf_api", hub)
    train, _, tokenizer = ag_news
    hub_args = args(
        tmp_path / "run",
        push_to_hub=True,
        hub_model_id="acme/always",
        hub_strategy="every_save",
        hub_always_push=True,
        save_strategy="steps",
        save_steps=1,
        max_steps=3,
    )
    trainer = RNNTrainer(
        make_model(tokenizer), hub_args, train_dataset=train.select(range(96)), processing_class=tokenizer
    )
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.trainer"):
        trainer.train()
    assert rewritten == []
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failed == [
        "A push to the Hub repo 'acme/always' failed, so its commit is not there: ConnectionError: the Hub went away"
    ]


def test_pickle_free_uploads_stay_in_the_pushing_thread():
    # transformers.trainer.hf_api was swapped for the length of each RNNTrainer push: another thread's
    # Trainer got the pickle-free uploads meanwhile (a plain Trainer's checkpoint push lost optimizer.pt),
    # and two pushes at once left it swapped for good.
    import threading

    import transformers.trainer as hf_trainer

    from rnn_textclf.trainer import _PickleFreeUploads, _uploads_without_pickles

    inside, outside = threading.Event(), threading.Event()
    seen: dict[str, type] = {}

    def push(name: str) -> None:
        with _uploads_without_pickles():
            seen[name] = type(hf_trainer.hf_api())
            inside.set()
            outside.wait(30)

    pushes = [threading.Thread(target=push, args=(name,)) for name in ("first", "second")]
    for thread in pushes:
        thread.start()
    inside.wait(30)
    seen["another thread"] = type(hf_trainer.hf_api())
    outside.set()
    for thread in pushes:
        thread.join(30)
    seen["after"] = type(hf_trainer.hf_api())
    assert seen["first"] is _PickleFreeUploads and seen["second"] is _PickleFreeUploads
    assert seen["another thread"] is not _PickleFreeUploads and seen["after"] is not _PickleFreeUploads


def test_collator_label_column_survives_remove_unused_columns(ag_news, tmp_path):
    # docs/how-to/trainer.md: PackedSequenceCollator(..., label_column="topic") passed to RNNTrainer.
    train, test, tokenizer = ag_news
    train = train.rename_column("label", "topic")
    test = test.rename_column("label", "topic")
    collator = PackedSequenceCollator(tokenizer, label_column="topic")
    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=args(tmp_path, num_train_epochs=2),
        train_dataset=train,
        eval_dataset=test,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=make_compute_metrics(),
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert metrics["eval_accuracy"] > 0.4  # 4 balanced classes: chance is 0.25
    np.testing.assert_array_equal(trainer.predict(test).label_ids, np.asarray(test["topic"]))
    # The same collator with a 5-class model: its class check follows that model (was left at 4 and
    # refused label 4, telling the user to rebuild a model that had 5 classes); a value set by hand stays.
    assert collator.num_labels == 4
    five = test.map(lambda row, i: {"topic": i % 5}, with_indices=True)
    RNNTrainer(
        model=make_model(tokenizer, num_labels=5),
        args=args(tmp_path),
        data_collator=collator,
        processing_class=tokenizer,
    ).evaluate(five)
    assert collator.num_labels == 5
    mine = PackedSequenceCollator(tokenizer, label_column="topic", num_labels=4)
    RNNTrainer(model=make_model(tokenizer, num_labels=5), args=args(tmp_path), data_collator=mine)
    assert mine.num_labels == 4


def test_a_label_column_under_another_name_is_named_with_the_fixes(ag_news, tmp_path):
    # (was transformers' "The model did not return a loss" at the first step)
    train, _, tokenizer = ag_news
    topics = train.rename_column("label", "topic")
    with pytest.raises(
        ValueError, match=r"no label column .*rename_column\('topic', 'label'\).*label_column='topic'"
    ):
        RNNTrainer(
            model=make_model(tokenizer), args=args(tmp_path), train_dataset=topics, processing_class=tokenizer
        )


def test_a_transformers_collator_trains_on_rows_with_a_length_column(ag_news, tmp_path):
    # DataCollatorWithPadding (Trainer's own default with a tokenizer) on the length column the docs add:
    # the lengths are kept only for PackedSequenceCollator (they reached forward() and failed).
    from transformers import DataCollatorWithPadding

    train, test, tokenizer = ag_news
    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=args(tmp_path, max_steps=4),
        train_dataset=train,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    assert trainer.train().global_step == 4
    predictions = trainer.predict(test.select(range(64))).predictions
    expected = RNNTrainer(model=trainer.model, args=args(tmp_path), processing_class=tokenizer).predict(
        test.select(range(64))
    )
    np.testing.assert_allclose(
        predictions, expected.predictions, atol=1e-5
    )  # the same model, either collator


def test_rows_padded_in_map_are_refused_not_read_as_text(ag_news, tmp_path):
    # Padding in datasets.map put pad ids into input_ids; the collator read them as tokens (logits moved).
    train, test, tokenizer = ag_news
    padded = test.select(range(40)).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=128, padding="max_length"), batched=True
    )
    trainer = RNNTrainer(model=make_model(tokenizer), args=args(tmp_path), processing_class=tokenizer)
    with pytest.raises(ValueError, match=r"padded when they were tokenized .*Tokenize without padding"):
        trainer.predict(padded)  # the in-memory table
    # only the rows of the data set count: unpadded rows sliced from beside padded ones are fine
    plain = test.select(range(40, 80)).remove_columns("length")
    beside = concatenate_datasets([padded, plain]).select(range(40, 80))
    np.testing.assert_allclose(
        trainer.predict(beside).predictions, trainer.predict(plain).predictions, atol=1e-6
    )
    collator = PackedSequenceCollator(tokenizer)
    with pytest.raises(ValueError, match=r"padded when they were tokenized"):
        collator([padded[0], padded[1]])  # rows one by one
    assert collator([test[0], test[1]])["input_ids"].shape[0] == 2  # unpadded rows (masks of 1s) are fine
    with pytest.raises(
        TypeError,
        match=r"train_dataset is a DatasetDict with splits \['train', 'test'\], not one split: did you",
    ):
        RNNTrainer(
            model=make_model(tokenizer),
            args=args(tmp_path),
            train_dataset=DatasetDict({"train": train, "test": test}),
            processing_class=tokenizer,
        )


def test_compute_metrics_tells_the_problem_from_the_predictions():
    # Without problem_type, float regression targets were cast to class ids (accuracy 1.0 on random targets)
    # and multi-label rows failed on a shape error.
    from transformers import EvalPrediction

    compute = make_compute_metrics()
    rng = np.random.default_rng(0)
    targets = rng.random(10).astype(np.float32)
    assert set(compute(EvalPrediction(rng.normal(size=(10, 1)), targets))) == {"mse"}
    multi = (rng.random((10, 3)) > 0.5).astype(np.float32)
    assert "micro_f1" in compute(EvalPrediction(rng.normal(size=(10, 3)), multi))
    single = compute(EvalPrediction(np.eye(4)[[0, 1, 2, 3, 0]], np.array([0, 1, 2, 3, 1])))
    assert single["accuracy"] == 0.8
    with pytest.raises(ValueError, match=r"not class ids .* problem_type='regression'"):
        compute(EvalPrediction(rng.normal(size=(4, 2)), np.array([0.5, 1.0, 0.2, 0.0])))
    # -100 rows (ignored by the loss) are left out, not a NumPy error on negative ids
    ignored = compute(EvalPrediction(np.eye(2)[[0, 1, 1, 0]], np.array([0, -100, 1, -100])))
    assert (ignored["accuracy"], ignored["f1"]) == (1.0, 1.0)  # rows 0 and 2, both right
    # the classes are the logits' width: a 2-class model reports f1 even on one class predicted right
    one_class = compute(EvalPrediction(np.eye(2)[[0, 0, 0]], np.array([0, 0, 0])))
    assert one_class["f1"] == 0.0 and one_class["accuracy"] == 1.0
    # several regression outputs (not 0/1): MSE, not multi-label F1s of thresholded numbers
    numbers = rng.normal(size=(10, 3)).astype(np.float32)
    assert set(compute(EvalPrediction(numbers + 0.1, numbers))) == {"mse"}
    # macro-F1 as scikit-learn's: a class only predicted (wrongly) counts with F1 0 (it was left out: 0.83)
    wrong = compute(EvalPrediction(np.eye(3)[[0, 2, 1, 1]], np.array([0, 0, 1, 1])))
    assert wrong["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_batches_come_from_an_in_memory_table_equal_to_the_rows(ag_news, tmp_path):
    """RNNTrainer's data path reads the ids once into NumPy; every batch equals the collated Arrow rows."""
    from rnn_textclf.collator import _TokenTable

    train, test, tokenizer = ag_news
    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=args(tmp_path, train_sampling_strategy="group_by_length"),
        train_dataset=train,
        processing_class=tokenizer,
    )
    collator = trainer.data_collator
    loader = trainer.get_train_dataloader()
    assert isinstance(loader.dataset, _TokenTable)
    sampler = loader.batch_sampler.sampler  # one process: torch's BatchSampler as is
    assert sampler.lengths == train["length"] and all(type(n) is int for n in sampler.lengths)
    index_batches = list(loader.batch_sampler)
    seen = []
    for indices, batch in zip(index_batches, loader, strict=True):
        expected = collator([train[i] for i in indices])
        for key in expected:
            assert torch.equal(batch[key], expected[key]), key
        seen.extend(indices)
    assert sorted(seen) == list(range(len(train)))  # every row once per epoch
    # evaluation: in data-set order, from the table as well
    eval_loader = trainer.get_eval_dataloader(test)
    assert isinstance(eval_loader.dataset, _TokenTable)
    labels = torch.cat([batch["labels"] for batch in eval_loader])
    assert labels.tolist() == test["label"]

    class Custom(PackedSequenceCollator):  # a collator of its own reads the Arrow rows as before
        def __call__(self, features):
            assert isinstance(features[0]["input_ids"], list)
            return super().__call__(features)

    custom = RNNTrainer(
        model=make_model(tokenizer), args=args(tmp_path), train_dataset=train, data_collator=Custom(tokenizer)
    )
    assert not isinstance(custom.get_train_dataloader().dataset, _TokenTable)
    next(iter(custom.get_train_dataloader()))


def test_first_train_skips_the_needless_full_gc_later_runs_free(ag_news, tmp_path, monkeypatch):
    import accelerate.accelerator

    train, _, tokenizer = ag_news
    calls = []
    release = accelerate.accelerator.release_memory
    monkeypatch.setattr(accelerate.accelerator, "release_memory", lambda *o: calls.append(1) or release(*o))
    trainer = RNNTrainer(
        model=make_model(tokenizer),
        args=args(tmp_path, max_steps=2),
        train_dataset=train,
        processing_class=tokenizer,
    )
    trainer.train()
    assert calls == []  # nothing was prepared before the first run: no gc.collect
    assert "free_memory" not in vars(trainer.accelerator)  # the accelerator's own method again
    trainer.train()  # a second run frees what the first prepared, as Trainer does
    assert calls == [1]


class _LogAtStepSeven(TrainerCallback):
    """A user's callback that asks for a log at a step no logging setting names."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 7:
            control.should_log = True


@pytest.mark.parametrize(
    ("strategy", "extra", "callbacks"),
    [
        ("steps", {"logging_steps": 4, "logging_first_step": True, "max_steps": 13}, []),
        ("epoch", {"num_train_epochs": 2}, []),
        ("no", {"max_steps": 9}, [_LogAtStepSeven]),
    ],
)
def test_logs_and_weights_equal_trainers_with_the_cheaper_steps(
    ag_news, tmp_path, strategy, extra, callbacks
):
    # RNNTrainer computes the gradient norm only for the steps a log reads, counts the parameters once and
    # steps accelerate's optimizer wrapper without its package lookups: the logs (grad_norm included) and
    # the trained weights must be Trainer's own.
    train, _, tokenizer = ag_news
    train = train.select(range(320))  # 10 steps per epoch
    runs = {}
    for cls in (Trainer, RNNTrainer):
        trainer = cls(
            model=make_model(tokenizer),
            # No clipping: with it, Trainer has the norm anyway and passes it on.
            args=args(tmp_path / cls.__name__, logging_strategy=strategy, max_grad_norm=0.0, **extra),
            train_dataset=train,
            data_collator=PackedSequenceCollator(tokenizer),
            callbacks=[c() for c in callbacks],
        )
        trainer.train()
        logs = [h for h in trainer.state.log_history if "loss" in h]
        runs[cls] = (logs, trainer.model.state_dict(), trainer)
    (plain_logs, plain_weights, _), (logs, weights, ours) = runs[Trainer], runs[RNNTrainer]
    assert [h["step"] for h in logs] == [h["step"] for h in plain_logs] != []
    for mine, theirs in zip(logs, plain_logs, strict=True):
        assert mine["grad_norm"] == pytest.approx(theirs["grad_norm"], rel=1e-5)
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    for name, tensor in plain_weights.items():
        torch.testing.assert_close(weights[name], tensor, rtol=1e-5, atol=1e-6)
    assert type(ours.optimizer).__name__ == "_StepOnlyAcceleratedOptimizer"
    assert ours.floating_point_ops({"input_ids": torch.ones(2, 3)}) == runs[Trainer][2].floating_point_ops(
        {"input_ids": torch.ones(2, 3)}
    )
