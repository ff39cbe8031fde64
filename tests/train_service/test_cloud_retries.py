"""The agent's one retry policy (cloud.retried, in its clients' one call each): what is transient (throttling,
a 5xx, a request that did not get through) is tried again, anything else (a 403) at once reported; and nothing
above the clients retries a call again (the ending's scale-to-zero is one call, however it fails)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from train_agent import cloud, ending
from train_agent.cloud import CloudError, Keys, RpcClient, StaticCredentials
from train_agent.config import Config
from train_agent.ending import Ending
from train_agent.events import EventLog
from train_agent.group import GROUP_TAG
from train_agent.instance import Instance

GROUP = "asg-retries"
TAGGED = {"Instances": {"Instance": [{"Tags": {"Tag": [{"TagKey": GROUP_TAG, "TagValue": GROUP}]}}]}}


class ScriptedApi(ThreadingHTTPServer):
    """An RPC endpoint that answers each action from its script, in order (the last answer repeats)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.script: dict[str, list[tuple[int, dict]]] = {}
        self.calls: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, action: str) -> tuple[int, dict]:
        answers = self.script.get(action) or [(200, {})]
        return answers.pop(0) if len(answers) > 1 else answers[0]


class ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedApi

    def do_POST(self) -> None:
        action = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["Action"][0]
        self.server.calls.append(action)
        status, body = self.server.answer(action)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedApi]:
    monkeypatch.setattr(cloud, "RETRY_BASE", 0.001)  # retries a millisecond apart, not seconds
    monkeypatch.setattr(cloud, "RETRY_CAP", 0.001)
    server = ScriptedApi()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def error(code: str) -> dict[str, str]:
    return {"Code": code, "Message": f"{code} (scripted)"}


def client(api: ScriptedApi) -> RpcClient:
    return RpcClient(api.endpoint, "2022-02-22", StaticCredentials(Keys("id", "secret")))


def test_a_forbidden_call_is_not_retried_and_a_busy_one_is(api: ScriptedApi) -> None:
    api.script["ModifyScalingGroup"] = [(403, error("Forbidden.RAM"))]
    with pytest.raises(CloudError) as refused:
        client(api).call("ModifyScalingGroup", ScalingGroupId=GROUP, DesiredCapacity=0)
    assert (refused.value.status, refused.value.code) == (403, "Forbidden.RAM")
    assert api.calls == ["ModifyScalingGroup"]

    api.calls.clear()
    api.script["ModifyScalingGroup"] = [(503, error("ServiceUnavailable")), (400, error("Throttling.User")),
                                        (200, {"RequestId": "ok"})]
    assert client(api).call("ModifyScalingGroup", ScalingGroupId=GROUP, DesiredCapacity=0) == {"RequestId": "ok"}
    assert api.calls == ["ModifyScalingGroup"] * 3

    api.calls.clear()
    api.script["ModifyScalingGroup"] = [(503, error("ServiceUnavailable"))]
    with pytest.raises(CloudError):
        client(api).call("ModifyScalingGroup", ScalingGroupId=GROUP, DesiredCapacity=0)
    assert api.calls == ["ModifyScalingGroup"] * cloud.RETRY_ATTEMPTS


def ending_of(api: ScriptedApi, tmp_path: Path) -> Ending:
    credentials = StaticCredentials(Keys("id", "secret"))
    instance = Instance("i-retries", "cn-hangzhou", RpcClient(api.endpoint, "2014-05-26", credentials),
                        RpcClient(api.endpoint, "2022-02-22", credentials), credentials)
    config = Config(output_dir=tmp_path, api_endpoint=api.endpoint, event_name=None)
    return Ending(config, instance, EventLog(tmp_path / "events.jsonl", 0))


@pytest.mark.parametrize(("answers", "calls", "problem"), [
    ([(403, error("Forbidden.RAM"))], 1, "ess:ModifyScalingGroup"),
    ([(503, error("ServiceUnavailable")), (200, {})], 2, None),
    # A cloud busy for longer than any other call of the agent waits: the ending's calls wait on.
    ([(503, error("ServiceUnavailable"))] * (cloud.RETRY_ATTEMPTS + 2) + [(200, {})], cloud.RETRY_ATTEMPTS + 3, None),
    ([(503, error("ServiceUnavailable"))], ending.END_ATTEMPTS, "cannot set the desired capacity"),
])
def test_the_endings_scale_to_zero_is_retried_by_the_client_alone(api: ScriptedApi, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  answers: list, calls: int,
                                                                  problem: str | None) -> None:
    monkeypatch.setattr(ending, "SCALE_IN_WAIT", 0.1)  # no lifecycle action holds this instance here
    api.script["DescribeInstances"] = [(200, TAGGED)]
    api.script["ModifyScalingGroup"] = answers
    found = ending_of(api, tmp_path).stop_paying()
    assert api.calls.count("ModifyScalingGroup") == calls
    assert (found is None) if problem is None else (problem in found)
