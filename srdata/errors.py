"""The one exception type that the command-line tools turn into a one-line error and exit 2."""


class UserError(Exception):
    """Bad input from the user (a file, a key, an option): the message says what and what to do.

    The CLIs print it on one line, without a traceback, and exit with code 2.
    """
