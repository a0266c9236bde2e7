"""The add_note helper works on every Python the package declares."""

import sys
import types

import pytest

from axon_fn import errors


@pytest.mark.parametrize("version", [(3, 10), (3, 11)])
def test_add_note_on_every_python(monkeypatch, version):
    if version >= (3, 11) > sys.version_info[:2]:
        pytest.skip("BaseException.add_note needs Python 3.11")
    monkeypatch.setattr(errors, "sys", types.SimpleNamespace(version_info=version))
    err = ValueError("operands could not be broadcast")
    errors.add_note(err, "in axon_fn op 'add' with argument shapes (2,), (3,)")
    assert err.__notes__ == ["in axon_fn op 'add' with argument shapes (2,), (3,)"]
    assert "operands could not be broadcast" in str(err)
    if version < (3, 11):  # 3.10 prints no notes: the message carries it
        assert str(err).endswith("in axon_fn op 'add' with argument shapes (2,), (3,)")
