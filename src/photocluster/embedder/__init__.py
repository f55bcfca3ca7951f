"""The embedder: images in, L2-normalised vectors out (the SageMaker endpoint's container).

* :mod:`~photocluster.embedder.base`: the ``Encoder`` interface (no torch);
* :mod:`~photocluster.embedder.loader`: model name -> encoder, and baking weights;
* :mod:`~photocluster.embedder.vit`: the production ViT (transformers, torch);
* :mod:`~photocluster.embedder.efficientnet`: the offline EfficientNet-Lite0 (torch);
* :mod:`~photocluster.embedder.server`: the SageMaker-style inference server.
"""
