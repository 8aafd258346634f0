"""The docs' code blocks run as a user runs them: in order, page by page, on small real data.

Each page in ``RUN`` has its fenced ``python`` blocks joined into one script (in page order, as a reader
copies them into one session) and its ``bash`` blocks run one after the other, in a scratch folder that
holds small real data under the names the pages use (``ag_news_csv/train.csv`` and ``test.csv``: AG News
rows; ``sms.csv``: SMS messages). Markers in the page (HTML comments, invisible on the site):

- ``<!-- skip-test: why -->`` on the line before a block: the block is not run (it needs the Hub, a GPU,
  the network or files of your own); say why.
- ``<!-- test-output: tolerance=0.05 -->`` on the line before a ``text`` block that follows a python
  block: the last lines of that block's stdout must be the shown text, numbers within the tolerance,
  words exactly (lines above them, e.g. Trainer's log dicts, are not compared).

Every docs page is either in ``RUN`` or in ``NOT_RUN`` with the reason, so a new page cannot slip by.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"

#: Pages whose blocks run here.
RUN = [
    "README.md",
    "docs/how-to/datasets.md",
    "docs/how-to/trainer.md",
    "docs/how-to/multi-label-regression.md",
]
#: Pages not (yet) run here, with the reason.
NOT_RUN = {
    "docs/index.md": "no runnable block beyond README's",
    "docs/getting-started.md": "not yet covered by this test",
    "docs/benchmarks.md": "benchmark commands: minutes to hours each",
    "docs/benchmarks/accuracy.md": "benchmark commands: minutes to hours each",
    "docs/how-to/cli.md": "not yet covered by this test (tests/test_cli.py runs the CLI)",
    "docs/how-to/gpu.md": "needs a GPU",
    "docs/how-to/hub.md": "needs a Hub (tests/test_hub.py runs these steps against minihub)",
    "docs/how-to/scaling.md": "streaming and multi-process runs: not yet covered by this test",
    "docs/how-to/serving.md": "not yet covered by this test",
    "docs/how-to/vectors.md": "not yet covered by this test",
    "docs/how-to/non-english.md": "trains on the user's files; tests/test_tokenization_languages.py runs these steps",
    "docs/how-to/distillation.md": "fine-tunes a transformer teacher (minutes); tests/test_distillation.py runs these steps on a tiny teacher",
    "docs/tutorial/ag-news.md": "minutes of training per block (examples are run by tests/test_examples.py)",
}

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"<!--\s*(skip-test|test-output)\s*:?\s*(.*?)\s*-->\s*$")


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


def _workdir(path: Path) -> Path:
    """Small real data under the names the pages use."""
    with (SHARED / "ag_news_csv" / "test.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    (path / "ag_news_csv").mkdir()
    for name, part in (("train.csv", rows[:1500]), ("test.csv", rows[6000:6400])):
        with (path / "ag_news_csv" / name).open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(part)
    return path


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
                assert block["lang"] == "text", f"{name}:{block['line']}: test-output marks a text block"


@pytest.mark.slow
@pytest.mark.parametrize("name", RUN)
def test_page_blocks_run_in_order(name, tmp_path):
    work = _workdir(tmp_path)
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
        HF_HOME=str(tmp_path / "hf"),
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    pieces = blocks(ROOT / name)
    script: list[str] = []
    expected: dict[int, tuple[str, float]] = {}
    for i, block in enumerate(pieces):
        mark = block["mark"]
        if mark and mark[0] == "skip-test":
            continue
        if block["lang"] == "python":
            # A marker line on stdout between blocks, to find each block's output and failure.
            script.append(f"print('@@block {i}', flush=True)\n{block['code']}")
        elif block["lang"] in ("bash", "sh"):
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block["code"]],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert proc.returncode == 0, (
                f"{name}:{block['line']} failed:\n{block['code']}\n{proc.stderr[-3000:]}"
            )
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
    """README's `rnn-textclf train` sample: the epoch table and the results, within 0.01 (the time aside)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sample = readme[readme.index("$ rnn-textclf train\n") : readme.index("$ rnn-textclf predict")]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_textclf.cli", "train"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = re.compile(r"^ *\d+\.00 \|.*$|^  (?:accuracy|macro F1|ham|spam) .*$", re.M)
    shown = rows.findall(sample)
    got = rows.findall(proc.stderr.replace("\r", "\n") + proc.stdout)
    assert len(shown) == 9, shown  # 5 epochs, accuracy, macro F1, ham, spam
    problem = _numbers_match("\n".join(shown), "\n".join(got), 0.01)
    assert problem is None, problem
