from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from rnn_textclf import RNNClassifier, RNNClassifierConfig

VOCAB = 40
PAD = 3  # deliberately not 0: nothing may assume the pad id is 0
COMBOS = list(
    itertools.product(("rnn", "lstm", "gru"), (False, True), ("last", "mean", "max", "mean_max"), (1, 2))
)


def tiny_config(
    rnn_type="lstm", bidirectional=False, pooling="last", num_layers=1, **kwargs
) -> RNNClassifierConfig:
    defaults = dict(
        vocab_size=VOCAB,
        embedding_dim=6,
        hidden_size=5,
        num_labels=3,
        pad_token_id=PAD,
        rnn_type=rnn_type,
        bidirectional=bidirectional,
        pooling=pooling,
        num_layers=num_layers,
    )
    defaults.update(kwargs)
    return RNNClassifierConfig(**defaults)


def make_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids (pad = PAD), mask and CPU lengths; real tokens never equal PAD."""
    gen = torch.Generator().manual_seed(seed)
    seq = max(lengths) if lengths else 0
    lens = torch.tensor(lengths, dtype=torch.int64)
    ids = torch.randint(PAD + 1, VOCAB, (len(lengths), seq), generator=gen)
    mask = torch.arange(seq)[None, :] < lens[:, None]
    ids = ids.masked_fill(~mask, PAD)
    return ids, mask.long(), lens


@pytest.mark.parametrize(("rnn_type", "bidirectional", "pooling", "num_layers"), COMBOS)
def test_shapes_loss_and_gradients(rnn_type, bidirectional, pooling, num_layers):
    torch.manual_seed(0)
    model = RNNClassifier(tiny_config(rnn_type, bidirectional, pooling, num_layers))
    ids, mask, lens = make_batch([5, 2, 7, 1])
    out = model(input_ids=ids, attention_mask=mask, lengths=lens, labels=torch.tensor([0, 2, 1, 1]))
    assert isinstance(out, SequenceClassifierOutput)
    assert out.logits.shape == (4, 3)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"no gradient reached {name}"
        if name != "embeddings.weight":
            assert param.grad.abs().sum() > 0, f"zero gradient for {name}"
    # The pad row is never used, so it receives no gradient and stays zero.
    assert torch.count_nonzero(model.embeddings.weight.grad[PAD]) == 0


@pytest.mark.parametrize(("rnn_type", "bidirectional", "pooling", "num_layers"), COMBOS)
def test_padding_never_changes_a_texts_logits(rnn_type, bidirectional, pooling, num_layers):
    torch.manual_seed(1)
    model = RNNClassifier(tiny_config(rnn_type, bidirectional, pooling, num_layers)).eval()
    lengths = [3, 9, 1, 6, 9, 2]
    ids, mask, lens = make_batch(lengths, seed=2)
    with torch.no_grad():
        batched = model(input_ids=ids, attention_mask=mask, lengths=lens).logits
        for row, n in enumerate(lengths):
            alone = model(input_ids=ids[row : row + 1, :n]).logits
            torch.testing.assert_close(alone[0], batched[row], atol=1e-5, rtol=0)
            # Extra padding beyond the batch maximum changes nothing either.
            wide = torch.cat([ids[row : row + 1], torch.full((1, 4), PAD)], dim=1)
            padded = model(input_ids=wide, lengths=torch.tensor([n])).logits
            torch.testing.assert_close(padded[0], batched[row], atol=1e-5, rtol=0)


@pytest.mark.parametrize("rnn_type", ["rnn", "lstm", "gru"])
def test_rows_come_back_in_input_order(rnn_type):
    torch.manual_seed(0)
    model = RNNClassifier(tiny_config(rnn_type, bidirectional=True, pooling="mean")).eval()
    ids, mask, lens = make_batch([2, 8, 5, 1, 7], seed=3)
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        base = model(input_ids=ids, attention_mask=mask, lengths=lens).logits
        permuted = model(input_ids=ids[perm], attention_mask=mask[perm], lengths=lens[perm]).logits
    torch.testing.assert_close(permuted, base[perm], atol=1e-6, rtol=0)


def _reference_features(model: RNNClassifier, ids: torch.Tensor) -> torch.Tensor:
    """Runs the bare nn.RNN on one unpadded text (no packing, no padding) and pools by hand."""
    emb = model.embeddings(ids[None])  # (1, n, emb)
    outputs, state = model.rnn(emb)  # outputs: (1, n, directions * hidden) of the top layer
    h_n = state[0] if isinstance(state, tuple) else state  # (layers * directions, 1, hidden)
    pooling, size = model.config.pooling, model.config.hidden_size
    if pooling == "last":
        if model.config.bidirectional:
            # forward direction: output at the last token; backward direction: output at position 0
            last = torch.cat([outputs[0, -1, :size], outputs[0, 0, size:]])
            # Stacked or not, that is the top layer's final state of each direction.
            torch.testing.assert_close(last, torch.cat([h_n[-2, 0], h_n[-1, 0]]))
            return last
        return h_n[-1, 0]  # the top layer's final state
    mean, maxed = outputs[0].mean(0), outputs[0].max(0).values
    return {"mean": mean, "max": maxed, "mean_max": torch.cat([mean, maxed])}[pooling]


@pytest.mark.parametrize(("rnn_type", "bidirectional", "pooling", "num_layers"), COMBOS)
def test_pooling_matches_a_hand_written_reference(rnn_type, bidirectional, pooling, num_layers):
    torch.manual_seed(4)
    model = RNNClassifier(tiny_config(rnn_type, bidirectional, pooling, num_layers, dropout=0.3)).eval()
    ids, mask, lens = make_batch([6, 3, 4, 1], seed=5)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
        for row, n in enumerate(lens.tolist()):
            features = _reference_features(model, ids[row, :n])
            assert features.shape == (model.config.pooled_size,)
            expected = features @ model.classifier.weight.T + model.classifier.bias
            torch.testing.assert_close(logits[row], expected, atol=1e-5, rtol=0)


def test_empty_texts_get_the_classifier_bias():
    torch.manual_seed(0)
    model = RNNClassifier(tiny_config("gru", True, "max")).eval()
    ids, mask, lens = make_batch([4, 0, 2, 0], seed=6)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, lengths=lens).logits
        assert torch.isfinite(logits).all()
        torch.testing.assert_close(logits[1], model.classifier.bias)
        torch.testing.assert_close(logits[3], model.classifier.bias)
        # A batch where every text is empty: shape (batch, 0).
        empty = model(input_ids=torch.empty(3, 0, dtype=torch.long), lengths=torch.zeros(3, dtype=torch.long))
        torch.testing.assert_close(empty.logits, model.classifier.bias.expand(3, -1))
    # Training on a batch with an empty text still gives finite gradients.
    model.train()
    out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 2, 0]))
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_set_input_embeddings_is_the_embedding_the_forward_pass_reads():
    torch.manual_seed(0)
    model = RNNClassifier(tiny_config("gru", True, "mean_max")).eval()
    ids, _, lens = make_batch([4, 2, 5], seed=7)
    with torch.no_grad():
        before = model(input_ids=ids, lengths=lens).logits
        replacement = torch.nn.Embedding(VOCAB, 6, padding_idx=PAD)
        replacement.weight.copy_(model.embeddings.weight.flip(0))  # other vectors for every id
        replacement.weight[PAD] = 0
        old = model.get_input_embeddings()
        model.set_input_embeddings(replacement)
        assert model.get_input_embeddings() is replacement and model.embeddings is replacement
        after = model(input_ids=ids, lengths=lens).logits
        assert not torch.allclose(after, before, atol=1e-4)
        model.set_input_embeddings(old)  # and back: the same logits as before
        torch.testing.assert_close(model(input_ids=ids, lengths=lens).logits, before)
    # transformers' resize_token_embeddings goes through get/set_input_embeddings.
    old_weight = old.weight.detach().clone()
    resized = model.resize_token_embeddings(VOCAB + 8, mean_resizing=False)
    assert resized is model.get_input_embeddings() and resized.weight.shape == (VOCAB + 8, 6)
    assert model.config.vocab_size == VOCAB + 8
    torch.testing.assert_close(resized.weight[:VOCAB], old_weight)
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids, lengths=lens).logits, before)


def test_a_larger_embedding_set_by_hand_takes_its_ids_and_saves_a_loadable_model(tmp_path):
    # the id check read config.vocab_size (refusing ids the new table has), and the save did not load back
    torch.manual_seed(0)
    model = RNNClassifier(tiny_config()).eval()
    model.set_input_embeddings(torch.nn.Embedding(VOCAB + 30, 6, padding_idx=PAD))
    assert model.config.vocab_size == VOCAB + 30
    ids, _, lens = make_batch([3, 2])
    ids[0, 0] = VOCAB + 20
    with torch.no_grad():
        logits = model(input_ids=ids, lengths=lens).logits
        with pytest.raises(
            ValueError, match=rf"token id {VOCAB + 30}, outside the embedding's range \[0, {VOCAB + 30}\)"
        ):
            model(input_ids=torch.full_like(ids, VOCAB + 30), lengths=lens)
    model.save_pretrained(tmp_path)
    loaded = RNNClassifier.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids, lengths=lens).logits, logits)


def test_resize_below_the_pad_or_unk_row_is_refused():
    # transformers would drop the row and save a config that does not load back
    model = RNNClassifier(tiny_config(pad_token_id=15, unk_token_id=12))
    for size in (10, 15):
        with pytest.raises(
            ValueError, match=rf"`new_num_tokens={size}` would drop the row of pad_token_id=15"
        ):
            model.resize_token_embeddings(size)
    model = RNNClassifier(tiny_config(pad_token_id=0, unk_token_id=12))
    with pytest.raises(ValueError, match=r"`new_num_tokens=12` would drop the row of unk_token_id=12"):
        model.resize_token_embeddings(12)
    assert model.resize_token_embeddings(13).weight.shape[0] == 13 == model.config.vocab_size


@pytest.mark.parametrize(
    ("rnn_type", "bidirectional", "pooling"),
    [("rnn", False, "last"), ("lstm", True, "max"), ("gru", True, "mean_max")],
)
def test_inputs_embeds_is_the_embedding_lookup_and_padding_gets_no_gradient(rnn_type, bidirectional, pooling):
    torch.manual_seed(0)
    model = RNNClassifier(tiny_config(rnn_type, bidirectional, pooling)).eval()
    ids, mask, lens = make_batch([4, 1, 6, 3], seed=5)
    with torch.no_grad():
        from_ids = model(input_ids=ids, attention_mask=mask).logits
    # What attribution methods (integrated gradients, saliency) do: vectors in, gradients back to them.
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)  # (batch, seq, emb)
    out = model(inputs_embeds=embeds, attention_mask=mask, labels=torch.tensor([0, 1, 2, 1]))
    torch.testing.assert_close(out.logits, from_ids, atol=1e-6, rtol=0)
    out.loss.backward()
    grad_norms = embeds.grad.norm(dim=-1)  # (batch, seq)
    # Packed sequences never read the padding: its vectors get exactly zero gradient, real tokens do not.
    assert torch.count_nonzero(grad_norms[~mask.bool()]) == 0
    assert bool((grad_norms[mask.bool()] > 0).all())
    # Carried lengths, or no mask (every position real), give the same logits as ids do.
    with torch.no_grad():
        torch.testing.assert_close(
            model(inputs_embeds=embeds, lengths=lens).logits, from_ids, atol=1e-6, rtol=0
        )
        full = model(input_ids=ids[2:3]).logits
        torch.testing.assert_close(model(inputs_embeds=embeds[2:3]).logits, full, atol=1e-6, rtol=0)
        # Other vectors give other logits: the forward pass reads inputs_embeds, not a lookup.
        assert not torch.allclose(
            model(inputs_embeds=embeds.flip(0), attention_mask=mask.flip(0)).logits, from_ids
        )
        empty = model(inputs_embeds=torch.zeros(2, 0, 6)).logits
        torch.testing.assert_close(empty, model.classifier.bias.expand(2, -1))


def test_pretrained_base_class_is_public_and_gives_its_init_to_other_heads(tmp_path):
    from transformers import PreTrainedModel

    import rnn_textclf

    base = rnn_textclf.RNNClassifierPreTrainedModel
    assert "RNNClassifierPreTrainedModel" in rnn_textclf.__all__
    assert issubclass(RNNClassifier, base) and issubclass(base, PreTrainedModel)
    assert base.config_class is RNNClassifierConfig

    class Encoder(base):  # another head on the same config: the base supplies the weight init
        def __init__(self, config: RNNClassifierConfig) -> None:
            super().__init__(config)
            self.embeddings = torch.nn.Embedding(config.vocab_size, config.embedding_dim, config.pad_token_id)
            self.rnn = torch.nn.GRU(config.embedding_dim, config.hidden_size, batch_first=True)
            self.proj = torch.nn.Linear(config.hidden_size, 2)
            self.post_init()

    config = tiny_config(hidden_size=16, initializer_range=0.5)
    torch.manual_seed(0)
    encoder = Encoder(config).requires_grad_(False)
    assert torch.count_nonzero(encoder.embeddings.weight[PAD]) == 0  # the pad row starts at zero
    others = torch.cat([encoder.embeddings.weight[:PAD], encoder.embeddings.weight[PAD + 1 :]])
    assert 0.35 < float(others.std()) < 0.65  # normal(0, initializer_range), not nn.Embedding's N(0, 1)
    assert torch.count_nonzero(encoder.proj.bias) == 0
    assert 0.35 < float(encoder.proj.weight.std()) < 0.65
    bound = 1 / 16**0.5  # PyTorch's recurrent init, uniform in +-1/sqrt(hidden)
    assert all(float(p.abs().max()) <= bound for p in encoder.rnn.parameters())
    encoder.save_pretrained(tmp_path)
    reloaded = Encoder.from_pretrained(tmp_path)
    assert isinstance(reloaded.config, RNNClassifierConfig)
    for name, tensor in encoder.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[name], tensor, atol=0, rtol=0)


def test_lengths_from_mask_and_no_mask_agree():
    model = RNNClassifier(tiny_config("lstm", True, "mean")).eval()
    ids, mask, lens = make_batch([5, 5, 5])
    with torch.no_grad():
        a = model(input_ids=ids).logits
        b = model(input_ids=ids, attention_mask=mask).logits
        c = model(input_ids=ids, lengths=lens).logits
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_init_pad_row_zero_and_freeze_embeddings(tmp_path):
    model = RNNClassifier(tiny_config(freeze_embeddings=True))
    assert torch.count_nonzero(model.embeddings.weight[PAD]) == 0
    assert torch.count_nonzero(model.embeddings.weight) > 0
    assert not model.embeddings.weight.requires_grad
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("embeddings"))
    model.save_pretrained(tmp_path)
    reloaded = RNNClassifier.from_pretrained(tmp_path)
    assert reloaded.config.freeze_embeddings is True
    assert not reloaded.embeddings.weight.requires_grad
    unfrozen = RNNClassifier(tiny_config())
    assert unfrozen.embeddings.weight.requires_grad
    # a table set on a frozen model is frozen too, as after a save and reload (it stayed trainable)
    model.set_input_embeddings(torch.nn.Embedding(VOCAB, model.config.embedding_dim, padding_idx=PAD))
    assert not model.get_input_embeddings().weight.requires_grad


@pytest.mark.parametrize(
    ("rnn_type", "bidirectional", "pooling"), [("lstm", True, "max"), ("rnn", False, "last")]
)
def test_save_load_parity_safetensors(tmp_path, rnn_type, bidirectional, pooling):
    torch.manual_seed(0)
    model = RNNClassifier(tiny_config(rnn_type, bidirectional, pooling, num_layers=2, dropout=0.2)).eval()
    model.save_pretrained(tmp_path)
    files = sorted(os.listdir(tmp_path))
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    assert {"configuration.py", "modeling.py"} <= set(files)
    saved = load_file(tmp_path / "model.safetensors")
    for name, tensor in model.state_dict().items():
        assert torch.equal(saved[name], tensor), name
    reloaded = RNNClassifier.from_pretrained(tmp_path).eval()
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name
    ids, mask, _lens = make_batch([4, 7, 1])
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded(input_ids=ids, attention_mask=mask).logits,
            model(input_ids=ids, attention_mask=mask).logits,
        )


def test_auto_classes(tmp_path):
    model = RNNClassifier(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration.RNNClassifierConfig",
        "AutoModelForSequenceClassification": "modeling.RNNClassifier",
        "AutoModel": "modeling.RNNClassifier",  # as after `import rnn_textclf`, also without it
    }
    assert isinstance(AutoConfig.from_pretrained(tmp_path), RNNClassifierConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path), RNNClassifier)
    auto = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(auto) is RNNClassifier
    fresh = AutoModelForSequenceClassification.from_config(tiny_config())
    assert isinstance(fresh, RNNClassifier)


REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["rnn_textclf"] = None  # any `import rnn_textclf` now raises ImportError
    try:
        import rnn_textclf  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("rnn_textclf is importable; the test would prove nothing")
    import torch
    from transformers import AutoModelForSequenceClassification
    ckpt, ids_path = sys.argv[1], sys.argv[2]
    model = AutoModelForSequenceClassification.from_pretrained(ckpt, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    from transformers import AutoModel
    assert type(AutoModel.from_pretrained(ckpt, trust_remote_code=True)) is type(model)
    batch = torch.load(ids_path, weights_only=True)
    with torch.no_grad():
        logits = model(**batch).logits
    torch.save(logits, ids_path + ".out")
    print("REMOTE", type(model).__module__)
    """
)


