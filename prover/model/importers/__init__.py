"""Model importers: PyTorch (torch_import), ONNX (onnx_import) and Keras 3 (keras_import) into one
chain-of-layers form (imported), then f32 graphs; quantized TFLite files (tflite_import) straight
into int8 graphs. torch, onnx, h5py and tflite are imported lazily, only when an importer runs."""
