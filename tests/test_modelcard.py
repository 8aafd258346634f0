"""Model cards written by save_pretrained, write_model_card and RNNTrainer (no Hub needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast, TrainingArguments

from rnn_textclf import (
    RNNClassifier,
    RNNClassifierConfig,
    RNNTrainer,
    WordVectors,
    load_word_vectors,
    write_model_card,
)
from rnn_textclf.modelcard import CARD_INFO_KEYS, GENERATED_MARKER

WORDS = ["stocks", "rally", "team", "wins", "final", "bank", "rates", "the"]


def make_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>")


def make_model(**kwargs) -> RNNClassifier:
    config = dict(
        vocab_size=len(WORDS) + 2,
        embedding_dim=6,
        hidden_size=5,
        num_layers=2,
        rnn_type="lstm",
        bidirectional=True,
        pooling="mean_max",
        num_labels=3,
        id2label={0: "World", 1: "Sports", 2: "Business"},
        label2id={"World": 0, "Sports": 1, "Business": 2},
    )
    config.update(kwargs)
    torch.manual_seed(0)
    return RNNClassifier(RNNClassifierConfig(**config))


def test_save_pretrained_writes_card_with_metadata_and_architecture(tmp_path: Path):
    model = make_model(freeze_embeddings=True)
    model.save_pretrained(tmp_path / "ckpt")
    card = ModelCard.load(tmp_path / "ckpt" / "README.md")
    assert card.data.library_name == "rnn-textclf"
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.license == "unknown"  # never claims a license on the user's behalf
    assert {"rnn-textclf", "text-classification", "lstm"} <= set(card.data.tags)
    text = card.text
    assert GENERATED_MARKER in text
    assert "| Recurrent cell | bidirectional LSTM |" in text
    assert "| Layers | 2 |" in text
    assert "| Hidden size | 5 per direction |" in text
    assert "mean and max over real tokens" in text
    total, trainable = model.num_parameters(), model.num_parameters(only_trainable=True)
    assert trainable < total
    assert f"| Parameters | {total:,} ({trainable:,} trainable) |" in text
    assert "0: World, 1: Sports, 2: Business" in text
    assert 'pipeline("text-classification", model="ckpt")' in text
    assert "trust_remote_code=True" in text
    # A second save keeps the card a person may have edited.
    (tmp_path / "ckpt" / "README.md").write_text("---\nlicense: mit\n---\nmine\n")
    model.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "README.md").read_text() == "---\nlicense: mit\n---\nmine\n"


def _usage_snippets(card_text: str) -> str:
    """The card's "How to use" code blocks that stand alone (the trust_remote_code line continues the first)."""
    section = card_text.split("## How to use", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```python\n")[1:]
    return "\n".join(b.split("```", 1)[0] for b in blocks if "trust_remote_code" not in b)


@pytest.mark.parametrize("problem", ["single_label_classification", "regression"])
def test_the_cards_usage_snippets_run_as_written(tmp_path: Path, problem):
    # The card's first snippet lacked `import rnn_textclf` (a pipeline then asks for trust_remote_code);
    # a regression card said it classifies and printed id2label[argmax].
    kwargs = (
        {"num_labels": 1, "id2label": {0: "score"}, "label2id": {"score": 0}}
        if problem == "regression"
        else {}
    )
    model = make_model(problem_type=problem, **kwargs)
    make_tokenizer().save_pretrained(tmp_path / "ckpt")
    model.save_pretrained(tmp_path / "ckpt")
    text = (tmp_path / "ckpt" / "README.md").read_text()
    assert ("Scoring short" in text) == (problem == "regression")
    # a regression card calls the pipeline for the value (top_k=2 ranked one number)
    assert ('function_to_apply="none")' in text, "top_k=2)" in text) == (
        (True, False) if problem == "regression" else (False, True)
    )
    if problem == "regression":  # outputs named by transformers' defaults are not listed as labels
        unnamed = make_model(problem_type=problem, num_labels=1)
        unnamed.save_pretrained(tmp_path / "unnamed")
        assert "with 1 output, built with" in (tmp_path / "unnamed" / "README.md").read_text()
    (tmp_path / "use.py").write_text(_usage_snippets(text))
    proc = subprocess.run(
        [sys.executable, "use.py"],
        cwd=tmp_path,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("[") if problem == "regression" else last in ("World", "Sports", "Business")


def test_card_describes_tokenizer_vectors_training_and_metrics(tmp_path: Path):
    tokenizer = make_tokenizer()
    model = make_model()
    vectors = WordVectors(
        words=["stocks", "team", "bank"], vectors=np.ones((3, 6), np.float32), source="toy.txt"
    )
    report = model.load_pretrained_embeddings(vectors, tokenizer, freeze=True)
    # The vectors' provenance lives in config.json, so a reloaded model's card still knows it.
    model.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())["pretrained_vectors"]
    assert saved["found"] == report.found == 3 and saved["total"] == report.total == len(WORDS)
    # Loaded from a file: the card and config.json name it by the file's own name, not its local path
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "vecs.txt").write_text("stocks 1 2 3 4 5 6\nteam 1 2 3 4 5 6\n")
    other = make_model()
    other.load_pretrained_embeddings(load_word_vectors(tmp_path / "mine" / "vecs.txt"), tokenizer)
    other.save_pretrained(tmp_path / "other")
    assert other.config.pretrained_vectors["name"] == "vecs.txt"
    for name in ("config.json", "README.md"):
        assert str(tmp_path) not in (tmp_path / "other" / name).read_text(), name
    reloaded = RNNClassifier.from_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    card = write_model_card(
        reloaded,
        tmp_path / "ckpt",
        if_exists="update",
        license="cc-by-4.0",
        language="en",
        datasets=["fancyzhx/ag_news"],
        training_data="AG News, 120,000 news articles (title + description).",
        hyperparameters={"learning_rate": 0.001, "epochs": 3},
        metrics={"accuracy": 0.9123, "f1": 0.91},
        eval_data="AG News test split (7,600 articles).",
        citation="@inproceedings{zhang2015character, title={Character-level Convolutional Networks}}",
    )
    assert card.data.license == "cc-by-4.0"
    assert card.data.datasets == ["fancyzhx/ag_news"]
    assert card.data.metrics == ["accuracy", "f1"]
    text = (tmp_path / "ckpt" / "README.md").read_text()
    assert text == str(card)
    assert "| Vocabulary size | 10 |" in text
    assert "| Normalization | NFKC, Lowercase |" in text
    assert "| Pre-tokenization | Whitespace |" in text
    assert "| Unknown-word token | `<unk>` |" in text
    assert "| Coverage | 3 / 8 vocabulary tokens (37.5%) |" in text
    assert "| Vectors | toy.txt |" in text and "| Frozen during training | yes |" in text
    assert "120,000 news articles" in text
    assert "| learning_rate | 0.001 |" in text
    assert "| accuracy | 0.9123 |" in text
    assert "@inproceedings{zhang2015character" in text


