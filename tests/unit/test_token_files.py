"""Token files are read again when they change (rotation without a restart): the
re-readable source every door uses, on real files."""

from __future__ import annotations

import json
import os

from xpbank.config import ApiTokens, Rereadable, Settings
from xpbank.gateway.settings import GatewaySettings
from xpbank.read import auth
from xpbank.read.auth import authorize, current_tokens

OLD, NEW = "o" * 40, "n" * 40  # 32 characters or more, as the doors will demand


def api_file(path, *tokens: str) -> None:
    # written beside and renamed over, as a Secret update or `mv` does: never half a file
    temporary = path.with_suffix(".new")
    temporary.write_text(json.dumps({t: {"name": f"n{n}", "scopes": ["learners", "operations"]} for n, t in enumerate(tokens)}))
    os.replace(temporary, path)


def test_a_changed_file_is_read_again_and_a_broken_one_keeps_the_tokens_before(tmp_path):
    path = tmp_path / "tokens.json"
    api_file(path, OLD)
    source = Rereadable(str(path), ApiTokens.reread, "XPBANK_API_TOKENS_FILE", ApiTokens.reread(path.read_text()), every=0)
    assert [s.reveal() for s, _, _ in source.get().scopes] == [OLD]
    api_file(path, NEW)
    assert [s.reveal() for s, _, _ in source.get().scopes] == [NEW]
    path.write_text('{"half-written')  # refused: the last good tokens stay
    assert [s.reveal() for s, _, _ in source.get().scopes] == [NEW]
    path.write_text("{}")  # no token at all would lock everyone out: refused too
    assert [s.reveal() for s, _, _ in source.get().scopes] == [NEW]
    path.unlink()  # a file gone (a Secret being swapped) keeps them as well
    assert [s.reveal() for s, _, _ in source.get().scopes] == [NEW]


def test_the_api_and_the_gateway_follow_their_token_files(tmp_path):
    api, gateway = tmp_path / "api.json", tmp_path / "gateway.json"
    api_file(api, OLD)
    gateway.write_text(json.dumps({OLD: {"name": "app", "may": ["caliper"]}}))
    env = {"XPBANK_API_TOKENS_FILE": str(api), "XPBANK_GATEWAY_TOKENS_FILE": str(gateway)}
    settings, doors = Settings.from_env(env), GatewaySettings.from_env(env)
    assert authorize(current_tokens(settings), OLD, "operations")[0] == 200
    for source in (auth._token_files[str(api)], doors.tokens.source, doors.operators.source):
        source.every = 0  # look at every call (in service: once a second)
    assert doors.tokens.grant(OLD) and doors.operators.grant(OLD)
    api_file(api, NEW)
    gateway.write_text(json.dumps({NEW: {"name": "app", "may": ["caliper"]}}))
    assert authorize(current_tokens(settings), OLD, "operations")[0] == 401
    assert authorize(current_tokens(settings), NEW, "operations")[0] == 200
    assert doors.tokens.grant(OLD) is None and doors.tokens.grant(NEW).name == "app"
    assert doors.operators.grant(OLD) is None and doors.operators.grant(NEW) is not None
