"""/docs is usable as the reference: every operation says what it takes and every error it returns."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

WRITES = {"post", "put", "patch", "delete"}


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in WRITES | {"get"}
    ]


def test_every_api_operation_documents_its_body_answers_and_errors(stack: httpx.Client) -> None:
    schema = stack.get("/openapi.json").json()
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "request_id", "violations"} <= problem["properties"].keys()

    checked = 0
    for path, method, operation in operations(schema):
        if not path.startswith("/api/"):
            continue
        checked += 1
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), f"{where} has no summary"
        if method in {"post", "put", "patch"} and not path.endswith("/rotate"):  # rotate takes no body
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body.get("properties") or body.get("$ref"), f"{where} documents no body"
        errors = {code for code in operation["responses"] if code.startswith(("4", "5"))}
        assert errors, f"{where} documents no error"
        for code in errors:
            content = operation["responses"][code].get("content", {})
            assert any(media.get("schema", {}).get("$ref", "").endswith("/Problem") for media in content.values()), (
                f"{where} {code} is not described as a Problem"
            )
    assert checked >= 11


def test_the_change_set_body_has_an_example(stack: httpx.Client) -> None:
    schema = stack.get("/openapi.json").json()
    body = schema["paths"]["/api/v2/zones/{zone}/changes"]["post"]["requestBody"]["content"]["application/json"]
    change_set = schema["components"]["schemas"][body["schema"]["$ref"].rsplit("/", 1)[1]]

    assert change_set["examples"][0]["changes"][0]["op"] == "upsert"
    assert schema["components"]["schemas"]["ChangeIn"]["properties"]["op"]["enum"] == [
        "create",
        "upsert",
        "delete",
        "add",
        "remove",
    ]


def test_the_answers_a_client_reads_have_examples(stack: httpx.Client) -> None:
    components = stack.get("/openapi.json").json()["components"]["schemas"]

    for model in ("RecordPublic", "RequestAccepted", "RequestPublic", "Plan", "ZoneCreate", "Problem"):
        schema = components[model]
        has_example = bool(schema.get("examples")) or all(
            "examples" in field for name, field in schema["properties"].items() if name not in ("request_id",)
        )
        assert has_example, f"{model} shows no example"