def test_trust_remote_code_in_a_process_without_rnn_textclf(tmp_path):
    model = RNNClassifier(tiny_config("gru", True, "mean_max", 2)).eval()
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt)
    ids, mask, _lens = make_batch([3, 6, 2])
    batch_path = tmp_path / "batch.pt"
    torch.save({"input_ids": ids, "attention_mask": mask}, batch_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_MODULES_CACHE"] = str(tmp_path / "modules")
    script = tmp_path / "remote.py"
    script.write_text(REMOTE_SCRIPT)
    proc = subprocess.run(
        [sys.executable, "-I", str(script), str(ckpt), str(batch_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "REMOTE transformers_modules" in proc.stdout
    remote_logits = torch.load(str(batch_path) + ".out", weights_only=True)
    with torch.no_grad():
        torch.testing.assert_close(remote_logits, model(input_ids=ids, attention_mask=mask).logits)


def test_loss_follows_problem_type():
    torch.manual_seed(0)
    ids, mask, _lens = make_batch([3, 5, 2])
    single = RNNClassifier(tiny_config()).eval()
    out = single(input_ids=ids, attention_mask=mask, labels=torch.tensor([2, 0, 1]))
    assert single.config.problem_type == "single_label_classification"
    torch.testing.assert_close(
        out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([2, 0, 1]))
    )

    multi = RNNClassifier(tiny_config()).eval()
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = multi(input_ids=ids, attention_mask=mask, labels=targets)
    assert multi.config.problem_type == "multi_label_classification"
    torch.testing.assert_close(
        out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets)
    )

    reg = RNNClassifier(tiny_config(num_labels=1)).eval()
    y = torch.tensor([0.5, -1.0, 2.0])
    out = reg(input_ids=ids, attention_mask=mask, labels=y)
    assert reg.config.problem_type == "regression"
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits.squeeze(-1), y))

    # -100 is transformers' ignore index
    out = single(input_ids=ids, attention_mask=mask, labels=torch.tensor([2, -100, 1]))
    torch.testing.assert_close(
        out.loss, torch.nn.functional.cross_entropy(out.logits[[0, 2]], torch.tensor([2, 1]))
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_float_targets_keep_float32_under_autocast(dtype):
    # The targets were cast to the logits' dtype: under bf16 autocast rounded (a wrong loss, soft multi-label
    # targets too), under fp16 beyond 65504 inf. BERT keeps them; the loss equals float32's on the same logits.
    ids, mask, _lens = make_batch([3, 5, 2])
    cases = [
        (tiny_config(num_labels=1), torch.tensor([3.1, 1.7e5, 2.3])),
        (tiny_config(problem_type="multi_label_classification"), torch.tensor([[0.3, 0.7, 0.1]] * 3)),
    ]
    for config, targets in cases:
        model = RNNClassifier(config).eval()
        with torch.autocast("cpu", dtype=dtype):
            out = model(input_ids=ids, attention_mask=mask, labels=targets)
        logits = out.logits.float()
        if config.num_labels == 1:
            expected = torch.nn.functional.mse_loss(logits.squeeze(-1), targets)
        else:
            expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
        assert torch.isfinite(out.loss)
        torch.testing.assert_close(out.loss.float(), expected, rtol=1e-6, atol=0)


def test_integer_multi_hot_labels_say_how_to_get_multi_label():
    ids, mask, _lens = make_batch([3, 5, 2])
    model = RNNClassifier(tiny_config())
    with pytest.raises(
        ValueError, match=r"inferred from their integer dtype torch\.int64\): .*\(labels\.float\(\)\)"
    ):
        model(input_ids=ids, attention_mask=mask, labels=torch.tensor([[1, 0, 1]] * 3))


def test_regression_labels_need_one_target_per_output():
    # (batch,) targets for 3 outputs were broadcast across the columns (a wrong loss when batch == 3)
    ids, mask, _lens = make_batch([3, 5, 2])
    reg = RNNClassifier(tiny_config(num_labels=3, problem_type="regression")).eval()
    with pytest.raises(
        ValueError, match=r"`labels` must have shape \(3, 3\) for regression with num_labels=3"
    ):
        reg(input_ids=ids, attention_mask=mask, labels=torch.tensor([0.5, -1.0, 2.0]))
    y = torch.randn(3, 3)
    out = reg(input_ids=ids, attention_mask=mask, labels=y)
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits, y))
    one = RNNClassifier(tiny_config(num_labels=1, problem_type="regression")).eval()
    y = torch.tensor([0.5, -1.0, 2.0])
    for labels in (y, y[:, None]):  # (batch,) and (batch, 1)
        out = one(input_ids=ids, attention_mask=mask, labels=labels)
        torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits.squeeze(-1), y))


