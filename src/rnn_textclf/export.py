"""Fast CPU inference: dynamic int8 quantization and ONNX export of an [`RNNClassifier`][rnn_textclf.RNNClassifier].

Two independent routes, both predicting through the model's batch API (``model(**batch).logits`` on a
[`PackedSequenceCollator`][rnn_textclf.PackedSequenceCollator] batch):

- [`quantize_dynamic`][rnn_textclf.export.quantize_dynamic] returns a
  [`QuantizedRNNClassifier`][rnn_textclf.export.QuantizedRNNClassifier]: the LSTM/GRU and the classifier
  run with int8 weights and dynamically quantized activations. It saves the float weights (safetensors)
  plus a flag in ``config.json`` and re-quantizes on load, which reproduces the same int8 weights exactly.
- [`export_onnx`][rnn_textclf.export.export_onnx] writes an ``.onnx`` file through an *unpacked* forward
  pass (``PackedSequence`` cannot be exported) that gives the packed model's logits, and
  [`OnnxClassifier`][rnn_textclf.export.OnnxClassifier] runs it with onnxruntime.

``import rnn_textclf`` never imports ``onnx`` or ``onnxruntime``: they are imported inside the functions
that need them and come with the ``export`` extra (``pip install "rnn-textclf[export]"``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration import QUANTIZATION_FLAG, RNNClassifierConfig
from .modeling import RNNClassifier

logger = logging.getLogger(__name__)

#: Key of the ONNX metadata entry that holds the model's ``config.json``.
ONNX_CONFIG_KEY = "rnn_textclf_config"
#: Key of the ONNX metadata entry that holds `weights_fingerprint` of the exported model: which weights
#: the file was made from (``rnn-textclf predict --onnx`` uses a folder's model.onnx only for its weights).
ONNX_WEIGHTS_KEY = "rnn_textclf_weights_sha256"
#: File name used when ``export_onnx`` / ``OnnxClassifier`` get a folder instead of an ``.onnx`` path.
ONNX_FILE_NAME = "model.onnx"
#: Opsets the (TorchScript) ONNX exporter can write for this graph: GatherElements needs 11, the
#: TorchScript exporter stops at 20.
MIN_OPSET, MAX_OPSET = 11, 20
DEFAULT_OPSET = 17

_RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _check_model(model: Any, argument: str = "model") -> RNNClassifier:
    if not isinstance(model, RNNClassifier):
        raise TypeError(f"`{argument}` must be an rnn_textclf.RNNClassifier, got {type(model).__name__}.")
    return model


@contextlib.contextmanager
def _quiet_torch_ao() -> Iterator[None]:
    # torch.ao.quantization warns on every call that it is deprecated (see quantize_dynamic's docstring for
    # why it is still the right API for recurrent layers) and that quantized tensor creation is deprecated.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated.*")
        yield


# ----------------------------------------------------------------------------------------- int8 (torch)


class QuantizedRNNClassifier(RNNClassifier):
    """An [`RNNClassifier`][rnn_textclf.RNNClassifier] whose LSTM/GRU and classifier run in dynamic int8 on CPU.

    Made by [`quantize_dynamic`][rnn_textclf.export.quantize_dynamic]. It is called exactly like the float
    model (``model(**batch).logits``), for inference on the CPU only (no gradients, no accelerator).

    ``save_pretrained`` writes an ordinary float checkpoint (``model.safetensors``) with
    ``config.rnn_textclf_quantization = "dynamic_int8"``; ``from_pretrained`` loads it and quantizes again.
    Quantizing is deterministic, so the reloaded model has exactly the same int8 weights and logits. The
    file therefore has the float model's size; the int8 weights only exist in memory. ``RNNClassifier.
    from_pretrained`` reads the same folder as the float model.
    """

    _float_weights: dict[str, torch.Tensor]

    @classmethod
    def from_float(cls, model: RNNClassifier) -> QuantizedRNNClassifier:
        """Quantizes a copy of ``model``; ``model`` itself is left untouched. See ``quantize_dynamic``."""
        model = _check_model(model)
        if isinstance(model, QuantizedRNNClassifier):
            raise ValueError("`model` is already quantized; pass the float RNNClassifier.")
        config = model.config
        if config.rnn_type not in ("lstm", "gru"):
            raise ValueError(
                f"Cannot quantize config.rnn_type={config.rnn_type!r}: PyTorch has dynamic int8 kernels for "
                "nn.LSTM and nn.GRU only (not for the Elman nn.RNN), so only the small classifier would be "
                "quantized. Use rnn_type='lstm' or 'gru', or export_onnx() for a faster float model."
            )
        if config.proj_size:
            raise ValueError(
                f"Cannot quantize config.proj_size={config.proj_size}: PyTorch's dynamic int8 LSTM does not "
                "support projections. Use proj_size=0."
            )
        quantized = cls(copy.deepcopy(config))
        state = model.state_dict()
        quantized.load_state_dict(state)
        quantized._float_weights = {
            name: tensor.detach().clone()
            for name, tensor in state.items()
            if name.startswith(("rnn.", "classifier."))
        }
        quantized.eval()
        quantized.requires_grad_(False)
        rnn_class = _RNN_CLASSES[config.rnn_type]
        with _quiet_torch_ao():
            torch.ao.quantization.quantize_dynamic(
                quantized, {rnn_class, nn.Linear}, dtype=torch.qint8, inplace=True
            )
        quantized.config.rnn_textclf_quantization = QUANTIZATION_FLAG
        return quantized

    def to_float(self) -> RNNClassifier:
        """The float [`RNNClassifier`][rnn_textclf.RNNClassifier] this model was quantized from."""
        config = copy.deepcopy(self.config)
        if hasattr(config, "rnn_textclf_quantization"):
            del config.rnn_textclf_quantization
        model = RNNClassifier(config)
        state = {name: t for name, t in self.state_dict().items() if name.startswith("embeddings.")}
        state.update(self._float_weights)
        model.load_state_dict(state)
        model.eval()
        return model

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """Writes the float weights (safetensors) and ``config.rnn_textclf_quantization = "dynamic_int8"``.

        Args:
            save_directory: Folder to write (created if missing); other files there are kept.
            *args: Passed on to ``RNNClassifier.save_pretrained``.
            **kwargs: Passed on to ``RNNClassifier.save_pretrained``.
        """
        float_model = self.to_float()
        float_model.config.rnn_textclf_quantization = QUANTIZATION_FLAG
        float_model.save_pretrained(save_directory, *args, **kwargs)

    @classmethod
    def from_pretrained(
        cls, *args: Any, **kwargs: Any
    ) -> QuantizedRNNClassifier | tuple[QuantizedRNNClassifier, dict]:
        """Loads a checkpoint (quantized or float) with ``RNNClassifier.from_pretrained`` and quantizes it.

        Args:
            *args: Passed on to ``RNNClassifier.from_pretrained`` (folder or Hub repo id first).
            **kwargs: Passed on to ``RNNClassifier.from_pretrained`` (safetensors only, never pickle); with
                ``output_loading_info=True``, returns ``(model, loading_info)`` as transformers does.
        """
        if kwargs.get("output_loading_info"):
            model, info = RNNClassifier.from_pretrained(*args, **kwargs)
            return cls.from_float(model), info
        return cls.from_float(RNNClassifier.from_pretrained(*args, **kwargs))

    def train(self, mode: bool = True) -> QuantizedRNNClassifier:
        if mode:
            raise ValueError(
                "A QuantizedRNNClassifier is for inference only and cannot be put in training mode; train the "
                "float model (QuantizedRNNClassifier.to_float()) and quantize it again."
            )
        return super().train(False)


def quantize_dynamic(model: RNNClassifier) -> QuantizedRNNClassifier:
    """Dynamic int8 quantization of the recurrent layer and the classifier, for CPU inference.

    Weights of the LSTM/GRU and of the final ``nn.Linear`` are stored as int8 (per tensor, symmetric);
    activations are quantized on the fly at each step. The embedding stays float (a lookup costs nothing).
    The input model is not modified.

    Why ``torch.ao.quantization.quantize_dynamic``: it is the only PyTorch API with int8 kernels for
    ``nn.LSTM`` and ``nn.GRU`` (``torch.ao.nn.quantized.dynamic.LSTM/GRU``, run by fbgemm/oneDNN on x86).
    PyTorch marks ``torch.ao.quantization`` as deprecated in favour of torchao, but torchao's ``quantize_``
    (0.18, checked with torch 2.13) only rewrites ``nn.Linear`` weights and leaves recurrent layers in
    float, which would quantize only the tiny classifier. The deprecation warnings are silenced here.

    Speed (benchmarks/inference.py, BiLSTM 100/128 on AG News, one thread): 1.3x to 1.5x the float model's
    texts/s at batch 32 and 256, with the same predictions, but about 0.6x at batch 1, where quantizing
    the activations at every step costs more than the small matrix products save. For single texts and
    for a smaller file, export to ONNX (``export_onnx`` + ``quantize_onnx``) instead.

    Args:
        model: A float [`RNNClassifier`][rnn_textclf.RNNClassifier] with ``rnn_type`` ``"lstm"`` or
            ``"gru"`` and ``proj_size=0``.

    Returns:
        A [`QuantizedRNNClassifier`][rnn_textclf.export.QuantizedRNNClassifier] in eval mode, on the CPU.

    Raises:
        TypeError: ``model`` is not an ``RNNClassifier``.
        ValueError: ``config.rnn_type`` is ``"rnn"`` or ``config.proj_size`` is set (no int8 kernels), or the
            model is already quantized.

    Example:
        ```python
        >>> from rnn_textclf.export import quantize_dynamic, QuantizedRNNClassifier
        >>> int8 = quantize_dynamic(model)
        >>> logits = int8(**batch).logits
        >>> int8.save_pretrained("model-int8")  # float safetensors + flag
        >>> int8 = QuantizedRNNClassifier.from_pretrained("model-int8")
        ```
    """
    model = _check_model(model)
    if next(model.parameters()).device.type != "cpu":
        model = copy.deepcopy(model).cpu()
    return QuantizedRNNClassifier.from_float(model)


# ------------------------------------------------------------------------------------------------- ONNX


class UnpackedRNNClassifier(nn.Module):
    """The float model's forward pass without ``PackedSequence``, for ONNX export.

    Built from a copy of an [`RNNClassifier`][rnn_textclf.RNNClassifier]'s weights. It runs every direction
    of every layer as its own one-layer, one-direction RNN over the right-padded batch and uses the
    lengths only through gathers and masks, which the ONNX exporter can trace with dynamic batch and
    sequence axes:

    - forward direction: a causal RNN's outputs at the real positions do not depend on the padding after
      them; the final state is the output at position ``length - 1``;
    - backward direction: each row is reversed *within its length* (a gather with per-row indices
      ``length - 1 - t``, padding left in place), run left-to-right with the reverse weights and reversed
      back, so it never reads padding before the real tokens; its final state is the output at position 0;
    - padding outputs are zeroed (as ``pad_packed_sequence`` does) before the next layer and pooling;
    - a zero-length text runs one pad step (as the packed model does) and its pooled vector is zeroed, so
      its logits are the classifier's bias.

    Args:
        model: The float model to copy.

    Raises:
        ValueError: ``config.proj_size`` is set (ONNX's LSTM operator has no projection) or the model is
            quantized.
    """

    def __init__(self, model: RNNClassifier) -> None:
        super().__init__()
        model = _check_model(model)
        if isinstance(model, QuantizedRNNClassifier):
            raise ValueError(
                "Cannot export a QuantizedRNNClassifier to ONNX (its int8 modules have no ONNX mapping); export "
                "the float model (QuantizedRNNClassifier.to_float()) and, for int8, quantize the .onnx file with "
                "rnn_textclf.export.quantize_onnx()."
            )
        config = model.config
        if config.proj_size:
            raise ValueError(
                f"Cannot export config.proj_size={config.proj_size} to ONNX: the ONNX LSTM operator has no "
                "projection (torch.nn.LSTM(proj_size=...)). Only models with proj_size=0 can be exported."
            )
        self.config = copy.deepcopy(config)
        source = model.rnn
        self.embeddings = nn.Embedding.from_pretrained(
            model.embeddings.weight.detach().clone().float(), freeze=True, padding_idx=config.pad_token_id
        )
        rnn_class = _RNN_CLASSES[config.rnn_type]
        extra: dict[str, Any] = {"nonlinearity": config.nonlinearity} if config.rnn_type == "rnn" else {}
        self.layers = nn.ModuleList()
        for layer in range(config.num_layers):
            input_size = config.embedding_dim if layer == 0 else config.rnn_output_size
            directions = nn.ModuleList()
            for suffix in ("", "_reverse")[: config.num_directions]:
                rnn = rnn_class(input_size, config.hidden_size, num_layers=1, batch_first=True, **extra)
                with torch.no_grad():
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        getattr(rnn, f"{name}_l0").copy_(getattr(source, f"{name}_l{layer}{suffix}").float())
                directions.append(rnn)
            self.layers.append(directions)
        self.classifier = nn.Linear(model.classifier.in_features, model.classifier.out_features)
        self.classifier.load_state_dict(model.classifier.state_dict())
        self.float().eval().requires_grad_(False)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, num_labels)`` of a right-padded batch ``input_ids (batch, seq)``, ``lengths (batch,)``."""
        seq_len = input_ids.shape[1]
        positions = torch.arange(seq_len, device=input_ids.device)[None, :]  # (1, seq)
        lengths = lengths.to(torch.int64)[:, None]  # (batch, 1)
        # zero-length texts run one step, as when packed (`where`, not clamp/maximum: ONNX Clip and Max
        # take int64 only from opset 12)
        run_lengths = torch.where(lengths > 0, lengths, torch.ones_like(lengths))
        steps = positions < run_lengths  # (batch, seq): positions the packed RNN reads
        real = positions < lengths  # (batch, seq): real tokens, for pooling
        # Per-row reversal within the length; padding stays in place. Applying it twice is the identity.
        reverse = torch.where(steps, run_lengths - 1 - positions, positions)  # (batch, seq)
        last = run_lengths - 1  # (batch, 1)

        x = self.embeddings(input_ids)  # (batch, seq, emb)
        finals: list[torch.Tensor] = []
        for directions in self.layers:
            outputs = []
            finals = []
            for index, rnn in enumerate(directions):
                if index == 0:
                    out, _ = rnn(x)  # (batch, seq, hidden)
                    final = _take(out, last)[:, 0]
                else:
                    out_reversed, _ = rnn(_take(x, reverse))
                    final = _take(out_reversed, last)[:, 0]
                    out = _take(out_reversed, reverse)
                outputs.append(out)
                finals.append(final)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            x = x * steps[:, :, None].to(x.dtype)  # zero padding, like pad_packed_sequence

        pooling = self.config.pooling
        if pooling == "last":
            pooled = torch.cat(finals, dim=-1) if len(finals) > 1 else finals[0]
        else:
            parts = []
            if pooling in ("mean", "mean_max"):
                parts.append(x.sum(dim=1) / run_lengths.to(x.dtype))  # padding is zero
            if pooling in ("max", "mean_max"):
                parts.append(x.masked_fill(~real[:, :, None], torch.finfo(x.dtype).min).amax(dim=1))
            pooled = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        pooled = pooled.masked_fill(lengths == 0, 0.0)
        return self.classifier(pooled)


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[b, index[b, t], :]`` for ``values (batch, seq, dim)`` and ``index (batch, k)``."""
    return torch.gather(values, 1, index[:, :, None].expand(-1, -1, values.shape[2]))


def export_onnx(
    model: RNNClassifier,
    path: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    verify: bool = True,
    atol: float = 1e-4,
) -> Path:
    """Exports ``model`` to ONNX through the unpacked forward pass.

    The graph takes ``input_ids`` (int64, ``(batch, seq)``, right-padded) and ``lengths`` (int64,
    ``(batch,)``), both axes dynamic, and returns ``logits`` (float32, ``(batch, num_labels)``). The
    model's ``config.json`` is stored in the file's metadata, so the ``.onnx`` file alone is enough for
    [`OnnxClassifier`][rnn_textclf.export.OnnxClassifier].

    Exporter: the TorchScript-based ``torch.onnx.export(..., dynamo=False)``. It maps ``nn.RNN/LSTM/GRU``
    to the native ONNX ``RNN``/``LSTM``/``GRU`` operators with a dynamic sequence axis. The newer
    ``dynamo=True`` exporter (the default since torch 2.9) was tried with torch 2.13 and is not used: it
    fixes the sequence axis to the example's length for ``nn.RNN``, and for ``nn.LSTM``/``nn.GRU`` on every
    export after the first in a process (a stale operator dispatch cache bypasses its while-loop
    decomposition), producing a model that rejects other lengths. Every export is checked against the
    packed PyTorch model (``verify``), so a change in the exporter cannot go unnoticed.

    Args:
        model: A float [`RNNClassifier`][rnn_textclf.RNNClassifier] (any ``rnn_type``, direction, layer
            count and pooling) with ``proj_size=0``. It is not modified.
        path: The ``.onnx`` file to write, or a folder (``model.onnx`` is written in it).
        opset: ONNX opset, from 11 to 20.
        verify: Run the exported file with onnxruntime on a random batch of other shape than the export
            example (lengths 0, 1 and the maximum included) and compare with the packed model.
        atol: Largest allowed absolute difference of the logits in ``verify``, plus ``1e-5`` times the
            logit's size (float32 rounding of large logits, as ``torch.allclose``).

    Returns:
        The path of the written ``.onnx`` file.

    Raises:
        TypeError: ``model`` is not an ``RNNClassifier``.
        ValueError: ``config.proj_size`` is set, the model is quantized, ``opset`` is out of range, or
            ``path`` cannot be written (an existing folder named like the file, or a file on its way).
        ImportError: ``onnx`` or ``onnxruntime`` is missing (``pip install "rnn-textclf[export]"``).
        RuntimeError: ``verify`` found logits further than ``atol`` from the packed model's.
    """
    model = _check_model(model)
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"`opset` must be an integer from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}.")
    if not isinstance(atol, (int, float)) or isinstance(atol, bool) or atol <= 0:
        raise ValueError(f"`atol` must be a positive number, got {atol!r}.")
    if _on_accelerator(model):
        model = copy.deepcopy(model).cpu()
    wrapper = UnpackedRNNClassifier(model)
    onnx = _import_onnx()
    target = _writable_onnx_path(path, "path")
    made = [p for p in target.parents if not p.exists()]  # (deepest first) removed again on failure
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _export(model, wrapper, onnx, target, opset, verify, atol)
    except BaseException:
        for folder in made:
            with contextlib.suppress(OSError):  # (only while empty)
                folder.rmdir()
        raise
    logger.info("Exported %s (opset %d) to %s", model.config.rnn_type, opset, target)
    return target


def _export(
    model: RNNClassifier, wrapper: nn.Module, onnx: Any, target: Path, opset: int, verify: bool, atol: float
) -> None:
    """`export_onnx`'s work: the file written beside ``target``, checked, then moved into place."""

    generator = torch.Generator().manual_seed(0)
    example_ids = torch.randint(0, model.config.vocab_size, (3, 7), generator=generator)
    example_lengths = torch.tensor([7, 1, 4])
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.export-") as tmp:
        staging = Path(tmp) / target.name
        with warnings.catch_warnings(), torch.no_grad():
            # The legacy exporter's own deprecation notice, tracer notes about shape checks inside nn.RNN,
            # and a warning about initial states that does not apply (we pass none): see the docstring.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=r".*batch_size other than 1.*")
            torch.onnx.export(
                wrapper,
                (example_ids, example_lengths),
                str(staging),
                dynamo=False,
                opset_version=opset,
                input_names=["input_ids", "lengths"],
                output_names=["logits"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "lengths": {0: "batch"},
                    "logits": {0: "batch"},
                },
                do_constant_folding=True,
            )
        proto = onnx.load(str(staging))
        entry = proto.metadata_props.add()
        entry.key = ONNX_CONFIG_KEY
        entry.value = wrapper.config.to_json_string(use_diff=False)
        entry = proto.metadata_props.add()
        entry.key, entry.value = ONNX_WEIGHTS_KEY, weights_fingerprint(model)
        proto.producer_name = "rnn-textclf"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(staging))
        if verify:
            _verify(model, OnnxClassifier(staging), atol)
        os.replace(staging, target)


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the model's tensors (names, dtypes, shapes and bytes, in ``state_dict`` order): equal for
    equal weights, whatever file or process they came from."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{data.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _on_accelerator(model: nn.Module) -> bool:
    return any(p.device.type != "cpu" for p in model.parameters())


