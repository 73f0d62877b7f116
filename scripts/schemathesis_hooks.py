"""Schemathesis hooks for Waybill: the few request rules JSON Schema cannot state.

Every other rule Waybill enforces is in openapi.json itself. These are documented in
docs/API.md and enforced by the server; here they only keep generated request bodies within
them, so that a schema-valid body that breaks one is not counted as wrongly refused:

- the ids of the lines in one order, one fulfillment or one return are unique (JSON Schema's
  uniqueItems compares whole items, not one field of them);
- the fulfillments embedded in an OrderProtection order name that order's items, within their
  quantities (one field's values referring to another's);
- an automation's templates compile (template syntax starts with "{{", "{%" or "{#").

`filter_body` runs in the phases that generate with Hypothesis, `filter_case` in the coverage
phase.
"""

import schemathesis

# Lists of lines and the field that names each line, per dialect.
LINE_LISTS = {
    "lineItems": "id",  # Redo orders and fulfillments
    "orderItems": "sourceItemId",  # OrderProtection orders
    "sourceItemIds": "sourceItemId",  # OrderProtection fulfillments
    "items": "lineItemId",  # Redo returns (under "data")
}

TEMPLATE_OPENERS = ("{{", "{%", "{#")


def _unique_line_ids(body):
    if not isinstance(body, dict):
        return True
    for key, id_field in LINE_LISTS.items():
        lines = body.get(key)
        if isinstance(lines, list):
            ids = [line.get(id_field) for line in lines if isinstance(line, dict)]
            ids = [i for i in ids if isinstance(i, (str, int))]
            if len(ids) != len(set(map(str, ids))):
                return False
    if isinstance(body.get("data"), dict) and not _unique_line_ids(body["data"]):
        return False
    fulfillments = body.get("fulfillments")
    if isinstance(fulfillments, list):
        return all(_unique_line_ids(f) for f in fulfillments)
    return True


def _templates_compile(body):
    automation = body.get("automation") if isinstance(body, dict) else None
    action = automation.get("action") if isinstance(automation, dict) else None
    if not isinstance(action, dict):
        return True
    for field in ("subject", "body"):
        text = action.get(field)
        if isinstance(text, str) and any(o in text for o in TEMPLATE_OPENERS):
            return False
    return True


def _embedded_fulfillments_fit(body):
    if not isinstance(body, dict):
        return True
    items = body.get("orderItems")
    fulfillments = body.get("fulfillments")
    if not isinstance(items, list) or not isinstance(fulfillments, list):
        return True
    left = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("quantity"), (int, float)):
            left[str(item.get("sourceItemId"))] = item["quantity"]
    for fulfillment in fulfillments:
        lines = fulfillment.get("sourceItemIds") if isinstance(fulfillment, dict) else None
        for line in lines if isinstance(lines, list) else []:
            if not isinstance(line, dict):
                continue
            key = str(line.get("sourceItemId"))
            quantity = line.get("quantity")
            if key not in left or not isinstance(quantity, (int, float)):
                return False
            left[key] -= quantity
            if left[key] < 0:
                return False
    return True


def _within_rules(body):
    return _unique_line_ids(body) and _embedded_fulfillments_fit(body) and _templates_compile(body)


@schemathesis.hook
def filter_body(context, body):
    return _within_rules(body)


@schemathesis.hook
def filter_case(context, case):
    return _within_rules(case.body)