def test_small_integer_ids_give_the_int64_logits():
    model = RNNClassifier(tiny_config()).eval()
    ids, _, lens = make_batch([4, 2])
    with torch.no_grad():
        expected = model(input_ids=ids, lengths=lens).logits
        for dtype in (torch.int32, torch.int16, torch.int8, torch.uint8):
            torch.testing.assert_close(model(input_ids=ids.to(dtype), lengths=lens).logits, expected)


def test_an_empty_text_has_zero_outputs_and_its_padding_never_reaches_the_gradients():
    torch.manual_seed(0)
    model = RNNClassifier(tiny_config("lstm", True, "mean")).eval()
    ids, _, _ = make_batch([2, 2])
    out = model(input_ids=ids, lengths=torch.tensor([0, 2]), output_hidden_states=True)
    assert (out.hidden_states[1][0] == 0).all() and (out.hidden_states[1][1] != 0).any()
    out = model(input_ids=torch.zeros((2, 0), dtype=torch.long), output_hidden_states=True)
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 0, 6), (2, 0, 10)]  # the batch's own width
    # NaN in an empty text's vectors: the RNN's weight gradients stayed NaN-free only for non-empty rows
    model.train()
    embeds = torch.randn(2, 3, 6)
    embeds[1] = float("nan")
    out = model(inputs_embeds=embeds, lengths=torch.tensor([3, 0]), labels=torch.tensor([0, 1]))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_generic_keywords_are_accepted_and_ignored():
    # Generic code passes output_attentions (even False) and position_ids to every transformers model
    model = RNNClassifier(tiny_config("gru", True, "mean")).eval()
    ids, mask, _ = make_batch([4, 2])
    plain = model(input_ids=ids, attention_mask=mask)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        output_attentions=True,
        position_ids=torch.arange(4).expand(2, 4),
        token_type_ids=torch.zeros_like(ids),
    )
    torch.testing.assert_close(out.logits, plain.logits, rtol=0, atol=0)
    assert out.attentions is None


