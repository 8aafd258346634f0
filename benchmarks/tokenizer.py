"""Benchmark: RNNTokenizer vs the lecture's Python pipeline (issue 3).

Vocabulary building + encoding of ~87,500 distinct real texts (AG News test title + " " + description,
SST-2 train, rt-polarity, TREC train; deduplicated), side by side in one process:

* **python**: torchtext's ``basic_english`` in Python (12 ``re.sub`` + ``split``), ``collections.Counter``,
  torchtext's vocabulary order, per-token ``dict.get`` lookups (the lecture's pipeline);
* **rnn_textclf**: ``RNNTokenizer.train_from_iterator(texts)`` (counting in the `tokenizers` Rust
  trainer) then the public batch call ``tok(texts)`` (what ``datasets.map(batched=True)`` calls), with
  each ``call_path``: ``auto`` (the default), ``python``, ``rust`` and ``standard`` (the stock
  `transformers` path, for reference). The vocabulary is built once per repetition and shared.

Ids are checked identical to the Python pipeline's. Machines are shared, so absolute times are noisy:
the methods run ``--repeat`` times, interleaved; tables show medians and ratios of medians (>1: faster
than the Python pipeline), wall-clock and CPU time (all threads). The one-time Unicode table probe
(first vocabulary build in a process) is reported separately. ``--threads`` runs it all again in
subprocesses with ``RAYON_NUM_THREADS`` = 1 and 2 and with ``TOKENIZERS_PARALLELISM=false``.

``--models`` (or ``--models-only``) also times ``tok(texts)`` per text for every tokenizer model (word,
char, bpe, unigram, wordpiece) on the English texts and on Chinese reviews (waimai_10k), side by side.

``--floor`` times only what one pass of a subword model over the English texts cannot avoid (its cached
lookups, and the Rust model's encoding of each distinct piece once) against `basic_english`'s pass, and the
two speed bounds that follow (`run_floor`).

``--baseline SRC`` (with ``--models-only``) first runs the same model timings in a subprocess with other
rnn_textclf sources (e.g. ``git archive main src | tar -x -C /tmp/main``, then ``/tmp/main/src``).

    python benchmarks/tokenizer.py [--data ../shared/data] [--repeat 3] [--threads] [--models]
        [--models-only] [--baseline SRC] [--floor] [--json results.json]
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_texts(data: Path) -> list[str]:
    texts: list[str] = []
    with open(data / "ag_news_csv" / "test.csv", newline="", encoding="utf-8") as f:
        texts += [f"{title} {description}" for _, title, description in csv.reader(f)]
    for name in ("sst2/sst2_train.csv", "rt_polarity/rt_polarity.csv", "trec/trec_train.csv"):
        with open(data / name, newline="", encoding="utf-8") as f:
            texts += [row["text"] for row in csv.DictReader(f)]
    return list(dict.fromkeys(texts))


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


def python_pipeline(texts: list[str], basic_english) -> tuple[tuple, tuple, list[list[int]]]:
    clock = Clock()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(basic_english(text))
    ordered = sorted(counts.items(), key=lambda item: item[0])
    ordered.sort(key=lambda item: item[1], reverse=True)
    vocab = {token: i for i, token in enumerate(["<pad>", "<unk>"] + [w for w, _ in ordered])}
    built = clock.lap()
    unk = vocab["<unk>"]
    ids = [[vocab.get(token, unk) for token in basic_english(text)] for text in texts]
    return built, clock.lap(), ids


CALL_PATHS = ("auto", "python", "rust", "standard")


def run(data: Path, repeat: int) -> dict:
    from rnn_textclf.tokenization import (
        RNNTokenizer,
        _drop_fast_path,
        _pipeline,
        _rust_threads,
        basic_english_tokenize,
    )

    texts = load_texts(data)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    clock = Clock()
    _pipeline("basic_english")  # one-time Unicode probe, cached per process
    setup = clock.lap()

    names = ["python", *(f"rnn_textclf {p}" for p in CALL_PATHS)]
    laps: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    identical = True
    for _ in range(repeat):
        gc.collect()
        vocab_t, encode_t, reference = python_pipeline(texts, basic_english_tokenize)
        laps["python"].append(
            {"vocab": vocab_t[0], "encode": encode_t[0], "vocab_cpu": vocab_t[1], "encode_cpu": encode_t[1]}
        )
        gc.collect()
        clock = Clock()
        tok = RNNTokenizer.train_from_iterator(texts)
        vocab_t = clock.lap()
        for path in CALL_PATHS:
            _drop_fast_path(tok)  # each path pays its own setup
            tok.call_path = path
            gc.collect()
            clock = Clock()
            ids = tok(texts)["input_ids"]
            encode_t = clock.lap()
            identical &= ids == reference
            laps[f"rnn_textclf {path}"].append(
                {
                    "vocab": vocab_t[0],
                    "encode": encode_t[0],
                    "vocab_cpu": vocab_t[1],
                    "encode_cpu": encode_t[1],
                }
            )
            del ids
        del reference
    medians = {}
    for name, runs in laps.items():
        m = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        m["total"] = statistics.median(r["vocab"] + r["encode"] for r in runs)
        m["total_cpu"] = statistics.median(r["vocab_cpu"] + r["encode_cpu"] for r in runs)
        medians[name] = m
    base = medians["python"]
    for m in medians.values():
        for key in ("vocab", "encode", "total", "total_cpu"):
            m[f"{key}_speedup"] = base[key] / m[key]
    return {
        "texts": len(texts),
        "tokens": sum(len(basic_english_tokenize(t)) for t in texts),
        "repeat": repeat,
        "setup_once_s": setup[0],
        "identical_ids": identical,
        "median": medians,
        "runs": laps,
        "env": {
            "RAYON_NUM_THREADS": os.environ.get("RAYON_NUM_THREADS"),
            "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM"),
            "rust_threads": _rust_threads(),
            "cpus": os.cpu_count(),
            "load_average_1min": [load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else None],
        },
    }


def print_table(result: dict, title: str) -> None:
    env = result["env"]
    print(
        f"\n{title} (Rust threads: {env['rust_threads']}): {result['texts']:,} texts, {result['tokens']:,} tokens, "
        f"median of {result['repeat']}; wall seconds, ratio = python / this"
    )
    header = (
        "pipeline",
        "vocab s",
        "encode s",
        "total s",
        "vocab x",
        "encode x",
        "total x",
        "CPU s",
        "CPU x",
    )
    print(f"{header[0]:<22}" + "".join(f"{h:>10}" for h in header[1:]))
    for name, m in result["median"].items():
        print(
            f"{name:<22}{m['vocab']:>10.3f}{m['encode']:>10.3f}{m['total']:>10.3f}"
            f"{m['vocab_speedup']:>9.2f}x{m['encode_speedup']:>9.2f}x{m['total_speedup']:>9.2f}x"
            f"{m['total_cpu']:>10.3f}{m['total_cpu_speedup']:>9.2f}x"
        )
    setup = result["setup_once_s"]
    auto = result["median"]["rnn_textclf auto"]["total"]
    python_total = result["median"]["python"]["total"]
    print(
        f"one-time Unicode table probe (first build in a process, not in the table): {setup:.3f} s; "
        f"rnn_textclf auto with it added: {auto + setup:.3f} s, {python_total / (auto + setup):.2f}x"
    )
    print(f"identical ids (every path, every repetition): {result['identical_ids']}")
    before, after = env["load_average_1min"]
    if before is not None:
        print(f"machine load average (1 min) before/after: {before:.2f} / {after:.2f} on {env['cpus']} CPUs")


MODELS = ("word", "char", "bpe", "unigram", "wordpiece")


def load_waimai(data: Path) -> list[str]:
    with open(data / "waimai_10k" / "waimai_10k.csv", newline="", encoding="utf-8") as f:
        return [row["review"] for row in csv.DictReader(f)]


def single_pass(tok, texts: list[str], batch_size: int = 1000, *, as_loaded: bool = True) -> float:
    """Seconds to encode ``texts`` once, ``batch_size`` at a time (as ``datasets.map(batched=True)``
    calls a tokenizer), from a tokenizer as loaded: its fast-path state (word lookup table, subword
    pieces' cache) is dropped first and rebuilt inside the timing (``as_loaded=False``: kept, so every
    piece met before is cached)."""
    from rnn_textclf.tokenization import _drop_fast_path

    if as_loaded:
        _drop_fast_path(tok)
    gc.collect()
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        tok(texts[i : i + batch_size])
    return time.perf_counter() - start


def run_models(data: Path, repeat: int) -> dict:
    """Per-text encoding time of ``tok(texts)`` for every tokenizer model, side by side (interleaved).

    English: the deduplicated English texts above; Chinese: waimai_10k's 11,987 reviews. Each model's
    vocabulary is trained on the texts it encodes (word: basic_english; subword: 8,000 tokens). After a
    warm-up call on 1,000 texts (which builds the fast path's tables), the *first* call on all texts is
    timed on its own: subword and character models then meet most pieces (words) for the first time and
    ask the Rust model for their ids; the ``repeat`` calls after it find them cached (``us_per_text``,
    the median). Word tokenizers have no such cache (their vocabulary is the lookup table). ``pass``:
    one pass over all texts in batches of 1,000 from a tokenizer as loaded (`single_pass`; what
    ``datasets.map`` does once per data set), the median of ``repeat``.
    """
    from rnn_textclf import RNNTokenizer

    corpora = {"english": load_texts(data), "chinese": load_waimai(data)}
    out: dict = {}
    for corpus, texts in corpora.items():
        toks = {m: RNNTokenizer.train_from_iterator(texts, model=m) for m in MODELS}
        setup: dict[str, float] = {}
        for model, tok in toks.items():
            start = time.perf_counter()
            tok(texts[:1000])  # warm-up: fast-path state, character tables
            setup[model] = time.perf_counter() - start
        first: dict[str, float] = {}
        for model, tok in toks.items():
            gc.collect()
            start = time.perf_counter()
            ids = tok(texts)["input_ids"]
            first[model] = time.perf_counter() - start
            del ids
        times: dict[str, list[float]] = {m: [] for m in MODELS}
        cpu: dict[str, list[float]] = {m: [] for m in MODELS}
        passes: dict[str, list[float]] = {m: [] for m in MODELS}
        for _ in range(repeat):
            for model, tok in toks.items():
                gc.collect()
                start, start_cpu = time.perf_counter(), time.process_time()
                ids = tok(texts)["input_ids"]
                times[model].append(time.perf_counter() - start)
                cpu[model].append(time.process_time() - start_cpu)
                del ids
            for model, tok in toks.items():
                passes[model].append(single_pass(tok, texts))
        per_text = {m: 1e6 * statistics.median(t) / len(texts) for m, t in times.items()}
        first_per_text = {m: 1e6 * t / len(texts) for m, t in first.items()}
        cpu_per_text = {m: 1e6 * statistics.median(t) / len(texts) for m, t in cpu.items()}
        pass_per_text = {m: 1e6 * statistics.median(t) / len(texts) for m, t in passes.items()}
        identical = {
            m: tok(texts)["input_ids"]
            == [e.ids for e in tok.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]
            for m, tok in toks.items()
            if m != "word"
        }
        out[corpus] = {
            "texts": len(texts),
            "vocab": {m: len(tok) for m, tok in toks.items()},
            "tokens_per_text": {
                m: sum(map(len, tok(texts)["input_ids"])) / len(texts) for m, tok in toks.items()
            },
            "us_per_text": per_text,
            "speed_vs_word": {m: per_text["word"] / v for m, v in per_text.items()},
            "cpu_us_per_text": cpu_per_text,
            "first_call_us_per_text": first_per_text,
            "first_call_speed_vs_word": {m: first_per_text["word"] / v for m, v in first_per_text.items()},
            "single_pass_us_per_text": pass_per_text,
            "single_pass_speed_vs_word": {m: pass_per_text["word"] / v for m, v in pass_per_text.items()},
            "setup_s": setup,
            "identical_to_backend_encode_batch": identical,
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        }
    return out


def print_models(result: dict) -> None:
    print(
        "\ntok(texts) per text by tokenizer model (median of the repeated calls, pieces cached; first = the "
        "first call on all texts; pass = one pass in batches of 1,000 from a tokenizer as loaded; vs word = "
        "word time / model time, >1 faster)"
    )
    print(
        f"{'corpus':<8} {'model':<10} {'vocab':>7} {'tokens/text':>12} {'us/text':>9} {'vs word':>8} "
        f"{'CPU us':>8} {'first us':>9} {'vs word':>8} {'pass us':>8} {'vs word':>8} {'setup s':>8} "
        f"{'same ids':>9}"
    )
    for corpus, r in result.items():
        for model in MODELS:
            same = r["identical_to_backend_encode_batch"].get(model, "")
            pass_us = r.get("single_pass_us_per_text", {})  # (absent from results of older sources)
            pass_vs = r.get("single_pass_speed_vs_word", {})
            print(
                f"{corpus:<8} {model:<10} {r['vocab'][model]:>7,} {r['tokens_per_text'][model]:>12.1f} "
                f"{r['us_per_text'][model]:>9.2f} {r['speed_vs_word'][model]:>8.2f} "
                f"{r['cpu_us_per_text'][model]:>8.2f} {r['first_call_us_per_text'][model]:>9.2f} "
                f"{r['first_call_speed_vs_word'][model]:>8.2f} {pass_us.get(model, float('nan')):>8.2f} "
                f"{pass_vs.get(model, float('nan')):>8.2f} {r['setup_s'][model]:>8.2f} {same!s:>9}"
            )


SUBWORDS = ("bpe", "unigram", "wordpiece")


def run_floor(data: Path, repeat: int) -> dict:
    """What one pass of a subword model over the English texts cannot do without, against `basic_english`.

    A pass from a tokenizer as loaded (`single_pass`) does at least two things: the cached lookups of every
    text (``lookups``: the same pass with every piece already cached) and the Rust model's encoding of each
    distinct piece once (``rust``: `_encode_pieces` on all of them at once, from a freshly loaded copy whose
    model caches are cold; wall and CPU time of all threads). Two bounds on the pass's speed against
    `basic_english`'s pass: ``serial`` = word pass / (lookups + Rust wall), the best a pass that first looks
    up and then asks Rust can do; ``overlap`` = word pass / max(lookups, Rust CPU), the best with the Rust
    work on another core fully hidden behind the lookups (2 cores). Medians of ``repeat``.
    """
    from rnn_textclf import RNNTokenizer

    texts = load_texts(data)
    word = RNNTokenizer.train_from_iterator(texts, model="word")
    out: dict = {"texts": len(texts)}
    with tempfile.TemporaryDirectory() as folder:
        for model in SUBWORDS:
            tok = RNNTokenizer.train_from_iterator(texts, model=model)
            tok.save_pretrained(Path(folder) / model)
            word_pass = [single_pass(word, texts) for _ in range(repeat)]
            model_pass = [single_pass(tok, texts) for _ in range(repeat)]
            lookups = [single_pass(tok, texts, as_loaded=False) for _ in range(repeat)]
            fast = tok._backend_fast_path()
            lower = str.lower if fast.lowercase else str
            pieces = sorted({lower(k) for k in fast.cache if k != fast.sentinel_word} - {""})
            rust_wall, rust_cpu = [], []
            for _ in range(repeat):
                cold = RNNTokenizer.from_pretrained(Path(folder) / model)
                cold(texts[:1])  # builds the fast path
                encoder = cold._backend_fast_path()
                gc.collect()
                start, start_cpu = time.perf_counter(), time.process_time()
                encoder._encode_pieces(pieces)
                rust_wall.append(time.perf_counter() - start)
                rust_cpu.append(time.process_time() - start_cpu)
            w, m, lk, rw, rc = map(statistics.median, (word_pass, model_pass, lookups, rust_wall, rust_cpu))
            out[model] = {
                "word_pass_s": w,
                "model_pass_s": m,
                "pass_vs_word": w / m,
                "lookups_s": lk,
                "distinct_pieces": len(pieces),
                "rust_wall_s": rw,
                "rust_cpu_s": rc,
                "serial_bound_vs_word": w / (lk + rw),
                "overlap_bound_vs_word": w / max(lk, rc),
            }
    out["load_average_1min"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return out


def print_floor(result: dict) -> None:
    print(
        f"\nOne pass over {result['texts']:,} English texts from a tokenizer as loaded, and its two unavoidable "
        "parts (s; vs word = basic_english's pass / that time, >1 faster)"
    )
    print(
        f"{'model':<10} {'word pass':>9} {'pass':>7} {'vs word':>8} {'lookups':>8} {'pieces':>7} "
        f"{'Rust':>6} {'Rust CPU':>8} {'serial bound':>13} {'overlap bound':>14}"
    )
    for model in SUBWORDS:
        r = result[model]
        print(
            f"{model:<10} {r['word_pass_s']:>9.3f} {r['model_pass_s']:>7.3f} {r['pass_vs_word']:>8.2f} "
            f"{r['lookups_s']:>8.3f} {r['distinct_pieces']:>7,} {r['rust_wall_s']:>6.3f} {r['rust_cpu_s']:>8.3f} "
            f"{r['serial_bound_vs_word']:>13.2f} {r['overlap_bound_vs_word']:>14.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", action="store_true", help="also run with 1 and 2 Rust threads")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--models", action="store_true", help="also time every tokenizer model (word, char, bpe, ...)"
    )
    parser.add_argument("--models-only", action="store_true", help="time only the tokenizer models")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="only the bounds of one subword pass: its cached lookups and its Rust encoding of new pieces",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="with --models-only: first time the models with the rnn_textclf sources in this folder (e.g. an "
        "export of main's src/), in a subprocess, then with the installed ones; both go in the JSON",
    )
    args = parser.parse_args()

    if args.floor:
        result = {"python": platform.python_version(), "machine": platform.machine()}
        result["floor"] = run_floor(args.data, args.repeat)
        print_floor(result["floor"])
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return

    if args.models_only:
        result = {"python": platform.python_version(), "machine": platform.machine()}
        if args.baseline:
            env = {**os.environ, "PYTHONPATH": str(args.baseline)}
            command = [
                sys.executable,
                __file__,
                "--models-only",
                "--data",
                str(args.data),
                "--repeat",
                str(args.repeat),
            ]
            with tempfile.TemporaryDirectory() as folder:
                target = Path(folder) / "baseline.json"
                subprocess.run([*command, "--json", str(target)], env=env, check=True, capture_output=True)
                result["baseline"] = {
                    "sources": str(args.baseline),
                    **json.loads(target.read_text())["models"],
                }
            print(f"baseline ({args.baseline}):")
            print_models({k: v for k, v in result["baseline"].items() if k != "sources"})
        result["models"] = run_models(args.data, args.repeat)
        print_models(result["models"])
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return

    if args.child:
        print(json.dumps(run(args.data, args.repeat)))
        return

    results = {"python": platform.python_version(), "machine": platform.machine(), "runs": {}}
    main_result = run(args.data, args.repeat)
    results["runs"]["default"] = main_result
    print_table(main_result, "default threads")
    if args.threads:
        settings = {
            "RAYON_NUM_THREADS=1": {"RAYON_NUM_THREADS": "1"},
            "RAYON_NUM_THREADS=2": {"RAYON_NUM_THREADS": "2"},
            "TOKENIZERS_PARALLELISM=false": {"TOKENIZERS_PARALLELISM": "false"},
        }
        for label, extra in settings.items():
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")
            }
            env.update(extra)
            command = [
                sys.executable,
                __file__,
                "--child",
                "--data",
                str(args.data),
                "--repeat",
                str(args.repeat),
            ]
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            results["runs"][label] = result
            print_table(result, label)
    if args.models:
        results["models"] = run_models(args.data, args.repeat)
        print_models(results["models"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
