#!/usr/bin/env python
"""Django's command-line utility for hal0 spend control."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hal0.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        try:
            execute_from_command_line(sys.argv)
        finally:
            # Flushed here, also on the way out of --help's SystemExit, so a closed pipe
            # surfaces as the exception below and not in the interpreter's exit.
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`manage.py apikey list | head`): stop quietly, as a Unix
        # tool cut off by SIGPIPE does. stdout goes to /dev/null first, so the flush at
        # exit does not raise the same error again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + 13)  # 141, what a shell reports for a process killed by SIGPIPE
    except ImproperlyConfigured as exc:
        # A setting the operator has to fix (say, no SECRET_KEY with DEBUG off): the
        # message is the answer; the traceback only with --traceback.
        if "--traceback" in sys.argv:
            raise
        sys.stderr.write(f"manage.py: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
