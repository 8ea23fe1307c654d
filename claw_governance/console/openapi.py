"""The console API's OpenAPI 3.1 document (served at ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any

_ERROR = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ERRORS = {
    "401": {**_ERROR, "description": "Not authenticated (no session, or a bad bearer token)"},
    "403": {**_ERROR, "description": "Not allowed for this escalation (approvers, scope, separation of duties, CSRF)"},
    "404": {**_ERROR, "description": "Unknown escalation"},
    "409": {**_ERROR, "description": "Already resolved or expired"},
    "422": {**_ERROR, "description": "Invalid input: missing notes, an edit the policy denies, a grant over max_grant"},
}
_ID = {"name": "escalation_id", "in": "path", "required": True, "schema": {"type": "string"}}
_ESC = {"application/json": {"schema": {"$ref": "#/components/schemas/Escalation"}}}
_CSRF = {
    "name": "X-CSRF-Token",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Required with a session cookie (the page's CSRF token); not with a bearer token.",
}


def openapi_document() -> dict[str, Any]:
    """The document, built fresh (small)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "claw-governance console API",
            "version": "1",
            "description": "Reviewers resolve escalations held by claw-governance. Authenticate with "
            "`Authorization: Bearer <reviewer token>` (from `claw-gov reviewer add`) or a "
            "console session. Errors are JSON with a one-line `detail`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/escalations": {
                "get": {
                    "summary": "Escalations, oldest first",
                    "operationId": "listEscalations",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "enum": ["pending", "approved", "denied", "expired", "all"],
                                "default": "pending",
                            },
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The escalations",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["escalations"],
                                        "properties": {
                                            "escalations": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Escalation"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "401": _ERRORS["401"],
                        "422": _ERRORS["422"],
                    },
                }
            },
            "/api/escalations/{escalation_id}": {
                "get": {
                    "summary": "One escalation",
                    "operationId": "getEscalation",
                    "parameters": [_ID],
                    "responses": {
                        "200": {"description": "The escalation", "content": _ESC},
                        "401": _ERRORS["401"],
                        "404": _ERRORS["404"],
                    },
                }
            },
            "/api/escalations/{escalation_id}/approve": {
                "post": {
                    "summary": "Approve (optionally with edited arguments, or for a time)",
                    "operationId": "approve",
                    "parameters": [_ID, _CSRF],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Approve"}}},
                    },
                    "responses": {"200": {"description": "Approved", "content": _ESC}, **_ERRORS},
                }
            },
            "/api/escalations/{escalation_id}/deny": {
                "post": {
                    "summary": "Deny (optionally with a message for the model: respond)",
                    "operationId": "deny",
                    "parameters": [_ID, _CSRF],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Deny"}}},
                    },
                    "responses": {"200": {"description": "Denied", "content": _ESC}, **_ERRORS},
                }
            },
            "/api/escalations/{escalation_id}/revoke-grant": {
                "post": {
                    "summary": "End an approval's grant early",
                    "operationId": "revokeGrant",
                    "parameters": [_ID, _CSRF],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["notes"],
                                    "properties": {"notes": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "responses": {"200": {"description": "Revoked"}, **_ERRORS},
                }
            },
            "/api/agents": {
                "get": {
                    "summary": "Agents with trust score and history",
                    "operationId": "listAgents",
                    "responses": {"200": {"description": "Agents"}, "401": _ERRORS["401"]},
                }
            },
            "/api/agents/{agent_id}/{action}": {
                "post": {
                    "summary": "Revoke or reinstate an agent (admin role)",
                    "operationId": "agentAction",
                    "parameters": [
                        {"name": "agent_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {
                            "name": "action",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": ["revoke", "reinstate"]},
                        },
                        _CSRF,
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["reason"],
                                    "properties": {"reason": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "responses": {"200": {"description": "Done"}, **_ERRORS},
                }
            },
            "/api/audit": {
                "get": {
                    "summary": "Audit entries (filters as `claw-gov audit query`)",
                    "operationId": "queryAudit",
                    "parameters": [
                        *(
                            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                            for n in ("agent_id", "type", "action", "outcome", "allowed", "since", "until", "limit")
                        ),
                        {
                            "name": "shadow",
                            "in": "query",
                            "required": False,
                            "description": "Only policy decisions that a `mode: shadow` rule would change "
                            "(`decision.shadow`): any of them, or one kind",
                            "schema": {
                                "type": "string",
                                "enum": ["any", "would_deny", "would_escalate", "would_allow"],
                            },
                        },
                    ],
                    "responses": {"200": {"description": "Entries"}, "401": _ERRORS["401"], "422": _ERRORS["422"]},
                }
            },
            "/api/audit/verify": {
                "get": {
                    "summary": "Verify the audit trail",
                    "operationId": "verifyAudit",
                    "responses": {"200": {"description": "Verification report"}, "401": _ERRORS["401"]},
                }
            },
            "/api/policy": {
                "get": {
                    "summary": "The policy in force",
                    "operationId": "getPolicy",
                    "responses": {"200": {"description": "Hash, files, rules"}, "401": _ERRORS["401"]},
                }
            },
            "/api/policy/replay": {
                "post": {
                    "summary": "Replay the recorded decisions against an uploaded candidate policy (admin role)",
                    "description": "The candidate is YAML text in the body, compiled in memory as `candidate.yaml` "
                    "(the server reads no path from a request). The answer is the JSON of `claw-gov policy replay "
                    "candidate.yaml --json`: every recorded decision in the period that would flip, grouped by "
                    "the candidate's deciding rule. Nothing is enforced.",
                    "operationId": "replayPolicy",
                    "parameters": [_CSRF],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReplayRequest"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "The flip report",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReplayReport"}}},
                        },
                        "401": _ERRORS["401"],
                        "403": {**_ERROR, "description": "Not an admin, or CSRF"},
                        "422": {**_ERROR, "description": "A candidate that does not parse (file:line), a bad period"},
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A reviewer API token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "claw_console_session"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}},
                "Approve": {
                    "type": "object",
                    "required": ["notes"],
                    "additionalProperties": False,
                    "properties": {
                        "notes": {"type": "string", "minLength": 1},
                        "args": {"type": "object", "description": "Edited arguments (decided by the policy again)"},
                        "for_seconds": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "description": "A standing grant for the same agent and action, up to the rule's max_grant",
                        },
                    },
                },
                "Deny": {
                    "type": "object",
                    "required": ["notes"],
                    "additionalProperties": False,
                    "properties": {
                        "notes": {"type": "string", "minLength": 1},
                        "message": {"type": "string", "description": "What the model is told (respond)"},
                    },
                },
                "ReplayRequest": {
                    "type": "object",
                    "required": ["policy", "from", "to"],
                    "additionalProperties": False,
                    "properties": {
                        "policy": {"type": "string", "minLength": 1, "description": "The candidate policy's YAML"},
                        "from": {"type": "string", "description": "First day (YYYY-MM-DD) or ISO timestamp, included"},
                        "to": {"type": "string", "description": "Last day (YYYY-MM-DD), included; or ISO, excluded"},
                        "agent_id": {"type": ["string", "null"], "description": "Only this agent's calls"},
                    },
                },
                "ReplayReport": {
                    "type": "object",
                    "required": ["candidate_policy_hash", "replayed", "skipped", "flips", "allow_deny_flips", "groups"],
                    "properties": {
                        "candidate_policy_hash": {"type": "string"},
                        "replayed": {"type": "integer"},
                        "skipped": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "flips": {"type": "integer"},
                        "allow_deny_flips": {"type": "integer"},
                        "groups": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["rule", "before", "after", "calls"],
                                "properties": {
                                    "rule": {"type": "string"},
                                    "before": {"$ref": "#/components/schemas/Outcome"},
                                    "after": {"$ref": "#/components/schemas/Outcome"},
                                    "calls": {"type": "integer"},
                                    "agents": {"type": "array", "items": {"type": "string"}},
                                    "first_seq": {"type": ["integer", "null"]},
                                    "example": {"type": "string"},
                                },
                            },
                        },
                        "decisions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["agent_id", "action", "before", "after"],
                                "properties": {
                                    "seq": {"type": ["integer", "null"]},
                                    "timestamp": {"type": "number"},
                                    "agent_id": {"type": "string"},
                                    "action": {"type": "string"},
                                    "call_id": {"type": ["string", "null"]},
                                    "before": {"$ref": "#/components/schemas/Outcome"},
                                    "after": {"$ref": "#/components/schemas/Outcome"},
                                    "rule": {"type": ["object", "null"]},
                                    "reason": {"type": "string"},
                                    "recorded_rule": {"type": ["object", "null"]},
                                },
                            },
                        },
                    },
                },
                "Outcome": {"type": "string", "enum": ["allow", "deny", "escalate"]},
                "Escalation": {
                    "type": "object",
                    "required": ["id", "agent_id", "action", "status"],
                    "properties": {
                        "id": {"type": "string"},
                        "agent_id": {"type": "string"},
                        "action": {"type": "string"},
                        "status": {"type": "string", "enum": ["pending", "approved", "denied", "expired"]},
                        "reason": {"type": "string"},
                        "rule": {"type": ["string", "null"]},
                        "args": {"type": "object", "description": "Redacted arguments"},
                        "args_hash": {"type": "string"},
                        "created": {"type": "string", "format": "date-time"},
                        "expires": {"type": "string", "format": "date-time"},
                        "seconds_left": {"type": "number"},
                        "time_left": {"type": ["string", "null"]},
                        "approvers": {"type": "array", "items": {"type": "string"}},
                        "max_grant_seconds": {"type": ["number", "null"]},
                        "call_id": {"type": ["string", "null"]},
                        "resolver": {"type": ["string", "null"]},
                        "credential_id": {"type": ["string", "null"]},
                        "notes": {"type": ["string", "null"]},
                        "resolved_at": {"type": ["string", "null"]},
                        "edited_args": {"type": ["object", "null"]},
                        "edited_args_hash": {"type": ["string", "null"]},
                        "diff": {"type": ["array", "null"], "items": {"type": "object"}},
                        "message": {"type": ["string", "null"]},
                        "grant_until": {"type": ["string", "null"]},
                        "seconds_to_decision": {"type": ["number", "null"]},
                    },
                },
            },
        },
    }
