"""Errors a learner can fix, and the wrapper that prints them without a traceback."""
import sys


class UserError(Exception):
    """Bad input: the message names the file or value and says how to fix it.

    Step scripts exit with status 2 and print only the message (no traceback).
    """


def exit_on_user_error(main):
    """Decorator for a script's main(): UserError -> one paragraph on stderr, exit 2.

    When the script is the running program (main defined in __main__), a
    KeyboardInterrupt that reaches main (a second Ctrl-C inside the training
    loop, Ctrl-C in compare.py) ends with one line and exit 130. Imported and
    called by the tests, main leaves KeyboardInterrupt to the caller.
    """
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            if main.__module__ != "__main__":
                raise
            from common import interrupt
            print(f"\n{interrupt.message()}", file=sys.stderr)
            raise SystemExit(130) from None
    wrapped.__wrapped__ = main
    wrapped.__doc__ = main.__doc__
    return wrapped


MAX_LISTED = 5      # how many offending files or values an error message names


def few(items) -> str:
    """Up to MAX_LISTED items, then '... (N in all)': the lists in error messages."""
    items = [str(i) for i in items]
    text = ", ".join(items[:MAX_LISTED])
    return text + (f", ... ({len(items)} in all)" if len(items) > MAX_LISTED else "")
