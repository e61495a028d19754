"""lrgen: learning-rate-scheduler variants of a LEMUR model, built with LibCST."""

__version__ = "0.1.0"
