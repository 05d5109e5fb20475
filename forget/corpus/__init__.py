"""Synthetic corpora with ground truth: generation, loading, training sets."""

from forget.corpus.generate import GenerateConfig, generate
from forget.corpus.load import Corpus, TrainingRecord, load_corpus, training_records

__all__ = ["Corpus", "GenerateConfig", "TrainingRecord", "generate", "load_corpus",
           "training_records"]
