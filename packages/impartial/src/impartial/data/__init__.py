"""Reading the original on-disk layouts (v2 npz + CSV, v3 TIFF + ImageJ ROI zips, TIFF pairs)."""

from impartial.data.readers import Sample, load_dataset, read_image, read_label_image, read_scribble_file
from impartial.data.roi import read_roi_zip

__all__ = ["Sample", "load_dataset", "read_image", "read_label_image", "read_roi_zip", "read_scribble_file"]
