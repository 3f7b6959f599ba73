"""modelport shim of ``azureml.exceptions``: the exception classes entry scripts import and catch.

Azure's hierarchy as far as it matters inside a service: every class derives from
``AzureMLException`` (an ``Exception`` with ``message`` and ``inner_exception``);
``AuthenticationException`` derives from ``UserErrorException``; ``WebserviceException``
carries ``status_code``. ``Model.get_model_path`` of the ``azureml.core`` shim raises these.
A real ``azureml-core`` install always takes precedence over this module.
"""

from __future__ import annotations

import contextlib
import sys
import traceback


class AzureMLException(Exception):
    """Base class of all azureml exceptions."""

    def __init__(self, exception_message, inner_exception=None, **kwargs):
        Exception.__init__(self, exception_message)
        self._exception_message = exception_message
        self._inner_exception = inner_exception
        self._exc_info = sys.exc_info()

    @property
    def message(self):
        return self._exception_message

    @property
    def inner_exception(self):
        return self._inner_exception

    def print_stacktrace(self):
        traceback.print_exception(*self._exc_info)


class _LoggedException(AzureMLException):
    """Azure's exceptions that take ``logger=`` write their message to it when raised."""

    def __init__(self, exception_message, logger=None, **kwargs):
        super().__init__(exception_message, **kwargs)
        if logger is not None:
            with contextlib.suppress(Exception):
                logger.error(f"{exception_message}\n")


class UserErrorException(AzureMLException):
    """Invalid or unsupported input: a missing parameter, an entity that does not exist, a wrong type."""


class AuthenticationException(UserErrorException):
    """Authentication failed."""


class WebserviceException(_LoggedException):
    """A failure around model management or a web service; ``status_code`` when an HTTP call failed."""

    def __init__(self, exception_message, status_code=None, logger=None, **kwargs):
        super().__init__(exception_message, logger=logger, **kwargs)
        self.status_code = status_code


class ModelNotFoundException(_LoggedException):
    """A model of that name (and version) is not there."""


class ModelPathNotFoundException(_LoggedException):
    """Model files are missing."""


class WorkspaceException(AzureMLException):
    """Creating or getting a workspace failed."""

    def __init__(self, exception_message, found_multiple=False, **kwargs):
        super().__init__(exception_message, **kwargs)
        self.found_multiple = found_multiple


class ComputeTargetException(AzureMLException):
    """Creating, attaching or configuring a compute target failed."""


class RunConfigurationException(AzureMLException):
    """A run configuration cannot be found or (de)serialized."""


class TrainingException(AzureMLException):
    """Configuring, running or updating a training run failed."""


class ExperimentExecutionException(AzureMLException):
    """Configuring or submitting an experiment run failed."""


class ProjectSystemException(AzureMLException):
    """Reading or setting up the source directory failed."""


class SnapshotException(AzureMLException):
    """Taking a snapshot of a project failed."""


__all__ = [
    "AzureMLException", "UserErrorException", "AuthenticationException", "WebserviceException",
    "ModelNotFoundException", "ModelPathNotFoundException", "WorkspaceException", "ComputeTargetException",
    "RunConfigurationException", "TrainingException", "ExperimentExecutionException", "ProjectSystemException",
    "SnapshotException",
]
