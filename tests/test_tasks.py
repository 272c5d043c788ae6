"""Task adapters (`hf_rnn.tasks`)."""

from hf_rnn.data import DataConfig, load_task_splits
from hf_rnn.recipe import load_recipe
from hf_rnn.tasks import target_token_ids, task_adapter
from hf_rnn.tokenization import train_tokenizer


def test_target_ids_from_the_encoded_labels_equal_those_of_tokenizing_the_targets_again():
    recipe = load_recipe("multi30k_tiny", ["tokenizer.vocab_size=500"])
    adapter = task_adapter("translation")
    splits = load_task_splits(
        DataConfig(local_name="multi30k", validation_split="validation"), "sample", ["translation"]
    )
    train = splits["train"].select(range(300))
    tokenizer = train_tokenizer(adapter.tokenizer_texts(train, recipe.data), recipe.tokenizer)
    encoded = train.map(adapter.preprocess_function(tokenizer, recipe.data), batched=True)
    from_labels = target_token_ids(tokenizer, train, "en", encoded)
    assert from_labels == target_token_ids(tokenizer, train, "en")
    assert set(tokenizer.all_special_ids) <= set(from_labels) and len(from_labels) < len(tokenizer)


def test_tokenized_splits_are_found_in_the_cache_by_a_process_that_reloads_the_tokenizer(tmp_path):
    """Every rank of a DDP launch loads the saved tokenizer; it must reuse rank 0's tokenization, not redo it."""
    from transformers import PreTrainedTokenizerFast

    from hf_rnn.training import add_lengths

    recipe = load_recipe("multi30k_tiny", ["tokenizer.vocab_size=400"])
    adapter = task_adapter("translation")
    splits = load_task_splits(recipe.data, "sample", ["translation"])
    tokenizer = train_tokenizer(adapter.tokenizer_texts(splits["train"], recipe.data), recipe.tokenizer)
    tokenizer.save_pretrained(tmp_path)
    first = add_lengths(splits, adapter, tokenizer, recipe.data)
    again = add_lengths(splits, adapter, PreTrainedTokenizerFast.from_pretrained(tmp_path), recipe.data)
    for name in splits:
        assert first[name].cache_files and first[name].cache_files == again[name].cache_files
        assert first[name]["input_ids"][:5] == again[name]["input_ids"][:5]
