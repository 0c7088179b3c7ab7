"""An in-memory Hugging Face Hub behind huggingface_hub's own HTTP client.

Only the transport is replaced (``huggingface_hub.set_client_factory`` with an
``httpx2.MockTransport``): ``HfApi``, transformers' and TRL's push code run
unchanged and their requests are answered here.  It serves the few endpoints
a publish uses (create repo, list files, preupload, commit) and keeps what
each commit sent, so tests assert on files that reached "the Hub".
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx2
import pytest
from huggingface_hub import DatasetCard, ModelCard, set_client_factory
from huggingface_hub.utils._http import default_client_factory  # to restore the real client

_REPO = r"/api/(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"


def _origin(request: httpx2.Request) -> str:
    """Answer with URLs on the endpoint asked (clients check the host of returned URLs)."""
    return f"{request.url.scheme}://{request.url.netloc.decode()}"


@dataclass
class FakeHub:
    """Repositories as ``{(repo_type, repo_id): {path: bytes}}`` plus every request seen."""

    repos: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    created: list[dict] = field(default_factory=list)
    commits: list[dict] = field(default_factory=list)
    authorizations: set[str] = field(default_factory=set)
    validated: list[str] = field(default_factory=list)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.authorizations.add(request.headers.get("authorization", ""))
        path = request.url.path
        if request.method == "POST" and path == "/api/repos/create":
            body = json.loads(request.content)
            kind = body.get("type") or "model"
            repo_id = (
                f"{body['organization']}/{body['name']}"
                if body.get("organization")
                else body["name"]
            )
            self.created.append(
                {"type": kind, "repo_id": repo_id, "visibility": body.get("visibility")}
            )
            self.repos.setdefault((kind, repo_id), {})
            prefix = "" if kind == "model" else f"{kind}s/"
            return httpx2.Response(200, json={"url": f"{_origin(request)}/{prefix}{repo_id}"})
        if request.method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(request.content))
        match = re.fullmatch(_REPO + r"/(?P<op>tree|preupload|commit)/(?P<rev>[^/]+)(?:/.*)?", path)
        if match is None:
            return httpx2.Response(
                404, json={"error": f"fake hub: no route {request.method} {path}"}
            )
        key = (match["kind"][:-1], match["repo"])
        if key not in self.repos:
            return httpx2.Response(
                404,
                headers={"X-Error-Code": "RepoNotFound"},
                json={"error": "Repository not found"},
            )
        files = self.repos[key]
        if match["op"] == "tree":
            entries = [
                {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                for p, b in sorted(files.items())
            ]
            return httpx2.Response(200, json=entries)
        if match["op"] == "preupload":
            wanted = json.loads(request.content)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in wanted
            ]
            return httpx2.Response(200, json={"files": modes})
        return self._commit(key, files, request)

    def _validate_yaml(self, body: dict) -> httpx2.Response:
        """The Hub parses a README's metadata before accepting it; here huggingface_hub's parser does."""
        card_type = DatasetCard if body["repoType"] == "dataset" else ModelCard
        try:
            card_type(body["content"], ignore_metadata_errors=False)
        except ValueError as exc:
            return httpx2.Response(400, json={"errors": [{"message": str(exc)}]})
        self.validated.append(body["content"])
        return httpx2.Response(200, json={"errors": [], "warnings": []})

    def _commit(self, key, files: dict[str, bytes], request: httpx2.Request) -> httpx2.Response:
        payload = request.content
        commit = {"repo": key, "added": {}, "deleted": [], "message": None}
        for line in payload.decode().splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                commit["message"] = value["summary"]
            elif item["key"] == "file":
                commit["added"][value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                commit["deleted"].append(value["path"])
            else:
                return httpx2.Response(400, json={"error": f"fake hub: unsupported {item['key']}"})
        for path in commit["deleted"]:
            files.pop(path, None)
        files.update(commit["added"])
        self.commits.append(commit)
        oid = hashlib.sha1(payload).hexdigest()
        return httpx2.Response(
            200, json={"commitUrl": f"{_origin(request)}/{key[1]}/commit/{oid}", "commitOid": oid}
        )


def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """Route huggingface_hub's requests to a fresh :class:`FakeHub` (body of a fixture)."""
    hub = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.test")
    set_client_factory(
        lambda: httpx2.Client(transport=httpx2.MockTransport(hub.handle), follow_redirects=True)
    )
    yield hub
    set_client_factory(default_client_factory)
