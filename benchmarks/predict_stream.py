"""Benchmark: ``rnn-textclf predict`` on large inputs, read-all (before issue 21) vs streaming (issue 21).

Both contenders classify the same file of lines drawn (seeded, with replacement) from the SMS Spam
Collection with the same model, at one thread (``--threads 1``, ``OMP_NUM_THREADS=1``,
``TOKENIZERS_PARALLELISM=false``), each in a fresh subprocess whose stdout this script reads:

1. ``read-all``: the ``predict`` of commit b55ed63, reproduced below (``READ_ALL``): the whole file is read
   (``read_text().splitlines()``), classified as one list in input order, batches of 256, then printed.
2. ``streaming``: today's ``python -m rnn_textclf.cli predict MODEL --file F``: chunks of 256 lines
   doubling to 4096, batched by length inside each chunk, written and flushed chunk by chunk.

Reported per contender and input size: wall time, throughput (lines / wall time, start-up included),
time from the start of the process to its first output line, and the child's peak RSS (``ru_maxrss``
from ``os.wait4``, that child alone), and the CPU time the child had used when its first line came
(``/proc/PID/stat``), less the same for a one-line input (imports and model loading): the work done
before the first results, which, unlike wall time, a busy machine hardly changes.
The outputs are compared line by line (labels, and scores within 1e-5).

Targets (issue 21): peak RSS on the largest input at most 1.2x the peak on the smallest (streaming);
throughput at least the read-all path's; first output line within a second of start-up.

    python benchmarks/predict_stream.py --model MODEL [--lines 100000 1000000] [--json results.json]
    python benchmarks/predict_stream.py --report results.json     # the table of a saved run

Without ``--model`` it first trains the default model (``rnn-textclf train``, about 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# `rnn-textclf predict` at commit b55ed63 (read everything, classify in input order, print), with
# `predict_texts` of that commit inlined: the path issue 21 replaces.
READ_ALL = r"""
import json, sys
from pathlib import Path

import torch

from rnn_textclf.cli._inference import _load_model_and_tokenizer
from rnn_textclf.collator import PackedSequenceCollator

torch.set_num_threads(1)
model_name, file_name = sys.argv[1], sys.argv[2]
texts = [line.rstrip("\n") for line in Path(file_name).read_text(encoding="utf-8").splitlines()]
model, tokenizer = _load_model_and_tokenizer(model_name)


def predict_texts(model, tokenizer, texts, *, batch_size=256, top_k=1, max_length=512):
    collator = PackedSequenceCollator(tokenizer)
    multi = model.config.problem_type == "multi_label_classification"
    id2label = model.config.id2label
    results = []
    k = min(top_k, model.config.num_labels)
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        enc = tokenizer(chunk, truncation=max_length is not None, max_length=max_length)
        batch = collator([{"input_ids": ids} for ids in enc["input_ids"]])
        with torch.no_grad():
            logits = model(**batch).logits
        scores = torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)
        top = scores.topk(k, dim=-1)
        for text, values, indices in zip(chunk, top.values.tolist(), top.indices.tolist(), strict=True):
            ranked = [{"label": id2label[i], "score": round(v, 6)} for v, i in zip(values, indices, strict=True)]
            results.append({"text": text, "label": ranked[0]["label"], "score": ranked[0]["score"], "top_k": ranked})
    return results


for row in predict_texts(model, tokenizer, texts, batch_size=256, top_k=1):
    print(json.dumps(row, ensure_ascii=False))