def test_return_tuple_and_hidden_states():
    model = RNNClassifier(tiny_config("lstm", True, "max")).eval()
    ids, mask, _ = make_batch([4, 2])
    _loss, logits, hidden = model(
        input_ids=ids,
        attention_mask=mask,
        labels=torch.tensor([0, 1]),
        return_dict=False,
        output_hidden_states=True,
    )
    assert logits.shape == (2, 3)
    embedded, outputs = hidden
    assert embedded.shape == (2, 4, 6) and outputs.shape == (2, 4, 10)
    # padded positions of the RNN output are zeros
    assert torch.count_nonzero(outputs[1, 2:]) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_ids": [[1, 2, 3]]}, TypeError, "input_ids` must be a torch.Tensor"),
        ({"input_ids": torch.tensor([4, 5, 6])}, ValueError, r"shape \(batch, seq_len\)"),
        ({"input_ids": torch.rand(2, 3)}, ValueError, "integer token ids"),
        ({"input_ids": torch.tensor([[4, 5, VOCAB]])}, ValueError, f"token id {VOCAB}.*vocab_size={VOCAB}"),
        ({"input_ids": torch.tensor([[4, -2, 5]])}, ValueError, "token id -2"),
        (
            {"input_ids": torch.tensor([[4, 5]]), "attention_mask": torch.ones(1, 3)},
            ValueError,
            "does not match",
        ),
        (
            {"input_ids": torch.tensor([[4, 5]]), "lengths": torch.tensor([3])},
            ValueError,
            "lengths` must lie in",
        ),
        ({"input_ids": torch.tensor([[4, 5]]), "lengths": torch.tensor([1, 2])}, ValueError, r"shape \(1,\)"),
        ({"input_ids": torch.tensor([[4, 5]]), "lengths": torch.tensor([1.5])}, ValueError, "integer tensor"),
        (
            {"input_ids": torch.tensor([[PAD, 5]]), "attention_mask": torch.tensor([[0, 1]])},
            ValueError,
            r"padding_side must be 'right': set tokenizer.padding_side = 'right', and save it again",
        ),
        # a gap inside a row; a mask that disagrees with carried lengths
        (
            {
                "input_ids": torch.tensor([[4, 5, 6], [4, PAD, 6]]),
                "attention_mask": torch.tensor([[1, 1, 1], [1, 0, 1]]),
            },
            ValueError,
            r"padding_side must be 'right'",
        ),
        (
            {
                "input_ids": torch.tensor([[4, 5]]),
                "attention_mask": torch.tensor([[1, 0]]),
                "lengths": torch.tensor([2]),
            },
            ValueError,
            r"agrees with `lengths`",
        ),
        (
            {"input_ids": torch.tensor([[4, 5]]), "labels": torch.tensor([3])},
            ValueError,
            r"class ids in \[0, 3\)",
        ),
        (
            {"input_ids": torch.tensor([[4, 5]]), "labels": torch.tensor([-5])},
            ValueError,
            r"class ids in \[0, 3\)",
        ),
        (
            {"input_ids": torch.tensor([[4, 5], [6, 7]]), "labels": torch.tensor([1])},
            ValueError,
            "1 rows but the batch has 2",
        ),
        ({"input_ids": None}, ValueError, "input_ids` .* or `inputs_embeds` is required"),
        (
            {"input_ids": torch.tensor([[4, 5]]), "inputs_embeds": torch.rand(1, 2, 6)},
            ValueError,
            "either `input_ids` or `inputs_embeds`, not both",
        ),
        ({"inputs_embeds": torch.rand(2, 6)}, ValueError, r"shape \(batch, seq_len, 6\).*got shape \(2, 6\)"),
        ({"inputs_embeds": torch.rand(1, 2, 4)}, ValueError, r"config.embedding_dim=6"),
        ({"inputs_embeds": torch.ones(1, 2, 6, dtype=torch.long)}, ValueError, "floating-point vectors"),
        ({"inputs_embeds": [[[0.0] * 6]]}, TypeError, "must be a torch.Tensor"),
        (
            {"inputs_embeds": torch.rand(1, 2, 6), "attention_mask": torch.ones(1, 3)},
            ValueError,
            r"does not match the \(batch, seq_len\) of `inputs_embeds`: \(1, 2\)",
        ),
        (
            {"inputs_embeds": torch.rand(1, 2, 6), "lengths": torch.tensor([3])},
            ValueError,
            "lengths` must lie in",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, error, match):
    model = RNNClassifier(tiny_config())
    with pytest.raises(error, match=match):
        model(**kwargs)


