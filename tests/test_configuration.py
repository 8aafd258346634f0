from __future__ import annotations

import json

import pytest

from rnn_textclf import RNNClassifierConfig


def test_defaults_and_roundtrip(tmp_path):
    config = RNNClassifierConfig(
        vocab_size=20_645,
        num_labels=4,
        rnn_type="lstm",
        embedding_dim=100,
        hidden_size=128,
        num_layers=2,
        bidirectional=True,
        dropout=0.3,
        pooling="max",
        pad_token_id=0,
    )
    assert config.model_type == "rnn_textclf"
    assert config.num_labels == 4
    assert config.rnn_output_size == 256
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["rnn_type"] == "lstm" and saved["pooling"] == "max" and saved["dropout"] == 0.3
    again = RNNClassifierConfig.from_pretrained(tmp_path)
    for field in ("vocab_size", "embedding_dim", "hidden_size", "num_layers", "rnn_type", "bidirectional"):
        assert getattr(again, field) == getattr(config, field)
    assert again.id2label == config.id2label


def test_pooled_size_accounts_for_projection_and_mean_max():
    config = RNNClassifierConfig(
        rnn_type="lstm", hidden_size=16, proj_size=8, bidirectional=True, pooling="mean_max"
    )
    assert config.rnn_output_size == 16
    assert config.pooled_size == 32


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rnn_type": "transformer"}, "rnn_type"),
        ({"nonlinearity": "sigmoid"}, "nonlinearity"),
        ({"rnn_type": "lstm", "nonlinearity": "relu"}, "nonlinearity"),
        ({"pooling": "attention"}, "pooling"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"embedding_dim": -3}, "embedding_dim"),
        ({"hidden_size": 2.5}, "hidden_size"),
        ({"hidden_size": True}, "hidden_size"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_layers": 100_000}, "num_layers"),  # (a crafted config.json: minutes of building, then refused)
        ({"dropout": 1.0}, "dropout"),
        ({"embedding_dropout": -0.1}, "embedding_dropout"),
        ({"classifier_dropout": "0.1"}, "classifier_dropout"),
        ({"bidirectional": "yes"}, "bidirectional"),
        ({"proj_size": 4}, "proj_size"),
        ({"rnn_type": "lstm", "hidden_size": 8, "proj_size": 8}, "proj_size"),
        ({"pad_token_id": 100, "vocab_size": 100}, "pad_token_id"),
        ({"pad_token_id": -1}, "pad_token_id"),
        ({"freeze_embeddings": 1}, "freeze_embeddings"),
        ({"initializer_range": 0}, "initializer_range"),
        ({"initializer_range": float("inf")}, "initializer_range"),  # (every weight would be inf or NaN)
        ({"initializer_range": float("nan")}, "initializer_range"),
        ({"initializer_range": 1e39}, "initializer_range"),  # (finite, but the float32 weights overflow)
        ({"rnn_textclf_quantization": "int4"}, "rnn_textclf_quantization"),
        ({"num_labels": 0}, "num_labels"),
        ({"problem_type": "ranking"}, "problem_type"),
        # read by transformers' checks first: "'<' not supported between 'int' and 'str'", AttributeError
        ({"vocab_size": "100"}, "vocab_size"),
        ({"pad_token_id": "0"}, "pad_token_id"),
        ({"dtype": "bfloat17"}, "dtype"),
    ],
)
def test_bad_values_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"`{field}") as info:
        RNNClassifierConfig(**kwargs)
    # The message also names the offending value.
    bad = kwargs[field]
    assert repr(bad) in str(info.value) or str(bad) in str(info.value)


def test_config_json_with_unknown_rnn_type_fails_on_load(tmp_path):
    RNNClassifierConfig(vocab_size=10).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data["rnn_type"] = "mamba"
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="rnn_type"):
        RNNClassifierConfig.from_pretrained(tmp_path)


