"""The reviewer web console and its JSON API (ASGI, Starlette): ``claw-gov console``.

Pages: the pending inbox across every agent in the state store, an escalation's detail with approve /
approve-with-edits / approve-for / deny / respond, agents with trust history and revoke / reinstate, the audit
browser with verification status, the policy in force and the compliance report. API under ``/api`` (OpenAPI
document at ``/api/openapi.json``). Needs the ``serve`` extra (starlette, uvicorn, python-multipart):
``from claw_governance.console.app import create_app``.
"""
