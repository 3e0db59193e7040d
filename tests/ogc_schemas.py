"""JSON Schemas of the OGC API - Features Part 1 responses, written for these tests from
the standard (OGC 17-069r4, "OGC API - Features - Part 1: Core", requirements classes
Core and GeoJSON, and its OpenAPI schema components: landing page, conformance
declaration, collections, collection, extent, link, GeoJSON feature collection and
feature, numberMatched, numberReturned), and a check of the requirements that a schema
cannot express (/req/core/fc-links, /req/core/fc-next-1, /req/geojson/content).

Expressed as JSON Schema draft 2020-12, validated with jsonschema-rs.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs

LINK: dict[str, Any] = {
    "type": "object",
    "required": ["href", "rel"],
    "properties": {
        "href": {"type": "string"},
        "rel": {"type": "string"},
        "type": {"type": "string"},
        "hreflang": {"type": "string"},
        "title": {"type": "string"},
        "length": {"type": "integer"},
    },
}
LINKS = {"type": "array", "items": LINK}

LANDING_PAGE = {
    "type": "object",
    "required": ["links"],
    "properties": {"title": {"type": "string"}, "description": {"type": "string"}, "links": LINKS},
}
CONFORMANCE = {
    "type": "object",
    "required": ["conformsTo"],
    "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
}
BBOX = {
    "type": "array",
    "items": {"type": "number"},
    "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
}
EXTENT = {
    "type": "object",
    "properties": {
        "spatial": {
            "type": "object",
            "properties": {
                "bbox": {"type": "array", "minItems": 1, "items": BBOX},
                "crs": {
                    "type": "string",
                    "enum": [
                        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                        "http://www.opengis.net/def/crs/OGC/0/CRS84h",
                    ],
                },
            },
        },
        "temporal": {
            "type": "object",
            "properties": {
                "interval": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 2,
                        "items": {"type": ["string", "null"]},
                    },
                },
                "trs": {"type": "string"},
            },
        },
    },
}
COLLECTION = {
    "type": "object",
    "required": ["id", "links"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "links": LINKS,
        "extent": EXTENT,
        "itemType": {"type": "string"},
        "crs": {"type": "array", "items": {"type": "string"}},
    },
}
COLLECTIONS = {
    "type": "object",
    "required": ["links", "collections"],
    "properties": {"links": LINKS, "collections": {"type": "array", "items": COLLECTION}},
}
_POSITION = {"type": "array", "minItems": 2, "items": {"type": "number"}}
_RING = {"type": "array", "minItems": 4, "items": _POSITION}
GEOMETRY = {
    "oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {"type": {"const": "Point"}, "coordinates": _POSITION},
        },
        {
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {
                "type": {"const": "Polygon"},
                "coordinates": {"type": "array", "items": _RING},
            },
        },
        {
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {
                "type": {"const": "MultiPolygon"},
                "coordinates": {"type": "array", "items": {"type": "array", "items": _RING}},
            },
        },
    ]
}
FEATURE = {
    "type": "object",
    "required": ["type", "geometry", "properties"],
    "properties": {
        "type": {"const": "Feature"},
        "geometry": GEOMETRY,
        "properties": {"type": ["object", "null"]},
        "id": {"type": ["string", "integer"]},
        "links": LINKS,
    },
}
FEATURE_COLLECTION = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": FEATURE},
        "links": LINKS,
        "timeStamp": {"type": "string"},
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0},
    },
}

SCHEMAS = {
    "landing": LANDING_PAGE,
    "conformance": CONFORMANCE,
    "collections": COLLECTIONS,
    "collection": COLLECTION,
    "items": FEATURE_COLLECTION,
    "item": FEATURE,
}


def validate(kind: str, body: Any) -> None:
    """Raise ``AssertionError`` listing every way ``body`` breaks the schema of ``kind``."""
    validator = jsonschema_rs.Draft202012Validator(SCHEMAS[kind])
    problems = [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(body)
    ]
    assert not problems, f"{kind} does not validate: {problems}"


def check_landing_links(body: dict[str, Any]) -> None:
    """/req/core/root-success: links to the API definition, conformance and collections."""
    rels = {link["rel"] for link in body["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels, rels


def check_items_page(body: dict[str, Any], limit: int) -> None:
    """/req/core/fc-links, fc-limit-response-1, fc-numberReturned, fc-numberMatched."""
    rels = [link["rel"] for link in body["links"]]
    assert rels.count("self") == 1, rels
    assert len(body["features"]) <= limit
    assert body["numberReturned"] == len(body["features"])
    if "numberMatched" in body:
        assert body["numberMatched"] >= body["numberReturned"]
    for link in body["links"]:
        if link["rel"] == "next":
            assert link.get("type") == "application/geo+json"
