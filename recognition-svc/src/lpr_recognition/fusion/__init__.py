"""Multi-frame fusion: the frames of one passing vehicle fused into one plate (a track)."""
