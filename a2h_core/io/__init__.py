"""Files in and out: weights (safetensors, the original checkpoint, the Hub), images with crop and paste-back,
and MP4 video with sound."""
