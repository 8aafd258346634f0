"""Non-English accuracy: ``rnn-textclf train`` on Chinese reviews (waimai_10k) vs a TF-IDF peer.

waimai_10k (../shared/data/waimai_10k, 11,987 Chinese food-delivery reviews, no spaces between words) is
split 90/10 by ``sklearn.model_selection.train_test_split(..., stratify=labels, random_state=0)``. One
invocation runs, on that split:

  default   ``rnn-textclf train`` with default options (the tokenizer is chosen from the data: character
            tokens for Chinese)
  best      ``rnn-textclf train --recipe bigru-glove --vectors none --embedding-dim 128 --tokenizer char``
            (the bigru-glove recipe with a learned 128-d character embedding instead of GloVe: BiGRU 128,
            mean+max pooling, adversarial training, word dropout), the best option documented in
            docs/how-to/non-english.md
  pretrained  ``best`` with ``--pretrain-epochs 20``: the embedding and BiGRU first pretrained as a
            language model on the training reviews (Dai & Le 2015), the best option documented now
  word      ``rnn-textclf train --tokenizer basic_english``: what the CLI did before it chose (whole clauses)
  tfidf     TF-IDF of character 1-3 grams + LogisticRegression (scikit-learn, C=10), the peer

The CLI runs use the CLI's own seeded 10% validation split of the training rows for early stopping; the
test split is only scored. ``--seeds 42,2,3`` runs each CLI method once per seed (``--seed``) and reports
each run and the mean. It prints one table; ``--json`` writes it.

    python benchmarks/non_english.py [--methods default,best,pretrained,word,tfidf] [--seeds 42]
        [--jobs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "waimai_10k" / "waimai_10k.csv"
BEST = "--recipe bigru-glove --vectors none --embedding-dim 128 --tokenizer char"
CLI_METHODS: dict[str, list[str]] = {
    "default": [],
    "best": BEST.split(),
    "pretrained": [*BEST.split(), "--pretrain-epochs", "20"],
    "word": ["--tokenizer", "basic_english"],
}
ALL_METHODS = ("default", "best", "pretrained", "word", "tfidf")


def split(folder: Path) -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(DATA)
    train, test = train_test_split(frame, test_size=0.1, stratify=frame["label"], random_state=0)
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return train, test


def run_cli(name: str, folder: Path, seed: int) -> dict[str, Any]:
    out = folder / f"out-{name}-{seed}"
    command = [
        sys.executable, "-m", "rnn_textclf.cli", "train", "--train-file", str(folder / "train.csv"),
        "--test-file", str(folder / "test.csv"), "--text-column", "review", "--label-column", "label",
        "--output-dir", str(out), "--overwrite", "--seed", str(seed), *CLI_METHODS[name],
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: rnn-textclf train failed:\n{proc.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    chosen = [line for line in proc.stderr.splitlines() if line.startswith(("Tokenizer:", "Vocab:"))]
    return {
        "method": name,
        "seed": seed,
        "command": "rnn-textclf train ... " + " ".join(CLI_METHODS[name]),
        "accuracy": metrics["test"]["accuracy"],
        "validation": metrics["best_validation"],
        "macro_f1": metrics["test"]["macro_f1"],
        "seconds": round(time.perf_counter() - started, 1),
        "parameters": metrics["model"]["parameters"],
        "vocab_size": metrics["model"]["vocab_size"],
        "tokenizer": " / ".join(chosen),
        "whole_clause_warning": "whole clauses" in proc.stderr,
    }


def run_tfidf(train: Any, test: Any) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    x_train = vectorizer.fit_transform(train["review"])
    clf = LogisticRegression(C=10, max_iter=2000).fit(x_train, train["label"])
    pred = clf.predict(vectorizer.transform(test["review"]))
    return {
        "method": "tfidf",
        "command": "TF-IDF char 1-3 grams + LogisticRegression(C=10)",
        "accuracy": float(accuracy_score(test["label"], pred)),
        "macro_f1": float(f1_score(test["label"], pred, average="macro")),
        "seconds": round(time.perf_counter() - started, 1),
        "parameters": int(clf.coef_.size + clf.intercept_.size),
        "vocab_size": len(vectorizer.vocabulary_),
        "tokenizer": "character 1-3 grams",
        "whole_clause_warning": False,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(ALL_METHODS))
    parser.add_argument("--jobs", type=int, default=2, help="CLI trainings run at once")
    parser.add_argument("--seeds", default="42", help="comma-separated --seed values for the CLI methods")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(ALL_METHODS))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; choose from {list(ALL_METHODS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        parser.error(f"--seeds: {args.seeds!r} is not a comma-separated list of integers, e.g. 42,2,3")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train, test = split(folder)
        majority = float(max(test["label"].mean(), 1 - test["label"].mean()))
        cli = [m for m in methods if m in CLI_METHODS]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            # Seed by seed, the methods of one seed side by side.
            futures = [(m, pool.submit(run_cli, m, folder, seed)) for seed in seeds for m in cli]
            rows = [run_tfidf(train, test)] if "tfidf" in methods else []
            rows += [future.result() for _, future in futures]
    rows.sort(key=lambda r: (methods.index(r["method"]), seeds.index(r["seed"]) if "seed" in r else 0))
    print(f"waimai_10k: {len(train):,} train / {len(test):,} test rows; majority class {majority:.4f}")
    print(
        f"{'method':<10} {'seed':>5} {'accuracy':>9} {'macro F1':>9} {'seconds':>8} {'params':>10}  command"
    )
    for r in rows:
        print(
            f"{r['method']:<10} {r.get('seed', '-'):>5} {r['accuracy']:>9.4f} {r['macro_f1']:>9.4f} "
            f"{r['seconds']:>8.1f} {r['parameters']:>10,}  {r['command']}"
        )
    means = {}
    for method in cli:
        runs = [r["accuracy"] for r in rows if r["method"] == method]
        means[method] = sum(runs) / len(runs)
        if len(runs) > 1:
            print(f"{method:<10} {'mean':>5} {means[method]:>9.4f} (over seeds {args.seeds})")
    if args.json:
        result = {
            "dataset": "waimai_10k",
            "split": "train_test_split(test_size=0.1, stratify=label, random_state=0)",
            "train_rows": len(train),
            "test_rows": len(test),
            "majority": majority,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), OMP_NUM_THREADS=1 per run",
            "jobs": args.jobs,
            "seeds": seeds,
            "rows": rows,
            "mean_accuracy": means,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
