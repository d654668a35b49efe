import sys

try:  # Ctrl-C while torch and transformers import: one line, not a traceback
    from .cli import main

    sys.exit(main())
except KeyboardInterrupt:
    from traces.clikit import interrupted

    sys.exit(interrupted("error: interrupted before the collection started; nothing was written"))
