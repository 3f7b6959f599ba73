"""Errors a user can cause. Each message is one line: what was wrong and what to do.

The control plane API turns them into HTTP statuses (``status``) and the SDK and CLI
turn those back into the same classes, so a user sees one message wherever it arose.
"""


class ModelportError(Exception):
    """Base class: the message says what was wrong and how to fix it."""

    status = 400
    code = "BadRequest"


class InvalidInput(ModelportError):
    """A name, file, path or value the user gave cannot be used (over HTTP also: a request that does not match
    the API's schema); the message names it and the rule."""

    code = "InvalidInput"


class NotFound(ModelportError):
    """The model, environment, snapshot, service, blob or route named does not exist in this workspace."""

    status = 404
    code = "NotFound"


class Conflict(ModelportError):
    """The thing exists already, or is in use, or another operation holds it."""

    status = 409
    code = "Conflict"


class Unauthorized(ModelportError):
    """The workspace token is missing or wrong."""

    status = 401
    code = "Unauthorized"


class MethodNotAllowed(ModelportError):
    """The path exists, but not with this HTTP method: the ``Allow`` header lists the methods it has."""

    status = 405
    code = "MethodNotAllowed"


class ServerUnavailable(ModelportError):
    """The control plane, or the workspace database behind it, could not be reached or used."""

    status = 503
    code = "ServerUnavailable"


BY_CODE = {cls.code: cls for cls in (ModelportError, InvalidInput, NotFound, Conflict, Unauthorized, MethodNotAllowed,
                                     ServerUnavailable)}
