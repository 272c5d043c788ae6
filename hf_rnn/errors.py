"""The base class of the errors hf_rnn raises for what a user can fix (a recipe, data, a model folder, the Hub):
`hf-rnn` prints their message as one line, `hf-rnn <command>: error: ...`, and exits with status 2."""


class HfRnnError(Exception):
    """A problem the user can fix; the message says what and how."""
