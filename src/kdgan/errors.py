"""The one exception type for user mistakes.

Anything the user can fix (a bad config field, a missing file, a wrong shape) raises
`UserError` with a single line that names the field or file and what would be valid.
The CLI catches it once, prints the line and exits with status 2.
"""


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit status 2."""
