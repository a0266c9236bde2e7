"""examples/text_classification.py: the LSTM reads negation and "but"; a bag of words cannot."""

from __future__ import annotations

from ._load import load_example


def test_lstm_beats_bag_of_words():
    example = load_example("text_classification")
    result = example.main(quick=True)
    assert result["test_accuracy"] >= 0.9
    assert result["bag_of_words_accuracy"] <= result["test_accuracy"] - 0.1


def test_tokenizer_pads_with_zero():
    example = load_example("text_classification")
    vocabulary = example.build_vocabulary(["the movie was good"])
    ids = example.encode(["the movie was good", "the movie was great"], vocabulary)
    assert ids.shape == (2, example.MAX_LENGTH) and ids.dtype.kind == "i"
    assert (ids[:, 4:] == example.PAD).all() and (ids[0, :4] >= 2).all()
    assert ids[1, 3] == example.UNKNOWN                      # "great" is not in the vocabulary
