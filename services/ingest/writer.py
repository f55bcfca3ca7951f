"""Writer Lambda (in the VPC, EFS mounted): one payload -> a user's store and graph."""

from photocluster.config import get_settings
from photocluster.ingest.handlers import writer_handler

handler = writer_handler(get_settings())
