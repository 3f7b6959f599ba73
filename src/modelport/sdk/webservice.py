"""``Webservice`` (and its ``LocalWebservice``/``AksWebservice`` faces): a deployed, running model.

``Model.deploy`` records the service's desired state in the workspace; the control plane
makes it run. ``wait_for_deployment`` follows it to ``Healthy`` (or ``Failed`` with the reason).
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from ..errors import InvalidInput, ModelportError, WebserviceException
from .compute import LOCAL, ComputeTarget, compute_target_name
from .deploy_config import LOCAL as LOCAL_TYPE
from .deploy_config import DeploymentConfig, aks_deploy_configuration
from .deploy_config_files import aci_deploy_configuration, local_deploy_configuration
from .progress import BUILD_LOG_LINES, BuildLog, DeployProgress, one_line

TERMINAL = ("Healthy", "Failed", "Unhealthy")


class WebserviceError(WebserviceException):
    """A deployment ended in Failed, or a call to the service failed (Azure ML's WebserviceException)."""


def _webservice_errors(function):
    """Raise ``function``'s ModelportErrors as Azure ML's WebserviceException too (``WebserviceException.of``:
    a NotFound stays a NotFound), so ``except WebserviceException`` catches what Azure ML's SDK raised."""

    @functools.wraps(function)
    def calling(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ModelportError as error:
            if isinstance(error, WebserviceException):
                raise
            raise WebserviceException.of(error).with_traceback(error.__traceback__) from None

    return calling


@dataclass(frozen=True)
class AksServiceAccessToken:
    """A service's token, as Azure ML's ``AksServiceAccessToken`` (what ``get_access_token()`` returns).

    ``refresh_after`` and ``expiry_on`` are naive ``datetime`` objects in local time, as Azure ML builds them
    (``datetime.fromtimestamp`` of the service's epoch seconds); ``token_type`` is ``"Bearer"``. Send it as
    ``Authorization: Bearer <access_token>``; fetch a new one after ``refresh_after``.
    """

    access_token: str
    token_type: str
    refresh_after: datetime
    expiry_on: datetime

    @staticmethod
    def deserialize(payload: dict) -> AksServiceAccessToken:
        """From the control plane's (and Azure ML's) payload: ``accessToken``, ``tokenType``, ``refreshAfter``
        and ``expiryOn`` (epoch seconds)."""
        return AksServiceAccessToken(payload["accessToken"], payload["tokenType"],
                                     datetime.fromtimestamp(payload["refreshAfter"]),
                                     datetime.fromtimestamp(payload["expiryOn"]))

    def serialize(self) -> dict:
        """Azure ML's keys, the times as ISO 8601 local times."""
        return {"accessToken": self.access_token, "tokenType": self.token_type,
                "refreshAfter": self.refresh_after.isoformat(), "expiryOn": self.expiry_on.isoformat()}


class Webservice:
    """A deployed service, used like ``azureml.core.Webservice``: ``Webservice(ws, "name")``."""

    @_webservice_errors
    def __new__(cls, workspace, name: str, _view: dict | None = None):
        """``Webservice(ws, name)``: the object's class follows what the service is, as Azure ML's did (an
        endpoint's is ``AksEndpoint``, whichever class is called: ``endpoint.service_class``)."""
        from .endpoint import service_class

        view = _view or workspace._client.json("GET", f"/services/{name}")
        service = super().__new__(service_class(cls, view))
        service.workspace = workspace
        service.name = name
        service._load(view)
        return service

    def _load(self, view: dict) -> None:
        self._view = view
        self.state: str = view["state"]
        self.error: str | None = view.get("error")
        self.scoring_uri: str | None = view.get("scoring_uri")
        self.swagger_uri: str | None = view.get("swagger_uri")
        self.models: list[str] = view.get("models", [])
        self.compute_type = "AKS" if view.get("deploy", {}).get("compute_type", "aks").lower() != "local" else "Local"

    @staticmethod
    @_webservice_errors
    def list(workspace, model_name: str | None = None, tags: list | None = None) -> list[Webservice]:
        """The workspace's services, filtered as Azure ML's: by a model name they use, ``tags=["k", ["k", "v"]]``."""
        views = workspace._client.json("GET", "/services")
        services = [Webservice(workspace, v["name"], _view=v) for v in views]
        if model_name:
            services = [s for s in services if any(m.split(":")[0] == model_name for m in s.models)]
        for tag in tags or []:
            key, value = (tag, None) if isinstance(tag, str) else tag
            services = [s for s in services if key in s.tags and (value is None or s.tags[key] == value)]
        return services

    @property
    def tags(self) -> dict:
        """The service's tags (from its deployment configuration)."""
        return dict(self._view.get("deploy", {}).get("tags") or {})

    @_webservice_errors
    def update_deployment_state(self) -> None:
        """Refresh ``state``, ``error`` and the URIs from the control plane."""
        self._load(self.workspace._client.json("GET", f"/services/{self.name}"))

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float | None = None) -> None:
        """Wait until the service is Healthy, as Azure ML's: ``timeout_sec`` seconds at most (default: no limit).

        ``show_output=True`` reports progress on stderr: a live status line on a terminal; elsewhere (CI logs,
        pipes) one plain line per change of state or reason with the seconds waited, and no escape codes; and, as
        Azure ML streamed its image build, the lines the build log (``get_logs(init=True)``: the environment's or
        image's build) gains meanwhile, each after ``progress.BUILD_LOG_PREFIX``.
        Raises WebserviceError when the service ends Failed or Unhealthy (with the reason) or the time is up.
        """
        deadline = time.monotonic() + timeout_sec if timeout_sec else None
        build_log = BuildLog(lambda: self.get_logs(BUILD_LOG_LINES, init=True)) if show_output else None
        with DeployProgress(self.name, show_output) as progress:
            while True:
                self.update_deployment_state()
                reason = self._view.get("status", {}).get("reason") or ""
                if build_log is not None and self.state not in TERMINAL:
                    progress.lines(build_log.new_lines())
                if self.state in TERMINAL:
                    progress.finish(self.state, self.scoring_uri if self.state == "Healthy" else one_line(reason))
                    break
                progress.update(self.state, reason)
                if deadline and time.monotonic() > deadline:
                    raise WebserviceError(f"service {self.name} is still {self.state} after {timeout_sec} s: "
                                          f"{one_line(reason)}; call wait_for_deployment again or check get_logs()")
                time.sleep(0.25)
        if self.state != "Healthy":
            raise WebserviceError(f"service {self.name} is {self.state}: {self.error}")

    @_webservice_errors
    def get_logs(self, num_lines: int = 5000, init: bool = False) -> str:
        """The last ``num_lines`` lines of the serving version's replica logs; ``init=True`` (Azure ML's init
        container logs): of what ran before the replicas started, the environment's build (local) or the image's
        build (Kubernetes)."""
        params = {"num_lines": num_lines, **({"init": "true"} if init else {})}
        return self.workspace._client.json("GET", f"/services/{self.name}/logs", params=params)["logs"]

    @_webservice_errors
    def get_keys(self) -> tuple[str, str]:
        """``(primary, secondary)`` of a key-auth service; InvalidInput for a token-auth or no-auth service."""
        keys = self.workspace._client.json("GET", f"/services/{self.name}/keys")
        return keys["primaryKey"], keys["secondaryKey"]

    @_webservice_errors
    def regen_key(self, key: str, set_key: str | None = None) -> None:
        """Regenerate (or set) the ``"Primary"`` or ``"Secondary"`` key; the old value stops working."""
        self.workspace._client.json("POST", f"/services/{self.name}/keys", json={"key_type": key, "set_key": set_key})

    @_webservice_errors
    def get_access_token(self) -> AksServiceAccessToken:
        """A token for a token-auth service (InvalidInput for key or no auth), as Azure ML's ``get_access_token``."""
        return AksServiceAccessToken.deserialize(self.workspace._client.json("GET", f"/services/{self.name}/token"))

    def get_token(self) -> tuple[str, datetime]:
        """Azure ML's older form of ``get_access_token``: ``(token, refresh_after)``, a naive local ``datetime``."""
        token = self.get_access_token()
        return token.access_token, token.refresh_after

    @_webservice_errors
    def run(self, input_data: Any) -> Any:
        """Score ``input_data`` (a JSON string or a JSON-able object) with the service's key or token."""
        if not self.scoring_uri:
            self.update_deployment_state()
        if not self.scoring_uri:
            raise WebserviceError(f"service {self.name} has no scoring URI yet (state {self.state})")
        body = input_data if isinstance(input_data, str | bytes) else json.dumps(input_data)
        headers = {"Content-Type": "application/json"}
        auth = self._view.get("auth", "key")
        if auth == "key":
            headers["Authorization"] = f"Bearer {self.get_keys()[0]}"
        elif auth == "token":
            headers["Authorization"] = f"Bearer {self.get_access_token().access_token}"
        response = httpx.post(self.scoring_uri, content=body, headers=headers, timeout=None)
        try:
            result = response.json()
        except ValueError:
            result = response.text
        if response.status_code >= 400:
            message = result.get("message") if isinstance(result, dict) else result
            raise WebserviceError(f"service {self.name} answered {response.status_code}: {message}",
                                  status_code=response.status_code)
        return result

    @_webservice_errors
    def update(self, models: list | None = None, inference_config=None, **settings: Any) -> None:
        """A rolling update: new replicas start and take over when ready; old ones then stop."""
        body: dict[str, Any] = {}
        if models is not None:
            body["models"] = [m.id for m in models]
        if inference_config is not None:
            body.update(_inference_body(self.workspace, inference_config))
        if settings:
            current = DeploymentConfig.from_settings(self._view["deploy"])
            body["deploy"] = current.updated(**settings).to_settings()
        self._load(self.workspace._client.json("PATCH", f"/services/{self.name}", json=body))

    @_webservice_errors
    def delete(self) -> None:
        """Delete the service; its replicas stop before this returns."""
        self.workspace._client.json("DELETE", f"/services/{self.name}")

    def serialize(self) -> dict:
        """The service as the control plane shows it (the whole ``error`` included, keys not)."""
        return dict(self._view)

    def __repr__(self) -> str:
        return f"Webservice(workspace={self.workspace.name!r}, name={self.name!r}, state={self.state!r})"


class LocalWebservice(Webservice):
    """Azure ML's local deployment target; here every target runs on the local backend."""

    deploy_configuration = staticmethod(local_deploy_configuration)


class AciWebservice(Webservice):
    """Azure ML's Container Instances web service: deployed here as a one-replica local service
    (``aci_deploy_configuration`` keeps Azure's parameters and says which ones have no local meaning)."""

    deploy_configuration = staticmethod(aci_deploy_configuration)


class AksWebservice(Webservice):
    """Azure ML's AKS web service: with no deployment target it deploys to the local backend."""

    deploy_configuration = staticmethod(aks_deploy_configuration)


KubernetesWebservice = AksWebservice


@_webservice_errors
def deploy(workspace, name: str, models: list, inference_config, deployment_config: DeploymentConfig | None = None,
           deployment_target=None, overwrite: bool = False, show_output: bool = False) -> Webservice:
    """``Model.deploy``: package the source, record the desired service, return it (Transitioning).

    ``deployment_target`` (a compute target or its name) and the config's ``compute_target_name`` must name an
    attached target (``ComputeTarget(workspace, name)`` raises NotFound naming them otherwise), the same one when
    both are given; None is ``local``. The service's ``compute_target`` records it.
    """
    if not models:
        raise InvalidInput("models must list at least one Model to deploy")
    config = deployment_config or aks_deploy_configuration()
    settings = config.to_settings()
    target = compute_target_name(deployment_target) if deployment_target is not None else None
    if target is not None and config.compute_target_name not in (None, target):
        raise InvalidInput(f"deployment_target {target!r} and the deployment config's compute_target_name "
                           f"{config.compute_target_name!r} differ; give one of them")
    target = target or config.compute_target_name
    if target is not None:
        ComputeTarget(workspace, target)  # NotFound naming the attached targets
    if target not in (None, LOCAL):
        if config.compute_type == LOCAL_TYPE:
            raise InvalidInput(f"a LocalWebservice runs on this machine, not on '{target}': deploy with "
                               "AksWebservice.deploy_configuration(...), or leave deployment_target out")
        settings["compute_target_name"] = target
    body = {"name": name, "models": [m.id for m in models], "overwrite": overwrite,
            "deploy": settings, **_inference_body(workspace, inference_config)}
    service = Webservice(workspace, name, _view=workspace._client.json("POST", "/services", json=body))
    if show_output:
        service.wait_for_deployment(show_output=True)
    return service


def _inference_body(workspace, inference_config) -> dict:
    inference_config.validate()
    environment = inference_config.environment
    source = inference_config.source_directory
    return {"entry_script": inference_config.entry_script, "snapshot": inference_config.package_source(workspace),
            "source_directory": inference_config.source_path.name if source is not None else None,
            "environment": environment._to_dict() if environment else None}
