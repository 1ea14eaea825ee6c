"""OpenAPI text of the partner-facing (MOU) operations: the ``partners`` tag and examples.

Partners read these in the gateway's OpenAPI document; docs/partner-api.md walks through
them with curl and httpx.
"""

from __future__ import annotations

from typing import Any, Final

PARTNER_TAG: Final = "partners"

PARTNER_TAG_METADATA: Final[dict[str, Any]] = {
    "name": PARTNER_TAG,
    "description": (
        "For agencies calling under an MOU (IACP D.2). Get a token with the OAuth2 "
        "client-credentials grant (`POST /v1/auth/token`, `grant_type=client_credentials`). "
        "Every request states a purpose the MOU covers; searches also a case number and a "
        "time range within the MOU's lookback. Answers carrying data are marked "
        "`X-LPR-Marking: FOUO` (and `marking` in the body), images are watermarked with your "
        "agency, and each answer is written to the owner's dissemination log. Requests "
        "outside the MOU are refused with a problem naming the `rule` (`mou-purpose`, "
        "`mou-lookback`, `mou-data-class`, `mou-expired`, `mou-not-in-force`); going over "
        "your rate limit gets 429 with `Retry-After`. See docs/partner-api.md."
    ),
}

_PROBLEM_EXAMPLES: Final[dict[str, Any]] = {
    "purpose outside the MOU": {
        "value": {
            "type": "https://lpr.example.org/problems/policy-denied",
            "title": "Refused by policy",
            "status": 403,
            "detail": "purpose 'wanted_person' is outside MOU 5b0c…",
            "rule": "mou-purpose",
            "clause": "D.2",
        }
    },
    "lookback beyond the MOU": {
        "value": {
            "type": "https://lpr.example.org/problems/policy-denied",
            "title": "Refused by policy",
            "status": 403,
            "detail": "lookback of 45 days exceeds the MOU's 30 days",
            "rule": "mou-lookback",
            "clause": "D.2",
        }
    },
}

_REFUSALS: Final[dict[str, Any]] = {
    "403": {
        "description": "Outside the MOU; `rule` names the rule",
        "content": {"application/problem+json": {"examples": _PROBLEM_EXAMPLES}},
    },
    "429": {
        "description": "Over the partner's rate limit; retry after `Retry-After` seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}

_MARKED: Final[dict[str, Any]] = {
    "X-LPR-Marking": {"description": "Always `FOUO`", "schema": {"type": "string"}},
    "X-LPR-Result-Count": {"schema": {"type": "integer"}},
}

_PURPOSE_HEADER: Final[dict[str, Any]] = {
    "name": "X-LPR-Purpose",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "example": "stolen_vehicle",
}

_SEARCH_BODY: Final[dict[str, Any]] = {
    "purpose": "stolen_vehicle",
    "case_number": "PD-2026-000123",
    "plate": "7ABC123",
    "match": "exact",
    "time_range": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-29T00:00:00Z"},
    "area": {"center": {"latitude": 38.5816, "longitude": -121.4944}, "radius_m": 2000},
    "limit": 50,
}

_SEARCH_ANSWER: Final[dict[str, Any]] = {
    "marking": "FOUO",
    "purpose": "stolen_vehicle",
    "case_number": "PD-2026-000123",
    "count": 1,
    "limit": 50,
    "next_cursor": None,
    "results": [
        {
            "read_id": "3f7c1a52-5d7e-4a7e-9a43-0b8e1f2c9d10",
            "plate_index": 0,
            "plate": "7ABC123",
            "state": "CA",
            "confidence": 0.93,
            "source": "recognition",
            "captured_at": "2026-11-20T14:03:11Z",
            "latitude": 38.5816,
            "longitude": -121.4944,
            "heading": 90.0,
            "camera_id": "0b1e…",
            "deployment_id": "9d2c…",
            "agency": "CA0010000",
            "match": "exact",
            "substitutions": None,
            "links": {
                "read": "/v1/reads/3f7c1a52-5d7e-4a7e-9a43-0b8e1f2c9d10",
                "image": "/v1/reads/3f7c1a52-5d7e-4a7e-9a43-0b8e1f2c9d10/image",
                "crop": "/v1/reads/3f7c1a52-5d7e-4a7e-9a43-0b8e1f2c9d10/plates/0/crop",
            },
        }
    ],
}

PARTNER_OPENAPI: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("POST", "/v1/reads/search"): {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object"},
                    "examples": {
                        "exact plate near a place": {"value": _SEARCH_BODY},
                        "partial plate": {
                            "value": {**_SEARCH_BODY, "plate": "7AB?12*", "match": "pattern"}
                        },
                        "OCR-equivalent plate": {
                            "value": {**_SEARCH_BODY, "plate": "7A8C1Z3", "match": "ocr_equivalent"}
                        },
                    },
                }
            },
        },
        "responses": {
            "200": {
                "description": "A page of reads, newest first (follow `next_cursor`)",
                "headers": _MARKED,
                "content": {"application/json": {"example": _SEARCH_ANSWER}},
            },
            "422": {"description": "Bad input; `errors` names each field"},
            **_REFUSALS,
        },
    },
    ("GET", "/v1/reads/{read_id}"): {
        "parameters": [_PURPOSE_HEADER],
        "responses": {"200": {"description": "The read", "headers": _MARKED}, **_REFUSALS},
    },
    ("GET", "/v1/reads/{read_id}/image"): {
        "parameters": [_PURPOSE_HEADER],
        "responses": {
            "200": {
                "description": "The image, watermarked `FOUO — <your agency>` (MOU must cover images)",
                "headers": _MARKED,
                "content": {"image/jpeg": {}},
            },
            **_REFUSALS,
        },
    },
    ("GET", "/v1/reads/{read_id}/plates/{index}/crop"): {
        "parameters": [_PURPOSE_HEADER],
        "responses": {
            "200": {
                "description": "The plate crop, watermarked (MOU must cover images)",
                "headers": _MARKED,
                "content": {"image/jpeg": {}},
            },
            **_REFUSALS,
        },
    },
    ("GET", "/v1/hits"): {
        "parameters": [
            _PURPOSE_HEADER,
            {
                "name": "plate",
                "in": "query",
                "required": True,
                "schema": {"type": "string"},
                "example": "7ABC123",
            },
            {
                "name": "since",
                "in": "query",
                "required": True,
                "description": "ISO 8601 time with offset; the MOU's lookback bounds it (D.2)",
                "schema": {"type": "string", "format": "date-time"},
                "example": "2026-11-22T00:00:00Z",
            },
        ],
        "responses": {
            "200": {"description": "Hot-list hits for the plate", "headers": _MARKED},
            **_REFUSALS,
        },
    },
}
"""OpenAPI additions per partner operation (merged into the generated operation)."""
