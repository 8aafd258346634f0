"""``rnn-textclf push``: upload a trained model folder to a Hub repo."""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path
from typing import Any

from ._common import EXIT_OK, CLIError, _info, _positive_int
from ._inference import _load_model_and_tokenizer


def _card_for_repo(card: str, repo: str) -> str:
    """The folder's generated card, retitled for ``repo``: its title and usage snippets name the repo.

    The name replaced is the card's own title (the training run's folder name), not the folder's name
    now: a folder renamed or copied since training kept snippets that loaded a folder nobody has.
    """
    from huggingface_hub import ModelCard

    title = re.search(r"^# (.+)$", ModelCard(card).text, re.MULTILINE)
    if title is None:
        return card
    folder_name = title.group(1).strip()
    name = repo.split("/")[-1]
    card = card.replace(f"\n# {folder_name}\n", f"\n# {name}\n", 1)
    card = card.replace(f"\nmodel-index:\n- name: {folder_name}\n", f"\nmodel-index:\n- name: {name}\n", 1)
    return card.replace(f'model="{folder_name}"', f'model="{repo}"').replace(
        f'from_pretrained("{folder_name}")', f'from_pretrained("{repo}")'
    )


def _push(
    folder: Path,
    repo: str,
    *,
    revision: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
) -> None:
    """Uploads the trained folder to ``repo`` in one commit: model, tokenizer, card, metrics.json, plots.

    The card ``train`` wrote (training data, hyperparameters, results) goes up retitled after the repo;
    a folder without an rnn-textclf card gets a new one. Pickled files are never uploaded: one found in
    the folder (e.g. ``training_args.bin`` of an older rnn-textclf) is named and left behind, as are
    hidden files.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, ModelCard

    from ..modelcard import GENERATED_MARKER, _is_replaceable, write_model_card
    from ..modeling import stale_weight_deletions
    from ..trainer import PICKLE_SUFFIXES

    if not folder.is_dir():
        raise CLIError(f"MODEL {str(folder)!r} is not a folder; pass the --output-dir of a training run.")
    model, _ = _load_model_and_tokenizer(str(folder))  # the folder must load before anything goes up
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    pickles = [p.name for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        _info(
            f"Not uploading {', '.join(pickles)}: pickled files are never pushed (loading one can run code); "
            "the model goes up as safetensors."
        )
    card_path = folder / "README.md"
    card = card_path.read_text(encoding="utf-8") if card_path.is_file() else ""
    api = HfApi()
    try:
        # first, as model.push_to_hub does: an unreachable Hub or a refused token fails here at once (the
        # card download below retries a connection for ~23 s before it gives up)
        api.create_repo(repo, exist_ok=True, private=private)
        if revision is not None:  # (as model.push_to_hub(revision=...): a new branch starts from main)
            api.create_branch(repo, branch=revision, exist_ok=True)
    except Exception as err:  # huggingface_hub raises many HTTP error types
        raise _push_error(repo, err) from None
    on_hub = _card_on_hub(repo, revision)
    if on_hub and not _is_replaceable(ModelCard(on_hub)):
        card = on_hub  # a card written on the Hub is kept, as model.push_to_hub keeps it
    tokenizer = folder if (folder / "tokenizer.json").is_file() else None
    if GENERATED_MARKER in card:
        card = _card_for_repo(card, repo)
    else:
        # a hand-written card keeps its text and gets the metadata every push adds (library_name,
        # pipeline_tag, license, tags); without one, a card is generated
        with tempfile.TemporaryDirectory() as tmp:
            if card:
                (Path(tmp) / "README.md").write_text(card, encoding="utf-8")
            card = str(write_model_card(model, tmp, tokenizer=tokenizer, repo_id=repo))
    operations = [
        CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p))
        for p in files
        if p.suffix.lower() not in PICKLE_SUFFIXES and p.name != "README.md"
    ]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")))
    try:
        # an earlier push's weight files that these do not replace go in the same commit (an old single
        # model.safetensors beside new shards is what from_pretrained would read)
        operations += stale_weight_deletions(api, repo, [op.path_in_repo for op in operations], revision)
        info = api.create_commit(
            repo,
            operations,
            commit_message=commit_message or f"Upload {folder.resolve().name} with rnn-textclf",
            revision=revision,
        )
    except Exception as err:  # huggingface_hub raises many HTTP error types
        raise _push_error(repo, err) from None
    print(f"Pushed {folder} to {repo}{f' (branch {revision})' if revision else ''} ({info.commit_url})")


def _push_error(repo: str, err: Exception) -> CLIError:
    """A failed push in one line, with the likely fix: a token for a refused one, the network for an
    unreached Hub, nothing where neither fits."""
    return CLIError(f"could not push to {repo!r}: {str(err).splitlines()[0]}{_push_hint(err)}")


def _push_hint(err: Exception) -> str:
    """The likely fix, in parentheses, closing a failed push's error line; "" where none is likely."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status in (401, 403):
        return " (is HF_TOKEN set to a token with write access? `hf auth login` stores one)"
    # httpx's (huggingface_hub >= 1) and requests' names for a server that was never reached
    if any(cls.__name__ in ("TransportError", "ConnectionError") for cls in type(err).__mro__):
        return " (no network, or a wrong HF_ENDPOINT?)"
    return ""


def _card_on_hub(repo: str, revision: str | None = None) -> str:
    """The repo's README.md on the Hub now ("" when there is none, as in a repo just created)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, "README.md", revision=revision)).read_text(encoding="utf-8")
    except Exception:  # no repo, no README, no network: there is no card to keep
        return ""


def cmd_push(args: argparse.Namespace) -> int:
    _push(
        Path(args.model),
        args.repo,
        revision=args.revision,
        private=args.private or None,
        commit_message=args.commit_message,
    )
    return EXIT_OK


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds ``push`` to the sub-command parsers."""
    push = sub.add_parser("push", help="upload a trained model folder to a Hub repo")
    push.add_argument("model", help="a model folder")
    push.add_argument("repo", help="the Hub repo id, e.g. acme/spam-lstm")
    push.add_argument("--revision", help="the branch to push to (created from main if missing)")
    push.add_argument(
        "--private",
        action="store_true",
        help="create the repo private (an existing repo keeps its visibility)",
    )
    push.add_argument("--commit-message", help="default: 'Upload FOLDER with rnn-textclf'")
    push.add_argument("--quiet", action="store_true")
    push.add_argument("--threads", type=_positive_int, help="torch threads (default 1, or OMP_NUM_THREADS)")
    push.set_defaults(func=cmd_push)
    return push
