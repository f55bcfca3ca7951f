"""Ingest Lambda: SQS batch of upload events -> embeddings -> writer (photocluster.ingest)."""

from photocluster.config import get_settings
from photocluster.ingest.handlers import ingest_handler

handler = ingest_handler(get_settings())  # clients created once per container
