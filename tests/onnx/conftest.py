"""The fixture generator needs PyTorch; the tests only read what it wrote."""

collect_ignore = ["fixtures/make_fixtures.py"]
