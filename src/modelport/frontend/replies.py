"""The front end's own replies (auth failures, no replica, a replica that died) as JSON ``{"message": ...}``."""

from __future__ import annotations

from typing import Any

AUTH_KIND_HEADER = "x-modelport-auth"  # set per route before the auth filters; tells the 401 mapper what to ask for


def local_reply_config() -> dict[str, Any]:
    """Envoy's own replies as JSON ``{"message": ...}``: auth failures, no replica, a replica that died."""
    needs_key = ("service %ROUTE_NAME% needs a key: send 'Authorization: Bearer <key>' with its primary or "
                 "secondary key")
    wrong_key = ("service %ROUTE_NAME% did not accept the key in the Authorization header: send its current primary "
                 "or secondary key (get_keys(), or modelport service keys); a regenerated key replaces the old one")
    needs_token = ("service %ROUTE_NAME% needs a token: send 'Authorization: Bearer <token>' with a valid token "
                   "for this service (%LOCAL_REPLY_BODY%)")
    return {
        "mappers": [
            _mapper(wrong_key, 401, status=401, auth_kind="key", credential_sent=True),
            _mapper(needs_key, 401, status=401, auth_kind="key"),
            _mapper(needs_token, 401, status=401, auth_kind="token"),
            _mapper(needs_token, 401, status=403, auth_kind="token"),  # a token for another service
            _mapper("no service at %REQ(:PATH):200%: scoring URLs look like /api/v1/service/<name>/score",
                    404, flags=["NR"]),
            _mapper("service %ROUTE_NAME% has no ready replica: it is starting, or its replicas failed (see "
                    "modelport service show -n %ROUTE_NAME%)", 503, flags=["UH", "NC"]),
            _mapper("service %ROUTE_NAME% has no reachable replica: every replica refused the connection",
                    503, flags=["UF"]),
            _mapper("service %ROUTE_NAME% is overloaded: too many requests waiting, try again later",
                    503, flags=["UO"]),
            _mapper("the replica of service %ROUTE_NAME% closed the connection before answering (it may have "
                    "crashed); retry the request", 502, flags=["UC", "UR", "LR"]),
            _mapper("service %ROUTE_NAME% did not answer in time", 504, flags=["UT"]),
        ],
        "body_format": {"json_format": {"message": "%LOCAL_REPLY_BODY%"}},
    }


def _mapper(message: str, code: int, *, status: int | None = None, auth_kind: str | None = None,
            credential_sent: bool = False, flags: list[str] | None = None) -> dict[str, Any]:
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
    return {"filter": match, "status_code": code, "body_format_override": {"json_format": {"message": message}}}