def test_a_batch_of_no_rows_is_a_clear_error():
    model = RNNClassifier(tiny_config())  # (pack_padded_sequence said "Cannot pack empty tensors")
    with pytest.raises(ValueError, match=r"`input_ids` holds no rows \(shape \(0, 3\)\)"):
        model(input_ids=torch.zeros((0, 3), dtype=torch.long))


def test_sizes_beyond_memory_name_the_config_fields():
    # 400 TB of weights: more than any address space, so the allocation fails at once (no overcommit)
    with pytest.raises(
        RuntimeError, match=r"RNNClassifierConfig\(vocab_size=10, .*hidden_size=1000000000000"
    ):
        RNNClassifier(RNNClassifierConfig(vocab_size=10, embedding_dim=100, hidden_size=10**12))


def test_wrong_label_kinds():
    ids, _mask, _ = make_batch([2, 3])
    single = RNNClassifier(tiny_config(problem_type="single_label_classification"))
    with pytest.raises(ValueError, match="integer class ids"):
        single(input_ids=ids, labels=torch.tensor([0.0, 1.0]))
    multi = RNNClassifier(tiny_config(problem_type="multi_label_classification"))
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        multi(input_ids=ids, labels=torch.ones(2, 2))


def test_single_label_labels_of_shape_batch_by_one_are_read_as_transformers_does():
    torch.manual_seed(0)
    model = RNNClassifier(tiny_config())
    ids, _mask, lens = make_batch([2, 3, 1])
    flat = model(input_ids=ids, lengths=lens, labels=torch.tensor([0, 2, 1])).loss
    column = model(input_ids=ids, lengths=lens, labels=torch.tensor([[0], [2], [1]])).loss
    assert torch.equal(flat, column) and model.config.problem_type == "single_label_classification"
    # class ids of any integer dtype (int32 from NumPy: was torch's "expected target dtype to be Long")
    for dtype in (torch.int32, torch.int16, torch.uint8):
        labels = torch.tensor([0, 2, 1], dtype=dtype)
        assert torch.equal(model(input_ids=ids, lengths=lens, labels=labels).loss, flat), dtype


