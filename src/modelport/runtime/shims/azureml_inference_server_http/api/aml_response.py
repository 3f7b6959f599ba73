"""modelport shim of ``azureml_inference_server_http.api.aml_response``: ``AMLResponse``.

The class lives in ``modelport.runtime.aml_http``, shared by every import path.
"""

from modelport.runtime.aml_http import AMLResponse

__all__ = ["AMLResponse"]
