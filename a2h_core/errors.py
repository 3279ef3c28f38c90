"""Exceptions and warnings a user of Audio2Head can act on."""


class Audio2HeadError(ValueError):
    """A problem with the user's input, weights or settings; the message names the problem and the fix."""


class A2HWarning(UserWarning):
    """Something was repaired or looks unusual, but generation can go on."""