def test_a_field_set_after_construction_is_checked_before_saving(tmp_path):
    model = RNNClassifier(tiny_config())
    model.save_pretrained(tmp_path / "good")
    model.config.pooling = "bogus"  # (forward would fail in torch; the saved folder would not load)
    for save in (model.save_pretrained, model.config.save_pretrained):
        with pytest.raises(
            ValueError, match=r"set after it was built.*`pooling` must be one of .*got 'bogus'"
        ):
            save(tmp_path / "bad")
        assert not (tmp_path / "bad").exists()  # nothing written
    # the forward pass and a model built from the config name the field too (were torch shape errors, or
    # mean_max pooling read for any unknown pooling)
    ids, _, lens = make_batch([3, 2])
    with pytest.raises(ValueError, match=r"`pooling` must be one of .*got 'bogus'"):
        model(input_ids=ids, lengths=lens)
    with pytest.raises(ValueError, match=r"`pooling` must be one of .*got 'bogus'"):
        RNNClassifier(model.config)
    config = tiny_config()
    config.rnn_type = "LSTM"
    with pytest.raises(ValueError, match=r"`rnn_type` must be one of 'rnn', 'lstm', 'gru', got 'LSTM'"):
        RNNClassifier(config)
    model.config.pooling = "max"
    model.save_pretrained(tmp_path / "good")
    assert RNNClassifier.from_pretrained(tmp_path / "good").config.pooling == "max"