"""

CONTENDERS = ("read-all", "streaming")


def command(contender: str, model: str, file: Path) -> list[str]:
    if contender == "read-all":
        return [sys.executable, "-c", READ_ALL, model, str(file)]
    return [sys.executable, "-m", "rnn_textclf.cli", "predict", model, "--file", str(file), "--quiet"]


def child_env() -> dict[str, str]:
    return dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_VERBOSITY="error",
    )


def run(contender: str, model: str, file: Path, output: Path) -> dict[str, Any]:
    """Runs one contender to completion; its stdout goes to ``output``."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command(contender, model, file), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env()
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = None
    lines = 0
    fd = proc.stdout.fileno()
    with output.open("wb") as sink:
        while block := os.read(fd, 1 << 20):
            if first is None and b"\n" in block:
                first = time.perf_counter() - started
                first_cpu = cpu_seconds(proc.pid)
            lines += block.count(b"\n")
            sink.write(block)
    stderr = proc.stderr.read().decode("utf-8", "replace")
    # wait4: the resource usage of this child alone (RUSAGE_CHILDREN would be the maximum over all).
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{contender} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {
        "contender": contender,
        "lines": lines,
        "wall_s": wall,
        "lines_per_s": lines / wall,
        "first_line_s": first,
        "first_line_cpu_s": first_cpu,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compare(a: Path, b: Path) -> dict[str, Any]:
    """Line-by-line agreement of two outputs: same texts, labels, and the largest score difference."""
    differ = 0
    worst = 0.0
    count = 0
    with a.open(encoding="utf-8") as left, b.open(encoding="utf-8") as right:
        for x, y in zip(left, right, strict=True):
            row_a, row_b = json.loads(x), json.loads(y)
            if row_a["text"] != row_b["text"]:
                raise SystemExit(f"line {count + 1}: the outputs are for different texts")
            differ += row_a["label"] != row_b["label"]
            worst = max(worst, abs(row_a["score"] - row_b["score"]))
            count += 1
    return {"lines": count, "label_differences": differ, "max_score_difference": worst}


def first_chunk_seconds(model_name: str, file: Path, rounds: int = 3) -> float:
    """Median wall time to classify and format the first chunk of ``file`` in this process, at one thread.

    What the streaming path adds to its start-up before the first output line: its first chunk (256
    lines; chunks then double up to 4096) tokenized, classified by length and turned into JSON lines.
    """
    import torch

    from rnn_textclf.cli._inference import _load_model_and_tokenizer, predict_texts
    from rnn_textclf.cli.predict import FIRST_CHUNK_SIZE

    torch.set_num_threads(1)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    model, tokenizer = _load_model_and_tokenizer(model_name)
    with file.open(encoding="utf-8") as handle:
        chunk = [handle.readline().rstrip("\n") for _ in range(FIRST_CHUNK_SIZE)]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in predict_texts(model, tokenizer, chunk))
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def draw_lines(count: int, seed: int, path: Path) -> None:
    from rnn_textclf.data import _read_sms_spam

    texts, _ = _read_sms_spam()
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, count, 100_000):
            handle.write("\n".join(rng.choices(texts, k=min(100_000, count - start))) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model folder (default: train the default model first)")
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--report", metavar="JSON", help="only print the table of a saved --json run")
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        args.lines = sorted({row["lines"] for row in saved["results"]})
        report(saved["results"], saved["startup"], saved["first_chunk_s"], args)
        return 0

    with tempfile.TemporaryDirectory(prefix="predict-stream-") as tmp:
        root = Path(tmp)
        model = args.model
        if model is None:
            model = str(root / "model")
            print("training the default model ...", file=sys.stderr)
            subprocess.run(
                [sys.executable, "-m", "rnn_textclf.cli", "train", "--output-dir", model, "--quiet"],
                check=True,
                env=child_env(),
            )
        one = root / "one.txt"
        one.write_text("are we still on for lunch?\n", encoding="utf-8")
        startup = {c: run(c, model, one, root / "one.out") for c in CONTENDERS}
        results = []
        for i, count in enumerate(sorted(args.lines)):
            file = root / f"lines-{count}.txt"
            draw_lines(count, args.seed, file)
            outputs = {}
            # Alternate which contender goes first, so neither always meets the same load.
            for contender in CONTENDERS if i % 2 == 0 else CONTENDERS[::-1]:
                outputs[contender] = root / f"{contender}-{count}.jsonl"
                row = run(contender, model, file, outputs[contender])
                if row["lines"] != count:
                    raise SystemExit(f"{contender} wrote {row['lines']} lines for {count} input lines")
                results.append(row)
                print(
                    f"  {contender:<10} {count:>9,} lines  {row['wall_s']:7.1f} s  {row['peak_rss_mib']:7.0f} MiB",
                    file=sys.stderr,
                )
            agreement = compare(outputs["read-all"], outputs["streaming"])
            if count == max(args.lines):
                first_chunk = first_chunk_seconds(model, file)
            for row in results[-2:]:
                row["agreement"] = agreement
            for path in (file, *outputs.values()):
                path.unlink()

    report(results, startup, first_chunk, args)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
                    "load_average": os.getloadavg(),
                    "startup": startup,
                    "first_chunk_s": first_chunk,
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


def report(
    results: list[dict[str, Any]], startup: dict[str, Any], first_chunk: float, args: argparse.Namespace
) -> None:
    print(
        "one thread; a 1-line input's first line (wall / CPU): "
        + ", ".join(
            f"{c} {startup[c]['first_line_s']:.2f} s / {startup[c]['first_line_cpu_s']:.2f} s"
            for c in CONTENDERS
        )
    )
    print()
    print(
        "| path | lines | wall s | lines/s | lines per CPU s | first line s | CPU s to first line, "
        "minus a 1-line input's | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in sorted(results, key=lambda r: (r["lines"], r["contender"])):
        print(
            f"| {row['contender']} | {row['lines']:,} | {row['wall_s']:.1f} | {row['lines_per_s']:,.0f} | "
            f"{row['lines'] / row['cpu_s']:,.0f} | {row['first_line_s']:.2f} | "
            f"{row['first_line_cpu_s'] - startup[row['contender']]['first_line_cpu_s']:.2f} | "
            f"{row['peak_rss_mib']:.0f} |"
        )
    print()
    by = {(r["contender"], r["lines"]): r for r in results}
    small, large = min(args.lines), max(args.lines)
    for count in sorted(set(args.lines)):
        new, old = by[("streaming", count)], by[("read-all", count)]
        a = old["agreement"]
        print(
            f"- {count:,} lines: streaming throughput {new['lines_per_s'] / old['lines_per_s']:.2f}x read-all "
            f"(wall), {old['cpu_s'] / new['cpu_s']:.2f}x (CPU); labels differ on {a['label_differences']} lines, "
            f"scores by at most {a['max_score_difference']:.1e}"
        )
    if large != small:
        for contender in CONTENDERS:
            ratio = by[(contender, large)]["peak_rss_mib"] / by[(contender, small)]["peak_rss_mib"]
            print(f"- {contender}: peak RSS on {large:,} lines = {ratio:.2f}x the peak on {small:,}")
    row = by[("streaming", large)]
    print(
        f"- streaming, {large:,} lines: first line after {row['first_line_s']:.2f} s wall, "
        f"{row['first_line_cpu_s'] - startup['streaming']['first_line_cpu_s']:.2f} CPU s more than a 1-line "
        "input's first line; "
        f"the first chunk (256 lines) takes {first_chunk:.2f} s (in process, median of 3)"
    )


if __name__ == "__main__":
    sys.exit(main())
