"""OpenAPI: the token scheme, and the error shape documented on every operation."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "example": "invalid"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

ERROR_STATUSES = {
    "400": "Invalid input; details.fields lists each field's reasons.",
    "401": "Not authenticated.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "Unknown, or not visible to you.",
    "405": "This endpoint does not take this method.",
    "409": "Conflicts with the current state.",
    "410": "No longer usable (e.g. an invitation already accepted or expired).",
    "415": "Send JSON (application/json).",
    "422": "This Idempotency-Key was used for another request.",
    "429": "Too many requests; retry after the Retry-After header's delay.",
}


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (fbp_…) from /api/v1/me/tokens/.",
        }


# Statuses only some operations answer (they list them, without a body schema).
OCCASIONAL_STATUSES = ("402", "502")


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            takes_key = any(
                p.get("in") == "header" and p.get("name") == "Idempotency-Key"
                for p in operation.get("parameters", [])
            )
            for code in OCCASIONAL_STATUSES:
                if code in responses and "content" not in responses[code]:
                    responses[code]["content"] = {"application/json": {"schema": ref}}
            for code, description in ERROR_STATUSES.items():
                if code == "422" and not takes_key:
                    continue
                responses.setdefault(
                    code,
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    return result
