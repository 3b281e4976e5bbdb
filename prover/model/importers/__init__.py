"""Model importers: PyTorch (torch_import), ONNX (onnx_import) and Keras 3 (keras_import) into one
chain-of-layers form (imported). torch, onnx and h5py are imported lazily, only when an importer
runs."""
