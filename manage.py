#!/usr/bin/env python
"""Django's command-line utility for hal0 spend control."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hal0.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A setting the operator has to fix (say, no SECRET_KEY with DEBUG off): the
        # message is the answer; the traceback only with --traceback.
        if "--traceback" in sys.argv:
            raise
        sys.stderr.write(f"manage.py: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
