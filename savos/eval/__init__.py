"""DAVIS evaluation: region (J) and boundary (F) measures and their per-object statistics."""

from .metrics import boundary_map, contour_accuracy, decay, mean, recall, region_similarity

__all__ = ["boundary_map", "contour_accuracy", "decay", "mean", "recall", "region_similarity"]
