import sys

from renderers.mock import main

sys.exit(main())