def _onnx_path(path: str | os.PathLike, argument: str = "path") -> Path:
    target = Path(path)
    if target.suffix.lower() != ".onnx":
        if target.exists() and not target.is_dir():
            raise ValueError(f"`{argument}` must be an .onnx file or a folder, got the file {str(target)!r}.")
        target = target / ONNX_FILE_NAME
    return target


def _writable_onnx_path(path: str | os.PathLike, argument: str) -> Path:
    """The .onnx file to write for ``path`` (the argument named ``argument``), refused when it cannot be."""
    target = _onnx_path(path, argument)
    if target.is_dir():
        raise ValueError(
            f"`{argument}` {str(path)!r} is an existing folder: give the .onnx file to write, or a folder whose "
            "name does not end in .onnx (model.onnx is written in it)."
        )
    blocking = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ValueError(
            f"`{argument}` {str(path)!r} cannot be written: {str(blocking)!r} is a file, not a folder."
        )
    return target


_RTOL = 1e-5  # `_verify`'s relative tolerance, as torch.allclose's default


def _verify(model: RNNClassifier, session: OnnxClassifier, atol: float) -> None:
    generator = torch.Generator().manual_seed(1)
    vocab = model.config.vocab_size
    lengths = torch.tensor([11, 1, 0, 5, 11, 2])
    ids = torch.randint(0, vocab, (len(lengths), 11), generator=generator)
    ids = ids.masked_fill(torch.arange(11)[None, :] >= lengths[:, None], model.config.pad_token_id)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            # the graph computes in float32 (half-precision weights are widened): compare with that model
            reference = model if model.dtype == torch.float32 else copy.deepcopy(model).float()
            expected = reference(input_ids=ids, lengths=lengths).logits.float()
    finally:
        model.train(was_training)
    got = session(input_ids=ids, lengths=lengths).logits
    # and a float32 rounding step of large logits (a regression head's outputs in the thousands)
    allowed = atol + _RTOL * expected.abs()
    excess = (got - expected).abs() - allowed
    if not bool((excess <= 0).all()):
        worst = int(excess.argmax())
        diff = float((got - expected).abs().flatten()[worst])
        raise RuntimeError(
            f"The exported ONNX model's logits differ from the packed PyTorch model's by {diff:.3g} (allowed: "
            f"atol={atol} + {_RTOL} x |logit| = {float(allowed.flatten()[worst]):.3g}) on a test batch with "
            f"lengths {lengths.tolist()}; the export is not usable."
        )


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as err:
        raise ImportError(
            'ONNX export needs the `onnx` package: pip install "rnn-textclf[export]" (onnx, onnxruntime).'
        ) from err
    return onnx


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            'Running ONNX models needs `onnxruntime`: pip install "rnn-textclf[export]" (onnx, onnxruntime).'
        ) from err
    return onnxruntime


