"""kubernetes-validate, with each schema file read once per process instead of once per object.

`kubernetes_validate.validate` opens and parses the kind's schema and the version's 5 MB
`_definitions.json` on every call (kubernetes_validate/utils.py `schema_contents`), and lists the
schema directory twice (`all_versions`): three quarters of its time. Importing this module
memoizes those two functions of kubernetes-validate's own module, so every caller in the process
(tests that import `kubernetes_validate` directly included) validates exactly as before, with the
same schemas and the same validator, and only the reading is done once. A schema that is missing
still raises on every call (functools.cache keeps no exceptions).

`jsonschema_validate(instance, schema)` is `jsonschema.validate` for the CRD schemas the suites
hold (ExternalSecret, Gatekeeper): that checks the schema against its metaschema on every call,
nearly all of its time; here each distinct schema is checked and compiled once per process.

    from tests.kubernetes_schema import validate   # kubernetes_validate.validate, schemas read once
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils

if not hasattr(utils.schema_contents, "cache_info"):
    # Read-only afterwards: referencing.Resource and jsonschema validators never change the schema.
    utils.schema_contents = functools.cache(utils.schema_contents)
    utils.all_versions = functools.cache(utils.all_versions)

validate = kubernetes_validate.validate
ValidationError = kubernetes_validate.ValidationError


def jsonschema_validate(instance: Any, schema: dict[str, Any]) -> None:
    """`jsonschema.validate(instance, schema)`: the same validator class, schema check and error."""
    error = jsonschema.exceptions.best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(instance))
    if error is not None:
        raise error


@functools.cache
def _validator(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)
