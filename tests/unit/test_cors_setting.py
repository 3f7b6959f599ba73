"""The ``cors_origins`` deployment setting (modelport's own): SDK parameter, ``corsOrigins`` file key, CLI flag."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from modelport.cli.deploy_flags import CommaList
from modelport.cli.main import cli
from modelport.errors import InvalidInput
from modelport.sdk.deploy_config import DeploymentConfig, aks_deploy_configuration


def test_origins_from_the_sdk_and_the_file_are_the_same_setting():
    from_sdk = aks_deploy_configuration(cors_origins=["https://app.example.com", "*"])
    from_file = DeploymentConfig.from_json_dict({"computeType": "aks",
                                                 "corsOrigins": ["https://app.example.com", "*"]})
    assert from_sdk.cors_origins == from_file.cors_origins == ["https://app.example.com", "*"]
    assert from_sdk.to_json_dict()["corsOrigins"] == ["https://app.example.com", "*"]


def test_a_host_without_a_scheme_is_refused_with_the_fix():
    with pytest.raises(InvalidInput, match=r"cors_origins \(corsOrigins\) entry 'app.example.com' is not an origin; "
                                           r"use 'scheme://host\[:port\]'"):
        aks_deploy_configuration(cors_origins=["app.example.com"])


def test_the_deploy_flag_takes_a_comma_separated_list():
    assert CommaList().convert("https://a.example.com, http://localhost:3000,", None, None) == [
        "https://a.example.com", "http://localhost:3000"]
    assert "--cors-origins" in CliRunner().invoke(cli, ["model", "deploy", "--help"]).output
