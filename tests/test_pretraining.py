"""Language-model pretraining (RNNLanguageModel): it learns what the texts hold and cannot cheat."""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter

import pytest
import torch

from cli_runner import run_cli
from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer, bucket_stream, pretraining
from rnn_textclf.data import load_sms_spam
from rnn_textclf.pretraining import RNNLanguageModel
from rnn_textclf.recipes import InvalidRecipeError, get_recipe, train_recipe

PAD, UNK, FIRST, V = 0, 1, 2, 12  # ids FIRST..V-1 are the 10 "words"


def tiny(rnn_type="gru", bidirectional=True, vocab_size=V, **kwargs) -> RNNClassifier:
    torch.manual_seed(0)
    config = RNNClassifierConfig(
        vocab_size=vocab_size,
        pad_token_id=PAD,
        num_labels=2,
        embedding_dim=16,
        hidden_size=32,
        rnn_type=rnn_type,
        bidirectional=bidirectional,
        **kwargs,
    )
    return RNNClassifier(config)


def batch_of(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(r) for r in rows])
    ids = torch.full((len(rows), int(lengths.max())), PAD)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return ids, lengths


def train_on(lm: RNNLanguageModel, make_rows, steps: int = 150) -> float:
    """Adam on fresh batches from ``make_rows(generator)``; the mean loss of the last 20 steps."""
    gen = torch.Generator().manual_seed(1)
    optimizer = torch.optim.Adam(lm.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        ids, lengths = batch_of(make_rows(gen))
        loss = lm(input_ids=ids, lengths=lengths).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses[-20:]) / 20


def random_rows(gen: torch.Generator) -> list[list[int]]:
    lengths = torch.randint(4, 12, (32,), generator=gen).tolist()
    return [torch.randint(FIRST, V, (n,), generator=gen).tolist() for n in lengths]


def counting_rows(gen: torch.Generator) -> list[list[int]]:
    """Each token is the one before it plus one (mod 10): fully predictable in both directions."""
    starts = torch.randint(0, 10, (32,), generator=gen).tolist()
    lengths = torch.randint(4, 12, (32,), generator=gen).tolist()
    return [[FIRST + (s + k) % 10 for k in range(n)] for s, n in zip(starts, lengths, strict=True)]


@pytest.mark.parametrize(("rnn_type", "bidirectional"), [("gru", True), ("lstm", False), ("rnn", True)])
def test_learns_structure_and_cannot_see_the_token_it_predicts(rnn_type, bidirectional):
    # Counting sequences are learnt (the loss falls near zero); fresh random tokens cannot be predicted, so
    # the loss stays at log(10) unless a direction sees the token it predicts (it would then copy it).
    learnt = train_on(RNNLanguageModel(tiny(rnn_type, bidirectional)), counting_rows)
    assert learnt < 0.3
    chance = math.log(10)
    random = train_on(RNNLanguageModel(tiny(rnn_type, bidirectional)), random_rows)
    assert random > 0.9 * chance, (random, chance)


def assert_exact_likelihood(lm: RNNLanguageModel, rows: list[list[int]]) -> None:
    """The loss of two rows (3 and 2 tokens) is the mean negative log-probability, under the heads, of each
    predicted token's class (its id, or ``lm.class_of[id]``): both directions, normalized distributions."""
    lm.eval()
    ids, lengths = batch_of(rows)
    c = ids if lm.class_of is None else lm.class_of[ids]  # (2, 3) each token's class
    with torch.no_grad():
        _, outputs, _ = lm.classifier._encode(ids, None, lengths)
        size = lm.direction_size
        forward = lm.next_token.log_prob(outputs[:, :-1, :size].reshape(-1, size)).view(2, 2, -1)
        backward = lm.previous_token.log_prob(outputs[:, 1:, size:].reshape(-1, size)).view(2, 2, -1)
        assert torch.allclose(forward.exp().sum(-1), torch.ones(2, 2), atol=1e-5)
        nll = -torch.stack(
            [forward[0, 0, c[0, 1]], forward[0, 1, c[0, 2]], forward[1, 0, c[1, 1]],
             backward[0, 0, c[0, 0]], backward[0, 1, c[0, 1]], backward[1, 0, c[1, 0]]]
        )  # fmt: skip
        torch.testing.assert_close(lm(input_ids=ids, lengths=lengths).loss, nll.mean(), atol=1e-5, rtol=0)


