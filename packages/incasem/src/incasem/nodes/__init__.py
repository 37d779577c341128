"""Custom gunpowder nodes, one per file (``<verb>_<noun>.py`` holds ``VerbNoun``).

Only what upstream gunpowder 1.4.4 lacks: label merging, mask merging and constants, the
foreground mask, RandomLocation with the soft foreground rule, and a Reject whose retries
change the seed. Everything else in the
pipelines is a stock gunpowder node.
"""

from incasem.nodes.add_mask import AddMask
from incasem.nodes.binarize_labels import BinarizeLabels
from incasem.nodes.merge_labels import MergeLabels
from incasem.nodes.merge_masks import MergeMasks
from incasem.nodes.random_location import RandomLocation
from incasem.nodes.reject import Reject

__all__ = ["AddMask", "BinarizeLabels", "MergeLabels", "MergeMasks", "RandomLocation", "Reject"]
