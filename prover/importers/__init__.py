"""Model importers: PyTorch (torch_import) and ONNX (onnx_import) into one chain-of-layers form
(imported). torch and onnx are imported lazily, only when an importer runs."""
