"""Accuracy benchmark: rnn-textclf recipes vs fastText, TF-IDF + logistic regression and the lecture's RNN.

One invocation trains and tests every selected method on every selected data set of ../shared/data, on
the same splits, and prints one table (test accuracy as mean and spread over seeds, macro-F1, train wall
time, parameters, model size); ``--json`` and ``--markdown`` write it to files.

Data sets (split seed 0 for every carved split, independent of the model seeds):

  sst2  SST-2 phrase-level train (67,349) -> the labelled sentence-level test set (1,821); model
        selection on GLUE's sentence-level dev set (872), as in the SST literature
  trec  TREC-6 train (5,452) -> test (500)
  ag    AG News canonical test CSV (7,600), seeded stratified 6,080 / 1,520 split (the 120k train set is
        not on these machines; text = title + " " + description)
  rt    rt-polarity (10,662), seeded stratified 90/10
  sms   SMS Spam Collection (5,574), seeded stratified 80/20

Methods:

  ours              the rnn-textclf recipe(s) (``--recipes``, default bilstm-glove, and bilstm-glove-large
                    for SST-2's 67k phrases); early stopping and
                    model selection on a seeded 10% validation split of the training data (on SST-2:
                    the dev set)
  lecture           the lecture's recipe (recipe lecture-rnn: frozen GloVe, nn.RNN 128, Adam 1e-4, batch 32,
                    5 epochs)
  fasttext-unigram  fastText supervised (fasttext-numpy2-wheel), wordNgrams=1
  fasttext-bigram   the same with wordNgrams=2 (as Joulin et al. 2016)
  tfidf             TF-IDF of word 1-2 grams + LogisticRegression (scikit-learn)

Peers are tuned as fairly as the recipe: fastText's learning rate and epochs and the logistic
regression's C are chosen on the same 10% validation split of the training data, then the chosen setting
is retrained on all training texts (on SST-2 every method trains on all of train and selects on dev). fastText 0.9.2 (the wheel) leaves the rows of words without a
pretrained vector uninitialised, so every training word gets a row in a ``pretrainedVectors`` file: GloVe
6B 50d where it has the word, uniform in +-1/dim otherwise. fastText runs on one thread with 5 seeds.
Text for fastText and TF-IDF is tokenized by the same basic_english rules as the RNN tokenizer.

    python benchmarks/accuracy.py [--datasets sms,trec] [--methods ours,tfidf] [--seeds 1,2,3]
        [--recipes bilstm-glove,sst2=bilstm-glove-large] [--jobs 2] [--json results.json]
        [--markdown results.md]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

from rnn_textclf import basic_english_tokenize, load_word_vectors
from rnn_textclf.data import stratified_split
from rnn_textclf.metrics import classification_metrics
from rnn_textclf.recipes import get_recipe, predict, train_recipe

logger = logging.getLogger("benchmarks.accuracy")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SPLIT_SEED = 0
ALL_DATASETS = ("ag", "sst2", "trec", "sms", "rt")
#: The recipe per data set: bilstm-glove, and for SST-2's 67k phrases its large-data variant.
DEFAULT_RECIPES = "bilstm-glove,sst2=bilstm-glove-large"
ALL_METHODS = ("ours", "fasttext-unigram", "fasttext-bigram", "tfidf", "lecture")
FASTTEXT_SEEDS = 5
#: Published numbers for the docs (accuracy, %).
PUBLISHED = {
    "sst2": {"Bidirectional LSTM, 300d (Tai et al. 2015)": 87.5, "CNN-multichannel (Kim 2014)": 88.1},
    "ag (full 120k train)": {
        "fastText bigram (Joulin et al. 2016)": 92.5,
        "LSTM (Zhang et al. 2015)": 86.1,
        "Disconnected RNN (Wang 2018)": 94.5,
    },
}


@dataclass
class DataSplit:
    name: str
    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray
    label_names: list[str]
    #: A separate validation set for model selection (SST-2's dev set); None: carve 10% from train.
    val_texts: list[str] | None = None
    val_labels: np.ndarray | None = None


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the benchmark needs ../shared/data beside the repo")
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _encode(values: list[str], names: list[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64)


def _carve(name: str, texts: list[str], labels: np.ndarray, test_share: float, names: list[str]) -> DataSplit:
    train_idx, test_idx = stratified_split(labels, (1 - test_share, test_share), SPLIT_SEED)
    return DataSplit(
        name,
        [texts[i] for i in train_idx],
        labels[train_idx],
        [texts[i] for i in test_idx],
        labels[test_idx],
        names,
    )


def load_sst2() -> DataSplit:
    train = _read_csv(DATA / "sst2" / "sst2_train.csv")
    dev = _read_csv(DATA / "sst2" / "sst2_dev.csv")
    test = _read_csv(DATA / "sst2" / "sst2_test.csv")
    return DataSplit(
        "sst2",
        [r["text"] for r in train],
        np.array([int(r["label"]) for r in train]),
        [r["text"] for r in test],
        np.array([int(r["label"]) for r in test]),
        ["negative", "positive"],
        [r["text"] for r in dev],
        np.array([int(r["label"]) for r in dev]),
    )


def load_trec() -> DataSplit:
    train = _read_csv(DATA / "trec" / "trec_train.csv")
    test = _read_csv(DATA / "trec" / "trec_test.csv")
    names = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    return DataSplit(
        "trec",
        [r["text"] for r in train],
        _encode([r["label"] for r in train], names),
        [r["text"] for r in test],
        _encode([r["label"] for r in test], names),
        names,
    )


def load_ag() -> DataSplit:
    path = DATA / "ag_news_csv" / "test.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the benchmark needs ../shared/data beside the repo")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    texts = [f"{title} {description}" for _, title, description in rows]
    labels = np.array([int(r[0]) - 1 for r in rows])
    return _carve("ag", texts, labels, 0.2, ["World", "Sports", "Business", "Sci/Tech"])


def load_rt() -> DataSplit:
    rows = _read_csv(DATA / "rt_polarity" / "rt_polarity.csv")
    labels = np.array([int(r["label"]) for r in rows])
    return _carve("rt", [r["text"] for r in rows], labels, 0.1, ["negative", "positive"])


def load_sms() -> DataSplit:
    rows = _read_csv(DATA / "sms_spam" / "sms_spam.csv")
    names = ["ham", "spam"]
    return _carve("sms", [r["text"] for r in rows], _encode([r["label"] for r in rows], names), 0.2, names)


LOADERS: dict[str, Callable[[], DataSplit]] = {
    "sst2": load_sst2,
    "trec": load_trec,
    "ag": load_ag,
    "rt": load_rt,
    "sms": load_sms,
}


@dataclass
class RunResult:
    accuracy: float
    macro_f1: float
    positive_f1: float | None
    train_seconds: float
    parameters: int
    size_bytes: int
    extra: dict[str, Any]
    seed: int = 0


def _scores(split: DataSplit, preds: np.ndarray) -> tuple[float, float, float | None]:
    m = classification_metrics(split.test_labels, preds, split.label_names)
    return m["accuracy"], m["macro_f1"], m.get("f1") if len(split.label_names) == 2 else None


def _selection_sets(split: DataSplit) -> tuple[np.ndarray | None, list[str], np.ndarray]:
    """(training rows to fit on, validation texts, validation labels) for model selection.

    The split's own validation set where it has one (SST-2's dev set): the models fitted for selection
    see all training texts (rows ``None``) and the best one is kept. Otherwise the same carve as
    train_recipe's default (share 0.1, seeded by the run seed there; 0 here): the models fit on the
    other 90% and the chosen setting is retrained on all texts.
    """
    if split.val_texts is not None and split.val_labels is not None:
        return None, split.val_texts, split.val_labels
    keep, held = stratified_split(split.train_labels, (0.9, 0.1), SPLIT_SEED)
    return keep, [split.train_texts[i] for i in held], split.train_labels[held]


def _result(
    split: DataSplit, preds: np.ndarray, seconds: float, params: int, size: int, extra: dict[str, Any]
) -> RunResult:
    """Scores test predictions and packs them with the run's cost figures."""
    acc, f1, pos = _scores(split, preds)
    return RunResult(acc, f1, pos, seconds, params, size, extra)


