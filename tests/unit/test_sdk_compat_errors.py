"""``WebserviceException`` (Azure ML's class name) for SDK users: every modelport error class, raised about a web
service, is also one, keeping its own class, code and HTTP status."""

from __future__ import annotations

import pytest

import modelport
from modelport.errors import BY_CODE, ModelportError, WebserviceException
from modelport.sdk.webservice import WebserviceError


@pytest.mark.parametrize("kind", sorted(BY_CODE.values(), key=lambda kind: kind.__name__), ids=lambda k: k.__name__)
def test_each_error_class_becomes_a_webservice_exception_of_its_own_class(kind):
    error = WebserviceException.of(kind("service 'x' not found; check the name"))
    assert isinstance(error, kind) and isinstance(error, WebserviceException)
    assert (error.message, error.status_code, error.code) == ("service 'x' not found; check the name", kind.status,
                                                              kind.code)
    assert type(WebserviceException.of(kind("again"))) is type(error)  # one class per modelport class


def test_failed_deployments_and_refused_calls_are_webservice_exceptions():
    assert issubclass(WebserviceError, WebserviceException) and issubclass(WebserviceError, ModelportError)
    assert WebserviceError("service x is Failed: init() raised").status_code is None
    already = WebserviceError("answered 502", status_code=502)
    assert WebserviceException.of(already) is already


def test_the_sdk_exports_it_by_azures_name():
    assert modelport.WebserviceException is WebserviceException