def test_a_load_never_mixes_two_saves_and_two_saves_do_not_interleave(tmp_path):
    # A reader (a server reloading the folder a training job saves into) got the config.json of one save
    # with the weights of another; two saves into one folder crashed on each other's marker
    # (FileNotFoundError) or left such a mix behind. Saves move files in under an exclusive lock on the
    # folder, loads read under a shared one.
    import threading

    from rnn_textclf.modeling import _folder_lock

    folder = tmp_path / "m"
    models = {}
    for tag, value in (("A", 0.125), ("B", 0.25)):
        model = RNNClassifier(tiny_config(id2label={0: f"{tag}0", 1: f"{tag}1", 2: f"{tag}2"}))
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.fill_(value)
        models[tag] = (model, value)
    models["A"][0].save_pretrained(folder)

    # a save moving files in holds the folder: a load waits for it to end
    loaded: list[RNNClassifier] = []
    with _folder_lock(folder, exclusive=True):
        reader = threading.Thread(target=lambda: loaded.append(RNNClassifier.from_pretrained(folder)))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive() and not loaded
    reader.join(60)
    assert len(loaded) == 1

    errors: list[BaseException] = []
    mixed: list[str] = []

    def save(tag: str) -> None:
        try:
            for _ in range(15):
                models[tag][0].save_pretrained(folder)
        except BaseException as err:
            errors.append(err)

    def load() -> None:
        try:
            for _ in range(40):
                model = RNNClassifier.from_pretrained(folder)
                tag = model.config.id2label[0][0]
                if not torch.all(model.classifier.weight == models[tag][1]):
                    mixed.append(tag)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=save, args=(tag,)) for tag in "AB"] + [threading.Thread(target=load)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == [] and mixed == []
    final = RNNClassifier.from_pretrained(folder)
    assert torch.all(final.classifier.weight == models[final.config.id2label[0][0]][1])
    assert not (folder / ".rnn-textclf-saving").exists()


def test_a_missing_variant_or_subfolder_is_named(tmp_path):
    RNNClassifier(tiny_config()).save_pretrained(tmp_path)
    # (said: "it holds no model.safetensors", which it does)
    with pytest.raises(OSError, match=r"holds no model\.v2\.safetensors .*variant='v2'"):
        RNNClassifier.from_pretrained(tmp_path, variant="v2")
    with pytest.raises(OSError, match=r"has no subfolder 'nope'"):
        RNNClassifier.from_pretrained(tmp_path, subfolder="nope")


def test_save_is_atomic_and_keeps_other_files(tmp_path, monkeypatch):
    from transformers import PreTrainedModel

    first = RNNClassifier(tiny_config())
    first.save_pretrained(tmp_path)
    (tmp_path / "checkpoint-10").mkdir()
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"stale shard")
    before = (tmp_path / "model.safetensors").read_bytes()

    second = RNNClassifier(tiny_config(hidden_size=9))

    def crash(self, directory, *args, **kwargs):
        (directory / "model.safetensors").write_bytes(b"half written")
        raise RuntimeError("disk full")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        second.save_pretrained(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert RNNClassifier.from_pretrained(tmp_path).config.hidden_size == 5
    assert not [p for p in tmp_path.parent.iterdir() if ".saving-" in p.name]

    # killed while the files move in (new weights in, config.json not yet): the folder says so to loaders
    # (it loaded the new weights with the old config); a save that completes clears it
    import os

    real_replace = os.replace

    def killed_at_config(src, dst):
        if str(dst).endswith("config.json"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_at_config)
    with pytest.raises(KeyboardInterrupt):
        RNNClassifier(tiny_config()).save_pretrained(tmp_path)
    monkeypatch.undo()
    with pytest.raises(OSError, match=r"holds files of a save_pretrained that was interrupted"):
        RNNClassifier.from_pretrained(tmp_path)

    second.save_pretrained(tmp_path)
    assert RNNClassifier.from_pretrained(tmp_path).config.hidden_size == 9
    assert (tmp_path / "checkpoint-10").is_dir() and (tmp_path / "tokenizer.json").exists()
    assert not (tmp_path / ".rnn-textclf-saving").exists()
    assert not (tmp_path / "model-00001-of-00002.safetensors").exists()
    with pytest.raises(ValueError, match="must be a folder"):
        second.save_pretrained(tmp_path / "tokenizer.json")


def test_stale_weight_files_are_those_a_weights_upload_does_not_replace():
    from rnn_textclf.modeling import stale_weight_files

    repo = ["README.md", "config.json", "model.safetensors", "tokenizer.json", "ckpt/model.safetensors"]
    shards = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]
    assert stale_weight_files(repo, [*shards, "config.json"]) == ["model.safetensors"]
    assert stale_weight_files([*repo, *shards], ["model.safetensors", "config.json"]) == shards
    # an upload without weights (a tokenizer, a card) replaces none: nothing is deleted
    assert stale_weight_files(repo, ["tokenizer.json", "README.md"]) == []
    # a folder of the repo is judged on its own
    assert stale_weight_files(repo, ["ckpt/model-00001-of-00001.safetensors"], "ckpt") == [
        "ckpt/model.safetensors"
    ]
