"""The embedder: images in, L2-normalised vectors out (the SageMaker endpoint's container).

* :mod:`~photocluster.embedder.base`: the ``Encoder`` interface (no torch);
* :mod:`~photocluster.embedder.loader`: model name and runtime -> encoder, and baking;
* :mod:`~photocluster.embedder.preprocessing`: images -> input tensor (numpy, vectorised);
* :mod:`~photocluster.embedder.vit`: the production ViT (transformers, torch);
* :mod:`~photocluster.embedder.efficientnet`: the offline EfficientNet-Lite0 (torch);
* :mod:`~photocluster.embedder.export`: bake-model's ONNX export, fp32 and int8 (torch);
* :mod:`~photocluster.embedder.bake`: bake-model's calibration of the baked model's tiers;
* :mod:`~photocluster.embedder.onnx_encoder`: the ONNX runtimes (onnxruntime, no torch);
* :mod:`~photocluster.embedder.server`: the SageMaker-style inference server.
"""
