"""A tiny base model, built in the test from a config, and a signed dataset to train it on.

Nothing is downloaded: the tokenizer is trained with ``tokenizers`` on the fixture text, with the turn
tokens of a chat-template family (ChatML or Llama 3) and no template of its own (the trainer brings
one that marks the assistant's turns); the model is a Llama of about 100k parameters with random
weights.  Training it for a few dozen steps on CPU takes seconds and visibly lowers its held-out loss
(the answers repeat, so there is something to learn).
"""

from __future__ import annotations

from pathlib import Path

from arcticcodex.dataset import DatasetWriter, Revision
from arcticcodex.dataset.split import PlannedSplit
from arcticcodex.provenance.signing import Signer
from test_dataset_record import make_pair

FACTS = [
    ("What do otters eat?", "Otters eat fish, crabs and sea urchins."),
    ("Where do otters sleep?", "Otters sleep in dens by the water."),
    ("How do beavers build dams?", "Beavers build dams from branches and mud."),
    ("What do beavers eat?", "Beavers eat bark, leaves and roots."),
    ("Can otters swim?", "Otters swim well and dive for food."),
    ("Where do beavers live?", "Beavers live in lodges on rivers."),
]
FAMILIES = {
    "chatml": ["<|im_start|>", "<|im_end|>"],
    "llama3": ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "plain": [],  # no chat family at all
}


def make_base(folder: Path, family: str = "chatml", *, seed: int = 0) -> Path:
    """A tiny random Llama and its locally trained tokenizer, saved to ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    text = [f"{question} {answer}" for question, answer in FACTS] * 4 + ["user assistant system"]
    specials = ["<unk>", "<s>", "</s>", "<pad>", *FAMILIES[family]]
    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(
        text,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    bos = "<|begin_of_text|>" if family == "llama3" else "<s>"
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=bos, eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def make_dataset(folder: Path, signer: Signer, *, copies: int = 4) -> Path:
    """A signed dataset of the fixture facts (``copies`` of each), one of each held out for validation.

    Every pair's first draft was a worse answer the teachers improved on, so DPO has preference pairs.
    """
    pairs = []
    for copy in range(copies):
        for question, answer in FACTS:
            asked = question if copy == 0 else f"{question} ({copy})"
            revisions = (Revision(1, "I do not know.", 0.3), Revision(2, answer, 0.95))
            pairs.append(make_pair(instruction=asked, completion=answer, revisions=revisions, evidence=()))
    held_out = [pair.id for pair in pairs[: len(FACTS)]]
    with DatasetWriter(folder, signer, validation_fraction=0.2, split=PlannedSplit(held_out)) as writer:
        writer.add_many(pairs)
    return folder
