"""photocluster: group a user's photos by visual similarity."""

__version__ = "0.1.0"