def _named_file(path: str | os.PathLike, file: Path) -> str:
    """``'path'``, or ``'folder' (its model.onnx)`` when ``path`` is the folder that holds ``file``."""
    return repr(str(path)) if Path(path) == file else f"{str(path)!r} (its {file.name})"


def _to_numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except ValueError as err:
        raise ValueError(
            f"`{name}` must be a rectangular (padded) batch; got rows of different lengths. Pad them with "
            "rnn_textclf.PackedSequenceCollator or tokenizer(..., padding=True)."
        ) from err
    # (booleans only in a mask: True/False as token ids 1/0 is a mistake the PyTorch model refuses too)
    allowed_bool = name == "attention_mask" and array.dtype == np.bool_
    if array.dtype == object or not (np.issubdtype(array.dtype, np.integer) or allowed_bool):
        raise ValueError(f"`{name}` must hold integers, got dtype {array.dtype}.")
    return array.astype(np.int64, copy=False)


class OnnxClassifier:
    """Runs a model written by [`export_onnx`][rnn_textclf.export.export_onnx] with onnxruntime.

    It is called like the PyTorch model, on the same batches (a
    [`PackedSequenceCollator`][rnn_textclf.PackedSequenceCollator] batch or a padded tokenizer output,
    torch tensors, NumPy arrays or nested lists), and returns a ``SequenceClassifierOutput`` whose
    ``logits`` is a float32 torch tensor (``.numpy()`` shares its memory). ``config`` is the model's
    [`RNNClassifierConfig`][rnn_textclf.RNNClassifierConfig] (labels, problem type), read from the file.

    Args:
        path: The ``.onnx`` file, or a folder holding ``model.onnx``.
        num_threads: onnxruntime's intra-op threads (``None``: onnxruntime's default, one per core).
        providers: onnxruntime execution providers (default ``["CPUExecutionProvider"]``).
        rows_per_run: The exported RNN computes every padded position (packing cannot be exported), so a
            batch is sorted by length and run in chunks of at most this many rows, each cut to its own
            longest text; rows come back in input order. On AG News (2 cores) this made batches of 256
            about 2.5x faster than one padded run. ``None``: one run per batch, padded as given.

    Example:
        ```python
        >>> from rnn_textclf.export import export_onnx, OnnxClassifier
        >>> export_onnx(model, "model.onnx")
        >>> onnx_model = OnnxClassifier("model.onnx")
        >>> logits = onnx_model(**collator([{"input_ids": ids} for ids in tokenizer(texts)["input_ids"]])).logits
        ```
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        num_threads: int | None = None,
        providers: list[str] | None = None,
        rows_per_run: int | None = 16,
    ) -> None:
        ort = _import_onnxruntime()
        file = Path(path)
        if file.is_dir():
            file = file / ONNX_FILE_NAME
        if not file.is_file():
            raise FileNotFoundError(
                f"`path` {str(path)!r} is neither an .onnx file nor a folder holding {ONNX_FILE_NAME}."
            )
        if num_threads is not None and (
            isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
        ):
            raise ValueError(f"`num_threads` must be a positive integer or None, got {num_threads!r}.")
        if rows_per_run is not None and (
            isinstance(rows_per_run, bool) or not isinstance(rows_per_run, int) or rows_per_run < 1
        ):
            raise ValueError(f"`rows_per_run` must be a positive integer or None, got {rows_per_run!r}.")
        self.rows_per_run = rows_per_run
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.path = file
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidGraph, InvalidProtobuf

        try:
            self.session = ort.InferenceSession(
                str(file), sess_options=options, providers=providers or ["CPUExecutionProvider"]
            )
        except (InvalidProtobuf, InvalidGraph) as err:
            raise ValueError(
                f"`path` {_named_file(path, file)} is not an ONNX model onnxruntime can load ({err}); pass a file "
                "written by rnn_textclf.export_onnx or quantize_onnx."
            ) from err
        meta = self.session.get_modelmeta().custom_metadata_map
        if ONNX_CONFIG_KEY not in meta:
            raise ValueError(
                f"{str(file)!r} has no {ONNX_CONFIG_KEY!r} metadata: it was not written by rnn_textclf.export_onnx."
            )
        self.config = RNNClassifierConfig.from_dict(json.loads(meta[ONNX_CONFIG_KEY]))
        #: `weights_fingerprint` of the model exported (None for files written before it was recorded)
        self.weights_fingerprint: str | None = meta.get(ONNX_WEIGHTS_KEY)
        self._output = self.session.get_outputs()[0].name

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> OnnxClassifier:
        """Same as ``OnnxClassifier(path, **kwargs)``."""
        return cls(path, **kwargs)

    def eval(self) -> OnnxClassifier:
        """No-op (an ONNX model has no training mode); for code written for the PyTorch model."""
        return self

    # What transformers' pipeline reads of a model, so that pipeline("text-classification", model=onnx_model,
    # tokenizer=tokenizer) runs it (as Optimum's ONNX models): inputs stay on the CPU, logits are float32.
    device = torch.device("cpu")
    dtype = torch.float32

    def forward(self, *args: Any, **kwargs: Any) -> SequenceClassifierOutput:
        """Same as calling the model (``pipeline`` reads ``model.forward``'s signature)."""
        return self(*args, **kwargs)

    def __call__(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        lengths: Any = None,
        labels: Any = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """Classifies a right-padded batch.

        Args:
            input_ids: Token ids ``(batch, seq)``, right-padded.
            attention_mask: 1 for tokens, 0 for padding; gives the lengths when ``lengths`` is missing.
            lengths: Tokens per text ``(batch,)``; without it and the mask, every position is a token.
            labels: Accepted so that labelled batches can be passed as they are; ignored (no loss).
            **kwargs: Other batch fields a tokenizer returns (``token_type_ids``, ``length``): ignored.

        Returns:
            ``SequenceClassifierOutput`` with ``logits`` ``(batch, num_labels)``, float32, rows in input order.
        """
        unknown = sorted(
            set(kwargs)
            - {"token_type_ids", "length", "special_tokens_mask", "position_ids", "output_attentions"}
        )
        if unknown:
            raise TypeError(f"OnnxClassifier got unexpected batch fields {unknown}.")
        if input_ids is None:
            raise ValueError("`input_ids` is required (shape (batch, seq)).")
        ids = _to_numpy("input_ids", input_ids)
        if ids.ndim != 2:
            raise ValueError(f"`input_ids` must have shape (batch, seq), got {ids.shape}.")
        batch, seq_len = ids.shape
        mask = None
        if attention_mask is not None:
            mask = _to_numpy("attention_mask", attention_mask)
            if mask.shape != ids.shape:
                raise ValueError(
                    f"`attention_mask` shape {mask.shape} does not match `input_ids` shape {ids.shape}."
                )
        if lengths is not None:
            lens = _to_numpy("lengths", lengths)
            if lens.shape != (batch,):
                raise ValueError(
                    f"`lengths` must have shape ({batch},) (one length per row), got {lens.shape}."
                )
        elif mask is not None:
            lens = (mask != 0).sum(axis=1)
        else:
            lens = np.full((batch,), seq_len, dtype=np.int64)
        # as the PyTorch model: ones then zeros (right padding), agreeing with `lengths` when both are given
        if (
            mask is not None
            and mask.size
            and not np.array_equal(mask != 0, np.arange(seq_len)[None, :] < lens[:, None])
        ):
            raise ValueError(
                "`attention_mask` must mark a prefix of real tokens followed by right padding that agrees with "
                "`lengths` (the tokenizer's padding_side must be 'right')."
            )
        if batch == 0:
            return SequenceClassifierOutput(logits=torch.zeros((0, self.config.num_labels)))
        if lens.min() < 0 or lens.max() > seq_len:
            raise ValueError(
                f"`lengths` must lie in [0, seq_len={seq_len}], got min {int(lens.min())} and max {int(lens.max())}."
            )
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.vocab_size):
            raise ValueError(
                f"Token ids must lie in [0, vocab_size={self.config.vocab_size}), got min {int(ids.min())} and "
                f"max {int(ids.max())}; were the texts tokenized with another tokenizer?"
            )
        if seq_len == 0:  # a batch of empty texts: one pad column, as the PyTorch model does
            ids = np.full((batch, 1), self.config.pad_token_id, dtype=np.int64)
        chunk = self.rows_per_run
        if chunk is None or (batch <= chunk and int(lens.max()) == ids.shape[1]):
            logits = self._run(ids, lens)
        else:
            order = np.argsort(lens, kind="stable")
            logits = np.empty((batch, self.config.num_labels), dtype=np.float32)
            for start in range(0, batch, chunk):
                rows = order[start : start + chunk]
                width = max(int(lens[rows].max()), 1)
                logits[rows] = self._run(ids[rows, :width], lens[rows])
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))

    def _run(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        feed = {"input_ids": np.ascontiguousarray(ids), "lengths": np.ascontiguousarray(lengths)}
        return self.session.run([self._output], feed)[0]


# Nodes of a file that onnxruntime's quantizer already quantized (quantizing it again fails inside onnxruntime).
_QUANTIZED_OPS = frozenset(
    {"DynamicQuantizeLSTM", "DynamicQuantizeLinear", "MatMulInteger", "QLinearMatMul", "DequantizeLinear"}
)


def quantize_onnx(path: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Dynamic int8 quantization of an exported ``.onnx`` file with ``onnxruntime.quantization``.

    onnxruntime replaces ``LSTM`` with its int8 ``DynamicQuantizeLSTM`` and the matrix products (classifier)
    with int8 ones, and stores the embedding table in int8 (dequantized before its lookup: about a quarter
    of the file size), with a scale per output channel of each weight matrix; ``GRU`` and ``RNN`` nodes
    stay float (onnxruntime has no int8 kernels for them). The model's metadata (its config) is kept, so
    [`OnnxClassifier`][rnn_textclf.export.OnnxClassifier] loads the result like any exported file.

    Args:
        path: An ``.onnx`` file written by ``export_onnx`` (or a folder holding ``model.onnx``).
        output: The ``.onnx`` file to write (or a folder: ``model.onnx`` in it).

    Returns:
        The path of the written file.
    """
    onnx = _import_onnx()
    _import_onnxruntime()
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = Path(path)
    if source.is_dir():
        source = source / ONNX_FILE_NAME
    if not source.is_file():
        raise FileNotFoundError(
            f"`path` {str(path)!r} is neither an .onnx file nor a folder holding {ONNX_FILE_NAME}."
        )
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(source), load_external_data=False)
    except DecodeError as err:
        raise ValueError(
            f"`path` {_named_file(path, source)} is not an ONNX model ({err}); pass a file written by "
            "rnn_textclf.export_onnx."
        ) from err
    meta = {p.key: p.value for p in proto.metadata_props}
    if ONNX_CONFIG_KEY not in meta:
        raise ValueError(
            f"{str(source)!r} was not written by rnn_textclf.export_onnx (no {ONNX_CONFIG_KEY!r} metadata)."
        )
    quantized = sorted({node.op_type for node in proto.graph.node} & _QUANTIZED_OPS)
    if quantized:
        raise ValueError(
            f"`path` {_named_file(path, source)} is already quantized (it holds {', '.join(quantized)} nodes): "
            "pass the float32 file export_onnx wrote."
        )
    target = _writable_onnx_path(output, "output")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.quantize-") as tmp:
        staging = Path(tmp) / target.name
        # onnxruntime's recommended pre-processing (shape inference, graph clean-up) first: it is what the
        # quantizer expects, and without it onnxruntime logs a WARNING on every call.
        prepared = Path(tmp) / f"prepared-{target.name}"
        try:
            quant_pre_process(str(source), str(prepared))
        except Exception as err:  # (onnxruntime raises bare TypeErrors and Exceptions here)
            # Its symbolic shape inference fails on some valid graphs (ReduceMax, whose axes are an input
            # from opset 18: max and mean_max pooling); ONNX's own shape inference suffices for them.
            logger.debug(
                "quant_pre_process failed (%s: %s); again without symbolic shapes", type(err).__name__, err
            )
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        # per-channel weight scales (one per output row): with one scale per matrix an LSTM's largest
        # rows set the step for all, and the worst text's logits moved by up to 18% of the logit range
        # (at most 6.6% per channel, at the same speed and file size: docs/benchmarks.md, Inference)
        ort_quantize_dynamic(str(prepared), str(staging), weight_type=QuantType.QInt8, per_channel=True)
        proto = onnx.load(str(staging))
        kept = {p.key for p in proto.metadata_props}
        lost = [key for key in (ONNX_CONFIG_KEY, ONNX_WEIGHTS_KEY) if key in meta and key not in kept]
        for key in lost:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, meta[key]
        if lost:
            onnx.save(proto, str(staging))
        os.replace(staging, target)
    return target


__all__ = [
    "OnnxClassifier",
    "QuantizedRNNClassifier",
    "UnpackedRNNClassifier",
    "export_onnx",
    "quantize_dynamic",
    "quantize_onnx",
    "weights_fingerprint",
]
