#!/usr/bin/env python3
"""Example swing exec provider (protocol 1): NAT rules and DNS records kept in a JSON file.

A template for a site's own provider: replace load_state/save_state with calls to your NAT
gateway's or DNS service's API. The protocol is described in docs/exec-protocol.md.

Usage (plan):
    providers:
      edge:
        type: exec
        command: ./providers/state-file-provider.py
        args: ["--state", "./nat-state.json"]

State file:
    {"nat": {"203.0.113.10:443": {"target": "10.0.0.11:443", "comment": null}},
     "dns": {"access.example.com": {"addresses": ["10.0.0.11"], "ttl": 3600}}}

Reads ONE request object from stdin, writes ONE response object to stdout, exits 0. Errors
are responses too ({"ok": false, "error": {"kind": ..., "message": ...}}). Diagnostics go to
stderr. Only the standard library is used; a lock file serialises concurrent calls so every
apply is an atomic compare-and-swap on the state file.
"""

import argparse
import fcntl
import json
import os
import sys
import tempfile

PROTOCOL = 1


class ProtocolError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def respond(obj):
    obj["protocol"] = PROTOCOL
    json.dump(obj, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


def load_state(path):
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        raise ProtocolError("not-found", f"state file {path} does not exist")
    except json.JSONDecodeError as e:
        raise ProtocolError("failed", f"state file {path} is not JSON: {e}")
    state.setdefault("nat", {})
    state.setdefault("dns", {})
    return state


def save_state(path, state):
    # Atomic replace: write a temporary file next to it, then rename.
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".state-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def need(obj, key, kind=str):
    v = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(v, kind):
        raise ProtocolError("invalid", f"request field `{key}` is missing or has the wrong type")
    return v


def nat(op, resource, req, state):
    public = need(resource, "public")
    rule = state["nat"].get(public)
    if op == "observe":
        if rule is None:
            return {"observation": {"target": None, "comment": None}}, False
        return {"observation": {"target": rule["target"], "comment": rule.get("comment")}}, False
    if op == "apply":
        action = need(req, "action", dict)
        if need(action, "type") != "swing":
            raise ProtocolError("invalid", f"NAT has no action `{action['type']}`")
        frm, to = need(action, "from"), need(action, "to")
        if rule is None:
            raise ProtocolError("not-found", f"no NAT rule for {public}")
        if rule["target"] == to:
            return {"changed": False}, False
        if rule["target"] != frm:
            raise ProtocolError("conflict", f"the rule for {public} points at {rule['target']}, not {frm}")
        rule["target"] = to
        rule["comment"] = action.get("comment")
        return {"changed": True}, True
    if op == "verify":
        want = need(need(req, "expect", dict), "target")
        got = rule["target"] if rule else None
        return {"holds": got == want, "detail": f"target is {got}, expected {want}"}, False
    raise ProtocolError("invalid", f"unknown op `{op}`")


def dns(op, resource, req, state):
    record = need(resource, "record")
    rec = state["dns"].get(record)
    if op == "observe":
        if rec is None:
            # A name without records: no addresses, TTL 0 (not an error).
            return {"observation": {"addresses": [], "ttl": 0}}, False
        return {"observation": {"addresses": rec["addresses"], "ttl": rec["ttl"]}}, False
    if op == "apply":
        action = need(req, "action", dict)
        if rec is None:
            raise ProtocolError("not-found", f"no record {record}")
        kind = need(action, "type")
        if kind == "set-ttl":
            expect = need(action, "expect", dict)
            if sorted(expect.get("addresses", [])) != sorted(rec["addresses"]) or expect.get("ttl") != rec["ttl"]:
                raise ProtocolError("conflict", f"{record} changed since it was observed")
            rec["ttl"] = need(action, "ttl", int)
            return {"changed": True}, True
        if kind == "swing":
            frm, to = need(action, "from"), need(action, "to")
            if frm not in rec["addresses"]:
                if to in rec["addresses"]:
                    return {"changed": False}, False
                raise ProtocolError("conflict", f"{record} holds {rec['addresses']}, not {frm}")
            rec["addresses"] = [a for a in rec["addresses"] if a != frm]
            if to not in rec["addresses"]:
                rec["addresses"].append(to)
            rec["ttl"] = need(action, "ttl", int)
            return {"changed": True}, True
        raise ProtocolError("invalid", f"DNS has no action `{kind}`")
    if op == "verify":
        expect = need(req, "expect", dict)
        got = (sorted(rec["addresses"]), rec["ttl"]) if rec else None
        want = (sorted(expect.get("addresses", [])), expect.get("ttl"))
        return {"holds": got == want, "detail": f"record is {got}, expected {want}"}, False
    raise ProtocolError("invalid", f"unknown op `{op}`")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, help="JSON state file")
    args = parser.parse_args()
    try:
        try:
            req = json.load(sys.stdin)
        except json.JSONDecodeError as e:
            raise ProtocolError("invalid", f"request is not JSON: {e}")
        if not isinstance(req, dict) or req.get("protocol") != PROTOCOL:
            raise ProtocolError("invalid", f"this provider speaks protocol {PROTOCOL} only")
        op = need(req, "op")
        resource = need(req, "resource", dict)
        handlers = {"nat": nat, "dns": dns}
        handler = handlers.get(resource.get("kind"))
        if handler is None:
            raise ProtocolError("invalid", f"unknown resource kind `{resource.get('kind')}`")
        with open(args.state + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = load_state(args.state)
            result, changed = handler(op, resource, req, state)
            if changed:
                save_state(args.state, state)
        respond({"ok": True, **result})
    except ProtocolError as e:
        print(f"state-file-provider: {e.kind}: {e.message}", file=sys.stderr)
        respond({"ok": False, "error": {"kind": e.kind, "message": e.message}})


if __name__ == "__main__":
    main()