def test_keys_the_package_writes_load_without_the_unused_fields_warning(tmp_path, caplog):
    # Recipes record their name and --teacher its distillation settings in config.json; loading such a
    # model must not tell the user that rnn-textclf ignores fields it wrote itself.
    import logging

    from rnn_textclf import RNNClassifier

    config = RNNClassifierConfig(vocab_size=10, num_labels=2)
    config.recipe = "bilstm-glove"
    config.distillation = {"teacher": "a-teacher", "alpha": 0.5}
    RNNClassifier(config).save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING):
        loaded = RNNClassifier.from_pretrained(tmp_path)
    assert loaded.config.recipe == "bilstm-glove"
    assert "does not use" not in caplog.text
    data = json.loads((tmp_path / "config.json").read_text())
    data["recipe_name"] = "typo"
    (tmp_path / "config.json").write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        RNNClassifier.from_pretrained(tmp_path)
    assert "does not use: recipe_name" in caplog.text  # a real unknown key still warns


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"pooling": "avg"}, "pooling"),
        ({"rnn_type": "foo"}, "rnn_type"),
        ({"classifier_dropout": 2.0}, "classifier_dropout"),
        ({"bidirectional": "no"}, "bidirectional"),
        ({"problem_type": "multilabel"}, "problem_type"),
        ({"num_labels": 0}, "num_labels"),
    ],
)
def test_keyword_overrides_at_load_are_validated(tmp_path, override, field):
    # transformers sets `from_pretrained(path, **overrides)` after __init__: a typo used to pass, fail
    # later in torch, or be saved into a checkpoint that no longer loads.
    from transformers import AutoConfig

    from rnn_textclf import RNNClassifier

    RNNClassifier(RNNClassifierConfig(vocab_size=10, embedding_dim=4, hidden_size=4)).save_pretrained(
        tmp_path
    )
    ((key, value),) = override.items()
    for load in (AutoConfig.from_pretrained, RNNClassifier.from_pretrained):
        with pytest.raises(
            ValueError, match=rf"keyword override {key}={value!r} given with the config.json of .*`{field}`"
        ):
            load(tmp_path, **override)
    with pytest.raises(ValueError, match=rf"keyword override {key}=.* given with this config"):
        RNNClassifierConfig.from_dict(RNNClassifierConfig(vocab_size=10).to_dict(), **override)
    assert RNNClassifier.from_pretrained(tmp_path, classifier_dropout=0.3).config.classifier_dropout == 0.3


def test_one_label_on_a_single_label_checkpoint_is_refused_and_the_regression_route_works(tmp_path):
    # A trained classifier saves problem_type="single_label_classification": num_labels=1 on it used to be
    # accepted (cross-entropy over one class: loss 0, no gradient) and saved a folder that did not load.
    import torch
    from transformers import AutoConfig

    from rnn_textclf import RNNClassifier

    config = RNNClassifierConfig(
        vocab_size=10, embedding_dim=4, hidden_size=4, id2label={0: "ham", 1: "spam"}
    )
    model = RNNClassifier(config)
    model.config.problem_type = "single_label_classification"  # as the first labelled batch sets it
    model.save_pretrained(tmp_path / "clf")
    for load in (AutoConfig.from_pretrained, RNNClassifier.from_pretrained):
        with pytest.raises(ValueError, match=r"keyword override num_labels=1 .*regression"):
            load(tmp_path / "clf", num_labels=1, ignore_mismatched_sizes=True)
    model.config.num_labels = 1
    with pytest.raises(ValueError, match=r"`num_labels=1` does not fit"):
        model.save_pretrained(tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    # the route the message gives: a regression head on the classifier's encoder
    config = RNNClassifierConfig.from_pretrained(tmp_path / "clf")
    config.problem_type = "regression"
    config.num_labels = 1
    reg = RNNClassifier.from_pretrained(tmp_path / "clf", config=config, ignore_mismatched_sizes=True)
    out = reg(input_ids=torch.tensor([[3, 4]]), lengths=torch.tensor([2]), labels=torch.tensor([0.5]))
    assert out.logits.shape == (1, 1) and out.loss > 0
