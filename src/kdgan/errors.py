"""The one exception type for user mistakes.

Anything the user can fix (a bad config field, a missing file, a wrong shape) raises
`UserError` with a single line that names the field or file and what would be valid.
The CLI catches it once, prints the line and exits with status 2.
"""


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit status 2."""


class TrainingStopped(Exception):
    """Training ended early for a reason the user must know (divergence, a signal): printed
    as one line with `exit_code`. Whatever checkpoint it names is complete."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
