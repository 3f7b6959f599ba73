"""The operations users perform, shared by the HTTP routes (and so the CLI, the SDK and Studio).

``endpoints``: deploy, update and delete web services and endpoints, their versions and traffic
(promote, rollback), keys, tokens and logs.
"""
