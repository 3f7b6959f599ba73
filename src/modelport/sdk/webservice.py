"""``Webservice`` (and its ``LocalWebservice``/``AksWebservice`` faces): a deployed, running model.

``Model.deploy`` records the service's desired state in the workspace; the control plane
makes it run. ``wait_for_deployment`` follows it to ``Healthy`` (or ``Failed`` with the reason).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from ..errors import InvalidInput, ModelportError
from .deploy_config import DeploymentConfig, aks_deploy_configuration, local_deploy_configuration

TERMINAL = ("Healthy", "Failed", "Unhealthy")


class WebserviceError(ModelportError):
    """A deployment ended in Failed, or a call to the service failed."""


class Webservice:
    """A deployed service, used like ``azureml.core.Webservice``: ``Webservice(ws, "name")``."""

    def __init__(self, workspace, name: str, _view: dict | None = None):
        self.workspace = workspace
        self.name = name
        self._load(_view or workspace._client.json("GET", f"/services/{name}"))

    def _load(self, view: dict) -> None:
        self._view = view
        self.state: str = view["state"]
        self.error: str | None = view.get("error")
        self.scoring_uri: str | None = view.get("scoring_uri")
        self.swagger_uri: str | None = view.get("swagger_uri")
        self.models: list[str] = view.get("models", [])
        self.compute_type = "AKS" if view.get("deploy", {}).get("compute_type", "aks").lower() != "local" else "Local"

    @staticmethod
    def list(workspace, model_name: str | None = None, tags: list | None = None) -> list[Webservice]:
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
        return dict(self._view.get("deploy", {}).get("tags") or {})

    def update_deployment_state(self) -> None:
        self._load(self.workspace._client.json("GET", f"/services/{self.name}"))

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float | None = None) -> None:
        """Wait until the service is Healthy; raise WebserviceError with the reason if it failed."""
        from rich.console import Console

        console = Console(stderr=True)
        deadline = time.monotonic() + timeout_sec if timeout_sec else None
        last = None
        with console.status(f"deploying {self.name} ...") if show_output else _quiet() as status:
            while True:
                self.update_deployment_state()
                reason = self._view.get("status", {}).get("reason") or ""
                if show_output and (self.state, reason) != last:
                    status.update(f"{self.name}: {self.state} {reason.splitlines()[0] if reason else ''}")
                    last = (self.state, reason)
                if self.state in TERMINAL:
                    break
                if deadline and time.monotonic() > deadline:
                    raise WebserviceError(f"service {self.name} is still {self.state} after {timeout_sec} s: "
                                          f"{reason}; call wait_for_deployment again or check get_logs()")
                time.sleep(0.25)
        if show_output:
            console.print(f"{self.name}: {self.state}" + (f" — {self.scoring_uri}" if self.scoring_uri else ""))
        if self.state != "Healthy":
            raise WebserviceError(f"service {self.name} is {self.state}: {self.error}")

    def get_logs(self, num_lines: int = 5000, init: bool = False) -> str:
        return self.workspace._client.json("GET", f"/services/{self.name}/logs", params={"num_lines": num_lines})[
            "logs"]

    def get_keys(self) -> tuple[str, str]:
        keys = self.workspace._client.json("GET", f"/services/{self.name}/keys")
        return keys["primaryKey"], keys["secondaryKey"]

    def regen_key(self, key: str, set_key: str | None = None) -> None:
        """Regenerate (or set) the ``"Primary"`` or ``"Secondary"`` key; the old value stops working."""
        self.workspace._client.json("POST", f"/services/{self.name}/keys", json={"key_type": key, "set_key": set_key})

    def get_token(self) -> tuple[str, float]:
        """A JWT for token auth and the time (epoch seconds) to refresh it by."""
        token = self.workspace._client.json("GET", f"/services/{self.name}/token")
        return token["accessToken"], token["refreshAfter"]

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
            headers["Authorization"] = f"Bearer {self.get_token()[0]}"
        response = httpx.post(self.scoring_uri, content=body, headers=headers, timeout=None)
        try:
            result = response.json()
        except ValueError:
            result = response.text
        if response.status_code >= 400:
            message = result.get("message") if isinstance(result, dict) else result
            raise WebserviceError(f"service {self.name} answered {response.status_code}: {message}")
        return result

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

    def delete(self) -> None:
        self.workspace._client.json("DELETE", f"/services/{self.name}")

    def serialize(self) -> dict:
        return dict(self._view)

    def __repr__(self) -> str:
        return f"Webservice(workspace={self.workspace.name!r}, name={self.name!r}, state={self.state!r})"


class LocalWebservice(Webservice):
    """Azure ML's local deployment target; here every target runs on the local backend."""

    deploy_configuration = staticmethod(local_deploy_configuration)


class AksWebservice(Webservice):
    """Azure ML's AKS web service: with no deployment target it deploys to the local backend."""

    deploy_configuration = staticmethod(aks_deploy_configuration)


KubernetesWebservice = AksWebservice


def deploy(workspace, name: str, models: list, inference_config, deployment_config: DeploymentConfig | None = None,
           deployment_target=None, overwrite: bool = False, show_output: bool = False) -> Webservice:
    """``Model.deploy``: package the source, record the desired service, return it (Transitioning)."""
    if not models:
        raise InvalidInput("models must list at least one Model to deploy")
    config = deployment_config or aks_deploy_configuration()
    body = {"name": name, "models": [m.id for m in models], "overwrite": overwrite,
            "deploy": config.to_settings(), **_inference_body(workspace, inference_config)}
    service = Webservice(workspace, name, _view=workspace._client.json("POST", "/services", json=body))
    if show_output:
        service.wait_for_deployment(show_output=True)
    return service


def _inference_body(workspace, inference_config) -> dict:
    inference_config.validate()
    environment = inference_config.environment
    return {"entry_script": inference_config.entry_script, "snapshot": inference_config.package_source(workspace),
            "environment": environment._to_dict() if environment else None}


class _quiet:
    def __enter__(self):
        return self

    def update(self, *_args) -> None:
        pass

    def __exit__(self, *exc) -> bool:
        return False
