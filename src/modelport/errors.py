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


class Forbidden(ModelportError):
    """The caller is known but the request is refused: a Studio change without its CSRF token, or from
    another site."""

    status = 403
    code = "Forbidden"


class MethodNotAllowed(ModelportError):
    """The path exists, but not with this HTTP method: the ``Allow`` header lists the methods it has."""

    status = 405
    code = "MethodNotAllowed"


class ServerUnavailable(ModelportError):
    """The control plane, or the workspace database behind it, could not be reached or used."""

    status = 503
    code = "ServerUnavailable"


class ClusterError(ModelportError):
    """A request to an attached Kubernetes cluster's API failed (unreachable, TLS, 401, 403, or refused); the
    control plane answers 502: the cluster behind it failed. ``backends.kubernetes.cluster`` raises its kinds."""

    status = 502
    code = "ClusterError"


class WebserviceException(ModelportError):
    """Azure ML's ``azureml.exceptions.WebserviceException``, for SDK users: the SDK's errors about web services (a
    service that does not exist, a deployment that ended Failed, a call the service or control plane refused) are
    instances of it, so Azure's ``try: Webservice(ws, name) except WebserviceException:`` keeps working; each stays
    an instance of the modelport class it is otherwise (``NotFound``, ``InvalidInput``, ...).

    ``message`` and ``status_code`` as Azure's: the HTTP status of the failed call, None when there was none.
    """

    _kinds: dict[type, type] = {}  # a modelport error class -> its class that is also a WebserviceException

    def __init__(self, exception_message: str, status_code: int | None = None):
        super().__init__(exception_message)
        self.status_code = status_code

    @property
    def message(self) -> str:
        return str(self)

    @classmethod
    def of(cls, error: ModelportError) -> "WebserviceException":
        """``error`` as a WebserviceException of a class deriving from both its own class and this one (the same
        object when it is one already); ``status_code`` is the HTTP status its class stands for."""
        if isinstance(error, WebserviceException):
            return error
        kind = type(error)
        if kind not in cls._kinds:
            cls._kinds[kind] = cls if issubclass(cls, kind) else type(f"Webservice{kind.__name__}", (kind, cls),
                                                                        {"__module__": __name__})
        return cls._kinds[kind](str(error), status_code=kind.status)


BY_CODE = {cls.code: cls for cls in (ModelportError, InvalidInput, NotFound, Conflict, Unauthorized, MethodNotAllowed,
                                     ServerUnavailable, ClusterError)}
# the cluster error kinds reach the SDK and CLI as ClusterError, with the same message
BY_CODE.update(dict.fromkeys(("ClusterUnreachable", "ClusterTLSError", "ClusterUnauthorized", "ClusterForbidden",
                              "ClusterApiError"), ClusterError))
