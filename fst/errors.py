"""The one exception type the command line turns into a one-line message."""


class FstError(Exception):
    """A user-facing error: bad input, an unknown style, an unwritable output.

    The message is one line that names the file or style and the reason.
    """


#: The name fst is published under on the package index, where "fst" is another project; the import
#: name and the command stay ``fst``.
DISTRIBUTION = "fst-style"


def install_hint(extra: str) -> str:
    """The pip command that installs one of fst's extras."""
    return f'pip install "{DISTRIBUTION}[{extra}]"'
