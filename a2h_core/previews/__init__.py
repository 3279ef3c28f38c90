"""Previews for people, never model input: pose-curve plots, pose boxes over the portrait, feature plots and
keypoint overlays. Pictures are drawn with Pillow."""
