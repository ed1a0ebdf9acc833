"""Routing settings, the arms endpoint and the admin route in process (TestClient)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from churnscale.config import Settings
from churnscale.exceptions import ConfigError
from churnscale.serving.app import create_app
from churnscale.serving.deployment import routing_from_settings

ADMIN = "admin-key-0123456789abcdef00"


def test_routing_comes_from_the_model_inline_json_or_a_file(tmp_path: Path) -> None:
    single = routing_from_settings(Settings(model="churn@champion"))
    assert [(a.name, a.model) for a in single.arms] == [("default", "churn@champion")]
    inline = routing_from_settings(
        Settings(routing='{"arms": [{"name": "a", "model": "churn/1", "weight": 1}]}')
    )
    assert inline.arms[0].model == "churn/1"
    path = tmp_path / "routing.yaml"
    path.write_text("arms:\n  - {name: b, model: churn/2, weight: 2}\nshadow: churn/3\n")
    assert routing_from_settings(Settings(routing=str(path))).shadow == "churn/3"
    with pytest.raises(ConfigError, match="CHURNSCALE_ROUTING: expected valid JSON"):
        routing_from_settings(Settings(routing="{not json"))
    with pytest.raises(ConfigError, match="CHURNSCALE_ROUTING: arms: expected List should have"):
        routing_from_settings(Settings(routing='{"arms": []}'))


def test_arms_endpoint_and_admin_route(bundle: Path, tmp_path: Path) -> None:
    settings = Settings(model=str(bundle), admin_api_keys=ADMIN, home=tmp_path)
    with TestClient(create_app(settings)) as client:
        arms = client.post("/v1/arms", json={"customer_ids": ["C1", "C2"]})
        assert arms.status_code == 200
        assert arms.json()["arms"] == ["default", "default"]
        assert arms.headers["x-model-arm"] == "default"
        bad = client.post("/v1/arms", json={"ids": []})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "customer_ids"]
        assert client.post("/admin/reload").status_code == 401
        auth = {"Authorization": f"Bearer {ADMIN}"}
        unchanged = client.post("/admin/reload", headers=auth)
        assert unchanged.status_code == 200 and unchanged.json()["status"] == "unchanged"
        wrong = client.post("/admin/reload", json={"arm": "nope", "model": "churn/2"}, headers=auth)
        assert wrong.status_code == 400
        assert "no arm 'nope'" in wrong.json()["detail"]
        typo = client.post("/admin/reload", json={"modle": "churn/2"}, headers=auth)
        assert typo.status_code == 422
        assert typo.json()["detail"][0]["loc"] == ["body", "modle"]
