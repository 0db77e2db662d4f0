"""The OpenAPI 3 description of the daemon's HTTP API, served at ``/api/openapi.json``.

Kept next to the routes (:mod:`.api`) and checked by the e2e test, which
calls every path listed here.
"""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/responses/Error"}
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "hex of the torrent's wire info-hash (40 characters)",
    "schema": {"type": "string", "pattern": "^[0-9a-f]{40}$"},
}


def _ok(description: str, schema: dict[str, Any], code: str = "200") -> dict[str, Any]:
    return {
        code: {"description": description, "content": {"application/json": {"schema": schema}}},
        "400": _ERROR,
        "401": _ERROR,
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_IDENTITY = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z2-7]{55}$"},
        "name": {"type": "string", "nullable": True},
        "addresses": {"type": "array", "items": {"type": "string"}},
    },
}
_TORRENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "info_hash_v1": {"type": "string", "nullable": True},
        "info_hash_v2": {"type": "string", "nullable": True},
        "state": {
            "type": "string",
            "enum": [
                "checking",
                "metadata",
                "downloading",
                "seeding",
                "paused",
                "error",
                "stalled",
            ],
        },
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "size": {"type": "integer"},
        "have_bytes": {"type": "integer"},
        "download_rate": {"type": "number", "description": "bytes per second"},
        "upload_rate": {"type": "number"},
        "peers": {"type": "integer"},
        "eta": {"type": "number", "nullable": True, "description": "seconds"},
        "paused": {"type": "boolean"},
        "save_path": {"type": "string"},
        "added_at": {"type": "number"},
        "magnet": {"type": "string", "nullable": True},
        "error": {
            "type": "string",
            "nullable": True,
            "description": "why the torrent stopped (state 'error'), else null",
        },
        "downloaded": {"type": "integer", "description": "payload bytes received this run"},
        "uploaded": {"type": "integer", "description": "payload bytes sent this run"},
        "trackers": {"type": "integer", "description": "tracker URLs the torrent names"},
    },
}
_ADDED = {
    "allOf": [
        _TORRENT,
        {
            "type": "object",
            "properties": {
                "existing": {
                    "type": "boolean",
                    "description": "the node had this torrent already (HTTP 200, not 201)",
                }
            },
        },
    ]
}
_FILE = {
    "type": "object",
    "properties": {
        "index": {"type": "integer"},
        "path": {"type": "string"},
        "size": {"type": "integer"},
        "priority": {"type": "integer", "minimum": 0, "maximum": 7},
        "progress": {"type": "number"},
    },
}
_PEER = {
    "type": "object",
    "properties": {
        "host": {"type": "string"},
        "port": {"type": "integer"},
        "client": {"type": "string"},
        "progress": {"type": "number"},
        "download_rate": {"type": "number"},
        "upload_rate": {"type": "number"},
        "flags": {"type": "string"},
    },
}
_STATUS = {
    "type": "object",
    "properties": {
        "listen_address": {"type": "array", "nullable": True},
        "dht_enabled": {"type": "boolean"},
        "dht_nodes": {"type": "integer"},
        "dht_address": {"type": "array", "nullable": True},
        "torrents": {"type": "integer"},
        "download_rate": {"type": "number"},
        "upload_rate": {"type": "number"},
        "downloaded": {
            "type": "integer",
            "description": "payload bytes received since the node started (removed torrents too)",
        },
        "uploaded": {"type": "integer", "description": "payload bytes sent since it started"},
        "all_time_downloaded": {
            "type": "integer",
            "description": "payload bytes received since the data directory was first used",
        },
        "all_time_uploaded": {"type": "integer"},
        "shared_folders": {"type": "array", "items": {"type": "string"}},
        "data_dir": {"type": "string"},
        "download_dir": {"type": "string"},
        "reachable": {
            "type": "boolean",
            "nullable": True,
            "description": "peers outside can dial this node (null: not known yet)",
        },
        "external_address": {"type": "array", "nullable": True},
        "nat": {"type": "string", "enum": ["none", "mapped", "cone", "symmetric", "unknown"]},
        "relay": {"type": "array", "nullable": True},
        "version": {"type": "string"},
    },
}
_SHARE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "path": {"type": "string"},
        "magnet": {"type": "string", "description": "with x.pe when with_peer was asked"},
        "existing": {"type": "boolean", "description": "the path was shared already"},
    },
}
_SETTINGS = {"type": "object", "additionalProperties": True}
_LIMITS = {
    "type": "object",
    "properties": {
        "download_rate_limit": {"type": "integer", "minimum": 0},
        "upload_rate_limit": {"type": "integer", "minimum": 0},
    },
}


