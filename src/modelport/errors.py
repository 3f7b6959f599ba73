"""Errors a user can cause. Each message is one line: what was wrong and what to do.

The control plane API turns them into HTTP statuses (``status``) and the SDK and CLI
turn those back into the same classes, so a user sees one message wherever it arose.
"""


class ModelportError(Exception):
    """Base class: the message says what was wrong and how to fix it."""

    status = 400
    code = "BadRequest"


class InvalidInput(ModelportError):
    """A name, file, path or value the user gave cannot be used."""

    code = "InvalidInput"


class NotFound(ModelportError):
    status = 404
    code = "NotFound"


class Conflict(ModelportError):
    """The thing exists already, or is in use, or another operation holds it."""

    status = 409
    code = "Conflict"


class Unauthorized(ModelportError):
    status = 401
    code = "Unauthorized"


class ServerUnavailable(ModelportError):
    """The control plane could not be reached or started."""

    status = 503
    code = "ServerUnavailable"


BY_CODE = {cls.code: cls for cls in (ModelportError, InvalidInput, NotFound, Conflict, Unauthorized, ServerUnavailable)}
