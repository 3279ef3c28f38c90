"""How far one F0 track is from another, as the audio features see it: the error in cents after the original's
filling of unvoiced frames (linear between voiced neighbours, ends held) on both sides. Used to compare our Harvest
port with pyworld (tests/test_harvest.py, tools/compare_harvest.py)."""
from __future__ import annotations

import numpy as np

from a2h_core.audio.features import interpolate_unvoiced


def cents_after_filling(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|F0 error| in cents per frame, after filling the unvoiced frames of both tracks (0 Hz = unvoiced), over the
    frames that then have a pitch on both sides: empty when neither track has any pitch, all inf (one per frame)
    when only one of them has."""
    filled_ours = interpolate_unvoiced(ours, ours > 0)
    filled_reference = interpolate_unvoiced(reference, reference > 0)
    if (filled_ours > 0).any() != (filled_reference > 0).any():
        return np.full(ours.size, np.inf)
    both = (filled_ours > 0) & (filled_reference > 0)
    return 1200.0 * np.abs(np.log2(filled_ours[both] / filled_reference[both]))
