"""Azure ML v1 entry script for the quickstart's scikit-learn model (unchanged from an Azure ML deployment)."""

import os

import joblib
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))
    print("model loaded:", type(model).__name__)


@input_schema("data", NumpyParameterType(np.zeros((1, 30))))
@output_schema(StandardPythonParameterType([0]))
def run(data):
    return model.predict(data).tolist()