@pytest.mark.parametrize("kind", ["unigram", "char", "pretrained wordpiece"])
def test_card_of_subword_and_character_models(tmp_path: Path, kind: str):
    # Unigram's vocabulary is a list with its specials in it (they were counted twice, with a false
    # size-mismatch warning); the units are described as they are, not as words.
    from rnn_textclf import RNNTokenizer
    from rnn_textclf.modelcard import _teacher_kind

    texts = ["味道不错，送餐很快", "太难吃了", "服务很好 good", "送餐太慢了"] * 5
    if kind == "pretrained wordpiece":
        backend = Tokenizer(models.WordPiece({"[PAD]": 0, "[UNK]": 1, "味": 2, "道": 3}, unk_token="[UNK]"))
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")
    else:
        tokenizer = RNNTokenizer.train_from_iterator(texts, model=kind)
    model = RNNClassifier(
        RNNClassifierConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, num_labels=2)
    )
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    text = str(write_model_card(model, tmp_path, if_exists="update"))
    assert f"| Vocabulary size | {len(tokenizer):,} |" in text and "**Warning:**" not in text
    level = {"char": "character", "unigram": "subword (unigram)"}.get(kind, "subword (wordpiece)")
    assert f"A {level}-level recurrent model" in text and "word-level" not in text
    assert "English-like" not in text and "token embeddings" in text
    # (a character tokenizer's row said "WordLevel": its backend's class, which reads as words)
    row = {"char": "char (one token per character; a WordLevel model)", "unigram": "Unigram"}.get(
        kind, "WordPiece"
    )
    assert f"| Tokenizer model | {row} |" in text
    if kind == "char":  # (its split keeps the pattern's matches: the row said they were "Removed")
        assert "matches kept as pieces; the text between them Removed" in text
    assert _teacher_kind({"teacher_architecture": "RNNClassifier", "teacher_parameters": 20274}) == (
        " (RNNClassifier, 20,274 parameters)"
    )


