"""From images to feature vectors: extraction (Keras or ONNX Runtime), the precompute that stores
them, and the engines (in-process or Ray) that shard a large folder."""