# ---------------------------------------------------------------------------------------------- neural
_VECTORS: dict[str, Any] = {}


def run_recipe(split: DataSplit, recipe_name: str, seed: int) -> RunResult:
    recipe = get_recipe(recipe_name)
    vectors = None
    if recipe.vectors is not None:
        if recipe.vectors not in _VECTORS:
            _VECTORS[recipe.vectors] = load_word_vectors(recipe.vectors)
        vectors = _VECTORS[recipe.vectors]
    result = train_recipe(
        recipe,
        split.train_texts,
        split.train_labels,
        label_names=split.label_names,
        validation_texts=split.val_texts,
        validation_labels=split.val_labels,
        seed=seed,
        vectors=vectors,
    )
    preds = predict(result.model, result.tokenizer, split.test_texts, max_length=recipe.max_length)
    params = sum(p.numel() for p in result.model.parameters())
    size = sum(t.numel() * t.element_size() for t in result.model.state_dict().values())
    return _result(
        split,
        preds,
        result.train_seconds,
        params,
        size,
        {
            "best_epoch": result.best_epoch,
            "validation_accuracy": result.best_validation_accuracy,
            "epochs_run": len(result.history),
            "vocab_size": len(result.tokenizer),
        },
    )


# ---------------------------------------------------------------------------------------------- fastText
def _ft_lines(texts: list[str], labels: np.ndarray | None) -> list[str]:
    out = []
    for i, text in enumerate(texts):
        tokens = " ".join(basic_english_tokenize(text))
        out.append(f"__label__{int(labels[i])} {tokens}" if labels is not None else tokens)
    return out


