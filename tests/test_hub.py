"""Hub round trips, revisions, offline cache, remote code, pipeline and bad input, against minihub.

huggingface_hub and transformers read HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE when they are first
imported, and this test process imported them long ago (other test files, conftest). So every Hub client
here runs in a fresh subprocess whose environment is set before the interpreter starts: each gets its own
HF_HOME (a fresh, empty cache) and the server's URL, and the remote-code check gets an interpreter in which
rnn_textclf cannot be imported at all. Setting the variables at the top of conftest.py instead would give
the whole session one cache and one endpoint, would depend on conftest being imported before anything
that imports huggingface_hub, and could not test a fresh cache, offline mode or a process without the
package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO = "acme/agnews-lstm"
LABELS = ["World", "Sports", "Business", "Sci/Tech"]
EXPECTED_FILES = {
    "README.md",
    "config.json",
    "model.safetensors",
    "configuration.py",
    "modeling.py",
    "tokenizer.json",
    "tokenizer_config.json",
}

# Shared by every script: the result is a JSON dict written to argv[1]; argv[2] holds JSON arguments.
PRELUDE = """
import csv, json, os, sys, traceback
from pathlib import Path

OUT = Path(sys.argv[1])
ARGS = json.loads(sys.argv[2])
RESULT = {}

def done():
    OUT.write_text(json.dumps(RESULT))

