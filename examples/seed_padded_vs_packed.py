"""The lecture's experiment: an nn.RNN that reads the last *padded* step vs one that reads packed sequences.

Both variants are the same `RNNClassifier` (nn.RNN, tanh, 128 hidden, last-state pooling) with the same
initial weights, the same batches (random order, padded to the longest text of each batch, as the lecture's
DataLoader made them) and the same optimizer. The only difference is what the RNN reads:

* padded: `model(input_ids=...)` with no lengths, so the final state comes after all the pad tokens;
* packed: `model(input_ids=..., lengths=...)`, so `pack_padded_sequence` stops each text at its last token.

Data: AG News. The canonical train set (120k rows) is used with `--train-file train.csv --test-file test.csv`
(the CSVs of Zhang et al. 2015, no header: class 1-4, title, description) or `--hub` (datasets'
`fancyzhx/ag_news`). Without them it runs on a seeded 80/20 split of the AG News *test* CSV given with
`--test-file` (the train set is not always at hand). `--sst2 DIR` runs on SST-2 (sst2_train.csv,
sst2_test.csv with header label,text).

    python examples/seed_padded_vs_packed.py --test-file ../shared/data/ag_news_csv/test.csv
    python examples/seed_padded_vs_packed.py --sst2 ../shared/data/sst2 --max-train-samples 20000
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from rnn_textclf import PackedSequenceCollator, RNNClassifier, RNNClassifierConfig, RNNTokenizer
from rnn_textclf.data import stratified_split

logger = logging.getLogger("seed_padded_vs_packed")


def read_ag_news(path: str) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            labels.append(int(row[0]) - 1)
            texts.append(f"{row[1]} {row[2]}")  # torchtext's AG_NEWS text: title + " " + description
    return texts, labels


def read_label_text(path: str) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            labels.append(int(row["label"]))
            texts.append(row["text"])
    return texts, labels


def load_data(
    args: argparse.Namespace,
) -> tuple[str, tuple[list[str], list[int]], tuple[list[str], list[int]]]:
    if args.sst2:
        root = Path(args.sst2)
        return (
            "SST-2",
            read_label_text(str(root / "sst2_train.csv")),
            read_label_text(str(root / "sst2_test.csv")),
        )
    if args.hub:
        from datasets import load_dataset

        ds = load_dataset("fancyzhx/ag_news")
        return (
            "AG News (Hub)",
            (ds["train"]["text"], ds["train"]["label"]),
            (ds["test"]["text"], ds["test"]["label"]),
        )
    if args.train_file:
        return "AG News", read_ag_news(args.train_file), read_ag_news(args.test_file)
    texts, labels = read_ag_news(args.test_file)
    train_idx, test_idx = stratified_split(labels, (0.8, 0.2), args.seed)
    pick = lambda idx: ([texts[i] for i in idx], [labels[i] for i in idx])  # noqa: E731
    return "AG News test set, seeded 80/20 split", pick(train_idx), pick(test_idx)


def batches(encoded: list[list[int]], labels: list[int], batch_size: int, collator, shuffle: bool, seed: int):
    order = np.random.default_rng(seed).permutation(len(encoded)) if shuffle else np.arange(len(encoded))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield collator([{"input_ids": encoded[i], "label": labels[i]} for i in rows])


def accuracy(model, encoded, labels, collator, packed: bool, batch_size: int = 256) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in batches(encoded, labels, batch_size, collator, shuffle=False, seed=0):
            lengths = batch["lengths"] if packed else None
            logits = model(input_ids=batch["input_ids"], lengths=lengths).logits
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
    return correct / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-file")
    parser.add_argument(
        "--test-file",
        default=str(Path(__file__).parents[1] / ".." / "shared" / "data" / "ag_news_csv" / "test.csv"),
    )
    parser.add_argument("--hub", action="store_true", help="load fancyzhx/ag_news with datasets")
    parser.add_argument("--sst2", metavar="DIR", help="folder with sst2_train.csv and sst2_test.csv")
    parser.add_argument(
        "--vectors", default="glove.6B.50d", help="word vectors ('none' for random embeddings)"
    )
    parser.add_argument("--embedding-dim", type=int, default=100, help="embedding size without vectors")
    parser.add_argument("--min-freq", type=int, default=10)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--max-grad-norm", type=float, default=1.0, help="gradient clipping, as Trainer's default (0: off)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-train-samples", type=int)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(args.seed)

    name, (train_texts, train_labels), (test_texts, test_labels) = load_data(args)
    if args.max_train_samples:
        train_texts, train_labels = (
            train_texts[: args.max_train_samples],
            train_labels[: args.max_train_samples],
        )
    # The lecture's 95/5 split of the training data into train and validation.
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(train_texts))
    n_valid = len(order) // 20
    valid_idx, fit_idx = order[:n_valid], order[n_valid:]

    tokenizer = RNNTokenizer.train_from_iterator((train_texts[i] for i in fit_idx), min_freq=args.min_freq)
    encode = lambda texts: tokenizer(list(texts))["input_ids"]  # noqa: E731
    fit_ids, fit_y = encode(train_texts[i] for i in fit_idx), [train_labels[i] for i in fit_idx]
    valid_ids, valid_y = encode(train_texts[i] for i in valid_idx), [train_labels[i] for i in valid_idx]
    test_ids = encode(test_texts)
    collator = PackedSequenceCollator(tokenizer)
    num_labels = max(train_labels) + 1

    vectors = None
    embedding_dim = args.embedding_dim
    if args.vectors.lower() != "none":
        from rnn_textclf import load_word_vectors

        vectors = load_word_vectors(args.vectors, vocab=tokenizer.get_vocab())
        embedding_dim = vectors.dim
    config = RNNClassifierConfig(
        vocab_size=len(tokenizer),
        embedding_dim=embedding_dim,
        hidden_size=args.hidden_size,
        rnn_type="rnn",
        pooling="last",
        num_labels=num_labels,
        pad_token_id=tokenizer.pad_token_id,
    )
    base = RNNClassifier(config)
    if vectors is not None:
        logger.info(str(base.load_pretrained_embeddings(vectors, tokenizer, freeze=True)))
    initial = {k: v.clone() for k, v in base.state_dict().items()}

    logger.info(
        f"{name}: {len(fit_ids)} train / {len(valid_ids)} valid / {len(test_ids)} test rows, vocab {len(tokenizer)}"
    )
    results = {
        "data": name,
        "train_rows": len(fit_ids),
        "vocab_size": len(tokenizer),
        "args": vars(args),
        "variants": {},
    }
    for variant in ("padded", "packed"):
        packed = variant == "packed"
        model = RNNClassifier(config)
        model.load_state_dict(initial)
        model._apply_freeze()
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
        started = time.perf_counter()
        history = []
        for epoch in range(args.epochs):
            model.train()
            for batch in batches(
                fit_ids, fit_y, args.batch_size, collator, shuffle=True, seed=args.seed + epoch
            ):
                lengths = batch["lengths"] if packed else None
                loss = model(input_ids=batch["input_ids"], lengths=lengths, labels=batch["labels"]).loss
                optimizer.zero_grad()
                loss.backward()
                if args.max_grad_norm:
                    # A tanh RNN's gradients explode now and then; Trainer clips at 1.0 by default too.
                    torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
            history.append(accuracy(model, valid_ids, valid_y, collator, packed))
            logger.info(f"{variant:>6} epoch {epoch + 1}: valid accuracy {history[-1]:.3f}")
        results["variants"][variant] = {
            "valid_accuracy": history[-1],
            "valid_history": history,
            "test_accuracy": accuracy(model, test_ids, test_labels, collator, packed),
            "train_seconds": round(time.perf_counter() - started, 1),
        }

    print(
        f"\n{name}, nn.RNN {args.hidden_size}, batch {args.batch_size}, Adam lr {args.lr}, {args.epochs} epoch(s), "
        f"clip {args.max_grad_norm}, vectors: {args.vectors}"
    )
    print(f"{'variant':<8}{'valid acc':>10}{'test acc':>10}{'seconds':>9}")
    for variant, row in results["variants"].items():
        print(
            f"{variant:<8}{row['valid_accuracy']:>10.3f}{row['test_accuracy']:>10.3f}{row['train_seconds']:>9.1f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
