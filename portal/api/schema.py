"""OpenAPI generation for every app's API, so the schema stays correct as apps add endpoints.

- Every operation also documents the error answers of the shared handler
  (``portal.api.exceptions``: ``{"error": ..., "detail": ...}``), so a client (and
  schemathesis) knows which statuses to expect without each view repeating them.
- Serializers nested in a view, as the house style writes them (``ReviewDecideApi.InputSerializer``),
  are named after their view (``ReviewDecideInput``) instead of all colliding as ``Input``.
- Choice sets that share a field name (``status``…) get names from their component
  (``PromotionRequestStatusEnum``) instead of hash suffixes and warnings.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import MutableMapping

from drf_spectacular import hooks
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import list_hash
from drf_spectacular.utils import OpenApiResponse
from inflection import camelize
from rest_framework import serializers


class ApiErrorSerializer(serializers.Serializer):
    """The body of every error answer; reuse it in ``@extend_schema(responses=...)``."""

    error = serializers.CharField(help_text="What went wrong, in one sentence.")
    detail = serializers.JSONField(allow_null=True, help_text="Specifics: field errors, allowed values…")


ErrorSerializer = ApiErrorSerializer

_DESCRIPTIONS = {
    "400": "Invalid input: `detail` names the fields and what was wrong.",
    "401": "Not signed in: send `Authorization: Token <key>` or a session cookie.",
    "403": "Signed in, but your role may not do this.",
    "404": "No such object (in the path, or one the body refers to).",
    "409": "The object's state does not allow this (e.g. already decided).",
    "429": "Too many requests: retry after the `Retry-After` header's seconds.",
}


class UsherAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the shared error responses and unique component names."""

    _ACTIONS = ("partial_update", "list", "retrieve", "create", "update", "destroy")

    def get_operation_id(self) -> str:
        # drf-spectacular leaves path parameters out of the id, so /things and /things/{name}
        # both become things_retrieve for plain APIViews; name the parameters to keep ids unique.
        operation_id = super().get_operation_id()
        params = re.findall(r"\{(\w+)\}", self.path)
        if not params:
            return operation_id
        action = next((a for a in self._ACTIONS if operation_id.endswith("_" + a)), None)
        if action is None:
            return f"{operation_id}_by_{'_'.join(params)}"
        return f"{operation_id[: -len(action) - 1]}_by_{'_'.join(params)}_{action}"

    def get_serializer_name(self, serializer, direction: str) -> str:
        cls = serializer.__class__
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            # A serializer nested in a view: prefix the view's name, without Api/View/Serializer.
            view = re.sub(r"(Api|APIView|View|ViewSet)$", "", outer.split(".")[-1])
            return view + re.sub(r"Serializer$", "", inner)
        return super().get_serializer_name(serializer, direction)

    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "403", "429"]
        writes = self.method not in ("GET", "HEAD", "OPTIONS")
        if "{" in self.path or writes:
            codes.append("404")  # the object in the path, or one the body refers to
        if writes:
            codes.append("409")
        return codes

    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[code]), code, direction=direction
                )
        return responses


_enum_lock = threading.Lock()


def _enum_hash(schema: dict) -> str:
    # Same identity drf-spectacular uses for a choice set.
    if "x-spec-enum-id" in schema:
        return schema["x-spec-enum-id"]
    return list_hash([(i, i) for i in schema["enum"] if i not in ("", None)])


def _enum_properties(schemas: dict):
    """(component, property, schema) for every enum property, as drf-spectacular walks them."""

    def walk(node, component):
        if isinstance(node, list):
            for item in node:
                yield from walk(item, component)
        elif isinstance(node, dict):
            for prop, prop_schema in (node.get("properties") or {}).items():
                if isinstance(prop_schema, MutableMapping) and prop_schema.get("type") == "array":
                    prop_schema = prop_schema.get("items")
                if isinstance(prop_schema, MutableMapping) and "enum" in prop_schema:
                    yield component, prop, prop_schema
            for key in ("oneOf", "allOf", "anyOf"):
                yield from walk(node.get(key, []), component)

    for name, schema in schemas.items():
        component = re.sub(r"^Patched(.+)", r"\1", name)
        component = re.sub(r"(.+)Request$", r"\1", component)
        yield from walk(schema, component)


def postprocess_schema_enums(result: dict, generator, **kwargs) -> dict:
    """drf-spectacular's enum hook, with names chosen for the choice sets it would otherwise
    name by hash (a field name shared by several choice sets) or name twice (one choice set
    under several field names). ENUM_NAME_OVERRIDES in settings still win."""
    schemas = result.get("components", {}).get("schemas", {})
    uses: dict[str, set[tuple[str, str]]] = defaultdict(set)
    sets_by_prop: dict[str, set[str]] = defaultdict(set)
    for component, prop, schema in _enum_properties(schemas):
        digest = _enum_hash(schema)
        uses[digest].add((component, prop))
        sets_by_prop[prop].add(digest)
    names: dict[str, str] = {}
    taken: set[str] = set()
    for digest in sorted(uses, key=lambda d: sorted(uses[d])):
        props = {prop for _, prop in uses[digest]}
        if len(props) == 1 and len(sets_by_prop[next(iter(props))]) == 1:
            continue  # drf-spectacular names it after its one field: no collision
        prop = min(props, key=lambda p: (len(p), p))
        if len(sets_by_prop[prop]) == 1:
            name = f"{camelize(prop)}Enum"
        else:
            component = min((c for c, p in uses[digest] if p == prop), key=lambda c: (len(c), c))
            name = f"{camelize(component)}{camelize(prop)}Enum"
        base, n = name, 2
        while name in taken:
            name, n = f"{base[:-4]}{n}Enum", n + 1
        taken.add(name)
        names[digest] = name
    original = hooks.load_enum_name_overrides
    with _enum_lock:
        hooks.load_enum_name_overrides = lambda: {**names, **original()}
        try:
            return hooks.postprocess_schema_enums(result, generator, **kwargs)
        finally:
            hooks.load_enum_name_overrides = original
