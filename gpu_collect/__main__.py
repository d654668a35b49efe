"""``python -m gpu_collect``: the CLI, with a Ctrl-C during its imports handled too."""

import sys


def main(argv: list[str] | None = None) -> int:
    """Run ``gpu_collect.cli.main``; a Ctrl-C while torch and transformers import gives one line
    and 130, not a traceback."""
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        # Not traces.clikit.interrupted: importing it may re-enter the import just interrupted.
        exec("")  # noqa: S102 -- clears CPython's unhandled-interrupt flag (see clikit.interrupted)
        print("error: interrupted before the collection started; nothing was written", file=sys.stderr)
        return 130
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
