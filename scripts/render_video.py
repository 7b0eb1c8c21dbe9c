"""Stylize a video frame by frame: the same as ``fst video`` (see its --help), as a script.

    python scripts/render_video.py great_wave clip.mp4 stylized.mp4 --max-size 720
"""

import sys

from fst.cli import main

if __name__ == "__main__":
    sys.exit(main(["video", *sys.argv[1:]]))
