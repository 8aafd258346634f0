"""The recurrent text classifier: a ``transformers`` ``PreTrainedModel`` over packed sequences.

This file imports only ``torch``, ``transformers`` and (relatively) the configuration, because
``save_pretrained`` copies both files next to the weights for ``trust_remote_code=True`` loading on a
machine where rnn-textclf is not installed.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration import InvalidConfigError, RNNClassifierConfig

logger = logging.getLogger(__name__)

#: Present in a model folder while ``save_pretrained`` moves its files in; left by a save that was killed
#: then, when the folder may hold files of two saves (``from_pretrained`` refuses it).
SAVING_MARKER = ".rnn-textclf-saving"

# The tokenizer and card info of the push_to_hub call under way in this thread, for its
# _upload_modified_files (an attribute on the model was shared by two threads pushing it at once).
_PUSH_EXTRAS: contextvars.ContextVar[tuple[Any, dict[str, Any]]] = contextvars.ContextVar(
    "rnn_textclf_push_extras", default=(None, {})
)


@contextlib.contextmanager
def _folder_lock(folder: Path, *, exclusive: bool) -> Iterator[None]:
    """An advisory lock on the folder itself (``flock`` on its descriptor, no lock file): ``save_pretrained``
    holds it exclusively while it moves files in, ``from_pretrained`` shared while it reads a local folder,
    so a load never gets the config of one save with the weights of another, and two saves into one folder
    do not interleave. Where folders cannot be locked (Windows, some network file systems) nothing is."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        fd = None
    if fd is None:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # (releases the lock)


_WEIGHT_FILE = re.compile(r"^(model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin)(\.index\.json)?$")
_RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def stale_weight_files(repo_files: Iterable[str], uploaded: Iterable[str], folder: str = "") -> list[str]:
    """The weight files of a Hub repo (``model.safetensors``, its shards and index, ``pytorch_model*.bin``)
    in ``folder`` that an upload of ``uploaded`` (paths in the repo) does not replace; none when the upload
    holds no weight file.

    A push only adds files: left there, an earlier push's single ``model.safetensors`` is what
    ``from_pretrained`` reads before the new shards (the old model, silently). Pushes delete them in the
    same commit, as ``save_pretrained`` removes stale weight files from a folder.
    """
    prefix = folder.strip("/") + "/" if folder.strip("/.") else ""
    kept = set(uploaded)
    if not any(f.startswith(prefix) and _WEIGHT_FILE.match(f[len(prefix) :]) for f in kept):
        return []  # an upload without weights (a tokenizer, a card) replaces none
    return sorted(
        f
        for f in repo_files
        if f.startswith(prefix) and _WEIGHT_FILE.match(f[len(prefix) :]) and f not in kept
    )


