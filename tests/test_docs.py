"""The docs' code blocks run as a user runs them: in order, page by page, on small real data.

Each page in ``RUN`` has its fenced ``python`` blocks joined into one script (in page order, as a reader
copies them into one session), and its ``bash`` blocks and the ``$ `` commands of its ``console`` blocks
run in page order too, in a scratch folder that holds small real data under the names the pages use
(``ag_news_csv/train.csv`` and ``test.csv``: AG News rows, no header; per page in ``FILES``, e.g. the
``train.csv`` of the command-line guide, reviews with a header ``review,sentiment``), ``examples/``
(linked), and what ``SETUP`` makes first (a model folder a page says ``rnn-textclf train`` wrote).
Python blocks run after the shell blocks of the page (no page has a shell block that reads what a python
block wrote). Markers in the page (HTML comments, invisible on the site):

- ``<!-- skip-test: why -->`` on the line before a block: the block is not run (it needs the Hub, a GPU,
  the network, several machines or files of your own); say why.
- ``<!-- test-output: tolerance=0.05 -->`` on the line before a ``text`` block that follows a python
  block: the last lines of that block's stdout must be the shown text, numbers within the tolerance,
  words exactly (lines above them, e.g. Trainer's log dicts, are not compared). On a ``console`` block:
  each command's output (stdout; stderr for a command that fails, shown by a following ``echo $?``) must
  be the shown lines under it.
- ``<!-- test-file: NAME -->`` before a block (a config file): it is written to NAME, not run.
- ``<!-- test-replace: OLD => NEW -->`` before a block: the test runs it with OLD replaced by NEW (e.g.
  fewer steps than a real run needs); OLD must occur in the block.

Every docs page is either in ``RUN`` or in ``NOT_RUN`` with the reason, so a new page cannot slip by.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[1]

#: Pages whose blocks run here.
RUN = [
    "README.md",
    "docs/getting-started.md",
    "docs/how-to/cli.md",
    "docs/how-to/datasets.md",
    "docs/how-to/trainer.md",
    "docs/how-to/multi-label-regression.md",
    "docs/how-to/scaling.md",
    "docs/how-to/serving.md",
    "docs/how-to/vectors.md",
]
#: Pages not (yet) run here, with the reason.
NOT_RUN = {
    "docs/index.md": "no runnable block beyond README's",
    "docs/benchmarks.md": "benchmark commands: minutes to hours each",
    "docs/benchmarks/accuracy.md": "benchmark commands: minutes to hours each",
    "docs/how-to/gpu.md": "needs a GPU",
    "docs/how-to/hub.md": "needs a Hub (tests/test_hub.py runs these steps against minihub)",
    "docs/how-to/non-english.md": "trains on the user's files; tests/test_tokenization_languages.py runs these steps",
    "docs/how-to/distillation.md": "fine-tunes a transformer teacher (minutes); tests/test_distillation.py runs these steps on a tiny teacher",
    "docs/tutorial/ag-news.md": "minutes of training per block (examples are run by tests/test_examples.py)",
}

#: Files a page's blocks read, beyond ``ag_news_csv/``: name -> (data set, rows, columns to write).
#: Data sets: ``sms`` (text,label: ham/spam), ``rt`` (text,label; 0/1 -> negative/positive), ``sst``
#: (SST-2 train: text,label 0/1), ``ag`` (AG News, no header). Rows are a slice of a seeded shuffle (AG
#: News: of the file), so every file holds every class.
FILES: dict[str, dict[str, tuple[str, slice, tuple[str, ...] | None]]] = {
    "docs/how-to/cli.md": {
        "train.csv": ("rt", slice(0, 800), ("review", "sentiment")),
        "dev.csv": ("rt", slice(800, 1000), ("review", "sentiment")),
        "test.csv": ("rt", slice(1000, 1300), ("review", "sentiment")),
        "reviews.csv": ("rt", slice(1300, 1400), ("review", "sentiment")),
        "my_train.csv": ("sms", slice(0, 800), ("text", "label")),
        "my_test.csv": ("sms", slice(800, 1000), ("text", "label")),
    },
    "docs/how-to/scaling.md": {
        "train.csv": ("ag", slice(0, 1024), None),
        "test.csv": ("ag", slice(1024, 1524), None),
        "shards/part-0.csv": ("sst", slice(0, 600), ("text", "label")),
        "shards/part-1.csv": ("sst", slice(600, 1200), ("text", "label")),
    },
    "docs/how-to/vectors.md": {
        "ag_news_csv/test.csv": ("ag", slice(0, None), None),  # all 7,600 rows, in file order
        "train.csv": ("sms", slice(0, 800), ("text", "label")),
    },
}
#: Shell commands run in the scratch folder before a page's blocks (what the page says the reader has).
SETUP = {
    # "a folder written by `rnn-textclf train`", and a gzip file of texts to stream.
    "docs/how-to/serving.md": [
        "rnn-textclf train --max-train-samples 1500 --epochs 3 --output-dir rnn-textclf-model --quiet",
        "cut -c1-200 sms.txt | gzip > big.gz",
    ],
}

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"<!--\s*(skip-test|test-output|test-replace|test-file)\s*:?\s*(.*?)\s*-->\s*$")


def blocks(page: Path) -> list[dict]:
    """The fenced blocks of a page: language, code, marker on the line before (if any)."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        found.append(
            {
                "lang": match.group(1),
                "code": match.group(2),
                "line": text[: match.start()].count("\n") + 1,
                "mark": (mark.group(1), mark.group(2)) if mark else None,
            }
        )
    return found