def test_if_exists_policies(tmp_path: Path):
    model = make_model()
    readme = tmp_path / "README.md"
    # transformers' placeholder card is replaced; its tags survive.
    placeholder = (
        "---\nlibrary_name: transformers\ntags:\n- mytag\n---\n\n# Model Card\n\nThis is the model card of a 🤗 "
        "transformers model that has been pushed on the Hub. This model card has been automatically generated.\n"
    )
    readme.write_text(placeholder)
    card = write_model_card(model, tmp_path)
    assert GENERATED_MARKER in card.text and card.data.library_name == "rnn-textclf"
    assert "mytag" in card.data.tags
    # Our own card is regenerated with new info.
    card = write_model_card(model, tmp_path, metrics={"accuracy": 0.5})
    assert "| accuracy | 0.5000 |" in readme.read_text()
    # A hand-written card keeps its text; only the metadata is completed.
    readme.write_text("---\nlicense: mit\n---\n# My model\n\nWritten by hand.\n")
    card = write_model_card(model, tmp_path, metrics={"accuracy": 0.7})
    assert card.text.strip() == "# My model\n\nWritten by hand."
    assert (card.data.license, card.data.library_name, card.data.pipeline_tag) == (
        "mit",
        "rnn-textclf",
        "text-classification",
    )
    assert "rnn-textclf" in card.data.tags
    # Metadata given now wins over the hand-written card's (it was dropped without a word), and another
    # library's pipeline_tag goes: the Hub showed a sentence-similarity widget for a text classifier.
    readme.write_text("---\nlicense: mit\npipeline_tag: sentence-similarity\n---\n# My model\n\nBy hand.\n")
    card = write_model_card(model, tmp_path, license="cc-by-4.0", language="de", datasets="acme/news")
    assert (card.data.license, card.data.language, card.data.datasets) == ("cc-by-4.0", "de", ["acme/news"])
    assert card.data.pipeline_tag == "text-classification" and card.text.strip() == "# My model\n\nBy hand."
    # "keep" leaves the file alone, "replace" always rewrites it.
    before = readme.read_text()
    write_model_card(model, tmp_path, if_exists="keep")
    assert readme.read_text() == before
    write_model_card(model, tmp_path, if_exists="replace")
    assert GENERATED_MARKER in readme.read_text()


def test_bad_card_arguments(tmp_path: Path):
    model = make_model()
    with pytest.raises(
        ValueError, match=r"Unknown model card field\(s\) 'accuracy'; the accepted fields are"
    ):
        write_model_card(model, tmp_path, accuracy=0.9)
    with pytest.raises(
        ValueError, match=r"`if_exists` must be 'update', 'replace' or 'keep', got 'overwrite'"
    ):
        write_model_card(model, tmp_path, if_exists="overwrite")
    with pytest.raises(ValueError, match="`vectors` must be a mapping"):
        write_model_card(model, tmp_path, vectors=3)
    with pytest.raises(TypeError, match="`model_card_info` must be a dict, got list"):
        model.push_to_hub("acme/never-created", model_card_info=["accuracy"])
    assert set(CARD_INFO_KEYS) >= {"license", "metrics", "training_data", "vectors", "citation"}
    # a README.md whose YAML header does not parse: the file and the way out (a bare yaml ParserError)
    (tmp_path / "README.md").write_text("---\nlicense: [mit\n---\n# Mine\n")
    with pytest.raises(
        ValueError, match=r"README\.md has metadata .* cannot be parsed: .*if_exists='replace'"
    ):
        write_model_card(model, tmp_path)
    assert write_model_card(model, tmp_path, if_exists="replace").data.library_name == "rnn-textclf"


def test_rnn_trainer_create_model_card_merges_trainer_information(tmp_path: Path):
    tokenizer = make_tokenizer()
    model = make_model(num_layers=1, bidirectional=False, pooling="last")
    texts = ["the stocks rally", "the team wins the final", "bank rates", "team wins"] * 2
    labels = [2, 1, 2, 1] * 2
    data = [{**tokenizer(t), "labels": y} for t, y in zip(texts, labels, strict=True)]
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=0.01,
        eval_strategy="steps",
        eval_steps=1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
    )
    trainer = RNNTrainer(
        model=model, args=args, train_dataset=data, eval_dataset=data, processing_class=tokenizer
    )
    trainer.train()
    trainer.save_model()
    trainer.create_model_card(license="apache-2.0", dataset="toy news", tags=["demo"])
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.library_name == "rnn-textclf"
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.license == "apache-2.0"
    assert {"demo", "generated_from_trainer", "rnn-textclf"} <= set(card.data.tags)
    text = card.text
    assert GENERATED_MARKER in text
    assert "| learning_rate | 0.01 |" in text
    assert "### Training results" in text and "Validation Loss" in text
    assert "| No log | 1.0000 | 2 |" in text  # one row per evaluation, as in transformers' card
    # the Hub's metrics metadata takes metric ids (transformers' card: [accuracy, f1]); a loss is none
    assert card.data.metrics is None
    from rnn_textclf.modelcard import _metric_ids

    assert _metric_ids({"Accuracy": 0.9, "Macro F1": 0.8, "F1": 0.7, "Loss": 0.3}) == [
        "accuracy",
        "f1",
        "macro_f1",
    ]
    assert text.count("| Loss | ") == 1  # the final evaluation, as a metric
    assert "Trained on toy news." in text
    assert "| Vocabulary size | 10 |" in text  # the trainer's processing_class was described
    # Saving the model again keeps that card (it was rewritten without the training information, the
    # results and the license; transformers' save_model never touches README.md)
    trainer.save_model()
    assert ModelCard.load(tmp_path / "out" / "README.md").content == card.content

    # An in-memory Dataset (Dataset.from_dict, as the docs build them) has no name: transformers' summary
    # says [None], which crashed the card (TypeError) or, with dataset=..., linked datasets/None.
    from datasets import Dataset

    trainer.train_dataset = trainer.eval_dataset = Dataset.from_list(data)
    for extra in ({}, {"dataset": "toy news"}):
        trainer.create_model_card(**extra)
        card = ModelCard.load(tmp_path / "out" / "README.md")
        assert "None" not in card.content and card.data.datasets is None, extra
    assert "Trained on toy news." in card.text


