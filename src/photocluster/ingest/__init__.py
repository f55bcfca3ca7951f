"""The write path: upload events in, embeddings into each user's store.

* :mod:`~photocluster.ingest.events`: S3 notifications and backfill messages -> typed refs,
  the key -> image id rule;
* :mod:`~photocluster.images`: decode, validate, orient and shrink an upload;
* :mod:`~photocluster.ingest.endpoint`: clients of the embedding endpoint, with retries;
* :mod:`~photocluster.ingest.pipeline`: one SQS batch through every step;
* :mod:`~photocluster.ingest.objects`: an upload's object in S3: read it, tag it rejected;
* :mod:`~photocluster.ingest.reporting`: where permanently bad inputs go;
* :mod:`~photocluster.ingest.writer`: the writer function and its clients;
* :mod:`~photocluster.ingest.backfill`: enqueue objects already in the bucket;
* :mod:`~photocluster.ingest.handlers`: the Lambda handlers, wired from Settings.

Importing this package loads nothing.
"""