def _rows(shared: Path, name: str) -> list[list[str]]:
    """The rows of a data set (``FILES``), AG News in file order, the others in a seeded shuffle."""
    if name == "ag":
        with (shared / "ag_news_csv" / "test.csv").open(newline="", encoding="utf-8") as handle:
            return list(csv.reader(handle))
    path = {
        "sms": shared / "sms_spam" / "sms_spam.csv",
        "rt": shared / "rt_polarity" / "rt_polarity.csv",
        "sst": shared / "sst2" / "sst2_train.csv",
    }[name]
    names = {"0": "negative", "1": "positive"} if name == "rt" else {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [[r["text"], names.get(r["label"], r["label"])] for r in csv.DictReader(handle)]
    order = np.random.default_rng(0).permutation(len(rows))
    return [rows[i] for i in order]


def _workdir(path: Path, shared: Path, name: str) -> Path:
    """Small real data under the names the page uses, ``examples/``, and the page's ``SETUP``."""
    ag = _rows(shared, "ag")
    (path / "ag_news_csv").mkdir()
    for file, part in (("train.csv", ag[:1500]), ("test.csv", ag[6000:6400])):
        with (path / "ag_news_csv" / file).open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(part)
    for file, (data, rows, header) in FILES.get(name, {}).items():
        (path / file).parent.mkdir(parents=True, exist_ok=True)
        with (path / file).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if header:
                writer.writerow(header)
            writer.writerows(_rows(shared, data)[rows])
    (path / "sms.txt").write_text(
        "\n".join(row[0].replace("\n", " ") for row in _rows(shared, "sms")[:2000]) + "\n"
    )
    (path / "examples").symlink_to(ROOT / "examples")
    return path


def _shell(command: str, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def _console(code: str) -> list[tuple[str, str]]:
    """A console block's ``$ `` commands, each with the output lines shown under it."""
    steps: list[tuple[str, str]] = []
    for line in code.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], ""))
        elif steps:
            steps[-1] = (steps[-1][0], steps[-1][1] + line + "\n")
    return steps


def _numbers_match(shown: str, got: str, tolerance: float) -> str | None:
    """``shown`` against the last lines of ``got`` (above them, e.g. Trainer's log lines, is not shown)."""
    got = "\n".join(got.splitlines()[-len(shown.splitlines()) :])
    number = r"-?\d+\.\d+|-?\d+"
    words = lambda s: re.sub(number, "#", s).split()  # noqa: E731
    if words(shown) != words(got):
        return f"text differs:\n--- page\n{shown}\n--- run\n{got}"
    for a, b in zip(re.findall(number, shown), re.findall(number, got), strict=True):
        if abs(float(a) - float(b)) > tolerance:
            return f"{b} differs from the page's {a} by more than {tolerance}:\n--- page\n{shown}\n--- run\n{got}"
    return None


