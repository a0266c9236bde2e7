"""Classify the sentiment of short synthetic movie reviews with an embedding + LSTM.

The reviews are built from seeded templates: "the plot was not very good but the cast was
great". Negation flips a clause's sentiment, and in "X but Y" the review means Y, so the word
counts alone do not decide the label ("good but not great" and "great but not good" hold the
same words). The script tokenizes with a tiny in-script vocabulary (padded to a fixed length,
pad id 0), masks the padding in the LSTM, trains with the ``trainer`` loop, and compares the
LSTM with a bag-of-words model (the mean of the same kind of embeddings) on held-out reviews.

    python examples/text_classification.py
"""

from __future__ import annotations

import time

import numpy as np

import axon_fn
from axon_fn.loop import evaluator, trainer

SUBJECTS = ["the movie", "the plot", "the acting", "the music", "the ending", "this film",
            "the cast", "the script"]
VERBS = ["was", "is", "felt", "seemed"]
INTENSIFIERS = ["very", "really", "quite", "so"]
NEGATIONS = ["not", "never"]
ADJECTIVES = {+1: ["good", "great", "excellent", "wonderful", "fun", "brilliant"],
              -1: ["bad", "awful", "boring", "terrible", "dull", "weak"]}
MAX_LENGTH = 16
PAD, UNKNOWN = 0, 1


def clause(rng, sentiment):
    """A clause meaning ``sentiment`` (+1 / -1), possibly by negating the opposite word."""
    negated = rng.random() < 0.5
    words = [rng.choice(SUBJECTS), rng.choice(VERBS)]
    if negated:
        words.append(rng.choice(NEGATIONS))
    if rng.random() < 0.4:
        words.append(rng.choice(INTENSIFIERS))
    words.append(rng.choice(ADJECTIVES[-sentiment if negated else sentiment]))
    return " ".join(words)


def review(rng):
    """(text, label): one clause, "X and Y" (agreeing) or "X but Y" (Y decides); label 1 is
    positive."""
    sentiment = int(rng.choice([-1, 1]))
    form = rng.choice(["one", "and", "but"])
    text = clause(rng, sentiment)
    if form == "and":
        text = f"{text} and {clause(rng, sentiment)}"
    elif form == "but":
        text = f"{clause(rng, -sentiment)} but {text}"
    return text, int(sentiment > 0)


def make_reviews(n, seed):
    rng = np.random.default_rng(seed)
    texts, labels = zip(*(review(rng) for _ in range(n)))
    return list(texts), np.array(labels, np.int32)


def build_vocabulary(texts):
    """{word: id}, ids from 2 up (0 is padding, 1 an unknown word)."""
    words = sorted({word for text in texts for word in text.split()})
    return {word: i + 2 for i, word in enumerate(words)}


def encode(texts, vocabulary, length=MAX_LENGTH):
    """Token ids, one row per text, cut or padded (with 0) at the end to ``length``."""
    ids = np.full((len(texts), length), PAD, np.int32)
    for row, text in enumerate(texts):
        tokens = [vocabulary.get(word, UNKNOWN) for word in text.split()][:length]
        ids[row, :len(tokens)] = tokens
    return ids


def lstm_classifier(vocab_size, embedding_size=16, units=32):
    tokens = axon_fn.input("tokens", shape=(None, MAX_LENGTH), dtype="int32")
    not_padding = tokens >> axon_fn.nx(lambda ids: ids != PAD)
    embedded = tokens >> axon_fn.embedding(vocab_size, embedding_size)
    # the mask keeps the state over padding, so h is the state after the last real word
    _, (_, h) = axon_fn.lstm(embedded, units, mask=not_padding, return_state=True)
    return h >> axon_fn.dense(2)


def bag_of_words_classifier(vocab_size, embedding_size=16):
    tokens = axon_fn.input("tokens", shape=(None, MAX_LENGTH), dtype="int32")
    return (tokens >> axon_fn.embedding(vocab_size, embedding_size) >> axon_fn.global_avg_pool()
            >> axon_fn.dense(32, activation="relu") >> axon_fn.dense(2))


def cross_entropy(labels, logits):
    return axon_fn.losses.categorical_cross_entropy(labels, logits, from_logits=True, sparse=True)


def accuracy(labels, logits):
    return axon_fn.metrics.accuracy(labels, logits, sparse=True)


def batches(ids, labels, batch_size, shuffle_seed=None):
    order = np.arange(len(ids))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(order)
    return [(ids[order[i:i + batch_size]], labels[order[i:i + batch_size]])
            for i in range(0, len(order), batch_size)]


def train_and_test(name, model, train, test, *, epochs, batch_size, learning_rate):
    loop = (trainer(model, cross_entropy, "adam", learning_rate=learning_rate)
            .metric(accuracy, "accuracy")
            .log(f"{name:>12} epoch {{state.epoch}}  loss {{loss:.4f}}  "
                 f"accuracy {{accuracy:.3f}}"))
    final = loop.run(lambda epoch: batches(*train, batch_size, shuffle_seed=epoch), epochs=epochs)
    result = evaluator(model).metric(accuracy, "accuracy").run(
        batches(*test, 500), final.step_state.model_state)
    return final.step_state.model_state, result.history[-1]["accuracy"]


def main(epochs=6, batch_size=32, learning_rate=1e-2, train_size=4000, quick=False):
    if quick:
        epochs, train_size = 4, 2000
    train_texts, train_labels = make_reviews(train_size, seed=0)
    test_texts, test_labels = make_reviews(1200, seed=1)
    seen = set(train_texts)
    unseen = [i for i, text in enumerate(test_texts) if text not in seen]
    test_texts, test_labels = [test_texts[i] for i in unseen], test_labels[unseen]
    vocabulary = build_vocabulary(train_texts)
    train = encode(train_texts, vocabulary), train_labels
    test = encode(test_texts, vocabulary), test_labels
    print(f"{len(vocabulary)} words; e.g. {train_texts[0]!r} -> {train[0][0].tolist()}")

    start = time.perf_counter()
    model = lstm_classifier(len(vocabulary) + 2)
    state, lstm_accuracy = train_and_test("lstm", model, train, test, epochs=epochs,
                                          batch_size=batch_size, learning_rate=learning_rate)
    _, bag_accuracy = train_and_test("bag of words", bag_of_words_classifier(len(vocabulary) + 2),
                                     train, test, epochs=epochs, batch_size=batch_size,
                                     learning_rate=learning_rate)
    seconds = time.perf_counter() - start

    samples = ["the plot was good but the ending was not great",
               "the plot was not great but the ending was good",
               "this film never felt boring", "the cast was never really fun"]
    probabilities = axon_fn.activations.softmax(
        axon_fn.predict(model, state, encode(samples, vocabulary)))
    for text, p in zip(samples, np.asarray(probabilities)[:, 1]):
        print(f"  P(positive) = {p:.2f}  {text!r}")
    print(f"test accuracy on {len(test_labels)} reviews not seen in training: "
          f"LSTM {lstm_accuracy:.3f}, bag of words {bag_accuracy:.3f} ({seconds:.1f} s)")
    return {"test_accuracy": lstm_accuracy, "bag_of_words_accuracy": bag_accuracy,
            "seconds": seconds}


if __name__ == "__main__":
    main()
