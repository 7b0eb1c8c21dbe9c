"""The one exception type the command line turns into a one-line message."""


class FstError(Exception):
    """A user-facing error: bad input, an unknown style, an unwritable output.

    The message is one line that names the file or style and the reason.
    """
