"""Int8 quantization and ONNX export: agreement with the float packed model, round trips, refusals.

Timings live in benchmarks/inference.py; these tests check behaviour only.
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
import logging
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from rnn_textclf import PackedSequenceCollator, RNNClassifier, RNNClassifierConfig
from rnn_textclf.data import stratified_split
from rnn_textclf.export import (
    QUANTIZATION_FLAG,
    OnnxClassifier,
    QuantizedRNNClassifier,
    UnpackedRNNClassifier,
    export_onnx,
    quantize_dynamic,
    quantize_onnx,
)
from rnn_textclf.tokenization import RNNTokenizer

# Only the ONNX tests need the `export` extra (onnx, onnxruntime); the int8 PyTorch ones run without it.
needs_export_extra = pytest.mark.usefixtures("export_extra")


def _tiny(rnn_type: str = "lstm", **overrides) -> RNNClassifier:
    kwargs = {
        "vocab_size": 40,
        "embedding_dim": 6,
        "hidden_size": 7,
        "rnn_type": rnn_type,
        "num_labels": 3,
        **overrides,
    }
    return RNNClassifier(RNNClassifierConfig(**kwargs)).eval()


def _random_batch(
    lengths: list[int], vocab: int, *, seed: int = 0, pad: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lens = torch.tensor(lengths)
    width = max(int(lens.max()), 1)
    ids = torch.randint(1, vocab, (len(lengths), width), generator=generator)
    ids = ids.masked_fill(torch.arange(width)[None, :] >= lens[:, None], pad)
    return ids, lens


def _logits(model, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, lengths=lengths).logits


# --------------------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def ag_news(shared_data: Path) -> dict:
    """A tokenizer and tokenized train/eval rows of a seeded stratified split of real AG News rows."""
    with (shared_data / "ag_news_csv" / "test.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    texts = [f"{title} {description}" for _, title, description in rows]
    labels = np.array([int(label) - 1 for label, _, _ in rows])
    # 2,400 training rows and 600 evaluation rows, every class in its share.
    train, evaluation, _ = stratified_split(labels, (0.3158, 0.0790, 0.6052), seed=0)
    tokenizer = RNNTokenizer.train_from_iterator((texts[i] for i in train), min_freq=2)
    encode = lambda idx: tokenizer([texts[i] for i in idx], truncation=True, max_length=48)["input_ids"]  # noqa: E731
    return {
        "tokenizer": tokenizer,
        "train_ids": encode(train),
        "train_labels": labels[train],
        "eval_ids": encode(evaluation),
        "eval_labels": labels[evaluation],
        "eval_texts": [texts[i] for i in evaluation],
    }


def _batches(ids: list[list[int]], size: int, collator: PackedSequenceCollator) -> list[dict]:
    return [collator([{"input_ids": row} for row in ids[i : i + size]]) for i in range(0, len(ids), size)]


@pytest.fixture(scope="module", params=["lstm", "gru"])
def trained(request, ag_news) -> RNNClassifier:
    """A small bidirectional classifier trained 250 steps on real AG News rows (not degenerate)."""
    torch.manual_seed(0)

    tokenizer = ag_news["tokenizer"]
    model = RNNClassifier(
        RNNClassifierConfig(
            vocab_size=len(tokenizer),
            embedding_dim=32,
            hidden_size=48,
            rnn_type=request.param,
            bidirectional=True,
            pooling="max",
            num_labels=4,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    collator = PackedSequenceCollator(tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    ids, labels = ag_news["train_ids"], ag_news["train_labels"]
    rng = np.random.default_rng(0)
    model.train()
    for _step in range(250):
        pick = rng.choice(len(ids), size=32, replace=False)
        batch = collator([{"input_ids": ids[i], "labels": int(labels[i])} for i in pick])
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _predict(model, batches: list[dict]) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([model(**batch).logits for batch in batches]).argmax(-1).numpy()


def test_int8_agrees_with_float_on_real_texts(trained, ag_news):
    collator = PackedSequenceCollator(ag_news["tokenizer"])
    batches = _batches(ag_news["eval_ids"], 64, collator)
    float_pred = _predict(trained, batches)
    int8 = quantize_dynamic(trained)
    int8_pred = _predict(int8, batches)
    accuracy = (float_pred == ag_news["eval_labels"]).mean()
    # Not degenerate: well above chance (0.25) and every class predicted.
    assert accuracy > 0.6, accuracy
    assert len(np.unique(float_pred)) == 4
    agreement = (float_pred == int8_pred).mean()
    print(f"{trained.config.rnn_type}: accuracy {accuracy:.3f}, int8 agreement {agreement:.4f}")
    assert agreement >= 0.99, f"int8 agrees with float on {agreement:.2%} of {len(float_pred)} texts"
    # The int8 modules are really there.
    assert type(int8.rnn).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert type(int8.classifier).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert (
        isinstance(trained.rnn, torch.nn.RNNBase) and type(trained.rnn).__module__ == "torch.nn.modules.rnn"
    )


@needs_export_extra
def test_onnx_matches_packed_model_on_real_texts(trained, ag_news, tmp_path):
    tokenizer = ag_news["tokenizer"]
    texts = [*ag_news["eval_texts"][:200], "Stocks", "Reuters", "?", ""]  # one-token and empty texts
    encoded = tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    assert sorted(map(len, encoded))[:3] == [0, 1, 1]
    batches = _batches(encoded, 37, PackedSequenceCollator(tokenizer))
    onnx_model = OnnxClassifier(export_onnx(trained, tmp_path / "model.onnx"))
    worst = 0.0
    for batch in batches:
        with torch.no_grad():
            expected = trained(**batch).logits
        worst = max(worst, float((onnx_model(**batch).logits - expected).abs().max()))
    assert worst <= 1e-4
    # A single one-token text on its own (batch 1, sequence 1).
    batch = PackedSequenceCollator(tokenizer)([{"input_ids": tokenizer(["Stocks"])["input_ids"][0]}])
    assert batch["input_ids"].shape == (1, 1)
    torch.testing.assert_close(
        onnx_model(**batch).logits, _logits(trained, batch["input_ids"], batch["lengths"]), atol=1e-4, rtol=0
    )


# ----------------------------------------------------------------------------------- ONNX parity


@pytest.mark.parametrize(
    ("rnn_type", "bidirectional", "pooling"),
    list(itertools.product(["rnn", "lstm", "gru"], [False, True], ["last", "mean", "max", "mean_max"])),
)
@needs_export_extra
def test_onnx_parity_every_config(rnn_type, bidirectional, pooling, tmp_path):
    # A seed that is the same in every process (hash() of a str changes with PYTHONHASHSEED).
    torch.manual_seed(zlib.crc32(f"{rnn_type}-{bidirectional}-{pooling}".encode()) % 1000)
    model = _tiny(rnn_type, bidirectional=bidirectional, pooling=pooling)
    onnx_model = OnnxClassifier(export_onnx(model, tmp_path / "m.onnx", verify=False))
    rng = np.random.default_rng(7)
    for seed, width in enumerate([1, 2, 13]):
        lengths = [1, width, *rng.integers(1, width + 1, size=6).tolist()]
        ids, lens = _random_batch(lengths, 40, seed=seed)
        torch.testing.assert_close(
            onnx_model(input_ids=ids, lengths=lens).logits, _logits(model, ids, lens), atol=1e-4, rtol=0
        )


@pytest.mark.parametrize(("rnn_type", "nonlinearity"), [("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
@needs_export_extra
def test_onnx_parity_stacked_layers(rnn_type, nonlinearity, tmp_path):
    torch.manual_seed(3)
    model = _tiny(rnn_type, nonlinearity=nonlinearity, bidirectional=True, num_layers=3, pooling="last")
    onnx_model = OnnxClassifier(export_onnx(model, tmp_path / "m.onnx"))
    ids, lens = _random_batch([9, 1, 4, 9, 2, 7, 1], 40, seed=5)
    torch.testing.assert_close(
        onnx_model(input_ids=ids, lengths=lens).logits, _logits(model, ids, lens), atol=1e-4, rtol=0
    )


def test_unpacked_forward_matches_packed_including_empty_texts():
    # The export wrapper itself, in PyTorch: zero-length rows get the classifier bias like the model.
    for rnn_type, bidirectional, pooling in itertools.product(
        ["rnn", "lstm", "gru"], [False, True], ["last", "mean_max"]
    ):
        model = _tiny(rnn_type, bidirectional=bidirectional, pooling=pooling, num_layers=2)
        wrapper = UnpackedRNNClassifier(model)
        ids, lens = _random_batch([0, 5, 1, 0, 3], 40, seed=2)
        with torch.no_grad():
            got = wrapper(ids, lens)
        torch.testing.assert_close(got, _logits(model, ids, lens), atol=1e-5, rtol=0)
        torch.testing.assert_close(got[0], model.classifier.bias.detach())


@needs_export_extra
def test_onnx_classifier_batch_api(tmp_path):
    model = _tiny("gru", bidirectional=True, pooling="mean", id2label={0: "a", 1: "b", 2: "c"})
    onnx_model = OnnxClassifier.from_pretrained(export_onnx(model, tmp_path))  # a folder: model.onnx in it
    assert (tmp_path / "model.onnx").is_file()
    assert onnx_model.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert onnx_model.eval() is onnx_model
    collator = PackedSequenceCollator(pad_token_id=0)
    rows = [
        {"input_ids": [5, 6, 7], "label": 1},
        {"input_ids": [9], "label": 0},
        {"input_ids": [], "label": 2},
    ]
    batch = collator(rows)
    expected = _logits(model, batch["input_ids"], batch["lengths"])
    torch.testing.assert_close(onnx_model(**batch).logits, expected, atol=1e-4, rtol=0)  # labels ignored
    # attention_mask instead of lengths, NumPy and lists instead of tensors.
    no_lengths = {"input_ids": batch["input_ids"].numpy(), "attention_mask": batch["attention_mask"].tolist()}
    torch.testing.assert_close(onnx_model(**no_lengths).logits, expected, atol=1e-4, rtol=0)
    # A batch of empty texts (sequence axis 0) gives the classifier bias, like the PyTorch model.
    empty = onnx_model(
        input_ids=torch.zeros((2, 0), dtype=torch.long), lengths=torch.zeros(2, dtype=torch.long)
    )
    torch.testing.assert_close(empty.logits, model.classifier.bias.detach().expand(2, -1))
    assert onnx_model(input_ids=np.zeros((0, 4), dtype=np.int64)).logits.shape == (0, 3)


@needs_export_extra
def test_onnx_classifier_sorted_chunks_keep_row_order(tmp_path):
    model = _tiny("lstm", bidirectional=True, pooling="mean_max")
    path = export_onnx(model, tmp_path / "m.onnx")
    ids, lens = _random_batch([9, 1, 0, 4, 9, 2, 7, 1, 3], 40, seed=9)
    expected = _logits(model, ids, lens)
    for rows_per_run in (None, 1, 2, 4, 16):
        got = OnnxClassifier(path, rows_per_run=rows_per_run)(input_ids=ids, lengths=lens).logits
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="`rows_per_run` must be a positive integer or None, got 0"):
        OnnxClassifier(path, rows_per_run=0)


@needs_export_extra
def test_onnx_int8_file_agrees_on_real_texts(trained, ag_news, tmp_path):
    # A trained model: its logits span several units, so an int8 graph that lost the RNN (returning only
    # the classifier bias, say) is far off; an untrained one's logits are all within a few hundredths.
    path = export_onnx(trained, tmp_path / "fp32.onnx")
    int8_path = quantize_onnx(path, tmp_path / "int8.onnx")
    int8 = OnnxClassifier(int8_path)
    assert int8.config.to_dict() == OnnxClassifier(path).config.to_dict()
    ops = {node.op_type for node in __import__("onnx").load(str(int8_path)).graph.node}
    # onnxruntime has an int8 LSTM kernel; GRU stays float, the classifier's matrix product is int8 in both.
    assert ("DynamicQuantizeLSTM" in ops) == (trained.config.rnn_type == "lstm"), ops
    assert ops & {"MatMulInteger", "DynamicQuantizeMatMul"}, ops
    batches = _batches(ag_news["eval_ids"], 64, PackedSequenceCollator(ag_news["tokenizer"]))
    with torch.no_grad():
        expected = torch.cat([trained(**batch).logits for batch in batches])
    got = torch.cat([int8(**batch).logits for batch in batches])
    scale = float(expected.abs().max())
    errors = (got - expected).abs()
    error, typical = float(errors.max()), float(errors.flatten().quantile(0.99))
    print(
        f"{trained.config.rnn_type}: logit scale {scale:.3f}, int8 ONNX error max {error:.4f}, p99 {typical:.4f}"
    )
    assert scale > 1.0  # trained: the tolerances below are not larger than the logits themselves
    # int8 error: small next to the logits, but not zero. The worst of 2,400 logits depends on the training
    # seed (per channel, seeds 0, 1, 4, 6, 7, 9 of this fixture: 0.016-0.066 of the scale; per tensor up to
    # 0.18), the 99th percentile much less (0.006-0.009); a graph that lost its RNN is off by about the scale.
    assert 0 < typical <= 0.02 * scale and error <= 0.15 * scale
    agreement = (got.argmax(-1) == expected.argmax(-1)).float().mean().item()
    assert agreement >= 0.98, f"int8 ONNX agrees with float on {agreement:.2%} of {len(got)} texts"
    accuracy = (got.argmax(-1).numpy() == ag_news["eval_labels"]).mean()
    assert accuracy > 0.6, accuracy  # four balanced classes: the majority class is 0.25
    assert int8_path.stat().st_size < path.stat().st_size


# ------------------------------------------------------------------------------ save/load round trips


def test_quantized_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    model = _tiny("lstm", bidirectional=True, pooling="mean_max", num_layers=2)
    int8 = quantize_dynamic(model)
    assert isinstance(int8, QuantizedRNNClassifier)
    assert not hasattr(model.config, "rnn_textclf_quantization")  # the input model is untouched
    assert type(model.rnn) is torch.nn.LSTM
    ids, lens = _random_batch([6, 1, 3, 0], 40, seed=3)
    before = _logits(int8, ids, lens)
    int8.save_pretrained(tmp_path / "int8")
    saved = json.loads((tmp_path / "int8" / "config.json").read_text())
    assert saved["rnn_textclf_quantization"] == QUANTIZATION_FLAG
    assert (tmp_path / "int8" / "model.safetensors").is_file()
    reloaded = QuantizedRNNClassifier.from_pretrained(tmp_path / "int8")
    assert isinstance(reloaded, QuantizedRNNClassifier)
    # output_loading_info as in transformers: the model and what the load found
    with_info, info = QuantizedRNNClassifier.from_pretrained(tmp_path / "int8", output_loading_info=True)
    assert isinstance(with_info, QuantizedRNNClassifier)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    torch.testing.assert_close(_logits(reloaded, ids, lens), before, atol=0, rtol=0)  # same int8 weights
    # The folder is also an ordinary float checkpoint with the original weights.
    as_float = RNNClassifier.from_pretrained(tmp_path / "int8").eval()
    torch.testing.assert_close(_logits(as_float, ids, lens), _logits(model, ids, lens))
    torch.testing.assert_close(_logits(int8.to_float(), ids, lens), _logits(model, ids, lens))


@needs_export_extra
def test_onnx_file_round_trip_keeps_config(tmp_path):
    model = _tiny("rnn", pooling="max", num_labels=2, id2label={0: "neg", 1: "pos"})
    path = export_onnx(model, tmp_path / "sub" / "clf.onnx", opset=11)  # the lowest opset allowed
    assert path == tmp_path / "sub" / "clf.onnx"
    assert [p.name for p in path.parent.iterdir()] == ["clf.onnx"]  # no staging leftovers
    loaded = OnnxClassifier(path)
    assert loaded.config.to_dict() == RNNClassifierConfig.from_dict(model.config.to_dict()).to_dict()
    # which weights the file holds (the CLI uses a folder's model.onnx only for the folder's weights), also
    # after int8 quantization; another model's differ
    from rnn_textclf.export import quantize_onnx, weights_fingerprint

    assert loaded.weights_fingerprint == weights_fingerprint(model) != weights_fingerprint(_tiny("rnn"))
    assert OnnxClassifier(
        quantize_onnx(path, tmp_path / "q.onnx")
    ).weights_fingerprint == weights_fingerprint(model)
    ids, lens = _random_batch([4, 2], 40)
    torch.testing.assert_close(
        loaded(input_ids=ids, lengths=lens).logits, _logits(model, ids, lens), atol=1e-4, rtol=0
    )


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
@needs_export_extra
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_onnx_export_of_a_half_precision_model(dtype, tmp_path):
    # from_pretrained(dtype=...) models: the graph computes in float32, checked against a float32 copy
    model = _tiny("gru", pooling="mean")
    half = copy.deepcopy(model).to(dtype)
    session = OnnxClassifier(export_onnx(half, tmp_path / "half.onnx"))
    assert half.dtype == dtype  # the model itself is left as it was
    ids, lens = _random_batch([5, 1, 3], 40)
    torch.testing.assert_close(
        session(input_ids=ids, lengths=lens).logits, _logits(half.float(), ids, lens), atol=1e-4, rtol=0
    )


# ------------------------------------------------------------------------------------------ refusals


def test_refuses_what_cannot_be_exported_or_quantized(tmp_path):
    with pytest.raises(ValueError, match="proj_size=3"):
        export_onnx(_tiny("lstm", proj_size=3), tmp_path / "p.onnx")
    with pytest.raises(ValueError, match="proj_size=3"):
        quantize_dynamic(_tiny("lstm", proj_size=3))
    with pytest.raises(ValueError, match="rnn_type='rnn'"):
        quantize_dynamic(_tiny("rnn"))
    int8 = quantize_dynamic(_tiny("gru"))
    with pytest.raises(ValueError, match="QuantizedRNNClassifier"):
        export_onnx(int8, tmp_path / "q.onnx")
    with pytest.raises(ValueError, match="already quantized"):
        quantize_dynamic(int8)
    with pytest.raises(ValueError, match="inference only"):
        int8.train()
    with pytest.raises(ValueError, match=r"`opset` must be an integer from 11 to 20, got 9"):
        export_onnx(_tiny(), tmp_path / "o.onnx", opset=9)
    with pytest.raises(TypeError, match="RNNClassifier"):
        export_onnx(torch.nn.LSTM(3, 3), tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())  # nothing written by a refused export


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
@needs_export_extra
def test_onnx_classifier_rejects_bad_input(tmp_path):
    model = _tiny("lstm")
    onnx_model = OnnxClassifier(export_onnx(model, tmp_path / "m.onnx"))
    ids, lens = _random_batch([3, 2], 40)
    with pytest.raises(ValueError, match=r"`lengths` must lie in \[0, seq_len=3\]"):
        onnx_model(input_ids=ids, lengths=torch.tensor([4, 2]))
    with pytest.raises(ValueError, match=r"Token ids must lie in \[0, vocab_size=40\)"):
        onnx_model(input_ids=ids + 40, lengths=lens)
    # A left-padded mask would have the graph read padding and drop real tokens: refused, as by the model.
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    with pytest.raises(
        ValueError, match=r"right padding that agrees with `lengths` \(the tokenizer's padding_side"
    ):
        onnx_model(input_ids=ids, attention_mask=left)
    # a mask that contradicts the lengths given with it: refused as by the model (it was ignored)
    with pytest.raises(ValueError, match=r"agrees with `lengths`"):
        onnx_model(input_ids=ids, attention_mask=torch.ones_like(ids), lengths=lens)
    with pytest.raises(ValueError, match=r"agrees\s+with `lengths`"):
        model(input_ids=ids, attention_mask=torch.ones_like(ids), lengths=lens)
    with pytest.raises(ValueError, match="padding_side must be 'right'"):
        model(input_ids=ids, attention_mask=left)
    right = torch.tensor([[1, 1, 1], [1, 1, 0]])
    torch.testing.assert_close(
        onnx_model(input_ids=ids, attention_mask=right).logits, _logits(model, ids, lens), atol=1e-4, rtol=0
    )
    with pytest.raises(ValueError, match="rectangular"):
        onnx_model(input_ids=[[1, 2, 3], [4]])
    with pytest.raises(TypeError, match="pixel_values"):
        onnx_model(input_ids=ids, pixel_values=ids)
    foreign = tmp_path / "foreign.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(foreign), dynamo=False)
    with pytest.raises(ValueError, match=r"not written by rnn_textclf\.export_onnx"):
        OnnxClassifier(foreign)
    with pytest.raises(FileNotFoundError, match=r"model\.onnx"):
        OnnxClassifier(tmp_path / "missing")
    # a file that is no ONNX model at all (a checkpoint passed by mistake): the argument and the fix, not
    # onnxruntime's or protobuf's bare parse error; quantize_onnx writes nothing
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "model.onnx").write_text('{"architectures": ["RNNClassifier"]}')
    with pytest.raises(
        ValueError, match=r"`path` '.*weights' \(its model\.onnx\) is not an ONNX model.*export_onnx"
    ):
        OnnxClassifier(tmp_path / "weights")
    with pytest.raises(ValueError, match=r"`path` '.*model\.onnx' is not an ONNX model.*export_onnx"):
        quantize_onnx(tmp_path / "weights" / "model.onnx", tmp_path / "int8" / "model.onnx")
    assert not (tmp_path / "int8").exists()


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
@needs_export_extra
def test_export_targets_and_large_logits(tmp_path, monkeypatch):
    import rnn_textclf.export as export

    # logits in the tens of thousands (a regression head's scale): one float32 rounding step is > 1e-4,
    # and a correct export was refused as "not usable"
    model = _tiny("gru", num_labels=1, problem_type="regression")
    with torch.no_grad():
        model.classifier.weight.mul_(1e5)
        model.classifier.bias.fill_(3e4)
    path = export_onnx(model, tmp_path / "big.onnx")
    ids, lens = _random_batch([5, 1, 3], 40)
    torch.testing.assert_close(
        OnnxClassifier(path)(input_ids=ids, lengths=lens).logits, _logits(model, ids, lens)
    )
    # targets that cannot be written: named before any work (were OS errors naming a temporary path)
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(ValueError, match=r"`path` '.*dir\.onnx' is an existing folder"):
        export_onnx(_tiny(), tmp_path / "dir.onnx")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"cannot be written: '.*file' is a file, not a folder"):
        export_onnx(_tiny(), tmp_path / "file" / "m.onnx")

    # a failed export leaves no folder it made behind
    def fail(*args, **kwargs):
        raise RuntimeError("differ")

    monkeypatch.setattr(export, "_verify", fail)
    with pytest.raises(RuntimeError, match="differ"):
        export_onnx(_tiny(), tmp_path / "new" / "deeper" / "m.onnx")
    assert not (tmp_path / "new").exists()


def test_import_does_not_load_onnx():
    code = "import sys, rnn_textclf; print(sorted(m for m in ('onnx', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_quantize_onnx_pre_processes_so_onnxruntime_does_not_warn(tmp_path, caplog):
    # onnxruntime logs "Please consider to run pre-processing before quantization" (root logger, WARNING)
    # for a model that was not pre-processed; quantize_onnx pre-processes, so a user sees nothing.
    torch.manual_seed(0)
    model = _tiny("lstm", vocab_size=300, embedding_dim=32, hidden_size=64, bidirectional=True, pooling="max")
    path = export_onnx(model, tmp_path / "fp32.onnx")
    with caplog.at_level(logging.WARNING):
        int8_path = quantize_onnx(path, tmp_path / "int8.onnx")
    assert not [r.getMessage() for r in caplog.records if "pre-process" in r.getMessage()]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp32.onnx", "int8.onnx"]  # no leftovers
    ids, lens = _random_batch([12, 1, 7, 12], 300, seed=4)
    got = OnnxClassifier(int8_path)(input_ids=ids, lengths=lens).logits
    assert float((got - _logits(model, ids, lens)).abs().max()) < 0.05


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
@needs_export_extra
def test_quantize_onnx_from_every_opset_and_what_it_refuses(tmp_path, monkeypatch):
    # From opset 18 ReduceMax takes its axes as an input, and onnxruntime's symbolic shape inference failed
    # on max / mean_max pooling with a bare "TypeError: object of type 'NoneType' has no len()".
    model = _tiny("lstm", vocab_size=300, embedding_dim=16, hidden_size=16, bidirectional=True, pooling="max")
    ids, lens = _random_batch([9, 1, 5, 9], 300, seed=2)
    for opset in (17, 20):
        path = export_onnx(model, tmp_path / f"fp32-{opset}.onnx", opset=opset)
        int8_path = quantize_onnx(path, tmp_path / f"int8-{opset}.onnx")
        ops = {node.op_type for node in __import__("onnx").load(str(int8_path)).graph.node}
        assert "DynamicQuantizeLSTM" in ops, (opset, ops)
        got = OnnxClassifier(int8_path)(input_ids=ids, lengths=lens).logits
        assert float((got - _logits(model, ids, lens)).abs().max()) < 0.05, opset
    # An int8 file again: onnxruntime failed with "Incomplete symbolic shape inference" and left two files
    # in the working directory.
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(
        ValueError, match=r"`path` .*int8-17\.onnx' is already quantized \(it holds .*DynamicQuantizeLSTM"
    ):
        quantize_onnx(tmp_path / "int8-17.onnx", tmp_path / "again.onnx")
    # Output paths that cannot be written name `output` (raw OS errors naming a staging folder before).
    (tmp_path / "taken.onnx").mkdir()
    with pytest.raises(ValueError, match=r"`output` 'taken\.onnx' is an existing folder"):
        quantize_onnx(tmp_path / "fp32-17.onnx", "taken.onnx")
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(
        ValueError, match=r"`output` 'plain\.txt/x\.onnx' cannot be written: 'plain\.txt' is a file"
    ):
        quantize_onnx(tmp_path / "fp32-17.onnx", "plain.txt/x.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "taken.onnx", "plain.txt"])
    assert not list((tmp_path / "taken.onnx").iterdir())


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
@needs_export_extra
def test_onnx_classifier_in_a_pipeline_and_boolean_ids(tmp_path):
    from transformers import pipeline

    texts = ["win a free prize now", "see you at lunch today", "call me"]
    tokenizer = RNNTokenizer.train_from_iterator(texts * 3)
    model = _tiny("gru", vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, pooling="mean")
    model.config.id2label, model.config.label2id = (
        {0: "ham", 1: "spam", 2: "other"},
        {"ham": 0, "spam": 1, "other": 2},
    )
    onnx_model = OnnxClassifier(export_onnx(model, tmp_path / "m.onnx"), num_threads=1)
    # as Optimum's ONNX models: pipeline(model=...) runs it ('OnnxClassifier' has no attribute 'device' before)
    got = pipeline("text-classification", model=onnx_model, tokenizer=tokenizer)(texts, top_k=None)
    expected = pipeline("text-classification", model=model, tokenizer=tokenizer)(texts, top_k=None)
    assert [[r["label"] for r in row] for row in got] == [[r["label"] for r in row] for row in expected]
    np.testing.assert_allclose(
        [[r["score"] for r in row] for row in got], [[r["score"] for r in row] for row in expected], atol=1e-5
    )
    # booleans are a mask, never token ids (True/False ran as ids 1/0; the PyTorch model refuses them)
    with pytest.raises(ValueError, match=r"`input_ids` must hold integers, got dtype bool"):
        onnx_model(input_ids=[[True, False, True]])
    mask = onnx_model(input_ids=[[5, 6, 0]], attention_mask=np.array([[True, True, False]])).logits
    torch.testing.assert_close(mask, onnx_model(input_ids=[[5, 6, 0]], lengths=[2]).logits)
