"""The front end's own replies (auth failures, no replica, a replica that died) as JSON ``{"message": ...}``.

Envoy answers these itself (``local_reply_config`` of the listener's HTTP connection manager): each
response mapper picks a reply by status and response flag, and its message says the cause with what
Envoy knows of it: the version's cluster (``%UPSTREAM_CLUSTER%``, named ``<service>_<version>``), the
replica's address (``%UPSTREAM_HOST%``), how many connection attempts were made. Every 503 carries
``Retry-After`` (the mapper's ``headers_to_add``), as the runtime's own 503 for a full queue does
(``runtime.run_pool``). Issue 10's failure modes 6 and 7.
"""

from __future__ import annotations

from typing import Any

AUTH_KIND_HEADER = "x-modelport-auth"  # set per route before the auth filters; tells the 401 mapper what to ask for
RETRY_AFTER_HEADER = "retry-after"
# Seconds a client should wait before retrying, per cause (RFC 9110 Retry-After, delay-seconds):
NO_REPLICA_RETRY_AFTER_S = 10  # a replica starting or replacing one takes seconds to minutes (image, init())
UNREACHABLE_RETRY_AFTER_S = 2  # refused connections: the replica is being replaced (config.EJECTION_S)
UPDATING_RETRY_AFTER_S = 2  # a version's cluster is missing only while a change is applied
OVERLOADED_RETRY_AFTER_S = 1  # the front end's own queue is full: it drains at the replicas' pace


def local_reply_config() -> dict[str, Any]:
    """Envoy's own replies as JSON ``{"message": ...}``: auth failures, no replica, a replica that died."""
    needs_key = ("service %ROUTE_NAME% needs a key: send 'Authorization: Bearer <key>' with its primary or "
                 "secondary key")
    wrong_key = ("service %ROUTE_NAME% did not accept the key in the Authorization header: send its current primary "
                 "or secondary key (get_keys(), or modelport service keys); a regenerated key replaces the old one")
    needs_token = ("service %ROUTE_NAME% needs a token: send 'Authorization: Bearer <token>' with a valid token "
                   "for this service (%LOCAL_REPLY_BODY%)")
    state = "modelport service show -n %ROUTE_NAME%"
    return {
        "mappers": [
            _mapper(wrong_key, 401, status=401, auth_kind="key", credential_sent=True),
            _mapper(needs_key, 401, status=401, auth_kind="key"),
            _mapper(needs_token, 401, status=401, auth_kind="token"),
            _mapper(needs_token, 401, status=403, auth_kind="token"),  # a token for another service
            _mapper("no service at %REQ(:PATH):200%: scoring URLs look like /api/v1/service/<name>/score",
                    404, flags=["NR"]),
            _mapper(f"service %ROUTE_NAME% has no ready replica: 0 ready replicas for the version its request was "
                    f"routed to (cluster %UPSTREAM_CLUSTER%); it is starting, being updated, or its replicas "
                    f"failed ({state} says which); retry after {NO_REPLICA_RETRY_AFTER_S} s",
                    503, flags=["UH"], retry_after_s=NO_REPLICA_RETRY_AFTER_S),
            _mapper(f"service %ROUTE_NAME% is being updated: the version its request was routed to is not in the "
                    f"front end yet; retry after {UPDATING_RETRY_AFTER_S} s",
                    503, flags=["NC"], retry_after_s=UPDATING_RETRY_AFTER_S),
            _mapper(f"service %ROUTE_NAME% has no reachable replica: every replica of version cluster "
                    f"%UPSTREAM_CLUSTER% refused the connection (%UPSTREAM_REQUEST_ATTEMPT_COUNT% attempt(s)); they "
                    f"are restarting or being replaced ({state}); retry after {UNREACHABLE_RETRY_AFTER_S} s",
                    503, flags=["UF"], retry_after_s=UNREACHABLE_RETRY_AFTER_S),
            _mapper(f"service %ROUTE_NAME% is overloaded: the front end's limit of requests waiting for version "
                    f"cluster %UPSTREAM_CLUSTER% is reached; retry after {OVERLOADED_RETRY_AFTER_S} s, or raise its "
                    "replica count",
                    503, flags=["UO"], retry_after_s=OVERLOADED_RETRY_AFTER_S),
            _mapper(f"the replica of service %ROUTE_NAME% at %UPSTREAM_HOST% (version cluster %UPSTREAM_CLUSTER%) "
                    f"closed the connection before answering: it may have crashed or been killed for running out of "
                    f"memory; {state} names the cause, and its log the last lines before; retry the request",
                    502, flags=["UC", "UR", "LR"]),
            _mapper("service %ROUTE_NAME% did not answer in time", 504, flags=["UT"]),
        ],
        "body_format": {"json_format": {"message": "%LOCAL_REPLY_BODY%"}},
    }


def _mapper(message: str, code: int, *, status: int | None = None, auth_kind: str | None = None,
            credential_sent: bool = False, flags: list[str] | None = None,
            retry_after_s: int | None = None) -> dict[str, Any]:
    """One response mapper: the reply ``code`` with ``message`` for local replies matching every filter given
    (original ``status``, the route's auth kind, a credential sent, one of the response ``flags``);
    ``retry_after_s``: seconds to send in ``Retry-After``."""
    filters: list[dict[str, Any]] = []
    if status is not None:
        filters.append({"status_code_filter": {"comparison": {
            "op": "EQ", "value": {"default_value": status, "runtime_key": f"modelport.reply.{status}"}}}})
    if auth_kind is not None:
        filters.append({"header_filter": {"header": {"name": AUTH_KIND_HEADER,
                                                     "string_match": {"exact": auth_kind}}}})
    if credential_sent:
        filters.append({"header_filter": {"header": {"name": "authorization", "present_match": True}}})
    if flags is not None:
        filters.append({"response_flag_filter": {"flags": flags}})
    match = filters[0] if len(filters) == 1 else {"and_filter": {"filters": filters}}
    mapper: dict[str, Any] = {"filter": match, "status_code": code,
                              "body_format_override": {"json_format": {"message": message}}}
    if retry_after_s is not None:
        mapper["headers_to_add"] = [{"header": {"key": RETRY_AFTER_HEADER, "value": str(retry_after_s)},
                                     "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]
    return mapper
