import axon_fn

from ._load import load_example


def test_autoencoder_beats_the_mean_and_its_encoder_reuses_the_trained_layers():
    figures = load_example("autoencoder").main(quick=True)
    assert figures["mse"] < 0.5 * figures["baseline_mse"]
    assert figures["code_shape"] == (1000, 2)
    assert figures["roundtrip_error"] < 1e-5
    assert figures["latent_r2"] > 0.8


def test_encoder_subgraph_has_the_named_layers_of_the_full_model():
    example = load_example("autoencoder")
    code = example.encoder(axon_fn.input("points", shape=(None, example.FEATURES)))
    assert sorted(axon_fn.init(code).trainable) == ["code", "encoder_hidden"]
    assert sorted(axon_fn.init(example.decoder(code)).trainable) == [
        "code", "decoder_hidden", "encoder_hidden", "reconstruction"]