def test_large_vocabularies_get_an_adaptive_softmax_that_learns_and_cannot_cheat():
    # Above FULL_SOFTMAX_MAX_VOCAB tokens the heads are adaptive softmaxes (exact likelihood, clusters of
    # rarer ids scored at lower width). The 10 "words" here sit in the frequent head and in a rare cluster.
    big = 4200
    words = [FIRST + k for k in range(5)] + [3000 + k for k in range(5)]
    lm = RNNLanguageModel(tiny(vocab_size=big))
    assert isinstance(lm.next_token, torch.nn.AdaptiveLogSoftmaxWithLoss)
    assert isinstance(lm.previous_token, torch.nn.AdaptiveLogSoftmaxWithLoss)
    assert isinstance(
        RNNLanguageModel(tiny(vocab_size=pretraining.FULL_SOFTMAX_MAX_VOCAB)).next_token, torch.nn.Linear
    )

    def mapped(make_rows):
        return lambda gen: [[words[i - FIRST] for i in row] for row in make_rows(gen)]

    assert train_on(lm, mapped(counting_rows), steps=300) < 0.3
    random = train_on(RNNLanguageModel(tiny(vocab_size=big)), mapped(random_rows))
    assert random > 0.9 * math.log(10), random
    # the loss is each predicted token's exact negative log-likelihood: the head's normalized log-probabilities
    assert_exact_likelihood(lm, [[words[0], words[7], words[3]], [words[9], words[1]]])


def test_adaptive_head_is_for_the_most_frequent_tokens_whatever_their_ids(tmp_path):
    # The head's first 2,048 classes were the first 2,048 ids: a pretrained tokenizer's (BERT's [unused*]
    # and single characters) are not the frequent ones. With counts, ids are ranked by frequency.
    big = 4200
    words = [3000 + k for k in range(10)]  # ids in the rare cluster, frequent in the texts
    counts = torch.zeros(big)
    counts[words] = torch.arange(100, 90, -1, dtype=torch.float)
    lm = RNNLanguageModel(tiny(vocab_size=big), token_counts=counts)
    assert lm.class_of[words].tolist() == list(range(10)) and sorted(lm.class_of.tolist()) == list(range(big))

    def mapped(make_rows):
        return lambda gen: [[words[i - FIRST] for i in row] for row in make_rows(gen)]

    assert train_on(lm, mapped(counting_rows), steps=300) < 0.3
    # still each token's exact negative log-likelihood: the head's log-probability of the token's class
    assert_exact_likelihood(lm, [[words[0], words[7], words[3]], [words[9], words[1]]])
    with pytest.raises(ValueError, match=r"`token_counts` must be 4200 finite counts .*got shape \(3,\)"):
        RNNLanguageModel(tiny(vocab_size=big), token_counts=[1, 2, 3])
    with pytest.raises(ValueError, match=r"got shape \(2, 2100\)"):
        RNNLanguageModel(tiny(vocab_size=big), token_counts=torch.ones(2, 2100))
    with pytest.raises(TypeError, match=r"a count per token id, in id order .*got a Counter"):
        RNNLanguageModel(tiny(vocab_size=big), token_counts=Counter({5: 2}))
    # a recipe's pretrainer counts the ids of the texts it learns from
    data = load_sms_spam()["train"].select(range(100))
    tokenizer = RNNTokenizer.train_from_iterator(data["text"], model="char")
    recipe = get_recipe("default").replace(pretrain_epochs=1, tokenizer="char")
    model, _ = recipe.build_model(tokenizer, label_names=["ham", "spam"], seed=0)
    train = recipe.encode(tokenizer, data["text"], data["label"])
    trainer = recipe.pretrainer(model, tokenizer, tmp_path, train_dataset=train)
    seen = Counter(i for row in train["input_ids"] for i in row)
    assert trainer.model.class_of[seen.most_common(1)[0][0]] == 0


