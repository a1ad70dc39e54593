"""Replay `ipc/SPEC.md`'s examples against a real daemon, or regenerate their replies.

An example is a fenced block with the info string `json-rpc`: lines starting `-->` are
requests sent as written (one connection per block, in order); `<--` starts a reply or
notification the daemon sent, pretty-printed over as many lines as it needs. The test
(`tests/docs/test_spec.py`) sends every request to a daemon seeded like `tests/support/ipcworld.py`
and compares what comes back: the same keys everywhere, the same values except the
`VOLATILE` ones (times, paths, random ids). `python -m tests.support.specdoc` rewrites the
replies in the doc from a real run, so the doc shows real output.

`Shapes` holds replies to the OpenRPC document (`glosmsd.daemon.api`): each result must match
its method's result schema and each notification the schema of its params, both in the
doc and in what a real daemon sends. Only tests check this, never the daemon itself.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import socket
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SPEC = Path(__file__).resolve().parents[2] / "ipc" / "SPEC.md"
BLOCK = re.compile(r"```json-rpc\n(.*?)```", re.S)
#: Values that differ run to run; their keys must still be there.
VOLATILE = frozenset(
    {
        "at",
        "last_at",
        "path",
        "client_id",
        "line",
        "detail",
        "server",
        "folder",
        "last_id",
        "url",
        "profile",
    }
)


@dataclass
class Example:
    requests: list[str]
    replies: list[Any] = field(default_factory=list)


def parse(text: str) -> list[Example]:
    examples = []
    for match in BLOCK.finditer(text):
        body = match.group(1)
        requests = [line[4:] for line in body.splitlines() if line.startswith("--> ")]
        replies = []
        for part in body.split("<-- ")[1:]:
            chunk = "\n".join(ln for ln in part.splitlines() if not ln.startswith("--> "))
            replies.append(json.loads(chunk))
        examples.append(Example(requests, replies))
    return examples


def run(socket_path: Path, example: Example, *, events: int = 0, linger: float = 0.0) -> list[Any]:
    """Send the example's requests; collect everything until each request with an id
    has its reply and `events` notifications came (then `linger` more seconds, for the
    generator, which cannot know how many will come)."""
    waiting = set()
    for line in example.requests:
        try:
            obj = json.loads(line)
        except ValueError:
            waiting.add("null")  # a parse error is answered with id null
            continue
        items = obj if isinstance(obj, list) else [obj]
        waiting |= {json.dumps(i.get("id")) for i in items if isinstance(i, dict) and "id" in i}
    got: list[Any] = []
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(socket_path))
        with s.makefile("rb") as reader:  # closed on a timeout too: no socket left open
            for line in example.requests:
                s.sendall(line.encode() + b"\n")
            seen = 0
            while waiting or seen < events:
                msg = json.loads(reader.readline())
                got.append(msg)
                for item in msg if isinstance(msg, list) else [msg]:
                    if isinstance(item, dict) and "method" not in item:
                        waiting.discard(json.dumps(item.get("id")))
                    elif isinstance(item, dict):
                        seen += 1
            if linger:
                s.settimeout(linger)
                with contextlib.suppress(TimeoutError):
                    while extra := reader.readline():
                        got.append(json.loads(extra))
    return got


def shape_diff(doc: Any, real: Any, where: str = "$") -> list[str]:
    """Differences that matter between a documented value and a real one."""
    if isinstance(doc, dict) and isinstance(real, dict):
        out = []
        if set(doc) != set(real):
            out.append(f"{where}: keys {sorted(doc)} != {sorted(real)}")
        for key in set(doc) & set(real):
            if key in VOLATILE:
                continue
            out += shape_diff(doc[key], real[key], f"{where}.{key}")
        return out
    if isinstance(doc, list) and isinstance(real, list):
        if len(doc) != len(real):
            return [f"{where}: {len(doc)} items != {len(real)}"]
        return [
            d
            for i, (a, b) in enumerate(zip(doc, real, strict=True))
            for d in shape_diff(a, b, f"{where}[{i}]")
        ]
    return [] if doc == real else [f"{where}: {doc!r} != {real!r}"]


#: Where `Shapes` files the OpenRPC document, so `#/components/schemas/...` refs resolve.
DOC_URI = "urn:glosmsd:openrpc"


class Shapes:
    """The reply shapes of an OpenRPC document as validators: each method's result and
    each notification's params (`x-notifications`), in OpenRPC's dialect (draft-07)."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        resource = Resource.from_contents(doc, default_specification=DRAFT7)
        registry: Registry[Any] = Registry().with_resource(DOC_URI, resource)

        def at(pointer: str) -> Draft7Validator:
            return Draft7Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=registry)

        self.results = {
            m["name"]: at(f"/methods/{i}/result/schema") for i, m in enumerate(doc["methods"])
        }
        self.notifications = {
            n["name"]: at(f"/x-notifications/{i}/params/schema")
            for i, n in enumerate(doc.get("x-notifications", ()))
        }

    def result_problems(self, method: str, result: Any) -> list[str]:
        validator = self.results.get(method)
        if validator is None:
            return [f"{method}: not a method of the OpenRPC document"]
        return [_problem(f"{method} result", e) for e in validator.iter_errors(result)]

    def params_problems(self, notification: str, params: Any) -> list[str]:
        validator = self.notifications.get(notification)
        if validator is None:
            return [f"{notification}: a notification the OpenRPC document does not list"]
        return [_problem(f"{notification} params", e) for e in validator.iter_errors(params)]

    def exchange_problems(self, requests: Sequence[str], messages: Sequence[Any]) -> list[str]:
        """Shape problems in what a daemon sent for these request lines: each result
        against the result schema of the method its id asked for, each notification
        against the schema of its params. Errors have no result schema to match."""
        asked: dict[str, str] = {}
        for line in requests:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            for item in obj if isinstance(obj, list) else [obj]:
                if isinstance(item, dict) and "id" in item and isinstance(item.get("method"), str):
                    asked[json.dumps(item["id"])] = item["method"]
        problems: list[str] = []
        for msg in messages:
            for item in msg if isinstance(msg, list) else [msg]:
                if not isinstance(item, dict):
                    problems.append(f"not a JSON-RPC object: {item!r}")
                elif "method" in item:
                    problems += self.params_problems(item["method"], item.get("params"))
                elif "result" in item:
                    method = asked.get(json.dumps(item.get("id")))
                    if method is None:
                        problems.append(f"a result for an id nobody asked: {item!r}")
                    else:
                        problems += self.result_problems(method, item["result"])
        return problems


