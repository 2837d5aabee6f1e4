"""A validator for the part of JSON Schema that ``assistants.api.schema`` uses: type (one or a
list), properties, required, additionalProperties: false, items, enum, allOf and local $ref."""


def validate(instance, schema: dict, document: dict, where: str = "$") -> list[str]:
    """The ways ``instance`` breaks ``schema`` (refs resolved in ``document``); empty when valid."""
    if "$ref" in schema:
        node = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return validate(instance, node, document, where)
    errors = []
    for parent in schema.get("allOf", []):
        errors += validate(instance, parent, document, where)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(instance, kind) for kind in types):
            return errors + [f"{where}: {instance!r:.60} is not {' or '.join(types)}"]
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{where}: {instance!r} not in {schema['enum']}")
    if isinstance(instance, dict):
        errors += [f"{where}: missing {name}" for name in schema.get("required", []) if name not in instance]
        properties = schema.get("properties", {})
        for name, value in instance.items():
            if name in properties:
                errors += validate(value, properties[name], document, f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected {name}")
    if isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            errors += validate(item, schema["items"], document, f"{where}[{index}]")
    return errors


def _is(instance, kind: str) -> bool:
    return {
        "object": isinstance(instance, dict),
        "array": isinstance(instance, list),
        "string": isinstance(instance, str),
        "integer": isinstance(instance, int) and not isinstance(instance, bool),
        "number": isinstance(instance, (int, float)) and not isinstance(instance, bool),
        "boolean": isinstance(instance, bool),
        "null": instance is None,
    }[kind]
