"""The docs table (docs/benchmarks/accuracy.md) from the parts of the benchmark run in this folder.

Pools the per-seed runs of each data set and method across the JSON files of the separate invocations.
"""

import json
import statistics
from pathlib import Path

R = Path(__file__).resolve().parent
files = [
    "accuracy-small.json",
    "accuracy-peers.json",
    "accuracy-ag.json",
    "accuracy-sst2.json",
    "accuracy-sst2-large.json",
    "accuracy-sst2-peers.json",
    "accuracy-ours-seeds23.json",
    "accuracy-ours-seeds23-ag-sms.json",
    "accuracy-sst2-large-seed2.json",
    "accuracy-sst2-large-seed3.json",
]
runs = {}
for f in files:
    p = R / f
    if not p.exists():
        continue
    d = json.loads(p.read_text())
    for ds, methods in d["results"].items():
        for m, s in methods.items():
            if "error" in s:
                continue
            if f == "accuracy-small.json" and (m.startswith("fasttext") or m.startswith("lecture")):
                continue  # fastText superseded (run before the shuffle fix), lecture rerun: accuracy-peers.json
            runs.setdefault((ds, m), []).extend(s["per_run"])
order = ["ag", "sst2", "trec", "sms", "rt"]
meth = [
    "ours: bilstm-glove",
    "ours: bilstm-glove-large",
    "fasttext-bigram",
    "fasttext-unigram",
    "tfidf+LR",
    "lecture (nn.RNN)",
]


def size(n):
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def cnt(n):
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


print(
    "| data set | method | runs | test accuracy % (mean ± std) | min-max | macro-F1 % | spam F1 % | train time (mean) | parameters | model size |"
)
print("|---|---|---|---|---|---|---|---|---|---|")
for ds in order:
    for m in meth:
        rs = runs.get((ds, m))
        if not rs:
            continue
        a = [r["accuracy"] for r in rs]
        sd = statistics.stdev(a) if len(a) > 1 else 0.0
        f1 = statistics.fmean(r["macro_f1"] for r in rs)
        pos = f"{100 * statistics.fmean(r['positive_f1'] for r in rs):.1f}" if ds == "sms" else ""
        t = statistics.fmean(r["train_seconds"] for r in rs)
        print(
            f"| {ds} | {m} | {len(rs)} | {100 * statistics.fmean(a):.2f} ± {100 * sd:.2f} | {100 * min(a):.1f}-{100 * max(a):.1f} | {100 * f1:.2f} | {pos} | {t:.0f} s | {cnt(rs[0]['parameters'])} | {size(rs[0]['size_bytes'])} |"
        )
