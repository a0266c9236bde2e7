"""ONNX import and export: models in and out of axon_fn.

``import_model`` reads an ONNX model (a path, bytes or an ``onnx.ModelProto``) and returns an
ordinary axon_fn graph and its :class:`~axon_fn.ModelState`; ``export`` writes an axon_fn model
as an ONNX file that onnxruntime runs. Both need the optional ``onnx`` package
(``pip install "axon_fn[onnx]"``); importing this module does not.

>>> from axon_fn import onnx as axon_onnx
>>> sorted(name for name in axon_onnx.__all__)
['OnnxExportError', 'OnnxImportError', 'export', 'import_model', 'supported_ops']
"""

from ._common import OnnxExportError, OnnxImportError
from ._export import export
from ._import import import_model, supported_ops

__all__ = ["import_model", "export", "supported_ops", "OnnxImportError", "OnnxExportError"]
