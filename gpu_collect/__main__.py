import sys

from .collect_traces import main

sys.exit(main())
