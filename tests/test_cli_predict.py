"""``rnn-textclf predict`` / ``evaluate`` on streamed input (issue 21): chunks, order, gzip, pipes."""

from __future__ import annotations

import csv
import gzip
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SMS = SHARED / "sms_spam" / "sms_spam.csv"
ENV = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rnn_textclf.cli", *args]


def run_cli(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), cwd=cwd, env=ENV, input=stdin, capture_output=True, timeout=600)


def run_main(capsysbinary, *args: str) -> tuple[int, bytes, str]:
    """Runs the CLI in this process (no interpreter start-up): exit status, stdout bytes, stderr text.

    The process-wide state the CLI configures (logging, verbosity, progress bars, threads) is put back
    after the test by conftest's autouse fixture.
    """
    from rnn_textclf.cli import main

    code = main(list(args))
    out, err = capsysbinary.readouterr()
    return code, out, err.decode("utf-8", "replace")


def sms_rows() -> list[dict[str, str]]:
    with SMS.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    """``rows`` (label, text) as a CSV file with a header."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["label", "text"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A small LSTM trained by the default command on SMS rows."""
    cwd = tmp_path_factory.mktemp("predict")
    # (into a folder that does not exist yet: made, as Trainer makes its output folders; was a traceback)
    proc = run_cli(
        "train", "--epochs", "4", "--max-train-samples", "2000", "--hidden-size", "32", "--quiet",
        "--output-dir", "models/sms", cwd=cwd,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return cwd / "models" / "sms"


@pytest.fixture(scope="module")
def lines() -> list[str]:
    """SMS texts with empty lines and a text far longer than max_length (512 tokens) among them."""
    texts = [row["text"] for row in sms_rows()[:70]]
    long_text = " ".join(["free prize call now"] * 300)  # 1,200 tokens
    texts[3:3] = ["", ""]
    texts[20:20] = [long_text, ""]
    texts.append(long_text)
    return texts


def in_process(
    model_dir: Path, texts: list[str], kind: str = "float", chunk: int | None = None
) -> list[dict]:
    from rnn_textclf.cli._inference import _load_model_and_tokenizer, predict_texts

    model, tokenizer = _load_model_and_tokenizer(str(model_dir))
    if kind == "quantize":
        from rnn_textclf.export import quantize_dynamic

        model = quantize_dynamic(model)
    elif kind == "onnx":
        from rnn_textclf.export import OnnxClassifier, export_onnx

        model = OnnxClassifier(export_onnx(model, model_dir.parent / "check.onnx"))
    chunk = chunk or len(texts)
    return [
        row
        for start in range(0, len(texts), chunk)
        for row in predict_texts(model, tokenizer, texts[start : start + chunk])
    ]


def assert_same_predictions(stdout: bytes, expected: list[dict], texts: list[str]) -> None:
    rows = [json.loads(line) for line in stdout.decode("utf-8").splitlines()]
    assert [r["text"] for r in rows] == texts  # output line i belongs to input line i
    assert [r["label"] for r in rows] == [r["label"] for r in expected]
    # Batches are made of other rows than in one in-process call; the packed RNN gives each row the same
    # result up to float rounding.
    assert max(abs(r["score"] - e["score"]) for r, e in zip(rows, expected, strict=True)) < 1e-5


def test_order_kept_across_chunks_with_empty_and_long_lines(trained, lines, tmp_path, capsysbinary):
    file = tmp_path / "texts.txt"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = in_process(trained, lines)
    assert {r["label"] for r in expected} == {"ham", "spam"}  # a real model: both classes occur
    code, out, err = run_main(capsysbinary, "predict", str(trained), "--file", str(file), "--chunk-size", "7")
    assert code == 0, err[-2000:]
    assert_same_predictions(out, expected, lines)
    # Empty lines get the model's prediction for an empty text, wherever they sit in a chunk.
    rows = [json.loads(line) for line in out.splitlines()]
    assert len({(r["label"], r["score"]) for r in rows if r["text"] == ""}) == 1
    # Positional texts come first, then the lines of --file (here in the default chunks).
    code, both, err = run_main(capsysbinary, "predict", str(trained), "ok see you", "--file", str(file))
    assert code == 0, err[-2000:]
    assert json.loads(both.splitlines()[0])["text"] == "ok see you"
    assert_same_predictions(b"\n".join(both.splitlines()[1:]), expected, lines)


def test_gzip_crlf_and_last_line_without_newline(trained, lines, tmp_path, capsysbinary):
    plain = tmp_path / "texts.txt"
    plain.write_text("\n".join(lines) + "\n", encoding="utf-8")
    packed = tmp_path / "texts.txt.gz"
    packed.write_bytes(gzip.compress(("\r\n".join(lines)).encode("utf-8")))  # CRLF, no final newline
    code_a, a, _ = run_main(capsysbinary, "predict", str(trained), "--file", str(plain), "--chunk-size", "16")
    code_b, b, err = run_main(
        capsysbinary, "predict", str(trained), "--file", str(packed), "--chunk-size", "16"
    )
    assert code_a == 0 and code_b == 0, err[-2000:]
    assert b == a and len(a.splitlines()) == len(lines)


@pytest.mark.parametrize("file_option", [[], ["--file", "-"]])  # ("-" was a missing file)
def test_stdin_pipe_streams_before_the_input_ends(trained, lines, tmp_path, file_option):
    expected = in_process(trained, lines)
    proc = subprocess.Popen(
        cli("predict", str(trained), *file_option, "--chunk-size", "5", "--quiet"),
        cwd=tmp_path,
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # Three lines, stdin left open: the pipe goes idle, so they are answered without waiting for more.
        proc.stdin.write(("\n".join(lines[:3]) + "\n").encode())
        proc.stdin.flush()
        assert select.select([proc.stdout], [], [], 120)[0], "no output before the end of the input"
        early = [proc.stdout.readline() for _ in range(3)]
        proc.stdin.write(("\n".join(lines[3:]) + "\n").encode())
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()[-2000:]
    finally:
        proc.kill()
        proc.wait()
    assert_same_predictions(b"".join(early) + rest, expected, lines)


def test_broken_pipe_ends_quietly(trained, tmp_path):
    file = tmp_path / "many.txt"
    texts = [row["text"] for row in sms_rows()[:3000]]
    file.write_text("\n".join(texts) + "\n", encoding="utf-8")
    # `rnn-textclf predict ... | head -1`: the reader exits after one line.
    proc = subprocess.Popen(
        cli("predict", str(trained), "--file", str(file), "--chunk-size", "50"),
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 0, stderr[-2000:]
    assert json.loads(first)["text"] == texts[0]
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr


@pytest.mark.parametrize("kind", ["quantize", "onnx"])
def test_serving_paths_stream_the_same_way(trained, lines, tmp_path, kind, capsysbinary):
    file = tmp_path / "texts.txt"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # int8 activations are quantized per batch, so the reference is computed in the same chunks of 6.
    expected = in_process(trained, lines, kind, chunk=6)
    code, out, err = run_main(
        capsysbinary, "predict", str(trained), "--file", str(file), "--chunk-size", "6", f"--{kind}"
    )
    assert code == 0, err[-2000:]
    assert_same_predictions(out, expected, lines)


def test_evaluate_in_chunks_matches_metrics_computed_directly(trained, tmp_path, capsysbinary):
    from rnn_textclf.metrics import classification_metrics

    rows = sms_rows()[-400:]  # the tail of the file: rows the model was not trained on
    path = write_rows(tmp_path / "eval.csv", rows)
    code, out, err = run_main(
        capsysbinary, "evaluate", str(trained), "--test-file", str(path), "--json", "-", "--chunk-size", "64"
    )
    assert code == 0, err[-2000:]
    metrics = json.loads(out)
    predicted = in_process(trained, [r["text"] for r in rows])
    ids = {"ham": 0, "spam": 1}
    direct = classification_metrics(
        [ids[r["label"]] for r in rows], [ids[p["label"]] for p in predicted], ["ham", "spam"]
    )
    assert metrics["rows"] == 400
    assert metrics["confusion_matrix"] == direct["confusion_matrix"]
    assert metrics["accuracy"] == pytest.approx(direct["accuracy"])
    majority = max(sum(r["label"] == name for r in rows) for name in ids) / len(rows)
    assert metrics["accuracy"] > majority


def test_evaluate_names_an_unknown_label(trained, tmp_path, capsysbinary):
    path = tmp_path / "eval.csv"
    path.write_text("label,text\nham,hello there\nspam,win a prize\nmaybe,who knows\n", encoding="utf-8")
    code, _, err = run_main(capsysbinary, "evaluate", str(trained), "--test-file", str(path))
    assert code == 2
    assert (
        f"label 'maybe' in row 2 of {str(path)!r} is not one of the model's labels; the model's labels are ham, spam"
        in err
    )


@pytest.mark.slow
def test_evaluate_scores_a_multi_label_model_as_train_did(trained, tmp_path, capsysbinary):
    # evaluate read one label column and scored a multi-label model as a softmax classifier (exit 0)
    def tagged(rows):
        return [
            {
                "text": r["text"],
                "spam": int(r["label"] == "spam"),
                "long": int(len(r["text"]) > 80),
                "digits": int(any(c.isdigit() for c in r["text"])),
            }
            for r in rows
        ]

    rows = sms_rows()
    for name, part in (("train", rows[:600]), ("test", rows[-200:])):
        with (tmp_path / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "spam", "long", "digits"])
            writer.writeheader()
            writer.writerows(tagged(part))
    model, test = tmp_path / "tags", str(tmp_path / "test.csv")
    columns = ["--label-column", "spam", "--label-column", "long", "--label-column", "digits"]
    code, _, err = run_main(
        capsysbinary,
        "train",
        "--train-file",
        str(tmp_path / "train.csv"),
        "--test-file",
        test,
        *columns,
        "--epochs",
        "2",
        "--embedding-dim",
        "16",
        "--hidden-size",
        "16",
        "--output-dir",
        str(model),
        "--quiet",
    )
    assert code == 0, err[-2000:]
    code, out, err = run_main(capsysbinary, "evaluate", str(model), "--test-file", test, "--json", "-")
    assert code == 0, err[-2000:]
    metrics, trained_on = json.loads(out), json.loads((model / "metrics.json").read_text())["test"]
    for key in ("exact_match", "micro_f1", "macro_f1"):
        assert metrics[key] == pytest.approx(trained_on[key], abs=1e-6), key
    assert metrics["rows"] == 200
    (tmp_path / "two.csv").write_text("text,spam,long,digits\nhi,0,2,0\n", encoding="utf-8")
    for args, message in (
        (
            ["--test-file", test, "--label-column", "spam"],
            "the model is multi-label with the labels spam, long, digits",
        ),
        (["--test-file", str(tmp_path / "two.csv")], "multi-label columns hold 0 or 1, but"),
    ):
        code, _, err = run_main(capsysbinary, "evaluate", str(model), *args)
        assert code == 2 and message in err, err[-1000:]
    code, _, err = run_main(
        capsysbinary,
        "evaluate",
        str(trained),
        "--test-file",
        test,
        "--label-column",
        "a",
        "--label-column",
        "b",
    )
    assert code == 2 and "--label-column is given 2 times (a, b), but the model is single-label" in err


def test_evaluate_and_predict_refuse_a_regression_model(tmp_path, capsysbinary):
    # evaluate: ("label 0.1 ... is not one of the model's labels (LABEL_0)"); predict printed
    # {"label": "LABEL_0", "score": 1.0} for every text (the softmax of one number), exit 0
    from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer

    tok = RNNTokenizer.train_from_iterator(["good film", "bad film"])
    config = RNNClassifierConfig(
        vocab_size=len(tok), pad_token_id=tok.pad_token_id, num_labels=1, problem_type="regression"
    )
    RNNClassifier(config).save_pretrained(tmp_path / "reg")
    tok.save_pretrained(tmp_path / "reg")
    (tmp_path / "scores.csv").write_text("text,label\ngood film,0.9\nbad film,0.1\n", encoding="utf-8")
    code, _, err = run_main(
        capsysbinary, "evaluate", str(tmp_path / "reg"), "--test-file", str(tmp_path / "scores.csv")
    )
    assert (
        code == 2
        and "is a regression model (a number per text, not classes); `rnn-textclf evaluate` works" in err
    )
    code, out, err = run_main(capsysbinary, "predict", str(tmp_path / "reg"), "good film")
    assert code == 2 and not out
    assert "`rnn-textclf predict` works with classifiers. Predict in Python: pipeline(" in err
    # three outputs; --onnx refuses it before exporting it (it logged an export to a folder then removed)
    config = RNNClassifierConfig(
        vocab_size=len(tok), pad_token_id=tok.pad_token_id, num_labels=3, problem_type="regression"
    )
    RNNClassifier(config).save_pretrained(tmp_path / "reg3")
    tok.save_pretrained(tmp_path / "reg3")
    code, out, err = run_main(capsysbinary, "predict", str(tmp_path / "reg3"), "good film", "--onnx")
    assert code == 2 and not out and "Exported" not in err
    assert "is a regression model (3 numbers per text, not classes)" in err


def test_evaluate_reads_labels_as_train_did(trained, tmp_path, capsysbinary):
    import datasets

    rows = sms_rows()[-200:]
    features = datasets.Features(
        {"label": datasets.ClassLabel(names=["ham", "spam"]), "text": datasets.Value("string")}
    )
    columns = {"label": [r["label"] for r in rows], "text": [r["text"] for r in rows]}
    datasets.Dataset.from_dict(columns, features=features).to_parquet(tmp_path / "named.parquet")
    plain = write_rows(tmp_path / "plain.csv", rows)
    # a ClassLabel column (train reads its names) scores as the same texts with the names written out
    code, named, err = run_main(
        capsysbinary, "evaluate", str(trained), "--test-file", str(tmp_path / "named.parquet"), "--json", "-"
    )
    assert code == 0, err[-2000:]
    code, written, err = run_main(
        capsysbinary, "evaluate", str(trained), "--test-file", str(plain), "--json", "-"
    )
    assert code == 0 and json.loads(named) == json.loads(written)
    # -1 (an unlabelled row), an empty label cell, an empty cell among class ids (floats then)
    datasets.Dataset.from_dict({**columns, "label": [-1] * len(rows)}, features=features).to_parquet(
        tmp_path / "unlabelled.parquet"
    )
    (tmp_path / "empty.csv").write_text(
        "label,text\nham,hello\n,win a prize\nspam,who knows\n", encoding="utf-8"
    )
    for name, message in (
        ("unlabelled.parquet", "has 200 rows without a class (label -1 in row 0; -1 marks an unlabelled row"),
        ("empty.csv", "--label-column 'label' has empty values in '"),
    ):
        code, _, err = run_main(capsysbinary, "evaluate", str(trained), "--test-file", str(tmp_path / name))
        assert code == 2 and message in err, (name, err)
    # --json into a missing folder: refused before the evaluation, not a traceback after it
    code, _, err = run_main(
        capsysbinary,
        "evaluate",
        str(trained),
        "--test-file",
        str(plain),
        "--json",
        str(tmp_path / "no" / "m.json"),
    )
    assert code == 2 and "its folder does not exist" in err


def test_predict_texts_after_options_and_a_byte_order_mark(trained, tmp_path, capsysbinary):
    code, before, err = run_main(
        capsysbinary, "predict", str(trained), "hello there", "win a prize", "--top-k", "2"
    )
    assert code == 0, err
    code, after, err = run_main(
        capsysbinary, "predict", str(trained), "--top-k", "2", "hello there", "win a prize"
    )
    assert code == 0 and after == before, err
    with pytest.raises(SystemExit):  # an unknown option still fails, with predict's usage
        run_main(capsysbinary, "predict", str(trained), "--top-k", "2", "hello", "--bogus")
    assert (
        "rnn-textclf predict: error: unrecognized arguments: --bogus"
        in capsysbinary.readouterr().err.decode()
    )
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffhello there\nwin a prize\n".encode())
    code, from_file, err = run_main(capsysbinary, "predict", str(trained), "--file", str(bom), "--top-k", "2")
    assert code == 0 and from_file == before, err  # the BOM is not part of the first text


def test_bad_input_files(trained, tmp_path, capsysbinary):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("fine\nalso fine\ncaf\xe9 au lait\n".encode("latin-1"))
    code, _, err = run_main(capsysbinary, "predict", str(trained), "--file", str(latin), "--quiet")
    assert code == 2 and f"--file {str(latin)!r}: line 3 is not UTF-8 text" in err and "iconv" in err
    broken = tmp_path / "cut.txt.gz"
    broken.write_bytes(gzip.compress(b"hello\n" * 1000)[:40])
    code, _, err = run_main(capsysbinary, "predict", str(trained), "--file", str(broken), "--quiet")
    assert code == 2 and f"could not read --file {str(broken)!r}" in err
    code, _, err = run_main(capsysbinary, "predict", str(trained), "--file", str(tmp_path / "nope.txt"))
    assert code == 2 and "nope.txt' does not exist" in err


def test_line_chunks_split_rules_and_ramp():
    from rnn_textclf.cli.predict import FIRST_CHUNK_SIZE, _line_chunks

    texts = ["café ☕ 1", "", "two\r", "naïve", *(f"line {i}" for i in range(1200)), "last"]
    data = ("\r\n".join(texts[:3]) + "\n" + "\n".join(texts[3:])).encode("utf-8")  # no final newline
    # Blocks of 5 bytes cut lines and multi-byte UTF-8 characters anywhere.
    blocks = iter([data[i : i + 5] for i in range(0, len(data), 5)])
    chunks = list(_line_chunks(lambda: next(blocks, b""), 300, source="test"))
    assert [line for chunk in chunks for line in chunk] == ["café ☕ 1", "", "two", *texts[3:]]
    # The first chunk is small (results come soon), then chunks double up to chunk_size.
    assert FIRST_CHUNK_SIZE == 256 and [len(chunk) for chunk in chunks] == [256, 300, 300, 300, 49]
    blocks = iter([b"a\n\n", b""])
    assert list(_line_chunks(lambda: next(blocks, b""), 10, source="test")) == [["a", ""]]


def test_progress_bar_only_on_a_terminal(monkeypatch):
    from rnn_textclf.cli._inference import _progress

    class Terminal:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stderr", Terminal(True))
    monkeypatch.setattr(sys, "stdout", Terminal(False))
    assert not _progress(False, "predict").disable
    assert _progress(True, "predict").disable  # --quiet
    monkeypatch.setattr(sys, "stdout", Terminal(True))  # results on the screen: no bar through them
    assert _progress(False, "predict").disable
    monkeypatch.setattr(sys, "stderr", Terminal(False))  # a log file
    monkeypatch.setattr(sys, "stdout", Terminal(False))
    assert _progress(False, "predict").disable


def test_predict_gives_a_multi_label_models_labels_over_the_threshold():
    # "label" is the top sigmoid even below 0.5; "labels" are the ones the text has (sigmoid >= 0.5)
    import torch

    from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer
    from rnn_textclf.cli._inference import predict_texts

    tokenizer = RNNTokenizer.train_from_iterator(["free prize now", "see you at lunch"])
    names = ["spam", "urgent", "social", "work"]
    config = RNNClassifierConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        embedding_dim=4,
        hidden_size=4,
        problem_type="multi_label_classification",
        id2label=dict(enumerate(names)),
    )
    model = RNNClassifier(config).eval()
    with torch.no_grad():  # the scores are the bias' sigmoids: 0.88, 0.12, 0.73, 0.38
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([2.0, -2.0, 1.0, -0.5]))
    rows = predict_texts(model, tokenizer, ["free prize", ""], top_k=1)
    assert [r["labels"] for r in rows] == [["spam", "social"]] * 2
    assert [(r["label"], len(r["top_k"])) for r in rows] == [("spam", 1)] * 2
    with torch.no_grad():
        model.classifier.bias.fill_(-1.0)  # no label reaches 0.5: none, though "label" names the top one
    (row,) = predict_texts(model, tokenizer, ["free prize"], top_k=2)
    assert row["labels"] == [] and row["score"] < 0.5 and len(row["top_k"]) == 2
    # single-label models have no "labels"
    single = RNNClassifier(
        RNNClassifierConfig(vocab_size=len(tokenizer), pad_token_id=0, embedding_dim=4, hidden_size=4)
    )
    assert "labels" not in predict_texts(single.eval(), tokenizer, ["free"])[0]


