"""Video: decode with PyAV, stylize the frames in batches, encode; timing, rotation and sound kept.

``read`` decodes a video or a folder of frames, ``write`` encodes a video or a folder of PNG frames
(each container's facts in one table, ``write.CONTAINERS``), ``pipeline`` runs the three stages
side by side and is what ``render`` is.
"""

from __future__ import annotations

from fst.video.pipeline import VideoOptions, VideoReport, render

__all__ = ["VideoOptions", "VideoReport", "render"]
