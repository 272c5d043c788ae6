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
