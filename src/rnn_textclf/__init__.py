"""rnn-textclf: classic recurrent text classifiers as native Hugging Face models."""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from .collator import BucketBatchSampler, PackedBatch, PackedSequenceCollator
from .configuration import RNNClassifierConfig
from .distillation import add_teacher_logits, augment_texts, build_transfer_set
from .export import OnnxClassifier, QuantizedRNNClassifier, export_onnx, quantize_dynamic, quantize_onnx
from .modelcard import write_model_card
from .modeling import RNNClassifier, RNNClassifierPreTrainedModel
from .pretraining import RNNLanguageModel
from .streaming import LengthBucketedStream, bucket_stream
from .tokenization import RNNTokenizer, basic_english_tokenize
from .trainer import RNNTrainer
from .training_args import RNNTrainingArguments
from .vectors import CoverageReport, WordVectors, load_word_vectors

__version__ = "0.1.0"

# Auto classes: `AutoModelForSequenceClassification.from_pretrained(path)` works after `import rnn_textclf`,
# and `save_pretrained` writes `auto_map` + the code files so `trust_remote_code=True` works without it.
AutoConfig.register(RNNClassifierConfig.model_type, RNNClassifierConfig, exist_ok=True)
AutoModel.register(RNNClassifierConfig, RNNClassifier, exist_ok=True)
AutoModelForSequenceClassification.register(RNNClassifierConfig, RNNClassifier, exist_ok=True)
RNNClassifierConfig.register_for_auto_class()
RNNClassifier.register_for_auto_class("AutoModelForSequenceClassification")
# AutoTokenizer (and pipeline) give an RNNTokenizer for tokenizer_class "RNNTokenizer", and a clear error
# for an rnn-textclf repo without tokenizer files. Without the package, tokenizer.json loads on its own.
AutoTokenizer.register(RNNClassifierConfig, fast_tokenizer_class=RNNTokenizer, exist_ok=True)
# save_pretrained and push_to_hub write rnn-textclf's model card (README.md) through this hook.
RNNClassifier.model_card_writer = staticmethod(write_model_card)

__all__ = [
    "BucketBatchSampler",
    "CoverageReport",
    "LengthBucketedStream",
    "OnnxClassifier",
    "PackedBatch",
    "PackedSequenceCollator",
    "QuantizedRNNClassifier",
    "RNNClassifier",
    "RNNClassifierConfig",
    "RNNClassifierPreTrainedModel",
    "RNNLanguageModel",
    "RNNTokenizer",
    "RNNTrainer",
    "RNNTrainingArguments",
    "WordVectors",
    "__version__",
    "add_teacher_logits",
    "augment_texts",
    "basic_english_tokenize",
    "bucket_stream",
    "build_transfer_set",
    "export_onnx",
    "load_word_vectors",
    "quantize_dynamic",
    "quantize_onnx",
    "write_model_card",
]
