"""Corpora: the synthetic generator with ground truth, and any text corpus through ``datasets``.

``open_corpus(path, text_field=..., id_field=..., group_field=...)`` is the one entry point for
a ``--data PATH``: the generator's layout gives a ``Corpus``, anything else a ``TextCorpus``.
``build_index`` / ``CorpusIndex``: the keyed-hash index that scopes requests without a rescan.
"""

from forget.corpus.files import is_generated, open_corpus
from forget.corpus.generate import GenerateConfig, generate
from forget.corpus.index import CorpusIndex, build_index
from forget.corpus.load import Corpus, TrainingRecord, load_corpus, training_records
from forget.corpus.text import TextCorpus, TextRecord

__all__ = ["Corpus", "CorpusIndex", "GenerateConfig", "TextCorpus", "TextRecord",
           "TrainingRecord", "build_index", "generate", "is_generated", "load_corpus",
           "open_corpus", "training_records"]
