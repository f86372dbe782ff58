import sys

from renderers.ffmpeg import main

sys.exit(main())
