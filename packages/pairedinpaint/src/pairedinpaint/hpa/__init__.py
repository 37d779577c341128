"""The human (HPA) data pipeline: download composites, segment and crop cells, filter directories."""