def test_adaptive_clusters_are_never_narrower_than_four():
    # Each rarer cluster is scored at a quarter of the width before it; small hidden sizes keep fewer clusters.
    widths = {}
    for size in (8, 16, 64, 256):
        head = pretraining._head(size, 50_000, std=0.02)
        widths[size] = [] if isinstance(head, torch.nn.Linear) else [c[0].out_features for c in head.tail]
    assert widths == {8: [], 16: [4], 64: [16, 4], 256: [64, 16, 4]}


def test_padding_changes_nothing_and_the_loss_is_per_token():
    lm = RNNLanguageModel(tiny()).eval()
    rows = [[2, 5, 7, 3], [4, 4], [9, 8, 7, 6, 5, 4, 3], [6]]  # a one-token text predicts nothing
    ids, lengths = batch_of(rows)
    with torch.no_grad():
        batched = lm(input_ids=ids, lengths=lengths).loss
        # Each text alone, weighted by its predictions (2 directions x (length - 1) tokens).
        alone = [lm(input_ids=torch.tensor([r])).loss for r in rows if len(r) > 1]
        weights = [2 * (len(r) - 1) for r in rows if len(r) > 1]
        expected = sum(w * loss for w, loss in zip(weights, alone, strict=True)) / sum(weights)
        torch.testing.assert_close(batched, expected, atol=1e-5, rtol=0)
        wider = torch.cat([ids, torch.full((4, 3), PAD)], dim=1)  # more padding: the same loss
        torch.testing.assert_close(lm(input_ids=wider, lengths=lengths).loss, batched, atol=1e-6, rtol=0)
        mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
        torch.testing.assert_close(lm(input_ids=ids, attention_mask=mask).loss, batched, atol=1e-6, rtol=0)
        nothing = lm(input_ids=torch.tensor([[3], [4]])).loss  # no text has a token to predict
    assert nothing.item() == 0.0


def test_clear_errors():
    with pytest.raises(ValueError, match=r"bidirectional RNN with num_layers=2.*num_layers=1"):
        RNNLanguageModel(tiny(num_layers=2))
    RNNLanguageModel(tiny(bidirectional=False, num_layers=2))  # one direction: stacking is fine
    with pytest.raises(TypeError, match="pretrains an RNNClassifier, got Linear"):
        RNNLanguageModel(torch.nn.Linear(2, 2))
    recipe = get_recipe("default")
    for bad in (-1, 1.5, True):
        with pytest.raises(
            InvalidRecipeError, match=rf"`pretrain_epochs` must be an integer >= 0, got {bad!r}"
        ):
            recipe.replace(pretrain_epochs=bad)
    with pytest.raises(InvalidRecipeError, match=r"num_layers 2.*`num_layers: 1`"):
        recipe.replace(pretrain_epochs=1, model={"num_layers": 2, "bidirectional": True})
    with pytest.raises(InvalidRecipeError, match="nothing to pretrain"):
        recipe.pretrainer(tiny(), None, "unused", train_dataset=None)


def test_pretraining_on_sms_beats_word_frequencies_and_changes_only_the_encoder(tmp_path):
    data = load_sms_spam()
    data["train"] = data["train"].select(range(1000))
    # Characters: a language model learns which follow which within a few hundred steps.
    recipe = get_recipe("default").replace(pretrain_epochs=2, tokenizer="char", lr=1e-2)
    tokenizer = RNNTokenizer.train_from_iterator(data["train"]["text"], model="char")
    model, _ = recipe.build_model(tokenizer, label_names=["ham", "spam"], seed=0)
    train = recipe.encode(tokenizer, data["train"]["text"], data["train"]["label"])
    validation = recipe.encode(tokenizer, data["validation"]["text"], data["validation"]["label"])
    rnn_before = model.rnn.weight_hh_l0.detach().clone()
    head_before = model.classifier.weight.detach().clone()
    trainer = recipe.pretrainer(model, tokenizer, tmp_path, train_dataset=train, eval_dataset=validation)
    assert "labels" not in trainer.train_dataset.column_names  # texts only
    summary = recipe.pretrain(  # the same trainer, trained
        model,
        tokenizer,
        tmp_path,
        train_dataset=train,
        eval_dataset=validation,
        seed=0,
        disable_tqdm=True,
        per_device_train_batch_size=16,
    )
    loss = summary["validation_loss"]
    assert (summary["epochs"], summary["texts"]) == (2, 1000)
    assert summary["validation_perplexity"] == pytest.approx(math.exp(loss), rel=1e-3)
    # The baseline a model that learnt nothing would not beat: each validation token's frequency in the training texts
    # (add-one smoothed), the same tokens the language model predicts (all but the first of each text).
    counts = Counter(i for row in train["input_ids"] for i in row)
    total = sum(counts.values()) + len(tokenizer)
    unigram = [
        -math.log((counts[i] + 1) / total) for row in validation["input_ids"] for i in row[1:] if len(row) > 1
    ]
    unigram_loss = sum(unigram) / len(unigram)
    assert loss < unigram_loss - 0.3, (loss, unigram_loss)  # perplexity 26% below the frequencies' at least
    assert not torch.equal(model.rnn.weight_hh_l0, rnn_before)  # the classifier's own RNN learnt
    assert torch.equal(model.classifier.weight, head_before)  # and its head did not move