def error_of(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return None

def ag_news(start, stop):
    with open(ARGS["ag_news"], newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[start:stop]
    return [title + " " + description for _, title, description in rows], [int(c) - 1 for c, _, _ in rows]

def digest(model):
    import hashlib
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

def logits_of(model, tokenizer, texts):
    import torch
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits.tolist()
"""


@pytest.fixture(scope="module")
def ag_news_csv(shared_data: Path) -> Path:
    """The canonical AG News test CSV that the scripts read their rows from."""
    return shared_data / "ag_news_csv" / "test.csv"


def run_script(
    tmp_path: Path,
    endpoint: str,
    body: str,
    *,
    ag_news: Path,
    hf_home: Path | None = None,
    offline: bool = False,
    without_package: bool = False,
    args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs ``PRELUDE + body`` in a fresh interpreter talking to ``endpoint``; returns its RESULT dict."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(hf_home or tmp_path / "hf_home"),
        HF_TOKEN="hf_test_token",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        # transformers would ask the Hub's conversion Space (not on loopback) to convert a pickle checkpoint.
        DISABLE_SAFETENSORS_CONVERSION="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
    )
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    head = ""
    if without_package:
        # Must come first: nothing may import rnn_textclf, so the model code can only come from the repo.
        head = 'import sys\nsys.modules["rnn_textclf"] = None\n'
    script = head + PRELUDE + textwrap.dedent(body) + "\ndone()\n"
    out = tmp_path / f"result-{len(list(tmp_path.glob('result-*')))}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(out),
            json.dumps({"ag_news": str(ag_news), "repo": REPO, **(args or {})}),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"script failed:\n{proc.stderr[-5000:]}"
    return json.loads(out.read_text())


# ----------------------------------------------------------------------------------------------------
# Publishing: three versions of one model (main, tag v1, branch exp) plus a multi-label model
# ----------------------------------------------------------------------------------------------------
PUBLISH = """
import torch
from huggingface_hub import HfApi, ModelCard
from rnn_textclf import RNNClassifier, RNNClassifierConfig, RNNTokenizer

api = HfApi()
repo = ARGS["repo"]
train_texts, _ = ag_news(0, 600)
tokenizer = RNNTokenizer.train_from_iterator(train_texts, min_freq=2)
probe, _ = ag_news(1000, 1016)
probe += ["", "Stocks rally as the central bank holds rates steady."]
RESULT["probe"] = probe

def make_model(seed, **kwargs):
    torch.manual_seed(seed)
    config = RNNClassifierConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, embedding_dim=16, hidden_size=12,
        rnn_type="lstm", bidirectional=True, num_labels=4, initializer_range=0.5,
        id2label=dict(enumerate(ARGS["labels"])), label2id={l: i for i, l in enumerate(ARGS["labels"])},
        **kwargs,
    )
    return RNNClassifier(config).eval()

# v1: the model, then the tokenizer, as two pushes into the same repo; tagged "v1".
v1 = make_model(0)
v1.push_to_hub(repo)
RESULT["card_after_model_push"] = ModelCard.load(repo).content
sha_v1 = tokenizer.push_to_hub(repo).oid
api.create_tag(repo, tag="v1")
RESULT["logits_v1"] = logits_of(v1, tokenizer, probe)
RESULT["digest_v1"] = digest(v1)
# exp: a branch with other weights.
api.create_branch(repo, branch="exp")
exp = make_model(2)
exp.push_to_hub(repo, revision="exp")
RESULT["logits_exp"] = logits_of(exp, tokenizer, probe)
RESULT["digest_exp"] = digest(exp)
# main: new weights again.
v2 = make_model(1)
RESULT["sha_main"] = v2.push_to_hub(repo, model_card_info={"license": "cc-by-4.0", "metrics": {"accuracy": 0.25}}).oid
RESULT["logits_main"] = logits_of(v2, tokenizer, probe)
RESULT["digest_main"] = digest(v2)
RESULT["ids_main"] = tokenizer(probe)["input_ids"]
RESULT["sha_v1"] = sha_v1
RESULT["num_parameters"] = v2.num_parameters()
RESULT["vocab_size"] = len(tokenizer)

# Multi-label: model and tokenizer in one commit through push_to_hub(tokenizer=...).
multi = make_model(3, problem_type="multi_label_classification")
multi.push_to_hub("acme/agnews-multilabel", tokenizer=tokenizer)
RESULT["multi_files"] = sorted(api.list_repo_files("acme/agnews-multilabel"))
RESULT["logits_multi"] = logits_of(multi, tokenizer, probe)

# Tokenizer first: transformers' placeholder card is replaced by ours when the model follows.
tokenizer.push_to_hub("acme/tokenizer-first")
RESULT["placeholder_card"] = ModelCard.load("acme/tokenizer-first").content
v1.push_to_hub("acme/tokenizer-first")
RESULT["card_tokenizer_first"] = ModelCard.load("acme/tokenizer-first").content

# A hand-written card is kept; only its metadata is completed.
api.create_repo("acme/hand-written")
api.upload_file(path_or_fileobj=b"---\\nlicense: mit\\n---\\n# Mine\\n\\nWritten by hand.\\n", path_in_repo="README.md",
                repo_id="acme/hand-written")
v1.push_to_hub("acme/hand-written")
RESULT["hand_written_card"] = ModelCard.load("acme/hand-written").content

# RNNTrainer.push_to_hub: the card carries the Trainer's information and our metadata.
from transformers import TrainingArguments
from rnn_textclf import RNNTrainer
texts, labels = ag_news(0, 32)
data = [{**tokenizer(t), "labels": y} for t, y in zip(texts, labels)]
args = TrainingArguments(output_dir="trainer-out", hub_model_id="acme/trainer-pushed", max_steps=2,
                         per_device_train_batch_size=16, eval_strategy="steps", eval_steps=2, report_to=[],
                         save_strategy="no", use_cpu=True, disable_tqdm=True)
trainer = RNNTrainer(model=make_model(4), args=args, train_dataset=data, eval_dataset=data[:8],
                     processing_class=tokenizer)
trainer.train()
trainer.push_to_hub(license="cc-by-nc-4.0")
RESULT["trainer_files"] = sorted(api.list_repo_files("acme/trainer-pushed"))
RESULT["trainer_card"] = ModelCard.load("acme/trainer-pushed").content

# Pushes during training (hub_strategy="every_save") and at the end upload no pickle: not the
# training_args.bin Trainer writes before each push, not a pickle left in output_dir, not a checkpoint.
Path("every-save").mkdir()
Path("every-save/stray.pkl").write_bytes(b"a pickle by its name")
# ... and a sharded model pushed there before: its shards and index go with the first push (stale)
api.create_repo("acme/every-save")
make_model(6).save_pretrained("sharded-before", max_shard_size="20KB")
api.upload_folder(repo_id="acme/every-save", folder_path="sharded-before")
RESULT["every_save_before"] = sorted(api.list_repo_files("acme/every-save"))
args = TrainingArguments(output_dir="every-save", push_to_hub=True, hub_model_id="acme/every-save",
                         hub_strategy="every_save", save_strategy="steps", save_steps=1, max_steps=2,
                         per_device_train_batch_size=16, report_to=[], use_cpu=True, disable_tqdm=True)
trainer = RNNTrainer(model=make_model(5), args=args, train_dataset=data, processing_class=tokenizer)
trainer.train()
trainer.push_to_hub()
RESULT["every_save_files"] = sorted(api.list_repo_files("acme/every-save"))
RESULT["every_save_commits"] = [c.title for c in api.list_repo_commits("acme/every-save")]
during = next(c for c in api.list_repo_commits("acme/every-save") if c.title.startswith("Training in progress"))
RESULT["every_save_during"] = sorted(api.list_repo_files("acme/every-save", revision=during.commit_id))

# A model pushed in one file, then another in shards (and back): each push deletes the weight files it does
# not replace, so the repo serves the model pushed last (an old model.safetensors was read before shards)
reshard = {}
for step, (seed, shard) in enumerate([(7, None), (8, "20KB"), (9, None)]):
    model = make_model(seed)
    model.push_to_hub("acme/reshard", **({"max_shard_size": shard} if shard else {}))
    pulled = RNNClassifier.from_pretrained("acme/reshard", force_download=True).eval()
    reshard[step] = [sorted(f for f in api.list_repo_files("acme/reshard") if ".safetensors" in f),
                     digest(pulled) == digest(model)]
RESULT["reshard"] = reshard
RESULT["every_save_local"] = sorted(str(p.relative_to("every-save")) for p in Path("every-save").rglob("*"))

# One model pushed from two threads at once, each push with its own tokenizer (the push's tokenizer was kept
# on the model: a repo got the other push's tokenizer, and a thread crashed on the shared attribute)
import threading
small = RNNTokenizer.train_from_iterator(train_texts[:40], min_freq=1)
both, pushed = threading.Barrier(2), {}
def push_with(repo_id, tok):
    both.wait()
    try:
        v2.push_to_hub(repo_id, tokenizer=tok)
        pushed[repo_id] = len(RNNTokenizer.from_pretrained(repo_id))
    except Exception as err:
        pushed[repo_id] = repr(err)
threads = [threading.Thread(target=push_with, args=("acme/threads-big", tokenizer)),
           threading.Thread(target=push_with, args=("acme/threads-small", small))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
RESULT["threads"] = [pushed, len(tokenizer), len(small)]

# save_pretrained(push_to_hub=True) pushes to the repo named after the folder (or repo_id=...).
v1.save_pretrained(Path("acme-saved"), push_to_hub=True, repo_id="acme/saved-and-pushed")
RESULT["saved_and_pushed"] = sorted(api.list_repo_files("acme/saved-and-pushed"))
# ... with push_to_hub's options: a revision left behind used to push to main
api.create_branch("acme/saved-and-pushed", branch="exp")
main_commits = len(api.list_repo_commits("acme/saved-and-pushed"))
v2.save_pretrained(Path("acme-saved-exp"), push_to_hub=True, repo_id="acme/saved-and-pushed", revision="exp",
                   tags=["experiment"])
RESULT["saved_branch"] = [len(api.list_repo_commits("acme/saved-and-pushed")) - main_commits,
                          len(api.list_repo_commits("acme/saved-and-pushed", revision="exp")) - main_commits,
                          "experiment" in ModelCard.load(api.hf_hub_download("acme/saved-and-pushed", "README.md",
                                                                        revision="exp")).data.tags]
"""


@pytest.fixture(scope="module")
def published(minihub: str, ag_news_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("publish")
    return run_script(tmp, minihub, PUBLISH, ag_news=ag_news_csv, args={"labels": LABELS})


def test_push_writes_one_complete_repo_with_our_card(
    minihub: str, ag_news_csv: Path, published: dict[str, Any], tmp_path: Path
):
    # The card the model push wrote before the tokenizer existed in the repo.
    first = published["card_after_model_push"]
    assert "library_name: rnn-textclf" in first and "pipeline_tag: text-classification" in first
    assert "placeholder" not in first and "This is the model card of a 🤗 transformers model" not in first
    assert f'pipeline("text-classification", model="{REPO}")' in first
    # The later push read the tokenizer already in the repo and described it.
    result = run_script(
        tmp_path,
        minihub,
        """
        from huggingface_hub import HfApi, ModelCard, hf_hub_download
        api = HfApi()
        RESULT["files"] = sorted(api.list_repo_files(ARGS["repo"]))
        RESULT["config"] = json.loads(Path(hf_hub_download(ARGS["repo"], "config.json")).read_text())
        card = ModelCard.load(ARGS["repo"])
        RESULT["card_data"] = card.data.to_dict()
        RESULT["card"] = card.text
        """,
        ag_news=ag_news_csv,
    )
    assert set(result["files"]) >= EXPECTED_FILES
    assert not {"pytorch_model.bin", "model.safetensors.index.json"} & set(result["files"])
    config = result["config"]
    assert config["model_type"] == "rnn_textclf"
    assert config["auto_map"] == {
        "AutoConfig": "configuration.RNNClassifierConfig",
        "AutoModelForSequenceClassification": "modeling.RNNClassifier",
        "AutoModel": "modeling.RNNClassifier",
    }
    assert config["id2label"] == {str(i): label for i, label in enumerate(LABELS)}
    data = result["card_data"]
    assert data["library_name"] == "rnn-textclf"
    assert data["pipeline_tag"] == "text-classification"
    assert data["license"] == "cc-by-4.0"
    assert data["metrics"] == ["accuracy"]
    assert "rnn-textclf" in data["tags"]
    card = result["card"]
    assert f"| Parameters | {published['num_parameters']:,} |" in card
    assert f"| Vocabulary size | {published['vocab_size']:,} |" in card
    assert "| Rules | torchtext `basic_english`: lowercase;" in card
    assert "| Recurrent cell | bidirectional LSTM |" in card
    assert "| accuracy | 0.2500 |" in card


def test_a_push_deletes_the_weight_files_it_does_not_replace(published: dict[str, Any]):
    single, sharded, again = (published["reshard"][str(step)] for step in range(3))
    assert single == [["model.safetensors"], True]
    assert sharded[1] and "model.safetensors" not in sharded[0], sharded
    assert "model.safetensors.index.json" in sharded[0] and len(sharded[0]) >= 3, sharded
    assert again == [["model.safetensors"], True]


def test_one_model_pushed_from_two_threads_gets_each_push_its_own_tokenizer(published: dict[str, Any]):
    pushed, big, small = published["threads"]
    assert big != small
    assert pushed == {"acme/threads-big": big, "acme/threads-small": small}


def test_card_rules_on_the_hub(published: dict[str, Any]):
    assert "library_name: transformers" in published["placeholder_card"]
    replaced = published["card_tokenizer_first"]
    assert "library_name: rnn-textclf" in replaced
    assert "This is the model card of a 🤗 transformers model" not in replaced
    assert f"| Vocabulary size | {published['vocab_size']:,} |" in replaced  # read from the repo's tokenizer
    kept = published["hand_written_card"]
    assert "# Mine\n\nWritten by hand." in kept
    assert "license: mit" in kept and "library_name: rnn-textclf" in kept
    assert "pipeline_tag: text-classification" in kept
    assert "Model details" not in kept
    trainer_card = published["trainer_card"]
    assert "library_name: rnn-textclf" in trainer_card and "pipeline_tag: text-classification" in trainer_card
    assert "license: cc-by-nc-4.0" in trainer_card and "generated_from_trainer" in trainer_card
    assert "### Training results" in trainer_card and "| learning_rate |" in trainer_card
    assert "| Rules | torchtext `basic_english`" in trainer_card
    assert set(published["trainer_files"]) >= EXPECTED_FILES
    for files in (published["trainer_files"], published["every_save_files"]):
        assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle"))], files
        assert not [f for f in files if f.startswith(("checkpoint-", "last-checkpoint"))], files
    assert set(published["every_save_files"]) >= EXPECTED_FILES | {"training_args.json"}
    # a commit made during training loads with trust_remote_code: auto_map's code files are in it
    assert {"configuration.py", "modeling.py", "config.json", "model.safetensors"} <= set(
        published["every_save_during"]
    )
    # the shards pushed before training were replaced, not left beside the new single file
    assert "model-00001-of-00002.safetensors" in published["every_save_before"]
    for files in (published["every_save_during"], published["every_save_files"]):
        assert [f for f in files if ".safetensors" in f] == ["model.safetensors"], files
    # Both saves during training were pushed, then the end of training.
    commits = published["every_save_commits"]
    assert sum(c.startswith("Training in progress") for c in commits) >= 1 and "End of training" in commits, (
        commits
    )
    # The checkpoints stay local, pickles and all; output_dir itself holds the arguments as JSON only.
    local = published["every_save_local"]
    assert "checkpoint-2/optimizer.pt" in local and "training_args.bin" not in local, local
    # save_pretrained(push_to_hub=True) pushed the saved folder's files to the named repo.
    assert {"config.json", "model.safetensors", "README.md"} <= set(published["saved_and_pushed"])
    assert published["saved_branch"] == [0, 1, True]  # main untouched; one commit on exp, with the tag
    assert {"tokenizer.json", "model.safetensors", "README.md"} <= set(published["multi_files"])


# ----------------------------------------------------------------------------------------------------
# Pulling with a fresh cache: main, a tag, a branch and a commit sha; then offline from that cache
# ----------------------------------------------------------------------------------------------------
PULL = """
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from rnn_textclf import RNNClassifier

repo, probe = ARGS["repo"], ARGS["probe"]
tokenizer = AutoTokenizer.from_pretrained(repo)
RESULT["tokenizer_class"] = type(tokenizer).__name__
for name, revision in [("main", None), ("v1", "v1"), ("exp", "exp"), ("sha_v1", ARGS["sha_v1"])]:
    model = RNNClassifier.from_pretrained(repo, revision=revision).eval()
    RESULT[name] = logits_of(model, tokenizer, probe)
    RESULT["digest_" + name] = digest(model)
auto = AutoModelForSequenceClassification.from_pretrained(repo).eval()
RESULT["auto_class"] = f"{type(auto).__module__}.{type(auto).__name__}"
RESULT["auto"] = logits_of(auto, tokenizer, probe)
RESULT["digest_auto"] = digest(auto)
RESULT["ids"] = tokenizer(probe)["input_ids"]
RESULT["v1_tokenizer"] = logits_of(auto, AutoTokenizer.from_pretrained(repo, revision="v1"), probe)
"""


@pytest.fixture(scope="module")
def pulled(
    minihub: str, ag_news_csv: Path, published: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
):
    tmp = tmp_path_factory.mktemp("pull")
    hf_home = tmp / "hf_home"
    args = {"probe": published["probe"], "sha_v1": published["sha_v1"]}
    return run_script(tmp, minihub, PULL, ag_news=ag_news_csv, hf_home=hf_home, args=args), hf_home


def same_logits(got: list[list[float]], expected: list[list[float]]) -> None:
    """Same weights and ids give the same logits; allow float32 rounding between processes."""
    assert len(got) == len(expected)
    for row_got, row_expected in zip(got, expected, strict=True):
        assert row_got == pytest.approx(row_expected, rel=0, abs=1e-6)


def test_round_trip_with_a_fresh_cache_gives_identical_weights_and_logits(published, pulled):
    result, _ = pulled
    assert result["ids"] == published["ids_main"]  # the pulled tokenizer gives the same ids
    assert result["digest_main"] == result["digest_auto"] == published["digest_main"]  # bit-identical weights
    same_logits(result["main"], published["logits_main"])
    same_logits(result["auto"], published["logits_main"])
    assert result["auto_class"] == "rnn_textclf.modeling.RNNClassifier"  # installed package, no remote code
    assert result["tokenizer_class"] == "RNNTokenizer"
    same_logits(result["v1_tokenizer"], published["logits_main"])  # same tokenizer at the tag


def test_tag_branch_and_sha_give_that_versions_weights(published, pulled):
    result, _ = pulled
    assert result["digest_v1"] == result["digest_sha_v1"] == published["digest_v1"]
    assert result["digest_exp"] == published["digest_exp"]
    assert len({published["digest_v1"], published["digest_main"], published["digest_exp"]}) == 3
    same_logits(result["v1"], published["logits_v1"])
    same_logits(result["sha_v1"], published["logits_v1"])
    same_logits(result["exp"], published["logits_exp"])


def test_offline_reload_from_the_cache(tmp_path: Path, ag_news_csv: Path, published, pulled):
    _, hf_home = pulled
    # Offline and with the server's address unreachable: everything must come from the cache.
    result = run_script(
        tmp_path,
        "http://127.0.0.1:9",
        """
        from transformers import AutoTokenizer, pipeline
        from rnn_textclf import RNNClassifier
        repo, probe = ARGS["repo"], ARGS["probe"]
        tokenizer = AutoTokenizer.from_pretrained(repo)
        main = RNNClassifier.from_pretrained(repo).eval()
        v1 = RNNClassifier.from_pretrained(repo, revision="v1").eval()
        RESULT["digests"] = [digest(main), digest(v1)]
        RESULT["main"] = logits_of(main, tokenizer, probe)
        RESULT["pipeline"] = pipeline("text-classification", model=repo)(probe[:2])
        RESULT["uncached"] = error_of(RNNClassifier.from_pretrained, "acme/agnews-multilabel")
        """,
        hf_home=hf_home,
        offline=True,
        args={"probe": published["probe"]},
        ag_news=ag_news_csv,
    )
    assert result["digests"] == [published["digest_main"], published["digest_v1"]]
    same_logits(result["main"], published["logits_main"])
    assert [r["label"] for r in result["pipeline"]] == [
        LABELS[max(range(4), key=row.__getitem__)] for row in published["logits_main"][:2]
    ]
    assert result["uncached"] is not None and "offline" in result["uncached"].lower()


# ----------------------------------------------------------------------------------------------------
# Remote code in a process where rnn_textclf cannot be imported
# ----------------------------------------------------------------------------------------------------
def test_remote_code_only_with_trust_remote_code(minihub: str, tmp_path: Path, ag_news_csv: Path, published):
    result = run_script(
        tmp_path,
        minihub,
        """
        RESULT["import_error"] = error_of(__import__, "rnn_textclf")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
        repo, probe = ARGS["repo"], ARGS["probe"]
        RESULT["untrusted"] = error_of(AutoModelForSequenceClassification.from_pretrained, repo)
        RESULT["untrusted_pipeline"] = error_of(pipeline, "text-classification", model=repo)
        model = AutoModelForSequenceClassification.from_pretrained(repo, trust_remote_code=True).eval()
        tokenizer = AutoTokenizer.from_pretrained(repo)
        RESULT["tokenizer_class"] = type(tokenizer).__name__
        RESULT["ids"] = tokenizer(probe)["input_ids"]
        RESULT["module"] = type(model).__module__
        RESULT["logits"] = logits_of(model, tokenizer, probe)
        RESULT["digest"] = digest(model)
        clf = pipeline("text-classification", model=repo, trust_remote_code=True)
        RESULT["pipeline"] = clf(probe, top_k=None, batch_size=4)
        RESULT["loaded_modules"] = sorted(m for m in sys.modules if m.startswith("rnn_textclf"))
        """,
        without_package=True,
        args={"probe": published["probe"]},
        ag_news=ag_news_csv,
    )
    assert result["import_error"].startswith(("ModuleNotFoundError", "ImportError"))
    for key in ("untrusted", "untrusted_pipeline"):
        assert "contains custom code which must be executed" in result[key]
        assert "trust_remote_code=True" in result[key]
    assert result["module"].startswith("transformers_modules.")
    # tokenizer.json is self-describing: the generic fast tokenizer gives the same ids.
    assert result["tokenizer_class"] in ("TokenizersBackend", "PreTrainedTokenizerFast")
    assert result["ids"] == published["ids_main"]
    assert result["digest"] == published["digest_main"]
    same_logits(result["logits"], published["logits_main"])
    for row, scores in zip(published["logits_main"], result["pipeline"], strict=True):
        assert by_label(scores) == pytest.approx(per_label(softmax(row)), abs=1e-6)
    assert result["loaded_modules"] == ["rnn_textclf"]  # only the blocked entry, never the package


def softmax(row: list[float]) -> list[float]:
    import math

    top = max(row)
    exps = [math.exp(x - top) for x in row]
    return [e / sum(exps) for e in exps]


def by_label(scores: list[dict[str, Any]]) -> dict[str, float]:
    return {s["label"]: s["score"] for s in scores}


def per_label(values: list[float]) -> dict[str, float]:
    return dict(zip(LABELS, values, strict=True))


def sigmoid(x: float) -> float:
    import math

    return 1.0 / (1.0 + math.exp(-x))


# ----------------------------------------------------------------------------------------------------
# pipeline("text-classification") with rnn_textclf installed
# ----------------------------------------------------------------------------------------------------
def test_pipeline_on_ag_news_matches_the_model(minihub: str, tmp_path: Path, ag_news_csv: Path, published):
    result = run_script(
        tmp_path,
        minihub,
        """
        import torch
        from transformers import AutoTokenizer, pipeline
        from rnn_textclf import RNNClassifier
        repo = ARGS["repo"]
        texts, _ = ag_news(2000, 2064)
        RESULT["texts"] = len(texts)
        tokenizer = AutoTokenizer.from_pretrained(repo)
        model = RNNClassifier.from_pretrained(repo).eval()
        RESULT["encoded_keys"] = sorted(tokenizer(["a b", ""], padding=True).keys())
        RESULT["padding_side"] = tokenizer.padding_side
        RESULT["logits"] = logits_of(model, tokenizer, texts)
        RESULT["logits_empty"] = logits_of(model, tokenizer, ["", "x"])
        clf = pipeline("text-classification", model=repo)
        RESULT["pipeline_model_class"] = type(clf.model).__name__
        RESULT["top1"] = clf(texts, batch_size=16)
        RESULT["top1_unbatched"] = clf(texts[:8])
        RESULT["top2"] = clf(texts[:8], top_k=2, batch_size=3)
        RESULT["all"] = clf(texts[:4], top_k=None)
        RESULT["none"] = clf(texts[:4], top_k=None, function_to_apply="none")
        RESULT["sigmoid"] = clf(texts[:4], top_k=None, function_to_apply="sigmoid")
        RESULT["empty"] = clf(["", "x", ""], batch_size=2)
        RESULT["empty_single"] = clf("")
        multi = pipeline("text-classification", model="acme/agnews-multilabel")
        RESULT["multi"] = multi(ARGS["probe"][:3], top_k=None)
        if torch.cuda.is_available():
            RESULT["gpu"] = pipeline("text-classification", model=repo, device=0)(texts, batch_size=16)
        """,
        args={"probe": published["probe"]},
        ag_news=ag_news_csv,
    )
    assert result["texts"] == 64
    assert result["encoded_keys"] == ["attention_mask", "input_ids"]  # no token_type_ids for forward()
    assert result["padding_side"] == "right"
    assert result["pipeline_model_class"] == "RNNClassifier"
    expected = [LABELS[max(range(4), key=row.__getitem__)] for row in result["logits"]]
    assert len(set(expected)) > 1  # the check means something only if the model predicts several labels
    assert [r["label"] for r in result["top1"]] == expected
    for row, r in zip(result["logits"], result["top1"], strict=True):
        assert r["score"] == pytest.approx(max(softmax(row)), abs=1e-6)
    # Batching (padding to the longest text in the batch) changes nothing.
    assert [r["label"] for r in result["top1_unbatched"]] == expected[:8]
    assert [r["score"] for r in result["top1_unbatched"]] == pytest.approx(
        [r["score"] for r in result["top1"][:8]], abs=1e-6
    )
    for row, top2 in zip(result["logits"][:8], result["top2"], strict=True):
        probs = softmax(row)
        order = sorted(range(4), key=lambda i: -probs[i])[:2]
        assert [s["label"] for s in top2] == [LABELS[i] for i in order]
        assert [s["score"] for s in top2] == pytest.approx([probs[i] for i in order], abs=1e-6)
    rows = result["logits"][:4]
    for row, all_scores, raw, sig in zip(rows, result["all"], result["none"], result["sigmoid"], strict=True):
        assert by_label(all_scores) == pytest.approx(per_label(softmax(row)), abs=1e-6)
        assert by_label(raw) == pytest.approx(per_label(row), abs=1e-5)
        assert by_label(sig) == pytest.approx(per_label([sigmoid(x) for x in row]), abs=1e-6)
    # Empty strings: the model's prior (logits = classifier bias), no crash, batched or not.
    empty_probs = softmax(result["logits_empty"][0])
    for r in (result["empty"][0], result["empty"][2], result["empty_single"][0]):
        assert r["score"] == pytest.approx(max(empty_probs), abs=1e-6)
    assert result["empty"][1]["score"] == pytest.approx(max(softmax(result["logits_empty"][1])), abs=1e-6)
    # Multi-label (problem_type): independent sigmoid scores, not a softmax.
    for row, scores in zip(published["logits_multi"][:3], result["multi"], strict=True):
        assert by_label(scores) == pytest.approx(per_label([sigmoid(x) for x in row]), abs=1e-6)
    assert sum(s["score"] for s in result["multi"][0]) != pytest.approx(1.0, abs=1e-3)
    if "gpu" in result:
        assert [r["label"] for r in result["gpu"]] == expected


# ----------------------------------------------------------------------------------------------------
# Bad input: clear errors
# ----------------------------------------------------------------------------------------------------
BAD = """
import json, tempfile
import torch
from huggingface_hub import HfApi
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, pipeline
from rnn_textclf import RNNClassifier, RNNClassifierConfig

api = HfApi()
repo = ARGS["repo"]
RESULT["unknown_repo"] = error_of(RNNClassifier.from_pretrained, "acme/no-such-model")
RESULT["unknown_repo_pipeline"] = error_of(pipeline, "text-classification", model="acme/no-such-model")
RESULT["unknown_revision"] = error_of(RNNClassifier.from_pretrained, repo, revision="no-such-branch")

small = RNNClassifier(RNNClassifierConfig(vocab_size=20, embedding_dim=4, hidden_size=3, num_labels=2))

# Only a pickle checkpoint: refused by RNNClassifier, the Auto class and the pipeline alike.
folder = Path(tempfile.mkdtemp())
small.config.save_pretrained(folder)
torch.save(small.state_dict(), folder / "pytorch_model.bin")
api.create_repo("acme/pickle-only")
api.upload_folder(folder_path=folder, repo_id="acme/pickle-only")
RESULT["pickle"] = error_of(RNNClassifier.from_pretrained, "acme/pickle-only")
RESULT["pickle_auto"] = error_of(AutoModelForSequenceClassification.from_pretrained, "acme/pickle-only")
RESULT["pickle_local"] = error_of(RNNClassifier.from_pretrained, folder)

# Another kind of model.
folder = Path(tempfile.mkdtemp())
BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8).save_pretrained(folder)
api.create_repo("acme/a-bert")
api.upload_folder(folder_path=folder, repo_id="acme/a-bert")
RESULT["other_model"] = error_of(RNNClassifier.from_pretrained, "acme/a-bert")

# A config with an unknown rnn_type (hand-edited, or from a newer version).
folder = Path(tempfile.mkdtemp())
small.save_pretrained(folder)
config = json.loads((folder / "config.json").read_text())
config["rnn_type"] = "transformer"
(folder / "config.json").write_text(json.dumps(config))
api.create_repo("acme/bad-rnn-type")
api.upload_folder(folder_path=folder, repo_id="acme/bad-rnn-type")
RESULT["bad_rnn_type"] = error_of(RNNClassifier.from_pretrained, "acme/bad-rnn-type")
RESULT["bad_rnn_type_auto"] = error_of(AutoModelForSequenceClassification.from_pretrained, "acme/bad-rnn-type")

# A model pushed without its tokenizer.
small.push_to_hub("acme/no-tokenizer")
RESULT["no_tokenizer"] = error_of(AutoTokenizer.from_pretrained, "acme/no-tokenizer")
RESULT["no_tokenizer_pipeline"] = error_of(pipeline, "text-classification", model="acme/no-tokenizer")

# Weights without their config.json (transformers builds a default config, which they do not fit).
folder = Path(tempfile.mkdtemp())
small.save_pretrained(folder)
(folder / "config.json").unlink()
api.create_repo("acme/no-config")
api.upload_folder(folder_path=folder, repo_id="acme/no-config")
RESULT["no_config"] = error_of(RNNClassifier.from_pretrained, "acme/no-config")
# Offline, a repo never downloaded: named, with the setting (transformers blamed the network).
from huggingface_hub import constants, hf_hub_download
small.push_to_hub("acme/partly-cached")
hf_hub_download("acme/partly-cached", "config.json")  # the config in the cache, not the weights
constants.HF_HUB_OFFLINE = True
RESULT["offline_uncached"] = error_of(RNNClassifier.from_pretrained, "acme/never-downloaded")
RESULT["offline_partly"] = error_of(RNNClassifier.from_pretrained, "acme/partly-cached")
RESULT["offline_revision"] = error_of(RNNClassifier.from_pretrained, "acme/partly-cached", revision="v9")
constants.HF_HUB_OFFLINE = False
RESULT["local_only_uncached"] = error_of(RNNClassifier.from_pretrained, "acme/no-config", local_files_only=True)
"""


def test_bad_input_gives_clear_errors(minihub: str, tmp_path: Path, ag_news_csv: Path, published):
    result = run_script(tmp_path, minihub, BAD, ag_news=ag_news_csv)
    assert result["no_config"].startswith(
        "OSError: 'acme/no-config' has no config.json: it is not a saved model repo"
    ), result["no_config"]
    assert result["offline_uncached"].startswith(
        "OSError: 'acme/never-downloaded' is not in the local Hub cache (or only in part) and HF_HUB_OFFLINE is "
        "set, so it was not downloaded. Load it once online (or without that setting), or pass a folder that "
        "holds it."
    )
    # (it said the repo holds no model.safetensors, which it does: only the cache lacks it)
    assert result["offline_partly"].startswith("OSError: 'acme/partly-cached' is not in the local Hub cache")
    assert result["offline_revision"].startswith(
        "OSError: 'acme/partly-cached' (revision 'v9') is not in the local Hub cache"
    )
    assert result["local_only_uncached"].startswith(
        "OSError: 'acme/no-config' is not in the local Hub cache (or only in part) and local_files_only=True"
    ), result["local_only_uncached"]
    assert result["unknown_repo"] == (
        "OSError: acme/no-such-model is not a local folder and is not a valid model identifier listed on "
        "'https://huggingface.co/models'\nIf this is a private repository, make sure to pass a token having "
        "permission to this repo either by logging in with `hf auth login` or by passing `token=<your_token>`"
    )
    assert (
        "acme/no-such-model is not a local folder and is not a valid model identifier"
        in (result["unknown_repo_pipeline"])
    )
    assert result["unknown_revision"].startswith(
        "OSError: no-such-branch is not a valid git identifier (branch name, tag name or commit id) that exists "
        "for this model name."
    )
    for key in ("pickle", "pickle_auto"):
        message = result[key]
        assert message.startswith(
            "OSError: Cannot load weights from 'acme/pickle-only': it holds only a pickle checkpoint "
            "(pytorch_model.bin). rnn-textclf loads weights from safetensors only"
        ), message
        assert "use_safetensors=False).save_pretrained(folder)" in message
    assert "it holds only a pickle checkpoint (pytorch_model.bin)" in result["pickle_local"]
    assert result["other_model"] == (
        "InvalidConfigError: 'acme/a-bert' is not an rnn-textclf model: its config.json has model_type='bert', "
        "not 'rnn_textclf'. Load it with transformers.AutoModelForSequenceClassification.from_pretrained (or the "
        "class made for 'bert'), or pass the path or repo id of a checkpoint saved by RNNClassifier."
    )
    assert result["bad_rnn_type"] == (
        "InvalidConfigError: The config.json of 'acme/bad-rnn-type' is not a valid rnn-textclf config: `rnn_type` "
        "must be one of 'rnn', 'lstm', 'gru', got 'transformer'. Fix that field in config.json, or upgrade "
        "rnn-textclf if a newer version saved it."
    )
    assert "`rnn_type` must be one of 'rnn', 'lstm', 'gru', got 'transformer'" in result["bad_rnn_type_auto"]
    for key in ("no_tokenizer", "no_tokenizer_pipeline"):
        assert result[key] == (
            "OSError: 'acme/no-tokenizer' has no tokenizer: tokenizer.json is missing. An rnn-textclf model needs "
            "the tokenizer it was trained with: save it beside the model (tokenizer.save_pretrained(folder)), "
            "push it to the repo (tokenizer.push_to_hub(repo), or model.push_to_hub(repo, tokenizer=tokenizer)), "
            "or pass the tokenizer itself, e.g. pipeline(..., tokenizer=tokenizer)."
        )