def test_every_page_is_run_or_says_why_not():
    pages = {"README.md", *(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md"))}
    pages -= {p for p in pages if p.startswith("docs/reference/")}  # API reference: mkdocstrings only
    assert pages == set(RUN) | set(NOT_RUN), pages ^ (set(RUN) | set(NOT_RUN))


def test_markers_are_well_formed():
    for name in RUN:
        for block in blocks(ROOT / name):
            if block["mark"] and block["mark"][0] == "skip-test":
                assert block["mark"][1], f"{name}:{block['line']}: say why the block is skipped"
            if block["mark"] and block["mark"][0] == "test-output":
                assert block["lang"] in ("text", "console"), (
                    f"{name}:{block['line']}: test-output marks a text or console block"
                )
            if block["mark"] and block["mark"][0] == "test-replace":
                assert "=>" in block["mark"][1], f"{name}:{block['line']}: test-replace: OLD => NEW"


@pytest.mark.slow
@pytest.mark.parametrize("name", RUN)
def test_page_blocks_run_in_order(name, tmp_path, shared_data):
    work = _workdir(tmp_path, shared_data, name)
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
        HF_HOME=str(tmp_path / "hf"),
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    for command in SETUP.get(name, []):
        proc = _shell(command, work, env)
        assert proc.returncode == 0, f"{name}: setup {command!r} failed:\n{proc.stderr[-3000:]}"
    pieces = blocks(ROOT / name)
    script: list[str] = []
    expected: dict[int, tuple[str, float]] = {}
    for i, block in enumerate(pieces):
        mark = block["mark"]
        if mark and mark[0] == "skip-test":
            continue
        code = block["code"]
        if mark and mark[0] == "test-replace":
            old, new = (part.strip() for part in mark[1].split("=>"))
            assert old in code, f"{name}:{block['line']}: test-replace: {old!r} is not in the block"
            code = code.replace(old, new)
        where = f"{name}:{block['line']}"
        if mark and mark[0] == "test-file":
            (work / mark[1]).write_text(code, encoding="utf-8")
        elif block["lang"] == "python":
            # A marker line on stdout between blocks, to find each block's output and failure.
            script.append(f"print('@@block {i}', flush=True)\n{code}")
        elif block["lang"] in ("bash", "sh"):
            proc = _shell("set -eu\n" + code, work, env)
            assert proc.returncode == 0, f"{where} failed:\n{code}\n{proc.stderr[-3000:]}"
        elif block["lang"] == "console":
            steps = _console(code)
            status = 0
            for k, (command, shown) in enumerate(steps):
                if command == "echo $?":
                    got = f"{status}\n"
                else:
                    proc = _shell(command, work, env)
                    status = proc.returncode
                    shows_status = k + 1 < len(steps) and steps[k + 1][0] == "echo $?"
                    assert status == 0 or shows_status, f"{where}: {command!r} failed:\n{proc.stderr[-3000:]}"
                    got = proc.stdout if status == 0 else proc.stderr
                if mark and mark[0] == "test-output" and shown.strip():
                    tolerance = float(re.search(r"tolerance=([\d.]+)", mark[1]).group(1))
                    problem = _numbers_match(shown.strip(), got.strip(), tolerance)
                    assert problem is None, f"{where}: {command!r}: {problem}"
        elif block["lang"] == "text" and mark and mark[0] == "test-output":
            tolerance = float(re.search(r"tolerance=([\d.]+)", mark[1]).group(1))
            previous = max(j for j in range(i) if pieces[j]["lang"] == "python")
            expected[previous] = (block["code"].strip(), tolerance)
    if not script:
        return
    proc = subprocess.run(
        [sys.executable, "-c", "\n".join(script) + "\nprint('@@end', flush=True)\n"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    outputs = dict(re.findall(r"@@block (\d+)\n(.*?)(?=@@block |@@end|\Z)", proc.stdout, re.S))
    failed_at = max((int(k) for k in outputs), default=0)
    assert proc.returncode == 0, (
        f"{name}: the block at line {pieces[failed_at]['line']} failed:\n{pieces[failed_at]['code']}\n"
        f"{proc.stderr[-3000:]}"
    )
    for index, (shown, tolerance) in expected.items():
        problem = _numbers_match(shown, outputs[str(index)].strip(), tolerance)
        assert problem is None, f"{name}:{pieces[index]['line']}: {problem}"


@pytest.mark.slow
def test_readme_sample_output_is_what_rnn_textclf_train_prints(tmp_path):
    """The `rnn-textclf train` and `predict` samples of README and getting-started, from one real run.

    The epoch table and the results within 0.01 (the time aside), the predictions' scores within 0.001.
    """
    proc = run_cli("train", cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = re.compile(r"^ *\d+\.00 \|.*$|^  (?:accuracy|macro F1|ham|spam) .*$", re.M)
    got = rows.findall(proc.stderr.replace("\r", "\n") + proc.stdout)
    command = "$ rnn-textclf predict rnn-textclf-model "
    texts = ("WINNER!! Claim your free prize now", "see you at lunch?")
    predict = run_cli("predict", "rnn-textclf-model", *texts, cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr[-3000:]
    for name in ("README.md", "docs/getting-started.md"):
        page = (ROOT / name).read_text(encoding="utf-8")
        sample = page[page.index("$ rnn-textclf train\n") : page.index(command)]
        shown = rows.findall(sample)
        assert len(shown) == 9, (name, shown)  # 5 epochs, accuracy, macro F1, ham, spam
        problem = _numbers_match("\n".join(shown), "\n".join(got), 0.01)
        assert problem is None, f"{name}: {problem}"
        assert f'{command}"WINNER!! Claim your free prize now" "see you at lunch?"' in page, name
        lines = page[page.index(command) :].splitlines()[1:3]
        problem = _numbers_match("\n".join(lines), predict.stdout.strip(), 0.001)
        assert problem is None, f"{name}: {problem}"