def test_trainer_pretrains_on_a_labelled_data_set_as_it_is(tmp_path):
    # The training data of the classifier, labels and all: RNNTrainer drops the label column for the
    # language model (its targets are the next tokens), in memory and streamed.
    from rnn_textclf import RNNTrainer, RNNTrainingArguments

    data = load_sms_spam()["train"].select(range(200))
    tokenizer = RNNTokenizer.train_from_iterator(data["text"], model="char")
    labelled = data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=64), batched=True)
    assert "label" in labelled.column_names
    for train in (labelled, labelled.to_iterable_dataset(num_shards=2)):
        lm = RNNLanguageModel(tiny(vocab_size=len(tokenizer)))
        args = RNNTrainingArguments(
            str(tmp_path),
            max_steps=3,
            per_device_train_batch_size=16,
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            save_strategy="no",
        )
        trainer = RNNTrainer(model=lm, args=args, train_dataset=train, processing_class=tokenizer)
        assert trainer.train().global_step == 3
    assert math.isfinite(trainer.evaluate(labelled.select(range(32)))["eval_loss"])


def test_pretrain_reads_a_streamed_data_set(tmp_path):
    # An IterableDataset (datasets streaming) trains for max_steps; the summary counts steps, not texts.
    data = load_sms_spam()
    train = data["train"].select(range(600))
    recipe = get_recipe("default").replace(pretrain_epochs=1, tokenizer="char", lr=1e-2)
    tokenizer = RNNTokenizer.train_from_iterator(train["text"], model="char")
    model, _ = recipe.build_model(tokenizer, label_names=["ham", "spam"], seed=0)
    stream = recipe.encode(tokenizer, train["text"], train["label"]).to_iterable_dataset(num_shards=2)
    validation = recipe.encode(tokenizer, data["validation"]["text"][:300], data["validation"]["label"][:300])
    summary = recipe.pretrain(
        model,
        tokenizer,
        tmp_path,
        train_dataset=stream,
        eval_dataset=validation,
        max_steps=60,
        disable_tqdm=True,
        per_device_train_batch_size=16,
    )
    assert summary["steps"] == 60 and summary["texts"] is None
    # a uniform guess over the characters costs log(V) nats; the streamed texts taught it far better
    assert summary["validation_loss"] < math.log(len(tokenizer)) - 1.0
    # A stream tokenized by `map` (columns unknown) and a bucket_stream of it (no columns at all) failed
    # on `column_names`.
    mapped = (
        train.to_iterable_dataset(num_shards=2)
        .map(lambda b: tokenizer(b["text"], return_length=True), batched=True)
        .remove_columns("text")
    )
    small = {"max_steps": 5, "disable_tqdm": True, "per_device_train_batch_size": 16}
    for source in (mapped, bucket_stream(mapped, batch_size=16)):
        assert recipe.pretrain(model, tokenizer, tmp_path, train_dataset=source, **small)["steps"] == 5
    # the summary's epochs are what ran: 5 of the 38 steps of an epoch (was the recipe's 1)
    in_memory = recipe.encode(tokenizer, train["text"], train["label"])
    summary = recipe.pretrain(model, tokenizer, tmp_path, train_dataset=in_memory, **small)
    assert summary["epochs"] == pytest.approx(5 / 38, abs=0.01)


