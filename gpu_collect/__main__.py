import sys

try:  # Ctrl-C while torch and transformers import: one line, not a traceback
    from .cli import main

    sys.exit(main())
except KeyboardInterrupt:
    print("error: interrupted before the collection started; nothing was written", file=sys.stderr)
    sys.exit(130)