def repo_files(api: Any, repo_id: str, revision: str | None = None, token: Any = None) -> list[str]:
    """The files of a Hub repo at ``revision``; none for a repo or branch that does not exist yet."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return list(api.list_repo_files(repo_id, revision=revision, token=token))
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return []


def stale_weight_deletions(
    api: Any, repo_id: str, uploaded: Iterable[str], revision: str | None = None, token: Any = None
) -> list[Any]:
    """``CommitOperationDelete`` s, for one commit with an upload of ``uploaded``, of the repo's weight
    files at ``revision`` that it does not replace (`stale_weight_files`)."""
    from huggingface_hub import CommitOperationDelete

    files = repo_files(api, repo_id, revision, token)
    return [CommitOperationDelete(path_in_repo=f) for f in stale_weight_files(files, uploaded)]


def _offline_reason(kwargs: dict[str, Any]) -> str | None:
    """Why ``from_pretrained`` may not download (``local_files_only=True``, ``HF_HUB_OFFLINE``), or None."""
    if kwargs.get("local_files_only"):
        return "local_files_only=True"
    from huggingface_hub import constants

    return "HF_HUB_OFFLINE is set" if constants.is_offline_mode() else None


def _repo_has_config(repo_id: str, kwargs: dict[str, Any]) -> bool:
    """Whether a Hub repo holds config.json (``subfolder``, ``revision`` as given); True when unsure."""
    from huggingface_hub import file_exists

    subfolder = kwargs.get("subfolder") or ""
    try:
        return file_exists(
            repo_id,
            f"{subfolder}/config.json" if subfolder else "config.json",
            revision=kwargs.get("revision"),
            token=kwargs.get("token"),
        )
    except Exception:  # (no network, a private repo...: keep the first error)
        return True


def _no_safetensors_message(source: Any, kwargs: dict[str, Any]) -> str:
    """Why a checkpoint without safetensors weights is refused, and what to do."""
    name = str(source)
    subfolder, variant = kwargs.get("subfolder") or "", kwargs.get("variant")
    infix = f".{variant}" if variant else ""
    weights = f"model{infix}.safetensors"
    where = f"{name!r}" + (f" (subfolder {subfolder!r})" if subfolder else "")
    if os.path.isdir(name) and not os.path.isdir(os.path.join(name, subfolder)):
        return f"Cannot load weights from {name!r}: it has no subfolder {subfolder!r}."
    pickle_names = (f"pytorch_model{infix}.bin", f"pytorch_model{infix}.bin.index.json")
    if os.path.isdir(name):
        pickled = [f for f in pickle_names if os.path.isfile(os.path.join(name, subfolder, f))]
    else:
        from transformers.utils import has_file

        try:
            pickled = [
                f
                for f in pickle_names
                if has_file(
                    name,
                    f"{subfolder}/{f}" if subfolder else f,
                    revision=kwargs.get("revision"),
                    token=kwargs.get("token"),
                )
            ]
        except Exception:  # offline, or the Hub is out of reach: say what we know
            pickled = []
    if not pickled:
        hint = f" (variant={variant!r}: is that the variant it was saved with?)" if variant else ""
        return (
            f"Cannot load weights from {where}: it holds no {weights} (nor {weights}.index.json){hint}. "
            "RNNClassifier.save_pretrained and push_to_hub write them."
        )
    return (
        f"Cannot load weights from {where}: it holds only a pickle checkpoint ({', '.join(pickled)}). rnn-textclf "
        "loads weights from safetensors only, because unpickling a checkpoint can run arbitrary code. If you "
        "trust where the checkpoint comes from, convert it once with RNNClassifier.from_pretrained("
        f"{name!r}, use_safetensors=False).save_pretrained(folder) (transformers reads the .bin with "
        "torch.load(weights_only=True)) and load or push that folder; otherwise ask its author to push "
        "model.safetensors (RNNClassifier.push_to_hub does)."
    )


def _safetensors_shapes(source: Any, download_kwargs: Any) -> dict[str, tuple[int, ...]] | None:
    """Tensor name -> shape from the safetensors header(s) of a local or already-downloaded checkpoint.

    Reads only the JSON headers (no tensor data, no safetensors import); None when the files are not
    found locally or cannot be read.
    """
    import json
    import struct

    kwargs = dict(download_kwargs or {})
    subfolder = kwargs.get("subfolder") or ""

    def locate(filename: str) -> str | None:
        folder = os.path.join(str(source), subfolder)
        if os.path.isdir(folder):
            path = os.path.join(folder, filename)
            return path if os.path.isfile(path) else None
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(
                str(source),
                f"{subfolder}/{filename}" if subfolder else filename,
                cache_dir=kwargs.get("cache_dir"),
                revision=kwargs.get("revision"),
            )
        except Exception:
            return None
        return found if isinstance(found, str) else None

    files: list[str] = []
    single = locate("model.safetensors")
    if single is not None:
        files = [single]
    else:
        index = locate("model.safetensors.index.json")
        if index is None:
            return None
        try:
            with open(index, encoding="utf-8") as handle:
                shards = sorted(set(json.load(handle)["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        files = [f for f in map(locate, shards) if f is not None]
        if len(files) != len(shards):
            return None
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        for path in files:
            with open(path, "rb") as handle:
                (size,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(size))
            shapes.update({k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"})
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
    return shapes


def _architecture(shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """The config fields that a state dict's tensor names and shapes determine."""
    arch: dict[str, Any] = {}
    embedding = shapes.get("embeddings.weight")
    if embedding is not None and len(embedding) == 2:
        arch["vocab_size"], arch["embedding_dim"] = embedding
    layers = [int(m.group(1)) for k in shapes if (m := re.fullmatch(r"rnn\.weight_ih_l(\d+)", k))]
    if layers:
        arch["num_layers"] = max(layers) + 1
        arch["bidirectional"] = any(k.startswith("rnn.") and k.endswith("_reverse") for k in shapes)
    recurrent, projection = shapes.get("rnn.weight_hh_l0"), shapes.get("rnn.weight_hr_l0")
    if recurrent is not None and len(recurrent) == 2:
        hidden = projection[1] if projection is not None and len(projection) == 2 else recurrent[1]
        arch["proj_size"] = projection[0] if projection is not None and len(projection) == 2 else 0
        arch["hidden_size"] = hidden
        if hidden and recurrent[0] % hidden == 0:
            arch["rnn_type"] = {1: "rnn", 3: "gru", 4: "lstm"}.get(recurrent[0] // hidden, "unknown")
    classifier = shapes.get("classifier.weight")
    if classifier is not None and len(classifier) == 2:
        arch["num_labels"], arch["classifier input size"] = classifier
    return arch


def _weights_do_not_fit_message(model: Any, load_config: Any, loading_info: Any) -> str:
    """Which config fields the checkpoint's weights contradict, and what to do."""
    source = str(getattr(load_config, "pretrained_model_name_or_path", "the checkpoint"))
    model_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(getattr(loading_info, "missing_keys", ()) or ())
    unexpected = sorted(getattr(loading_info, "unexpected_keys", ()) or ())
    mismatched = sorted(getattr(loading_info, "mismatched_keys", ()) or ())
    file_shapes = _safetensors_shapes(source, getattr(load_config, "download_kwargs", None))
    if file_shapes is None:  # what the loading report tells (unexpected keys without their shapes)
        file_shapes = {k: s for k, s in model_shapes.items() if k not in missing}
        file_shapes.update({key: tuple(ckpt) for key, ckpt, _ in mismatched})
        file_shapes.update({k: () for k in unexpected})
    ours, theirs = _architecture(model_shapes), _architecture(file_shapes)
    config = model.config
    lines: list[str] = []
    for field, value in theirs.items():
        if field in ours and ours[field] != value:
            if field == "classifier input size":
                if lines:  # a consequence of the recurrent fields already named
                    continue
                lines.append(
                    f"  - the classifier takes {value} features in the weights, {ours[field]} with this config "
                    f"(pooling={config.pooling!r}: 'mean_max' doubles it; bidirectional doubles it)"
                )
            else:
                lines.append(
                    f"  - {field}: the weights have {value!r}, the config says {getattr(config, field)!r}"
                )
    tensors = [
        f"{key} is {tuple(ckpt)} in the file but {tuple(want)} in the model" for key, ckpt, want in mismatched
    ]
    tensors += [f"{key} is missing from the file" for key in missing]
    tensors += [f"{key} is in the file but not in the model" for key in unexpected]
    shown = "; ".join(tensors[:4]) + (f"; and {len(tensors) - 4} more" if len(tensors) > 4 else "")
    fields = ("\n".join(lines) + "\n") if lines else ""
    return (
        f"The weights of {source!r} do not fit the model built from its config:\n{fields}({shown}.)\n"
        "Load the checkpoint with the config.json saved beside its weights, without overriding these fields "
        "in from_pretrained(...) (e.g. rnn_type=..., hidden_size=..., num_layers=...); if config.json was edited, "
        "restore those values. To re-initialise the parts that do not fit on purpose (e.g. a new classifier for "
        "another num_labels), pass ignore_mismatched_sizes=True."
    )


_NOT_RIGHT_PADDED = (
    "`attention_mask` must mark a prefix of real tokens followed by right padding that agrees with `lengths` "
    "(the tokenizer's padding_side must be 'right': set tokenizer.padding_side = 'right', and save it again "
    "with tokenizer.save_pretrained(folder) where a pipeline loads it)."
)


class RNNClassifierPreTrainedModel(PreTrainedModel):
    """Base class holding the config class and the weight initialisation."""

    config_class = RNNClassifierConfig
    config: RNNClassifierConfig
    base_model_prefix = "rnn_textclf"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _no_split_modules: ClassVar[list[str]] = []

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
            # The pad row must stay zero: padding never contributes to a text's representation.
            if module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.RNNBase):
            # PyTorch's own recurrent init (uniform in +-1/sqrt(hidden)), which the lecture's nn.RNN used.
            bound = 1.0 / math.sqrt(module.hidden_size)
            for param in module.parameters(recurse=False):
                init.uniform_(param, -bound, bound)