def test_predict_never_asks_on_stdin_to_run_the_folders_code(trained, tmp_path):
    # A config.json without model_type (tampered, or hand-edited) sent transformers' AutoTokenizer to its
    # auto_map, and its "run custom code? [y/N]" prompt read predict's texts: a first line "y" ran the
    # folder's configuration.py, other lines were eaten by the prompt (exit 0, no predictions).
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(trained, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["model_type"]
    assert "auto_map" in config
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "ran"
    code = (folder / "configuration.py").read_text()
    (folder / "configuration.py").write_text(
        f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')\n" + code
    )
    proc = run_cli("predict", str(folder), cwd=tmp_path, stdin=b"y\nfree prize now\n")
    assert not marker.exists()
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert [json.loads(line)["text"] for line in proc.stdout.decode().splitlines()] == ["y", "free prize now"]
    # a tokenizer with more tokens than the model's embedding: said at load, not a traceback at the first batch
    from rnn_textclf import RNNTokenizer

    RNNTokenizer.train_from_iterator([f"word{i}" for i in range(20000)]).save_pretrained(folder)
    proc = run_cli("predict", str(folder), "hello", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr.decode()
    assert "it is not the tokenizer the model was trained with" in proc.stderr.decode()


def test_nan_weights_are_named_at_load(trained, tmp_path, caplog):
    # A diverged run's weights loaded silently: predict printed "score": NaN (not JSON) and evaluate the
    # accuracy of always answering the first class.
    import logging
    import shutil

    import safetensors.torch

    from rnn_textclf import RNNClassifier

    folder = tmp_path / "nan"
    shutil.copytree(trained, folder)
    weights = safetensors.torch.load_file(folder / "model.safetensors")
    weights["classifier.weight"][0, 0] = float("nan")
    safetensors.torch.save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with caplog.at_level(logging.WARNING, logger="rnn_textclf.modeling"):
        model = RNNClassifier.from_pretrained(folder)
    assert model.non_finite_parameters() == ["classifier.weight"]
    assert "NaN or infinite weights in classifier.weight" in caplog.text
    proc = run_cli("predict", str(folder), "free prize", cwd=tmp_path)
    assert proc.returncode == 2 and not proc.stdout
    assert "has NaN or infinite weights (classifier.weight): its training diverged" in proc.stderr.decode()


def test_onnx_takes_the_cli_threads_and_an_int8_folder_says_it_runs_in_float(trained, tmp_path, capsysbinary):
    import argparse
    import shutil

    import torch

    from rnn_textclf import RNNClassifier, quantize_dynamic
    from rnn_textclf.cli._inference import _load_for_inference

    # --threads / OMP_NUM_THREADS reached torch only: onnxruntime started a thread per core
    torch.set_num_threads(1)  # (what the CLI's default sets; conftest puts the process's back)
    args = argparse.Namespace(model=str(trained), revision=None, quantize=False, onnx=True)
    onnx_model, _ = _load_for_inference(args, "predict", "")
    assert onnx_model.session.get_session_options().intra_op_num_threads == 1
    # a folder QuantizedRNNClassifier saved runs in float without --quantize: now said so
    folder = tmp_path / "int8"
    shutil.copytree(trained, folder)
    quantize_dynamic(RNNClassifier.from_pretrained(trained)).save_pretrained(folder)
    code, _out, err = run_main(capsysbinary, "predict", str(folder), "free prize")
    assert code == 0 and "saved from an int8 model" in err and "--quantize" in err, err[-2000:]
    code, _out, err = run_main(capsysbinary, "predict", str(folder), "free prize", "--quantize")
    assert code == 0 and "saved from an int8 model" not in err, err[-2000:]


def test_inputs_a_user_slips_on(trained, tmp_path, capsysbinary):
    # `--` after an option ended nothing ("unrecognized arguments: -- -great")
    code, out, err = run_main(
        capsysbinary, "predict", str(trained), "--top-k", "2", "--", "-5 degrees", "--quiet"
    )
    assert code == 0, err[-2000:]
    assert [json.loads(line)["text"] for line in out.decode().splitlines()] == ["-5 degrees", "--quiet"]
    with pytest.raises(SystemExit) as exit_info:  # (argparse's usage error)
        run_main(capsysbinary, "predict", str(trained), "-great")
    err = capsysbinary.readouterr().err.decode()
    assert exit_info.value.code == 2 and "(a text that starts with '-': put -- before it)" in err, err
    # a text argument that is not UTF-8 (argv's bytes as lone surrogates): a traceback at the output, exit 1
    code, out, err = run_main(capsysbinary, "predict", str(trained), "good", "caf\udce9")
    assert code == 2 and out == b"" and "text argument 2 is not UTF-8 text" in err, err[-2000:]
    # a typo of a local path that reads as a Hub repo id: said at once (~30 s of Hub retries offline)
    (tmp_path / "runs").mkdir()
    code, out, err = run_main(capsysbinary, "predict", str(tmp_path / "runs" / "modle"), "good")
    assert code == 2 and "has no 'modle'" in err and "huggingface.co" not in err, err[-2000:]
    # evaluate --json over the labelled data or the training run's metrics.json: the data was replaced
    rows = write_rows(tmp_path / "eval.csv", sms_rows()[-50:])
    data, metrics = rows.read_bytes(), (trained / "metrics.json").read_bytes()
    for target, message in (
        (rows, "is the --test-file"),
        (trained / "metrics.json", "would replace metrics.json"),
    ):
        code, out, err = run_main(
            capsysbinary, "evaluate", str(trained), "--test-file", str(rows), "--json", str(target)
        )
        assert code == 2 and message in err, err[-2000:]
    assert rows.read_bytes() == data and (trained / "metrics.json").read_bytes() == metrics


def test_a_full_disk_is_one_line(trained, tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            cli("predict", str(trained), "good film"),
            stdout=full,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=ENV,
            timeout=300,
        )
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.strip().splitlines() == [
        "rnn-textclf: error: could not write: No space left on device"
    ], err
