"""The scoring runtime: the server that runs inside every replica of every deployment.

It serves an Azure ML v1 entry script (``score.py`` with ``init()`` and ``run()``)
with the HTTP contract of ``azureml-inference-server-http`` (see
``shared/contract/reference-server-transcripts.txt``), plus liveness/readiness
probes, a body limit, a scoring timeout, bounded concurrency and Prometheus metrics.
"""