def _write_vec(path: Path, words: set[str], dim: int, seed: int) -> None:
    """Every training word gets a row (fastText 0.9.2 leaves words without one uninitialised)."""
    glove = _VECTORS.get("glove.6B.50d")
    if glove is None:
        glove = _VECTORS["glove.6B.50d"] = load_word_vectors("glove.6B.50d")
    rng = np.random.default_rng(seed)
    index = glove.index
    with path.open("w", encoding="utf-8") as handle:
        handle.write(f"{len(words)} {dim}\n")
        for word in sorted(words):
            row = glove.vectors[index[word]] if word in index else rng.uniform(-1 / dim, 1 / dim, dim)
            handle.write(word + " " + " ".join(f"{v:.5f}" for v in row) + "\n")


def _ft_train(
    workdir: Path, lines: list[str], vec: Path, ngrams: int, lr: float, epoch: int, seed: int
) -> Any:
    import fasttext

    train_file = workdir / "train.txt"
    # fastText's SGD reads the file in order: shuffle (rt-polarity's file is sorted by label, and
    # fastText then learns the last class it saw).
    order = np.random.default_rng(seed).permutation(len(lines))
    train_file.write_text("\n".join(lines[i] for i in order) + "\n", encoding="utf-8")
    return fasttext.train_supervised(
        input=str(train_file),
        dim=50,
        pretrainedVectors=str(vec),
        wordNgrams=ngrams,
        lr=lr,
        epoch=epoch,
        minCount=1,
        thread=1,
        seed=seed,
        verbose=0,
    )


def _ft_predict(model: Any, lines: list[str]) -> np.ndarray:
    labels, _ = model.predict(lines, k=1)
    return np.array([int(lab[0].removeprefix("__label__")) for lab in labels])