def _problem(what: str, err: ValidationError) -> str:
    message = err.message
    if len(message) > 300:
        message = message[:300] + "..."
    return f"{what} at {err.json_path}: {message}"


@functools.cache
def shapes() -> Shapes:
    """The shapes of the document the daemon serves (`glosmsd.daemon.api`; the checked-in
    `ipc/openrpc.json` must equal it, see tests/docs/test_spec.py)."""
    from glosmsd.daemon import api

    return Shapes(api.openrpc(api.full_table()))


def render(text: str, results: list[list[Any]]) -> str:
    blocks = iter(results)

    def fill(match: re.Match[str]) -> str:
        got = next(blocks)
        body = match.group(1)
        requests = [ln for ln in body.splitlines() if ln.startswith("--> ")]
        lines = list(requests)
        for msg in got:
            pretty = json.dumps(msg, indent=2, ensure_ascii=False)
            lines.append("<-- " + pretty)
        return "```json-rpc\n" + "\n".join(lines) + "\n```"

    return BLOCK.sub(fill, text)


def main() -> int:
    from tests.support.ipcworld import running_world

    text = SPEC.read_text()
    examples = parse(text)
    with tempfile.TemporaryDirectory() as tmp, running_world(Path(tmp)) as world:
        results = [run(world.daemon.socket, ex, linger=0.5) for ex in examples]
    # The doc never shows a reply its own OpenRPC document says cannot happen.
    problems = [
        p
        for ex, got in zip(examples, results, strict=True)
        for p in shapes().exchange_problems(ex.requests, got)
    ]
    if problems:
        print(
            "\n".join(["replies off their documented shape; SPEC.md left as it was:", *problems]),
            file=sys.stderr,
        )
        return 1
    SPEC.write_text(render(text, results))
    print(f"rewrote {len(results)} examples in {SPEC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