@pytest.mark.slow  # ~22 s (two CLI runs); pretraining itself is tested in the default tier
def test_cli_pretrains_then_trains_and_says_so(tmp_path):
    proc = run_cli(
        "train",
        "--pretrain-epochs",
        "1",
        "--max-train-samples",
        "1000",
        "--epochs",
        "4",
        "--output-dir",
        "model",
        "--keep-checkpoints",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    kept = sorted(p.name for p in (tmp_path / "model.checkpoints").iterdir())
    assert kept and all(name.startswith("checkpoint-") for name in kept), kept  # no pretraining folder left
    assert (
        "Pretraining the embedding and RNN as a language model for 1 epoch on 1,000 training texts"
        in proc.stderr
    )
    assert "pretraining epoch 1/1: loss" in proc.stderr
    start = proc.stderr.index("Pretraining the embedding")
    pretraining_lines = proc.stderr[start : proc.stderr.index("pretraining epoch 1/1")]
    assert "%|" in pretraining_lines and "{'loss'" not in proc.stderr  # its progress bar, no log dicts
    # the epoch's line goes above the bar (tqdm.write clears the bar's line first: "\r   \r", read as
    # newlines here), not into it
    assert re.search(r"\n +\n  pretraining epoch 1/1", proc.stderr), proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    pretraining = metrics["pretraining"]
    assert pretraining["epochs"] == 1 and pretraining["texts"] == 1000
    assert math.isclose(
        pretraining["validation_perplexity"], math.exp(pretraining["validation_loss"]), rel_tol=1e-3
    )
    assert metrics["recipe"]["pretrain_epochs"] == 1
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    # how long is in metrics.json, not in config.json (two runs of one command write the same config)
    assert pretraining["seconds"] > 0 and config["pretraining"] == {
        k: v for k, v in pretraining.items() if k != "seconds"
    }
    card = (tmp_path / "model" / "README.md").read_text()
    assert "## Pretraining" in card and "Dai & Le 2015" in card
    assert metrics["test"]["accuracy"] > 0.866  # above always answering ham
    # A resumed run (one epoch more) keeps the record: its checkpoint's weights hold the pretraining.
    resumed = run_cli(
        "train", "--pretrain-epochs", "1", "--max-train-samples", "1000", "--epochs", "5", "--output-dir",
        "model", "--resume-from-checkpoint", "--overwrite", cwd=tmp_path,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "the language-model pretraining is in the checkpoint's weights already" in resumed.stderr
    again = json.loads((tmp_path / "model" / "config.json").read_text())
    assert again["pretraining"] == config["pretraining"]
    assert (
        json.loads((tmp_path / "model" / "metrics.json").read_text())["pretraining"] == config["pretraining"]
    )
    assert "## Pretraining" in (tmp_path / "model" / "README.md").read_text()


@pytest.mark.slow
def test_train_recipe_pretrains_when_the_recipe_says_so(caplog, tmp_path):
    data = load_sms_spam()
    texts, labels = data["train"]["text"][:2000], data["train"]["label"][:2000]
    recipe = get_recipe("default").replace(pretrain_epochs=1, epochs=3)
    with caplog.at_level(logging.INFO, logger="rnn_textclf.recipes"):
        result = train_recipe(recipe, texts, labels, label_names=["ham", "spam"], seed=0)
    assert "default: pretrained as a language model, validation loss" in caplog.text
    assert result.best_validation_accuracy > 0.87  # above always answering ham (about 0.86)
    # recorded as the CLI records it: in the result, config.json and the model card
    assert result.pretraining["epochs"] == 1 and result.pretraining["validation_loss"] > 0
    assert result.model.config.pretraining == {k: v for k, v in result.pretraining.items() if k != "seconds"}
    result.model.save_pretrained(tmp_path)
    assert "Pretraining" in (tmp_path / "README.md").read_text(encoding="utf-8")
