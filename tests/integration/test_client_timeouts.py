"""A control plane that takes too long to answer is one line saying what to check, not an httpx traceback."""

from __future__ import annotations

import json
import socket

import pytest

from modelport.api import client as client_module
from modelport.api.client import Client
from modelport.api.workspace_dir import WorkspaceDir
from modelport.errors import ServerUnavailable


def test_a_control_plane_that_does_not_answer_in_time_is_one_line_saying_the_change_may_have_been_made(
        tmp_path, monkeypatch):
    workspace = WorkspaceDir.create("slowws", tmp_path)
    with socket.socket() as listener:  # accepts connections (its backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        host, port = listener.getsockname()
        config = json.loads(workspace.config_path.read_text())
        workspace.config_path.write_text(json.dumps({**config, "server_url": f"http://{host}:{port}"}))
        monkeypatch.setattr(client_module, "READ_TIMEOUT_S", 1.0)
        client = Client(workspace)
        with pytest.raises(ServerUnavailable) as raised:
            client.json("POST", "/services/slow/keys", json={"key_type": "Primary"})
        client.close()
    assert str(raised.value).startswith("the control plane of workspace 'slowws' did not answer POST "
                                        "/services/slow/keys within 1 s; the change may or may not have been made")
