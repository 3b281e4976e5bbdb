"""The one error type that the command line turns into a single line and a non-zero exit."""


class ProverError(Exception):
    """A user-facing error: bad input, a malformed file, a refused move. The message is one line
    that says what is wrong and where (a path, a byte offset, a game id)."""