class RNNClassifier(RNNClassifierPreTrainedModel):
    """Embedding -> (stacked, optionally bidirectional) RNN/LSTM/GRU over packed sequences -> pooling -> linear.

    The recurrent layer only ever sees the real tokens of each text (``pack_padded_sequence`` with the
    lengths on the CPU), so padding never changes a text's logits, and rows come back in input order.

    A text with zero tokens (an empty string) gets a pooled vector of zeros, so its logits are the
    classifier's bias: the model's prior, the same for every empty text. It never raises.

    Args:
        config: The model's [`RNNClassifierConfig`][rnn_textclf.RNNClassifierConfig].
    """

    def __init__(self, config: RNNClassifierConfig) -> None:
        # fields set after the config was built (`config.pooling = "Max"`) are checked here, by name, not
        # met later as a torch shape error
        config.validate()
        super().__init__(config)
        try:
            self.num_labels = config.num_labels
            self.embeddings = nn.Embedding(
                config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id
            )
            self.embedding_dropout = nn.Dropout(config.embedding_dropout)
            rnn_kwargs: dict[str, Any] = {}
            if config.rnn_type == "rnn":
                rnn_kwargs["nonlinearity"] = config.nonlinearity
            if config.rnn_type == "lstm" and config.proj_size:
                rnn_kwargs["proj_size"] = config.proj_size
            self.rnn = _RNN_CLASSES[config.rnn_type](
                input_size=config.embedding_dim,
                hidden_size=config.hidden_size,
                num_layers=config.num_layers,
                bidirectional=config.bidirectional,
                # torch warns when dropout is set on a single layer, where it has no effect.
                dropout=config.dropout if config.num_layers > 1 else 0.0,
                batch_first=True,
                **rnn_kwargs,
            )
            self.classifier_dropout = nn.Dropout(config.classifier_dropout)
            self.classifier = nn.Linear(config.pooled_size, config.num_labels)
        except RuntimeError as err:
            if "allocate" not in str(err):
                raise
            # torch names only a byte count: say which fields asked for it
            sizes = ", ".join(
                f"{name}={getattr(config, name)!r}"
                for name in ("vocab_size", "embedding_dim", "hidden_size", "num_layers", "bidirectional")
            )
            raise RuntimeError(
                f"Not enough memory for the parameters of RNNClassifierConfig({sizes}): check those fields "
                f"(torch: {str(err).splitlines()[0]})"
            ) from err
        self.post_init()
        self._apply_freeze()

    def _apply_freeze(self) -> None:
        self.embeddings.weight.requires_grad_(not self.config.freeze_embeddings)

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:
        """``PreTrainedModel.from_pretrained`` that reads safetensors only and keeps ``freeze_embeddings``.

        Weights are never unpickled: ``use_safetensors=True`` unless the caller explicitly passes
        ``use_safetensors=False`` (a ``.bin`` is then read by transformers with ``weights_only=True``).
        Loading replaces the parameters, so the embedding's freeze is re-applied from the config.
        """
        safetensors_only = kwargs.setdefault("use_safetensors", True) is True
        source = args[0] if args else kwargs.get("pretrained_model_name_or_path")
        folder = (
            Path(source, kwargs.get("subfolder") or "") if isinstance(source, (str, os.PathLike)) else None
        )
        if (
            folder is not None
            and folder.is_dir()
            and kwargs.get("config") is None
            and not (folder / "config.json").is_file()
        ):
            # (transformers builds a default config, and the weights then "do not fit" it)
            raise OSError(
                f"{str(source)!r} has no config.json: it is not a saved model folder (save_pretrained writes "
                "config.json beside the weights), or pass config=RNNClassifierConfig(...) of the weights."
            )
        with contextlib.ExitStack() as held:
            if folder is not None and folder.is_dir():
                # no save moves files in while this one reads them (`_folder_lock`)
                held.enter_context(_folder_lock(folder, exclusive=False))
            if folder is not None and (folder / SAVING_MARKER).is_file():
                raise OSError(
                    f"{str(source)!r} holds files of a save_pretrained that was interrupted (or, where folders "
                    f"cannot be locked, is still running) while it moved them in ({SAVING_MARKER} is there): its "
                    "weights and config.json may come from two saves. Save the model again, or load an earlier "
                    "checkpoint."
                )
            remote = isinstance(source, (str, os.PathLike)) and not os.path.isdir(source)
            try:
                loaded = super().from_pretrained(*args, **kwargs)
            except OSError as err:
                offline = _offline_reason(kwargs) if remote else None
                if offline:
                    # Offline, what is missing is missing from the cache (transformers' message names neither
                    # the repo nor the setting and blames the network, or says the repo has no weights file).
                    where = repr(str(source)) + "".join(
                        f" ({name} {kwargs[name]!r})"
                        for name in ("revision", "subfolder")
                        if kwargs.get(name)
                    )
                    raise OSError(
                        f"{where} is not in the local Hub cache (or only in part) and {offline}, so it was "
                        "not downloaded. Load it once online (or without that setting), or pass a folder that "
                        f"holds it. ({str(err).splitlines()[0]})"
                    ) from err
                # transformers' advice here ("do not set use_safetensors=True") would mean unpickling.
                if not safetensors_only or "safetensors" not in str(err):
                    raise
                raise OSError(_no_safetensors_message(source, kwargs)) from err
            except ValueError as err:
                # a repo without config.json: transformers builds a default config, which the weights do not
                # fit
                if not remote or kwargs.get("config") is not None or "do not fit" not in str(err):
                    raise
                if _repo_has_config(str(source), kwargs):
                    raise
                where = f"{str(source)!r}" + (
                    f" (subfolder {kwargs['subfolder']!r})" if kwargs.get("subfolder") else ""
                )
                raise OSError(
                    f"{where} has no config.json: it is not a saved model repo (save_pretrained and "
                    "push_to_hub write config.json beside the weights), or pass "
                    "config=RNNClassifierConfig(...) of the weights."
                ) from err
            except Exception as err:
                if type(err).__name__ != "SafetensorError":
                    raise
                raise OSError(
                    f"Cannot load the weights of {str(source)!r}: its model.safetensors is truncated or "
                    f"corrupted ({err}). Download it again (from_pretrained(..., force_download=True)) or save "
                    "the model again; a save that was interrupted never replaces a complete checkpoint, so an "
                    "earlier checkpoint (e.g. a Trainer's checkpoint-*) still loads."
                ) from err
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model._apply_freeze()
        broken = model.non_finite_parameters()
        if broken:  # (a diverged run's save: every prediction would be NaN, or label 0 after argmax)
            logger.warning(
                "%s has NaN or infinite weights in %s: its outputs are not numbers. Load an earlier checkpoint, "
                "or train again (a lower learning rate, gradient clipping).",
                str(source),
                ", ".join(broken),
            )
        return loaded

    def non_finite_parameters(self) -> list[str]:
        """Names of the parameters holding NaN or infinite values (a diverged training run), ``[]`` if none."""
        return [name for name, p in self.named_parameters() if not bool(torch.isfinite(p).all())]

    @staticmethod
    def _finalize_model_loading(model: Any, load_config: Any, loading_info: Any) -> Any:
        """Refuses weights that do not fit the config instead of initialising the rest at random.

        transformers fills missing or unexpected tensors with fresh random values (with a logged report)
        and raises a generic error for mismatched shapes; for this model any of them means a wrong
        config (or a wrong ``from_pretrained`` override), so the error names the fields that differ.
        ``ignore_mismatched_sizes=True`` keeps transformers' behaviour (re-initialise what does not fit).
        """
        if not getattr(load_config, "ignore_mismatched_sizes", False) and (
            getattr(loading_info, "missing_keys", None)
            or getattr(loading_info, "unexpected_keys", None)
            or getattr(loading_info, "mismatched_keys", None)
        ):
            raise ValueError(_weights_do_not_fit_message(model, load_config, loading_info))
        return PreTrainedModel._finalize_model_loading(model, load_config, loading_info)

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """``PreTrainedModel.save_pretrained``, made atomic, plus a model card when rnn-textclf is installed.

        Everything is first written to a temporary folder beside ``save_directory`` and only then moved in
        file by file (weights first, ``config.json`` last), so a crash or kill mid-save leaves the previous
        checkpoint in ``save_directory`` intact; one in the moment the files move in leaves ``SAVING_MARKER``
        there, and ``from_pretrained`` refuses the folder (it may hold files of two saves) until a save
        completes. Loads of the folder wait while the files move in, and two saves into one folder move
        theirs one after the other (`_folder_lock`, where the file system can lock folders). Other files
        already there (a Trainer's ``checkpoint-*``
        folders, the tokenizer) are kept; stale weight shards from an earlier save are removed. A process
        killed mid-save leaves its temporary folder (``.<name>.saving-*``, beside ``save_directory``)
        behind: nothing reads it (a Trainer looks for ``checkpoint-<step>``) and it can be deleted.
        """
        target = Path(save_directory)
        if target.exists() and not target.is_dir():
            raise ValueError(f"`save_directory` must be a folder, but {str(target)!r} is a file.")
        # before anything is written: a field set after the config was built (config.pooling = "bogus")
        # would save a checkpoint that does not load
        self.config.validate()
        if type(self)._auto_class is not None:
            # transformers' auto_map names one model class; AutoModel gives this model too (as it does
            # after `import rnn_textclf`), also with trust_remote_code and without the package.
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map.setdefault(
                "AutoModel", f"{type(self).__module__.rsplit('.', 1)[-1]}.{type(self).__name__}"
            )
            self.config.auto_map = auto_map
        if kwargs.get("is_main_process", True) is False:
            return super().save_pretrained(target, *args, **kwargs)
        if kwargs.pop("push_to_hub", False):
            # transformers would push the staging folder (and name the repo after it): save, then push.
            # every push_to_hub option goes to the push (a `revision` left behind pushed to main)
            names = ("commit_message", "commit_description", "private", "create_pr", "revision", "tags")
            hub = {k: kwargs.pop(k) for k in names if k in kwargs}
            repo_id = kwargs.pop("repo_id", target.name)
            self.save_pretrained(target, *args, **kwargs)
            self.push_to_hub(
                repo_id, token=kwargs.get("token"), max_shard_size=kwargs.get("max_shard_size", "50GB"), **hub
            )
            return None
        target.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
        try:
            super().save_pretrained(staging, *args, **kwargs)
            writer = type(self).model_card_writer
            if writer is not None and not (target / "README.md").exists():
                # Named after the target, describing a tokenizer already saved there.
                tokenizer_here = target if (target / "tokenizer.json").is_file() else None
                writer(self, staging, model_name=target.resolve().name, tokenizer=tokenizer_here)
            written = sorted(p.name for p in staging.iterdir())
            # While the files move in, the folder holds some of each save: the marker says so to loaders
            # until the last one is in (a kill in between leaves it; a later save removes it).
            marker = target / SAVING_MARKER
            with _folder_lock(target, exclusive=True):  # no load reads, no other save moves files, meanwhile
                marker.write_text("save_pretrained is moving files into this folder\n", encoding="utf-8")
                # config.json last: a reader that sees the new config also sees the new weights.
                for name in sorted(written, key=lambda n: n == "config.json"):
                    os.replace(staging / name, target / name)
                for stale in target.iterdir():
                    if stale.name not in written and _WEIGHT_FILE.match(stale.name):
                        stale.unlink()
                marker.unlink(missing_ok=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    #: Called as ``writer(model, folder, model_name=..., tokenizer=...)`` by ``save_pretrained`` to add a
    #: README.md model card (``tokenizer``: the target folder when it holds a tokenizer.json), and as
    #: ``writer(model, folder, repo_id=..., revision=..., token=..., tokenizer=..., **info)`` by
    #: ``push_to_hub`` on the folder about to be uploaded. The installed package sets it
    #: (``rnn_textclf.write_model_card``); code loaded with ``trust_remote_code`` leaves it ``None``.
    model_card_writer: ClassVar[Any] = None

    def push_to_hub(
        self,
        repo_id: str,
        *args: Any,
        tokenizer: Any = None,
        model_card_info: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``PreTrainedModel.push_to_hub``, with rnn-textclf's model card as README.md.

        transformers writes its placeholder card (or re-saves the repo's card) into the upload; with
        rnn-textclf installed, ``model_card_writer`` then replaces a placeholder or rnn-textclf-generated
        card with a card describing this model, and only completes the metadata of a hand-written card.

        Args:
            repo_id: The Hub repo, e.g. ``"acme/agnews-lstm"`` (created if missing).
            *args: Passed on to ``PreTrainedModel.push_to_hub``.
            tokenizer: A tokenizer to upload in the same commit (and to describe in the card).
            model_card_info: Extra card fields (training data, metrics, ...), see
                ``rnn_textclf.modelcard.CARD_INFO_KEYS``.
            **kwargs: Passed on to ``PreTrainedModel.push_to_hub`` (``revision``, ``commit_message``,
                ``private``, ``token``, ``tags``, ...).

        Returns:
            The ``CommitInfo`` of the upload.
        """
        if model_card_info is not None and not isinstance(model_card_info, dict):
            raise TypeError(f"`model_card_info` must be a dict, got {type(model_card_info).__name__}.")
        if tokenizer is not None and not hasattr(tokenizer, "save_pretrained"):
            # checked before the repo is created (it failed after, leaving an empty repo)
            raise TypeError(
                f"`tokenizer` must be a tokenizer object (e.g. AutoTokenizer.from_pretrained(folder)), got "
                f"{type(tokenizer).__name__} {tokenizer!r}."
            )
        extras = _PUSH_EXTRAS.set((tokenizer, dict(model_card_info or {})))
        try:
            return super().push_to_hub(repo_id, *args, **kwargs)
        finally:
            _PUSH_EXTRAS.reset(extras)

    def _upload_modified_files(
        self,
        working_dir: str | os.PathLike,
        repo_id: str,
        files_timestamps: dict[str, float],
        commit_message: str | None = None,
        token: bool | str | None = None,
        create_pr: bool = False,
        revision: str | None = None,
        commit_description: str | None = None,
    ) -> Any:
        """The last step of every push: the folder holds the saved model and transformers' README.md.

        ``PushToHubMixin._upload_modified_files`` (its files, branch and commit), with rnn-textclf's card and
        tokenizer added first and the repo's stale weight files (`stale_weight_files`) deleted in the same
        commit; written out here rather than by wrapping transformers' shared ``HfApi``, which would reach
        the pushes of other threads too.
        """
        from huggingface_hub import CommitOperationAdd, constants
        from huggingface_hub.utils import HfHubHTTPError
        from transformers.utils.hub import hf_api

        tokenizer, info = _PUSH_EXTRAS.get()
        if tokenizer is not None:
            tokenizer.save_pretrained(working_dir)
        writer = type(self).model_card_writer
        if writer is not None:
            writer(
                self,
                working_dir,
                repo_id=repo_id,
                revision=revision,
                token=token,
                tokenizer=tokenizer,
                **info,
            )
        folder = Path(working_dir)
        changed = [
            p
            for p in sorted(folder.iterdir())
            if p.name not in files_timestamps or p.stat().st_mtime > files_timestamps[p.name]
        ]
        operations: list[Any] = []
        for path in changed:  # (as transformers: files, and the files of folders one level down)
            if path.is_dir():
                operations += [
                    CommitOperationAdd(path_or_fileobj=str(f), path_in_repo=f"{path.name}/{f.name}")
                    for f in sorted(path.iterdir())
                ]
            elif path.is_file():
                operations.append(CommitOperationAdd(path_or_fileobj=str(path), path_in_repo=path.name))
        api = hf_api()
        if revision is not None and not revision.startswith("refs/pr"):
            try:
                api.create_branch(repo_id=repo_id, branch=revision, token=token, exist_ok=True)
            except HfHubHTTPError as err:
                # (a pull request on a repo one cannot write to: the branch is assumed to exist)
                if not (err.response.status_code == 403 and create_pr):
                    raise
        added = [op.path_in_repo for op in operations]
        base = constants.DEFAULT_REVISION if create_pr else revision
        operations += stale_weight_deletions(api, repo_id, added, base, token)
        logger.info("Uploading to %s: %s", repo_id, ", ".join(added))
        return api.create_commit(
            repo_id=repo_id,
            operations=operations,
            commit_message=commit_message or "Upload model",
            commit_description=commit_description,
            token=token,
            create_pr=create_pr,
            revision=revision,
        )

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, *args: Any, **kwargs: Any
    ) -> nn.Embedding:
        """``PreTrainedModel.resize_token_embeddings``, refusing a size that would drop the padding (or
        unknown-word) row: the config would then be invalid and the saved model would not load."""
        if new_num_tokens is not None:
            keep = [("pad_token_id", self.config.pad_token_id), ("unk_token_id", self.config.unk_token_id)]
            for name, token_id in keep:
                if token_id is not None and new_num_tokens <= token_id:
                    raise ValueError(
                        f"`new_num_tokens={new_num_tokens}` would drop the row of {name}={token_id}: pass a size "
                        f"above {token_id} (len(tokenizer) after adding tokens), or re-number the vocabulary."
                    )
        return super().resize_token_embeddings(new_num_tokens, *args, **kwargs)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings = value
        # config.vocab_size follows the new table, so that a save loads back (transformers' own models
        # leave the config behind here; resize_token_embeddings updates it after this call anyway)
        rows = getattr(value, "num_embeddings", None)
        if isinstance(rows, int) and rows > 0:
            self.config.vocab_size = rows
        # and config.freeze_embeddings holds for the new table, as it will after a save and reload
        if isinstance(getattr(value, "weight", None), nn.Parameter):
            self._apply_freeze()

    def load_pretrained_embeddings(
        self,
        vectors: Any,
        tokenizer: Any,
        *,
        freeze: bool = True,
        resize_embedding: bool = False,
        unk_init: str = "normal",
        seed: int = 0,
        token_counts: dict[str, int] | None = None,
    ) -> Any:
        """Copies pretrained word vectors into the embedding, row by row for the tokenizer's vocab.

        Rows are aligned by ``vectors.align`` (exact match, then lowercase; the pad row zero; rows without
        a vector filled by ``unk_init`` with ``seed``; special tokens never looked up). The vectors then
        live in the model's weights, so ``save_pretrained`` / ``from_pretrained`` carry them, and
        ``config.freeze_embeddings`` records ``freeze`` so a reloaded model trains the same way.

        Args:
            vectors: The word vectors (``rnn_textclf.load_word_vectors(...)``); any object with ``dim`` and
                ``align(vocab, *, pad_token_id, special_tokens, unk_init, seed, token_counts)``.
            tokenizer: The model's tokenizer (``get_vocab()``, ``all_special_tokens``, ``pad_token_id``).
            freeze: Keep the embedding fixed during training (``requires_grad=False``), like
                ``nn.Embedding.from_pretrained``.
            resize_embedding: When the vectors' dimension differs from ``config.embedding_dim``, rebuild the
                embedding and the recurrent layer (freshly initialised) for the vectors' dimension and update
                ``config.embedding_dim``, instead of raising.
            unk_init: Rows without a vector: ``"normal"`` (mean 0, the matched vectors' std), ``"zeros"`` or
                ``"mean"`` (the matched vectors' mean).
            seed: Seed of the ``"normal"`` rule.
            token_counts: Token -> count in the training texts, to list the most frequent missing tokens.

        Returns:
            The coverage report (``print(report)``: ``coverage: 19,873 / 20,645 tokens found (96.3%); ...``).

        Raises:
            ValueError: The tokenizer's vocab size is not ``config.vocab_size``, its pad token id is not
                ``config.pad_token_id``, or the dimensions differ and ``resize_embedding`` is False.
        """
        vocab = tokenizer.get_vocab()
        config = self.config
        if len(vocab) != config.vocab_size:
            raise ValueError(
                f"The tokenizer has {len(vocab):,} tokens but config.vocab_size is {config.vocab_size:,}; build "
                f"the model with RNNClassifierConfig(vocab_size={len(vocab)}, ...) for this tokenizer."
            )
        tokenizer_pad = getattr(tokenizer, "pad_token_id", None)
        if tokenizer_pad is not None and tokenizer_pad != config.pad_token_id:
            raise ValueError(
                f"The tokenizer's pad_token_id is {tokenizer_pad} but config.pad_token_id is {config.pad_token_id}; "
                f"build the model with RNNClassifierConfig(pad_token_id={tokenizer_pad}, ...)."
            )
        dim = int(vectors.dim)
        if dim != config.embedding_dim:
            if not resize_embedding:
                raise ValueError(
                    f"The word vectors have dimension {dim} but config.embedding_dim is {config.embedding_dim}: "
                    f"build the model with RNNClassifierConfig(embedding_dim={dim}, ...), or pass "
                    "resize_embedding=True to rebuild the embedding and the recurrent layer (re-initialised) "
                    f"for dimension {dim}."
                )
            reference = self.embeddings.weight
            config.embedding_dim = dim
            # A model of the same config builds both modules exactly as __init__ does, freshly initialised.
            fresh = type(self)(config)
            self.embeddings = fresh.embeddings.to(device=reference.device, dtype=reference.dtype)
            self.rnn = fresh.rnn.to(device=reference.device, dtype=reference.dtype)
        weights, report = vectors.align(
            vocab,
            pad_token_id=config.pad_token_id,
            special_tokens=list(getattr(tokenizer, "all_special_tokens", None) or ()),
            unk_init=unk_init,
            seed=seed,
            token_counts=token_counts,
        )
        with torch.no_grad():
            self.embeddings.weight.copy_(
                weights.to(self.embeddings.weight.device, self.embeddings.weight.dtype)
            )
        config.freeze_embeddings = bool(freeze)
        self._apply_freeze()
        # Saved in config.json, so the model card can say which vectors the embedding started from.
        # The public name (`glove.6B.50d`, a repo id, a file's own name): `source` holds local paths, which
        # would go to the Hub with the card and config.json.
        source = str(getattr(vectors, "source", "") or "")
        name = getattr(vectors, "name", "") or (source if "/" not in source and "\\" not in source else "")
        name = name or type(vectors).__name__
        config.pretrained_vectors = {
            "name": str(name),
            "dim": dim,
            "found": int(getattr(report, "found", 0)),
            "total": int(getattr(report, "total", 0)),
            "lowercase_matches": int(getattr(report, "lowercase_matches", 0)),
            "frozen": bool(freeze),
        }
        return report

    # ------------------------------------------------------------------ input checks
    def _check_inputs(
        self,
        input_ids: Any,
        attention_mask: torch.Tensor | None,
        lengths: torch.Tensor | None,
        inputs_embeds: Any = None,
    ) -> torch.Tensor:
        """Validates the batch and returns the lengths as an int64 CPU tensor (one per row)."""
        if inputs_embeds is not None:
            if input_ids is not None:
                raise ValueError(
                    "Pass either `input_ids` or `inputs_embeds`, not both: `inputs_embeds` replaces the "
                    "embedding lookup of `input_ids`."
                )
            positions = self._check_embeds(inputs_embeds)
            return self._check_mask_and_lengths(positions, attention_mask, lengths, "inputs_embeds")
        if input_ids is None:
            raise ValueError("`input_ids` (shape (batch, seq_len)) or `inputs_embeds` is required.")
        if not isinstance(input_ids, torch.Tensor):
            raise TypeError(
                f"`input_ids` must be a torch.Tensor of token ids, got {type(input_ids).__name__}; "
                "call the tokenizer with return_tensors='pt' or use PackedSequenceCollator."
            )
        if input_ids.dim() != 2:
            raise ValueError(
                f"`input_ids` must have shape (batch, seq_len), got shape {tuple(input_ids.shape)}; "
                "for a single text use input_ids.unsqueeze(0)."
            )
        if input_ids.shape[0] == 0:
            raise ValueError(
                f"`input_ids` holds no rows (shape {tuple(input_ids.shape)}): pass at least one text."
            )
        if input_ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise ValueError(f"`input_ids` must hold integer token ids, got dtype {input_ids.dtype}.")
        on_cpu = input_ids.device.type == "cpu"
        # Value checks read the tensor, which is a device-to-host sync on an accelerator; there the
        # collator has already checked the ids on the CPU before the copy, so they run on CPU only.
        # the embedding's own size: set_input_embeddings() may have replaced it without touching the config
        rows = getattr(self.get_input_embeddings(), "num_embeddings", self.config.vocab_size)
        if on_cpu and input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= rows):
            bad = int(input_ids.max()) if int(input_ids.max()) >= rows else int(input_ids.min())
            raise ValueError(
                f"`input_ids` holds token id {bad}, outside the embedding's range [0, {rows}) "
                f"(config.vocab_size={self.config.vocab_size}); was the model built for this tokenizer's vocab?"
            )
        return self._check_mask_and_lengths(input_ids, attention_mask, lengths, "input_ids")

    def _check_embeds(self, inputs_embeds: Any) -> torch.Tensor:
        """Validates ``inputs_embeds`` and returns a (batch, seq_len) view of it for the shape checks."""
        dim = self.config.embedding_dim
        if not isinstance(inputs_embeds, torch.Tensor):
            raise TypeError(
                f"`inputs_embeds` must be a torch.Tensor of shape (batch, seq_len, {dim}), got "
                f"{type(inputs_embeds).__name__}."
            )
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != dim:
            raise ValueError(
                f"`inputs_embeds` must have shape (batch, seq_len, {dim}) (config.embedding_dim={dim}), got shape "
                f"{tuple(inputs_embeds.shape)}."
            )
        if not inputs_embeds.is_floating_point():
            raise ValueError(
                f"`inputs_embeds` must hold floating-point vectors, got dtype {inputs_embeds.dtype}; token ids "
                "go in `input_ids`."
            )
        return inputs_embeds[..., 0]  # (batch, seq): only its shape and device are read

    def _check_mask_and_lengths(
        self,
        positions: torch.Tensor,
        attention_mask: torch.Tensor | None,
        lengths: torch.Tensor | None,
        name: str,
    ) -> torch.Tensor:
        """Checks the mask and lengths against ``positions`` (batch, seq_len) of input ``name``; CPU lengths."""
        batch, seq_len = positions.shape
        carried = lengths is not None
        if attention_mask is not None:
            if not isinstance(attention_mask, torch.Tensor):
                raise TypeError(
                    f"`attention_mask` must be a torch.Tensor, got {type(attention_mask).__name__}."
                )
            if attention_mask.shape != positions.shape:
                raise ValueError(
                    f"`attention_mask` shape {tuple(attention_mask.shape)} does not match the (batch, seq_len) "
                    f"of `{name}`: {tuple(positions.shape)}."
                )
        if lengths is not None:
            if not isinstance(lengths, torch.Tensor):
                lengths = torch.as_tensor(lengths)
            if lengths.dim() != 1 or lengths.shape[0] != batch:
                raise ValueError(
                    f"`lengths` must have shape ({batch},) (one length per row), got {tuple(lengths.shape)}."
                )
            if lengths.is_floating_point() or lengths.dtype == torch.bool:
                raise ValueError(f"`lengths` must be an integer tensor, got dtype {lengths.dtype}.")
            lengths = lengths.to("cpu", torch.int64)
        elif attention_mask is not None:
            # Without carried lengths the mask gives them (a device-to-host copy on an accelerator;
            # PackedSequenceCollator carries CPU lengths to avoid it), together with whether a row has a
            # real token after padding (left padding: read as right padding it would be a wrong result),
            # in the same copy, on any device.
            mask = attention_mask.to(torch.bool)
            gaps = (mask[:, 1:] & ~mask[:, :-1]).any(dim=-1)  # (batch,) a 0 then a 1 somewhere
            counted = torch.stack([mask.sum(dim=-1), gaps.to(torch.int64)]).cpu()  # (2, batch)
            if bool(counted[1].any()):
                raise ValueError(_NOT_RIGHT_PADDED)
            lengths = counted[0]
        else:
            # Like every transformers model: no mask means every position is a real token.
            lengths = torch.full((batch,), seq_len, dtype=torch.int64)
        if batch:
            if int(lengths.min()) < 0 or int(lengths.max()) > seq_len:
                raise ValueError(
                    f"`lengths` must lie in [0, seq_len={seq_len}], got min {int(lengths.min())} and max "
                    f"{int(lengths.max())}; lengths longer than the sequence would read past the padding."
                )
            # carried lengths and a mask: they must agree (on an accelerator the collator checked them on
            # the CPU before the copy)
            if attention_mask is not None and carried and attention_mask.device.type == "cpu":
                steps = torch.arange(seq_len)
                expected = steps[None, :] < lengths[:, None]
                if not torch.equal(attention_mask.to(torch.bool), expected):
                    raise ValueError(_NOT_RIGHT_PADDED)
        return lengths

    def _check_labels(self, labels: Any, batch: int, logits: torch.Tensor) -> torch.Tensor:
        if not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor(labels, device=logits.device)
        if labels.shape[0] != batch:
            raise ValueError(f"`labels` has {labels.shape[0]} rows but the batch has {batch} texts.")
        # Inferred as transformers does, but recorded in the config only once the labels passed the
        # checks: one bad batch must not turn the model into a multi-label one for good.
        problem = self.config.problem_type
        inferred = problem is None
        if inferred:
            if self.num_labels == 1:
                problem = "regression"
            elif not labels.is_floating_point() and labels.dtype != torch.bool:
                problem = "single_label_classification"
            elif labels.dim() == 1:
                raise ValueError(
                    f"`labels` are {labels.dtype} values of shape ({batch},) but the model has num_labels="
                    f"{self.num_labels}: for single-label classification pass integer class ids (labels.long()); "
                    f"for multi-label classification pass shape ({batch}, {self.num_labels}) 0/1 values; or set "
                    "config.problem_type."
                )
            else:
                problem = "multi_label_classification"
        if problem == "single_label_classification":
            if labels.is_floating_point() or labels.dtype == torch.bool:
                raise ValueError(
                    f"`labels` must be integer class ids for single_label_classification, got dtype {labels.dtype}; "
                    "cast them with labels.long() (or the data set column to int64)."
                )
            if labels.dim() == 2 and labels.shape[1] == 1:
                labels = labels.view(-1)  # (batch, 1) -> (batch,), as transformers' models read them
            if labels.dim() != 1:
                hint = ""
                if inferred and tuple(labels.shape) == (batch, self.num_labels):  # integer multi-hot rows
                    hint = (
                        f" (inferred from their integer dtype {labels.dtype}): for multi-label classification pass "
                        "float 0/1 labels (labels.float()) or set config.problem_type='multi_label_classification'"
                    )
                raise ValueError(
                    f"`labels` must have shape ({batch},) for single_label_classification, got "
                    f"{tuple(labels.shape)}{hint}."
                )
            labels = labels.long()  # cross_entropy takes int64 class ids only (int32 from NumPy, uint8...)
            if labels.device.type == "cpu" and batch:
                low, high = int(labels.min()), int(labels.max())
                # -100 is transformers' ignore_index and is allowed.
                if high >= self.num_labels or (low < 0 and bool(((labels < 0) & (labels != -100)).any())):
                    raise ValueError(
                        f"`labels` must be class ids in [0, {self.num_labels}) (num_labels={self.num_labels}), "
                        f"got values from {low} to {high}."
                    )
        elif problem == "multi_label_classification":
            if labels.shape != (batch, self.num_labels):
                raise ValueError(
                    f"`labels` must have shape ({batch}, {self.num_labels}) (one 0/1 column per label) for "
                    f"multi_label_classification, got {tuple(labels.shape)}."
                )
            # float32 at least: under autocast the logits are bf16/fp16, and targets rounded to them were
            # wrong (soft targets) or inf (fp16 beyond 65504); the loss runs in float32 anyway
            labels = labels.to(torch.promote_types(logits.dtype, torch.float32))
        else:  # regression
            # (batch,) only for one output: with several, torch would broadcast it across the columns
            allowed = ((batch,), (batch, 1)) if self.num_labels == 1 else ((batch, self.num_labels),)
            if labels.shape not in allowed:
                shapes = " or ".join(str(shape) for shape in allowed)
                raise ValueError(
                    f"`labels` must have shape {shapes} for regression with num_labels={self.num_labels} "
                    f"(one target per output), got {tuple(labels.shape)}."
                )
            labels = labels.to(torch.promote_types(logits.dtype, torch.float32))  # (as above)
        if inferred:
            self.config.problem_type = problem
        return labels.to(logits.device)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
    ) -> SequenceClassifierOutput | tuple[torch.Tensor, ...]:
        """Classifies a right-padded batch of token ids.

        Args:
            input_ids: Token ids, shape ``(batch, seq_len)``, right-padded.
            attention_mask: 1 for real tokens, 0 for padding, shape ``(batch, seq_len)``. Used for the
                lengths when ``lengths`` is not given; without both, every position counts as a token.
            lengths: Number of real tokens per text, shape ``(batch,)``, preferably int64 on the CPU (as
                ``PackedSequenceCollator`` returns them) so packing needs no device-to-host copy.
            labels: Class ids ``(batch,)`` or ``(batch, 1)`` (single-label), 0/1 floats
                ``(batch, num_labels)`` (multi-label) or floats (regression). The loss follows ``config.problem_type``, inferred when unset.
            output_hidden_states: Also return ``(embeddings, rnn_outputs)``, each ``(batch, seq_len, dim)``.
            return_dict: Return a ``SequenceClassifierOutput`` (default) or a plain tuple.
            token_type_ids: Accepted and ignored: BERT-style tokenizers (WordPiece, e.g. a pretrained
                ``bert-base-multilingual-cased`` tokenizer driving this model) return segment ids, and
                ``pipeline`` passes everything the tokenizer returns. An RNN reads one text; segments
                carry nothing it uses.
            inputs_embeds: Vectors in place of the embedding lookup, shape ``(batch, seq_len,
                embedding_dim)``, right-padded (e.g. for gradient-based attributions or adversarial
                inputs); give ``input_ids`` or this, not both. Embedding dropout applies to them as to the
                looked-up vectors; word dropout (which replaces ids) does not.
            position_ids: Accepted and ignored, as by transformers' models without position embeddings:
                a recurrent network reads the order of its inputs itself.
            output_attentions: Accepted and ignored (generic code passes it to every model): a recurrent
                network has no attention, so ``attentions`` is always ``None``.

        Returns:
            ``SequenceClassifierOutput`` with ``loss`` (when labels are given) and ``logits``
            ``(batch, num_labels)``, rows in input order.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        lengths = self._check_inputs(input_ids, attention_mask, lengths, inputs_embeds)
        if input_ids is not None and input_ids.dtype not in (torch.int64, torch.int32):
            input_ids = input_ids.long()  # (nn.Embedding takes int64/int32 indices only)
        width = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        embedded, outputs, h_n = self._encode(input_ids, inputs_embeds, lengths)
        batch, seq_len = outputs.shape[:2]
        device = outputs.device
        lengths_dev = lengths.to(device, non_blocking=True)
        mask = torch.arange(seq_len, device=device)[None, :] < lengths_dev[:, None]  # (batch, seq)
        pooled = self._pool(outputs, h_n, mask, lengths_dev)  # (batch, pooled_size)
        pooled = pooled.masked_fill((lengths_dev == 0)[:, None], 0.0)
        logits = self.classifier(self.classifier_dropout(pooled))  # (batch, num_labels)

        loss = None
        if labels is not None:
            labels = self._check_labels(labels, batch, logits)
            problem = self.config.problem_type
            if problem == "regression":
                if self.num_labels == 1:
                    loss = nn.functional.mse_loss(logits.squeeze(-1), labels.view(-1))
                else:
                    loss = nn.functional.mse_loss(logits, labels)
            elif problem == "single_label_classification":
                loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
            else:
                loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)

        # (a batch of width 0 was encoded with one pad column: given back at its own width)
        hidden_states = (embedded[:, :width], outputs[:, :width]) if output_hidden_states else None
        if not return_dict:
            result = tuple(x for x in (logits, hidden_states) if x is not None)
            return ((loss, *result)) if loss is not None else result
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)

    def _encode(
        self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embedding (or ``inputs_embeds``), dropout and the packed RNN over checked inputs.

        Returns ``(embedded, outputs, h_n)``: ``(batch, seq, emb)``, ``(batch, seq, dirs * out)`` with
        zeros at padding (all of an empty text's row), rows in input order, and the final states
        ``(layers * dirs, batch, out)``. A batch of width 0 comes back with width 1 (one pad column;
        callers mask it by ``lengths``).
        """
        if inputs_embeds is None:
            if input_ids.shape[1] == 0:
                # A batch of empty texts: give packing one pad column to read; pooling zeroes it below.
                input_ids = input_ids.new_full((input_ids.shape[0], 1), self.config.pad_token_id)
            if self.training and self.config.word_dropout > 0:
                input_ids = self._drop_words(input_ids, lengths)
            inputs_embeds = self.embeddings(input_ids)
        elif inputs_embeds.shape[1] == 0:
            # The same for given vectors: one zero column.
            inputs_embeds = inputs_embeds.new_zeros((inputs_embeds.shape[0], 1, inputs_embeds.shape[2]))
        embedded = self.embedding_dropout(inputs_embeds)  # (batch, seq, emb)
        batch, seq_len = embedded.shape[:2]
        device = embedded.device
        empty = lengths == 0  # (batch,) on the CPU
        any_empty = bool(empty.any())
        if any_empty:
            # the step an empty text is packed with reads zeros, not its padding (NaN or inf there would
            # reach every RNN weight's gradient)
            empty_dev = empty.to(device, non_blocking=True)
            rnn_inputs = embedded.masked_fill(empty_dev[:, None, None], 0.0)
        else:
            rnn_inputs = embedded
        # Zero-length texts are packed as one step and their pooled vector is zeroed afterwards. Rows are
        # sorted by length here, on the CPU, and both permutations go to the device by non_blocking copies:
        # pack_padded_sequence(enforce_sorted=False) would copy with a blocking host-to-device copy, and
        # pad_packed_sequence with a device-to-host one, each a synchronisation on an accelerator.
        sorted_lengths, order = torch.sort(lengths.clamp(min=1), descending=True)
        restore = torch.empty_like(order)
        restore[order] = torch.arange(batch)
        order_dev = order.to(device, non_blocking=True)
        restore_dev = restore.to(device, non_blocking=True)
        packed = pack_padded_sequence(rnn_inputs.index_select(0, order_dev), sorted_lengths, batch_first=True)
        packed = PackedSequence(packed.data, packed.batch_sizes, order_dev, restore_dev)
        packed_out, state = self.rnn(packed)
        h_n = state[0] if isinstance(state, tuple) else state  # (layers * dirs, batch, out) in input order
        # total_length keeps the padded width, so shapes agree across DDP ranks and with the mask.
        outputs, _ = pad_packed_sequence(
            PackedSequence(packed_out.data, packed_out.batch_sizes), batch_first=True, total_length=seq_len
        )  # (batch, seq, dirs*out), rows by decreasing length
        outputs = outputs.index_select(0, restore_dev)  # rows in input order
        if any_empty:
            outputs = outputs.masked_fill(empty_dev[:, None, None], 0.0)  # an empty text has no outputs
        return embedded, outputs, h_n

    def _drop_words(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``config.word_dropout``: each real token becomes ``config.unk_token_id`` with that probability."""
        batch, seq_len = input_ids.shape
        device = input_ids.device
        real = torch.arange(seq_len, device=device)[None, :] < lengths.to(device, non_blocking=True)[:, None]
        drop = torch.rand((batch, seq_len), device=device) < self.config.word_dropout  # (batch, seq)
        return input_ids.masked_fill(drop & real, self.config.unk_token_id)

    def _pool(
        self, outputs: torch.Tensor, h_n: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        pooling = self.config.pooling
        if pooling == "last":
            if self.config.bidirectional:
                # h_n[-2]: forward direction after the last real token; h_n[-1]: backward direction after
                # reading the whole text right-to-left, i.e. its state at position 0.
                return torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (batch, 2 * out)
            return h_n[-1]  # (batch, out)
        # pad_packed_sequence fills padding with zeros, so a plain sum is a sum over real tokens.
        mean = outputs.sum(dim=1) / lengths.clamp(min=1)[:, None].to(outputs.dtype)
        if pooling == "mean":
            return mean
        maxed = outputs.masked_fill(~mask[:, :, None], torch.finfo(outputs.dtype).min).amax(dim=1)
        if pooling == "max":
            return maxed
        if pooling == "mean_max":
            return torch.cat([mean, maxed], dim=-1)
        self.config.validate()  # a value set on the built model's config: the error names it
        raise InvalidConfigError(f"config.pooling={pooling!r} is not one of last, mean, max, mean_max.")


__all__ = ["RNNClassifier", "RNNClassifierPreTrainedModel"]