def run_fasttext(split: DataSplit, ngrams: int, seed: int) -> RunResult:
    started = time.perf_counter()
    lines = _ft_lines(split.train_texts, split.train_labels)
    # fastText splits on whitespace and adds "</s>" (end of line) to every dictionary: it needs a row too.
    words = {w for line in lines for w in line.split()[1:]} | {"</s>"}
    with tempfile.TemporaryDirectory(prefix="bench-fasttext-") as tmp:
        workdir = Path(tmp)
        vec = workdir / "vectors.vec"
        _write_vec(vec, words, 50, seed)
        # Choose lr and epochs on a validation split of the training texts (or the data set's own
        # validation set), then retrain on all of them.
        keep, val_texts, val_labels = _selection_sets(split)
        fit_lines = lines if keep is None else [lines[i] for i in keep]
        val_lines = _ft_lines(val_texts, None)
        best: tuple[float, float, int] = (-1.0, 0.1, 5)
        best_model = None
        for lr in (0.1, 0.5):
            for epoch in (5, 25):
                model = _ft_train(workdir, fit_lines, vec, ngrams, lr, epoch, seed)
                acc = float((_ft_predict(model, val_lines) == val_labels).mean())
                if acc > best[0]:
                    best, best_model = (acc, lr, epoch), model
        model = best_model if keep is None else _ft_train(workdir, lines, vec, ngrams, best[1], best[2], seed)
        uncovered = set(model.get_words()) - words
        if uncovered:
            raise RuntimeError(
                f"fastText words without a pretrained row (the 0.9.2 wheel leaves them uninitialised): "
                f"{sorted(uncovered)[:10]}"
            )
        seconds = time.perf_counter() - started
        preds = _ft_predict(model, _ft_lines(split.test_texts, None))
        rows, dim = model.get_input_matrix().shape
        params = rows * dim + model.get_output_matrix().size
        model_path = workdir / "model.bin"
        model.save_model(str(model_path))
        size = model_path.stat().st_size
    return _result(
        split,
        preds,
        seconds,
        int(params),
        size,
        {"lr": best[1], "epoch": best[2], "validation_accuracy": best[0]},
    )


# ---------------------------------------------------------------------------------------------- TF-IDF
def run_tfidf(split: DataSplit, seed: int) -> RunResult:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def build(c: float) -> Any:
        return make_pipeline(
            TfidfVectorizer(
                tokenizer=basic_english_tokenize,
                lowercase=False,
                token_pattern=None,
                ngram_range=(1, 2),
                sublinear_tf=True,
                min_df=1,
            ),
            LogisticRegression(C=c, max_iter=2000, random_state=seed),
        )

    started = time.perf_counter()
    keep, val_texts, val_labels = _selection_sets(split)
    fit_texts = split.train_texts if keep is None else [split.train_texts[i] for i in keep]
    fit_labels = split.train_labels if keep is None else split.train_labels[keep]
    best: tuple[float, float, Any] = (-1.0, 1.0, None)
    for c in (1.0, 10.0, 100.0):
        pipe = build(c).fit(fit_texts, fit_labels)
        acc = float((pipe.predict(val_texts) == val_labels).mean())
        if acc > best[0]:
            best = (acc, c, pipe)
    pipe = best[2] if keep is None else build(best[1]).fit(split.train_texts, split.train_labels)
    seconds = time.perf_counter() - started
    preds = pipe.predict(split.test_texts)
    lr = pipe[-1]
    params = int(lr.coef_.size + lr.intercept_.size)
    size = len(pickle.dumps(pipe))
    return _result(
        split,
        preds,
        seconds,
        params,
        size,
        {"C": best[1], "validation_accuracy": best[0], "features": len(pipe[0].vocabulary_)},
    )


