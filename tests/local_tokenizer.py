"""A small byte-level BPE tokenizer built on the spot, saved in the layout transformers loads.

Tests of calibration need a real tokenizer but may not download one; this one is trained in well
under a second on a corpus of table-like text, so its token counts behave like a real model's.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

_CORPUS = [
    "id,name,city,category,price,quantity,score\n1,alpha,Paris,tools,12.50,3,87\n",
    "| id | name | city | category | price |\n|---|---|---|---|---|\n| 2 | beta | Rome | toys | 7 |\n",
    '[{"id": 3, "name": "gamma", "city": "Oslo", "price": 19.99}]\n',
    "How many rows have a price greater than 10? What is the sum of quantity where city is Paris?\n",
    "The quick brown fox jumps over the lazy dog 0123456789.\n",
]


def make_local_tokenizer(directory: Path, vocab_size: int = 600) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["[UNK]", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS * 20, trainer)
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "bos_token": "<s>", "eos_token": "</s>"}))
    return directory