_STREAM = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "description": "/stream/{token}/{id}/{file}/{name}"},
        "path": {"type": "string"},
        "file": {"type": "integer"},
        "name": {"type": "string"},
        "size": {"type": "integer"},
        "content_type": {"type": "string"},
    },
}


_REMOVED = {
    "type": "object",
    "description": "data_deleted is false, with the reason, when nothing was deleted: "
    "only files servent downloaded are ever deleted, never a share's or pre-existing files",
    "properties": {
        "removed": {"type": "string"},
        "data_deleted": {"type": "boolean"},
        "reason": {"type": "string", "nullable": True},
        "deleted_files": {"type": "integer"},
        "kept_files": {"type": "integer"},
    },
}


def openapi_document(version: str) -> dict[str, Any]:
    """The whole document (a fresh dict each call)."""
    torrent_ops = {
        "get": {
            "summary": "One torrent",
            "parameters": [_ID],
            "responses": {**_ok("status", _ref("Torrent")), "404": _ERROR},
        },
        "delete": {
            "summary": "Remove a torrent",
            "parameters": [
                _ID,
                {"name": "delete_data", "in": "query", "schema": {"type": "boolean"}},
            ],
            "responses": {**_ok("removed", _REMOVED), "404": _ERROR},
        },
    }
    paths: dict[str, Any] = {
        "/api/openapi.json": {
            "get": {"summary": "This document", "responses": _ok("OpenAPI 3", {"type": "object"})}
        },
        "/api/status": {
            "get": {"summary": "Node status", "responses": _ok("status", _ref("NodeStatus"))}
        },
        "/api/identity": {
            "get": {
                "summary": "This node's ID (base32 Ed25519 key), display name and addresses",
                "responses": _ok("identity", _IDENTITY),
            }
        },
        "/api/torrents": {
            "get": {"summary": "All torrents", "responses": _ok("list", _array("Torrent"))},
            "post": {
                "summary": "Add a torrent: magnet, base64 .torrent, or a path on the daemon host",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "magnet": {"type": "string"},
                                    "torrent": {"type": "string", "format": "byte"},
                                    "path": {"type": "string"},
                                    "save_path": {"type": "string"},
                                    "peers": {
                                        "type": "array",
                                        "items": {"type": "string"},
                                        "maxItems": 200,
                                        "description": "HOST:PORT or [IPv6]:PORT to dial "
                                        "(raw .torrent bodies: repeat the 'peer' query)",
                                    },
                                },
                            }
                        },
                        "application/x-bittorrent": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                    },
                },
                "responses": {
                    **_ok("added", _ref("Added"), "201"),
                    **_ok("already present", _ref("Added")),
                },
            },
        },
        "/api/torrents/{id}": torrent_ops,
        "/api/torrents/{id}/pause": {
            "post": {
                "summary": "Pause",
                "parameters": [_ID],
                "responses": {**_ok("paused", _ref("Torrent")), "404": _ERROR},
            }
        },
        "/api/torrents/{id}/resume": {
            "post": {
                "summary": "Resume",
                "parameters": [_ID],
                "responses": {**_ok("resumed", _ref("Torrent")), "404": _ERROR},
            }
        },
        "/api/torrents/{id}/files": {
            "get": {
                "summary": "Files with priorities",
                "parameters": [_ID],
                "responses": {**_ok("files", _array("File")), "404": _ERROR},
            }
        },
        "/api/torrents/{id}/priorities": {
            "put": {
                "summary": "Set file priorities (0 skip, 1 normal .. 7 highest)",
                "parameters": [_ID],
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "properties": {
                            "priorities": {
                                "oneOf": [
                                    {"type": "array", "items": {"type": "integer"}},
                                    {"type": "object", "additionalProperties": {"type": "integer"}},
                                ]
                            }
                        },
                    }
                ),
                "responses": {**_ok("files", _array("File")), "404": _ERROR},
            }
        },
        "/api/torrents/{id}/peers": {
            "get": {
                "summary": "Connected peers",
                "parameters": [_ID],
                "responses": {**_ok("peers", _array("Peer")), "404": _ERROR},
            }
        },
        "/api/torrents/{id}/stream": {
            "post": {
                "summary": "A URL that streams one file (default: the largest media file) "
                "while it downloads; GET it with Range, no API token (it carries its own)",
                "parameters": [_ID],
                "requestBody": _json_body(
                    {"type": "object", "properties": {"file": {"type": "integer"}}}
                ),
                "responses": {**_ok("stream", _STREAM), "404": _ERROR},
            }
        },
        "/api/torrents/{id}/limits": {
            "put": {
                "summary": "Per-torrent rate limits (bytes/s, 0 unlimited)",
                "parameters": [_ID],
                "requestBody": _json_body(_LIMITS),
                "responses": {**_ok("torrent", _ref("Torrent")), "404": _ERROR},
            }
        },
        "/api/settings": {
            "get": {"summary": "Node settings", "responses": _ok("settings", _SETTINGS)},
            "patch": {
                "summary": "Change limits (at once) or listen_port and encryption (next start)",
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "properties": {
                            **_LIMITS["properties"],  # type: ignore[dict-item]
                            "max_connections": {"type": "integer", "minimum": 1},
                            "max_peers_per_torrent": {"type": "integer", "minimum": 1},
                            "listen_port": {"type": "integer", "minimum": 0, "maximum": 65535},
                            "encryption": {
                                "type": "string",
                                "enum": ["off", "enabled", "required"],
                            },
                        },
                    }
                ),
                "responses": _ok("settings, with restart_required", _SETTINGS),
            },
        },
        "/api/shares": {
            "get": {"summary": "Shared folders", "responses": _ok("list", {"type": "array"})},
            "post": {
                "summary": "Share a folder or a file (hybrid torrent, seeded, remembered)",
                "requestBody": _json_body(
                    {
                        "type": "object",
                        "properties": {
                            "path": {"type": "string"},
                            "with_peer": {
                                "oneOf": [{"type": "boolean"}, {"type": "string"}],
                                "description": "true: put this node's address in the magnet "
                                "as x.pe; or the HOST:PORT to put there",
                            },
                        },
                    }
                ),
                "responses": {
                    **_ok("shared", _ref("Share"), "201"),
                    **_ok("already shared", _ref("Share")),
                },
            },
        },
        "/api/events": {
            "get": {
                "summary": "Server-sent events: node events and a 'torrents' snapshot each second",
                "responses": {
                    "200": {
                        "description": "event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "401": _ERROR,
                },
            }
        },
    }
    from servent.daemon.messages_api import message_paths

    paths.update(message_paths())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "servent daemon API",
            "version": version,
            "description": "Control a servent node. Every request needs "
            "'Authorization: Bearer <token>'; the token is in the file 'api-token' "
            "of the node's data directory.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Torrent": _TORRENT,
                "Added": _ADDED,
                "File": _FILE,
                "Peer": _PEER,
                "NodeStatus": _STATUS,
                "Share": _SHARE,
            },
            "responses": {
                "Error": {
                    "description": "a clear error message",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"error": {"type": "string"}},
                                "required": ["error"],
                            }
                        }
                    },
                }
            },
        },
    }
