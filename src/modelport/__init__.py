"""modelport: deploy Azure ML v1 style models (score.py with init()/run()) as web services.

The public API (``from modelport import Workspace, Model, Environment, InferenceConfig``)
is imported lazily: replicas import ``modelport.runtime`` inside a model's own environment,
which has the runtime's few dependencies and none of the SDK's.
"""

__version__ = "0.1.0"

_PUBLIC = {
    "Workspace": "modelport.sdk.workspace",
    "Model": "modelport.sdk.model",
    "Environment": "modelport.sdk.environment",
    "CondaDependencies": "modelport.sdk.environment",
    "InferenceConfig": "modelport.sdk.inference_config",
    "Webservice": "modelport.sdk.webservice",
    "LocalWebservice": "modelport.sdk.webservice",
    "AciWebservice": "modelport.sdk.webservice",
    "AksWebservice": "modelport.sdk.webservice",
    "KubernetesWebservice": "modelport.sdk.webservice",
    "AksEndpoint": "modelport.sdk.endpoint",
    "Endpoint": "modelport.sdk.endpoint",
    "ConfigWarning": "modelport.sdk.files",
    "AksServiceAccessToken": "modelport.sdk.webservice",
    "ComputeTarget": "modelport.sdk.compute",
    "KubernetesCompute": "modelport.sdk.compute",
    "AksCompute": "modelport.sdk.compute",
    "ClusterPurpose": "modelport.sdk.compute",
    "ComputeTargetWarning": "modelport.sdk.compute",
    "WebserviceException": "modelport.errors",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'modelport' has no attribute {name!r}")