# ---------------------------------------------------------------------------------------------- table
def _summarise(runs: list[RunResult]) -> dict[str, Any]:
    accs = [r.accuracy for r in runs]
    pos = [r.positive_f1 for r in runs if r.positive_f1 is not None]
    return {
        "runs": len(runs),
        "accuracy_mean": statistics.fmean(accs),
        "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "accuracy_min": min(accs),
        "accuracy_max": max(accs),
        "macro_f1_mean": statistics.fmean(r.macro_f1 for r in runs),
        "positive_f1_mean": statistics.fmean(pos) if pos else None,
        "train_seconds_mean": statistics.fmean(r.train_seconds for r in runs),
        "parameters": runs[0].parameters,
        "size_bytes": runs[0].size_bytes,
        "per_run": [r.__dict__ for r in runs],
    }


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def markdown_table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The results table, then one line per data set: the best recipe against the best peer."""
    lines = [
        "| data set | method | test accuracy % (mean ± std, runs) | min-max | macro-F1 % | positive-class F1 % "
        "| train time (mean) | parameters | model size |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, methods in results.items():
        for method, s in methods.items():
            if "error" in s:
                lines.append(f"| {dataset} | {method} | failed: {s['error']} | | | | | | |")
                continue
            positive = s.get("positive_f1_mean")
            lines.append(
                f"| {dataset} | {method} | {100 * s['accuracy_mean']:.2f} ± {100 * s['accuracy_std']:.2f} ({s['runs']}) "
                f"| {100 * s['accuracy_min']:.1f}-{100 * s['accuracy_max']:.1f} | {100 * s['macro_f1_mean']:.2f} "
                f"| {'' if positive is None else f'{100 * positive:.1f}'} "
                f"| {s['train_seconds_mean']:.1f} s | {_count(s['parameters'])} | {_size(s['size_bytes'])} |"
            )
    summary = []
    for dataset, methods in results.items():
        ok = {m: s for m, s in methods.items() if "error" not in s}
        ours = {m: s for m, s in ok.items() if m.startswith("ours")}
        peers = {m: s for m, s in ok.items() if m.startswith(("fasttext", "tfidf"))}
        if not ours or not peers:
            continue
        best_ours = max(ours, key=lambda m: ours[m]["accuracy_mean"])
        best_peer = max(peers, key=lambda m: peers[m]["accuracy_mean"])
        a, b = ours[best_ours]["accuracy_mean"], peers[best_peer]["accuracy_mean"]
        summary.append(
            f"- {dataset}: {best_ours} {100 * a:.2f} vs best peer {best_peer} {100 * b:.2f} "
            f"({100 * (a - b):+.2f} points; {'ahead' if a > b else 'not ahead'})"
        )
    return "\n".join(lines + (["", *summary] if summary else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets", default=",".join(ALL_DATASETS), help=f"comma list of {', '.join(ALL_DATASETS)}"
    )
    parser.add_argument(
        "--methods",
        default=",".join(ALL_METHODS),
        help=f"comma list of {', '.join(ALL_METHODS)} (fasttext = both fastText variants)",
    )
    parser.add_argument("--seeds", default="1,2,3", help="model seeds of the neural methods (comma list)")
    parser.add_argument(
        "--recipes",
        default=DEFAULT_RECIPES,
        help="recipe names or files for 'ours' (comma list); DATASET=RECIPE entries replace the plain "
        f"ones for that data set (default {DEFAULT_RECIPES!r})",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument(
        "--table-from",
        type=Path,
        help="print (and --markdown) the table of an earlier --json file; no training",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs in parallel, one process each (default 1; 2 on a 2-core machine halves the wall time, "
        "each run on its own core)",
    )
    args = parser.parse_args(argv)
    if args.table_from is not None:  # no training: the table of an earlier run's JSON
        table = markdown_table(json.loads(args.table_from.read_text(encoding="utf-8"))["results"])
        print(table)
        if args.markdown:
            args.markdown.write_text(table + "\n", encoding="utf-8")
        return 0
    if args.jobs < 1 or args.threads < 1:
        parser.error(f"--jobs and --threads must be >= 1, got --jobs {args.jobs} --threads {args.threads}")

    _init_worker(args.threads)

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    bad = sorted(set(datasets) - set(ALL_DATASETS))
    if bad:
        parser.error(f"--datasets {args.datasets!r}: unknown {bad}; allowed: {', '.join(ALL_DATASETS)}")
    methods: list[str] = []
    for m in (m.strip() for m in args.methods.split(",") if m.strip()):
        methods += ["fasttext-unigram", "fasttext-bigram"] if m == "fasttext" else [m]
    bad = sorted(set(methods) - set(ALL_METHODS))
    if bad:
        parser.error(
            f"--methods {args.methods!r}: unknown {bad}; allowed: {', '.join(ALL_METHODS)}, fasttext"
        )
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r} must be a comma list of integers")
    recipes: list[str] = []
    per_dataset: dict[str, list[str]] = {}
    for entry in (r.strip() for r in args.recipes.split(",") if r.strip()):
        dataset, sep, name = entry.partition("=")
        if sep and dataset in ALL_DATASETS:
            per_dataset.setdefault(dataset, []).append(name)
        else:
            recipes.append(entry)
    for r in [*recipes, *(n for names in per_dataset.values() for n in names)]:
        get_recipe(r)  # fails early on an unknown name
    # The plan: (dataset, row label, method, recipe, seeds), in table order.
    plan: list[tuple[str, str, str, str | None, list[int]]] = []
    for dataset in datasets:
        for m in methods:
            if m == "ours":
                for r in per_dataset.get(dataset, recipes):
                    plan.append((dataset, f"ours: {Path(r).stem}", "ours", r, seeds))
            elif m == "lecture":
                plan.append((dataset, "lecture (nn.RNN)", "ours", "lecture-rnn", seeds))
            elif m.startswith("fasttext"):
                plan.append((dataset, m, m, None, list(range(1, FASTTEXT_SEEDS + 1))))
            else:
                plan.append((dataset, "tfidf+LR", m, None, [0]))
    tasks = [(dataset, label, method, recipe, s) for dataset, label, method, recipe, ss in plan for s in ss]
    runs: dict[tuple[str, str], list[RunResult | BaseException]] = {(d, lab): [] for d, lab, *_ in plan}

    def record(task: tuple[str, str, str, str | None, int], outcome: RunResult | BaseException) -> None:
        dataset, label, _, _, seed = task
        if isinstance(outcome, BaseException):
            logger.error(
                "%s / %s / seed %d failed: %s: %s", dataset, label, seed, type(outcome).__name__, outcome
            )
        else:
            logger.info(
                "%s / %s / seed %d: accuracy %.4f in %.1fs",
                dataset,
                label,
                seed,
                outcome.accuracy,
                outcome.train_seconds,
            )
        runs[(dataset, label)].append(outcome)
        if args.json:  # written as it goes, so a partial run keeps what finished
            _write_json(args.json, _collect(plan, runs), argv)

    if args.jobs == 1:
        for task in tasks:
            try:
                outcome: RunResult | BaseException = _run_task(*task)
            except Exception as err:  # one failing method must not lose the others' results
                logger.exception("%s / %s failed", task[0], task[1])
                outcome = err
            record(task, outcome)
    else:
        # One process per core, one torch thread each; the neural runs (the longest) are started first.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        order = sorted(tasks, key=lambda t: t[2] != "ours")
        with ProcessPoolExecutor(
            args.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(args.threads,),
        ) as pool:
            futures = {pool.submit(_run_task, *task): task for task in order}
            for future in as_completed(futures):
                error = future.exception()
                record(futures[future], error if error is not None else future.result())
    results = _collect(plan, runs)

    table = markdown_table(results)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    if args.json:
        _write_json(args.json, results, argv)
    return 0


_SPLITS: dict[str, DataSplit] = {}


def _init_worker(threads: int) -> None:
    """Logging and torch threads, for the main process and each --jobs worker alike."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    torch.set_num_threads(threads)


