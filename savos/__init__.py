"""SAVOS: symmetric encoder-decoder with attention for semi-supervised video object segmentation."""

__version__ = "0.1.0"
