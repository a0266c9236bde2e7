"""What the importer and the exporter share: the error types and the lazy ``onnx`` import."""

from __future__ import annotations

from ..errors import AxonError

__all__ = ["OnnxImportError", "OnnxExportError", "require_onnx"]


class OnnxImportError(AxonError, ValueError):
    """An ONNX model cannot be imported: unsupported operators (every one is listed, with a node
    name and the opset), a malformed graph, or a value the importer cannot fold."""


class OnnxExportError(AxonError, ValueError):
    """An axon_fn model cannot be exported to ONNX; the message names the layer and the op."""


def require_onnx(where):
    """The ``onnx`` package, or an error that says how to install it."""
    try:
        import onnx
    except ImportError as err:  # pragma: no cover - the test extra installs onnx
        raise ImportError(f"{where} needs the `onnx` package: pip install \"axon_fn[onnx]\""
                          ) from err
    return onnx