def test_a_new_card_over_a_generated_one_keeps_the_license_data_sets_and_language(tmp_path: Path):
    # (a re-push of a retrained model without these arguments relicensed the repo 'unknown')
    model = make_model()
    first = dict(license="apache-2.0", language="en", datasets=["fancyzhx/ag_news"], tags=["news"])
    write_model_card(model, tmp_path, metrics={"accuracy": 0.91}, **first)
    again = write_model_card(make_model(hidden_size=7), tmp_path)
    data = again.data
    assert (data.license, data.language, data.datasets) == ("apache-2.0", "en", ["fancyzhx/ag_news"])
    assert "news" in data.tags
    assert data.metrics is None and "0.9100" not in again.text  # the earlier weights' figures are gone
    assert "| Hidden size | 7 per direction |" in again.text  # the new model
    # what the new call gives wins
    relicensed = write_model_card(model, tmp_path, license="mit", datasets=["SetFit/sst2"])
    assert (relicensed.data.license, relicensed.data.datasets) == ("mit", ["SetFit/sst2"])
    assert ModelCard.load(tmp_path / "README.md").data.license == "mit"
    dropped = write_model_card(model, tmp_path, datasets=[], language="")  # an empty value drops one
    assert dropped.data.datasets is None and dropped.data.language is None and dropped.data.license == "mit"


@pytest.mark.parametrize("problem", ["multi_label_classification", "regression"])
def test_trainer_cards_index_rnn_textclf_metrics(tmp_path: Path, problem: str):
    # transformers' model-index keeps only its own metric names: multi-label and regression cards had no
    # results (single-label ones lost macro_f1), and an in-memory Dataset's split went up as 'None'
    from datasets import Dataset

    from rnn_textclf.metrics import make_compute_metrics

    tokenizer = make_tokenizer()
    texts = ["the stocks rally", "the team wins the final", "bank rates", "team wins"] * 4
    multi = problem == "multi_label_classification"
    labels = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]] * 4 if multi else [0.5, 1.5, 0.2, 1.1] * 4
    data = Dataset.from_list([{**tokenizer(t), "labels": y} for t, y in zip(texts, labels, strict=True)])
    model = make_model(num_labels=2 if multi else 1, problem_type=problem)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=8, report_to=[],
        save_strategy="no", use_cpu=True,
    )  # fmt: skip
    trainer = RNNTrainer(
        model=model, args=args, train_dataset=data, eval_dataset=data, processing_class=tokenizer,
        compute_metrics=make_compute_metrics(problem),
    )  # fmt: skip
    trainer.train()
    metrics = trainer.evaluate()
    trainer.create_model_card(dataset="toy news", dataset_tags="toy/news")
    card = ModelCard.load(tmp_path / "out" / "README.md")
    indexed = {r.metric_type: r.metric_value for r in card.data.eval_results}
    expected = {"exact_match", "micro_f1", "macro_f1"} if multi else {"mse"}
    assert set(indexed) == expected, indexed
    for name, value in indexed.items():
        assert value == pytest.approx(metrics[f"eval_{name}"]), name
    assert all(r.dataset_split is None for r in card.data.eval_results)  # (not the string 'None')


def test_every_label_is_in_the_card_and_a_backtick_keeps_its_code_span(tmp_path: Path):
    # beyond 50 labels, labels 20+ were nowhere in the card; a label with a backtick ended its code span
    names = ["x`y", *(f"class_{i:03d}" for i in range(59))]
    model = make_model(
        num_labels=60, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    )
    text = str(write_model_card(model, tmp_path))
    assert "`` x`y ``" in text
    assert "59: class_058" in text and "| Labels (id: name) |" in text
    one = make_model(
        num_labels=1, problem_type="regression", id2label={0: "LABEL_0"}, label2id={"LABEL_0": 0}
    )
    assert "-> 1 output |" in str(write_model_card(one, tmp_path / "one"))  # ("1 outputs")
