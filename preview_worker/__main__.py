import sys

from preview_worker.cli import main

sys.exit(main())
