"""The public Python API, shaped like Azure ML v1's ``azureml.core``."""