def _run_task(dataset: str, label: str, method: str, recipe: str | None, seed: int) -> RunResult:
    """One training + test run (in this process or a worker); splits are loaded once per process."""
    if dataset not in _SPLITS:
        _SPLITS[dataset] = LOADERS[dataset]()
    split = _SPLITS[dataset]
    if method == "ours":
        assert recipe is not None
        result = run_recipe(split, recipe, seed)
    elif method.startswith("fasttext"):
        result = run_fasttext(split, 2 if method.endswith("bigram") else 1, seed)
    else:
        result = run_tfidf(split, seed)
    result.seed = seed
    return result


def _collect(
    plan: list[tuple[str, str, str, str | None, list[int]]],
    runs: dict[tuple[str, str], list[RunResult | BaseException]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """The results table so far, in plan order; a row with a failed run reports the failure."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for dataset, label, *_ in plan:
        outcomes = runs[(dataset, label)]
        if not outcomes:
            continue
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        results.setdefault(dataset, {})[label] = (
            {"error": f"{type(failed[0]).__name__}: {failed[0]}"}
            if failed
            else _summarise(sorted(outcomes, key=lambda r: r.seed))  # type: ignore[union-attr]
        )
    return results


def _write_json(path: Path, results: dict[str, Any], argv: list[str] | None) -> None:
    payload = {
        "command": "python benchmarks/accuracy.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "split_seed": SPLIT_SEED,
        "published_accuracy_percent": PUBLISHED,
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
