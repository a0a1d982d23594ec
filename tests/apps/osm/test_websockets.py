"""Live updates (/ws/{client_id}) and pushes from a source (/ws/data-source/{id})."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.apps.osm.conftest import OSM, node
from tests.builders import register_user
from worldbase.apps.osm.events import ClientFilter
from worldbase.apps.osm.websockets import FilteredSubscription, matching_events
from worldbase.core.realtime import MemoryHub, SubscriberTooSlow


def _next_event(ws: object) -> dict[str, object]:
    while True:
        message = ws.receive_json()  # type: ignore[attr-defined]
        if message["type"] != "ping":
            return message  # type: ignore[no-any-return]


def test_subscribe_snapshot_and_filtered_events(osm: OSM, client: TestClient) -> None:
    source, token = osm.source()
    osm.push(
        source["id"],
        token,
        {"elements": [node(1, 1, 1, amenity="cafe"), node(2, 50, 50, amenity="cafe")]},
    )
    with client.websocket_connect("/ws/client-1") as ws:
        assert ws.receive_json() == {"type": "welcome", "client_id": "client-1"}
        ws.send_json(
            {
                "type": "subscribe",
                "types": ["node"],
                "tags": ["amenity=cafe"],
                "bbox": [0, 0, 10, 10],
                "snapshot": True,
            }
        )
        assert _next_event(ws)["type"] == "subscribed"
        snap = _next_event(ws)
        assert snap["type"] == "snapshot" and snap["total"] == 1
        assert [o["osm_id"] for o in snap["objects"]] == ["1"]  # type: ignore[union-attr]
        osm.push(
            source["id"],
            token,
            {
                "elements": [
                    node(3, 60, 60, amenity="cafe"),  # outside the bbox
                    node(4, 2, 2, amenity="bar"),  # other tag
                    node(5, 3, 3, amenity="cafe"),  # matches
                ]
            },
        )
        created = _next_event(ws)
        assert created["type"] == "object.created"
        assert created["object"]["osm_id"] == "5"  # type: ignore[index]
        osm.push(source["id"], token, {"elements": [node(5, 3.5, 3, 2, amenity="cafe")]})
        modified = _next_event(ws)
        assert modified["type"] == "object.modified" and modified["object"]["version"] == 2  # type: ignore[index]
        osm.push(
            source["id"],
            token,
            {"elements": [{"type": "node", "id": 5, "version": 3, "visible": False}]},
        )
        assert _next_event(ws)["type"] == "object.deleted"


def test_bad_subscribe_messages_get_an_error_and_keep_the_connection(client: TestClient) -> None:
    with client.websocket_connect("/ws/c") as ws:
        ws.receive_json()
        for message in (
            {"type": "subscribe", "types": ["area"]},
            {"type": "subscribe", "bbox": [1, 2, 3]},
            {"type": "subscribe", "tags": [5]},
        ):
            ws.send_json(message)
            assert _next_event(ws)["type"] == "error"
        ws.send_json({"type": "subscribe"})
        assert _next_event(ws)["type"] == "subscribed"


def test_other_messages_get_the_seeds_answer(osm: OSM, client: TestClient) -> None:
    """The seed's endpoint answers whatever it receives with "Message received"; the
    subscribe protocol goes on beside it."""
    received = {"type": "response", "content": "Message received"}
    source, token = osm.source()
    with client.websocket_connect("/ws/seed-client") as ws:
        assert ws.receive_json()["type"] == "welcome"
        for message in ({"type": "hello"}, {"text": "hi"}, {"type": 5}, [1, 2], "x", None):
            ws.send_json(message)
            assert _next_event(ws) == received
        ws.send_text("not json")
        assert _next_event(ws) == received
        ws.send_json({"type": "subscribe", "types": ["node"]})
        assert _next_event(ws)["type"] == "subscribed"
        ws.send_json({"type": "chat", "content": "still there?"})
        assert _next_event(ws) == received
        osm.push(source["id"], token, {"elements": [node(1, 1, 1, amenity="cafe")]})
        assert _next_event(ws)["type"] == "object.created"
        ws.send_json({"type": "unsubscribe"})
        assert _next_event(ws)["type"] == "unsubscribed"


def test_token_is_optional_but_a_bad_one_is_refused(client: TestClient) -> None:
    _, token = register_user(client)
    with client.websocket_connect(f"/ws/c?token={token}") as ws:
        assert ws.receive_json()["type"] == "welcome"
    with (
        client.websocket_connect("/ws/c?token=garbage") as ws,
        pytest.raises(WebSocketDisconnect) as exc,
    ):
        ws.receive_json()
    assert exc.value.code == 4401


def test_a_slow_subscriber_is_dropped() -> None:
    async def scenario() -> None:
        hub = MemoryHub()
        await hub.start()
        state = ClientFilter(active=True)
        slow = FilteredSubscription(hub.subscribe("osm:objects", max_queue=3), state)
        fast = hub.subscribe("osm:objects", max_queue=100)
        for i in range(5):
            await hub.publish("osm:objects", {"type": "object.created", "object": {"id": i}})
        with pytest.raises(SubscriberTooSlow):
            await anext(slow)
        assert [(await anext(fast))["object"]["id"] for _ in range(5)] == [0, 1, 2, 3, 4]
        await hub.stop()

    asyncio.run(scenario())


def test_sockets_with_equal_filters_share_one_filtering_pass_and_others_get_their_own() -> None:
    async def scenario() -> None:
        hub = MemoryHub()
        await hub.start()
        nodes = ClientFilter(types={"node"}, active=True)
        nodes_too = ClientFilter(types={"node"}, active=True)
        cafes = ClientFilter(tags=[("amenity", "cafe")], active=True)
        subscriptions = [
            FilteredSubscription(hub.subscribe("osm:objects"), state)
            for state in (nodes, nodes_too, cafes)
        ]
        events = [
            {"type": "object.created", "object": {"type": "node", "tags": {"amenity": "cafe"}}},
            {"type": "object.created", "object": {"type": "node", "tags": {}}},
            {"type": "object.created", "object": {"type": "way", "tags": {"amenity": "cafe"}}},
        ]
        await hub.publish("osm:objects", {"type": "batch", "events": events})
        ready = [[await anext(s), *s.pop_ready()] for s in subscriptions]
        assert ready[0] == ready[1] == events[:2]
        assert ready[2] == [events[0], events[2]]
        message = {"type": "batch", "events": events}
        shared = matching_events(message, nodes)
        assert matching_events(message, nodes_too) is shared  # one pass for equal filters
        assert matching_events(message, cafes) is not shared
        nodes.types = {"way"}  # a socket changing its filter gets its own pass
        await hub.publish("osm:objects", {"type": "batch", "events": events})
        assert [await anext(subscriptions[0])] == [events[2]]
        assert [await anext(subscriptions[1]), *subscriptions[1].pop_ready()] == events[:2]
        await hub.stop()

    asyncio.run(scenario())


def test_data_source_push_with_acks(osm: OSM, client: TestClient) -> None:
    source, token = osm.source()
    with client.websocket_connect(f"/ws/data-source/{source['id']}?token={token}") as ws:
        ws.send_json({"batch_id": "b1", "elements": [node(1, 1, 1), {"type": "node", "id": 2}]})
        ack = ws.receive_json()
        assert (ack["type"], ack["batch_id"], ack["created"], ack["rejected"]) == (
            "ack",
            "b1",
            1,
            1,
        )
        ws.send_json({"batch_id": "b2", "data": {"elements": [node(1, 1, 1)]}})
        assert ws.receive_json()["unchanged"] == 1
        ws.send_text("{nope")
        assert ws.receive_json()["type"] == "nack"
        ws.send_json({"batch_id": "b3", "foo": 1})
        nack = ws.receive_json()
        assert (nack["type"], nack["batch_id"], nack["code"]) == ("nack", "b3", 422)
        ws.send_text(json.dumps({"elements": [], "pad": "x" * (2 * 1024 * 1024)}))
        assert ws.receive_json()["code"] == 413
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
        assert exc.value.code == 1009
    assert client.get("/objects/osm/node/1").status_code == 200
    log = client.get("/admin/validation-log", headers=osm.admin).json()
    assert {e["channel"] for e in log["items"]} == {"websocket"} and log["total"] == 2


def test_data_source_push_refusals(osm: OSM, client: TestClient) -> None:
    source, token = osm.source()
    _, user_token = register_user(client)
    _, admin_token = osm.admin["Authorization"].split(" ")
    cases = [
        (f"/ws/data-source/{source['id']}", 4401),
        (f"/ws/data-source/{source['id']}?token=wbsrc_bad", 4401),
        (f"/ws/data-source/{source['id']}?token={user_token}", 4403),
        (f"/ws/data-source/00000000-0000-0000-0000-000000000000?token={token}", 4404),
    ]
    for url, code in cases:
        with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
        assert exc.value.code == code, url
    with client.websocket_connect(f"/ws/data-source/{source['id']}?token={admin_token}") as ws:
        ws.send_json({"elements": [node(1, 1, 1)]})
        assert ws.receive_json()["type"] == "ack"
        client.post(f"/data-sources/{source['id']}/deactivate", headers=osm.admin)
        ws.send_json({"elements": [node(2, 1, 1)]})
        assert ws.receive_json()["code"] == 409
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
        assert exc.value.code == 4409
    with (
        client.websocket_connect(f"/ws/data-source/{source['id']}?token={token}") as ws,
        pytest.raises(WebSocketDisconnect) as exc,
    ):
        ws.receive_json()
    assert exc.value.code == 4409


def test_batch_mode_sends_events_that_arrive_together_in_one_frame(
    osm: OSM, client: TestClient
) -> None:
    source, token = osm.source()
    with client.websocket_connect("/ws/batched") as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe", "batch": "yes"})
        assert "'batch'" in _next_event(ws)["message"]  # type: ignore[operator]
        ws.send_json({"type": "subscribe", "types": ["node"], "batch": True})
        assert _next_event(ws) == {
            "type": "subscribed", "types": ["node"], "tags": [], "bbox": None, "batch": True
        }  # fmt: skip
        osm.push(source["id"], token, {"elements": [node(i, i, i) for i in (1, 2, 3)]})
        frames, ids = [], []
        while len(ids) < 3:
            frame = _next_event(ws)
            frames.append(frame["type"])
            events = frame["events"] if frame["type"] == "batch" else [frame]
            ids += [e["object"]["osm_id"] for e in events]  # type: ignore[index, union-attr, attr-defined]
        assert sorted(ids) == ["1", "2", "3"]
        assert frames == ["batch"]  # one ingested batch is one hub message
        # A single event still comes on its own.
        osm.push(source["id"], token, {"elements": [node(4, 4, 4)]})
        assert _next_event(ws)["type"] == "object.created"


def test_a_large_ingest_does_not_overflow_a_subscriber(osm: OSM, client: TestClient) -> None:
    """600 changes are two hub messages, not 600 queue entries (the queue holds 256)."""
    source, token = osm.source()
    with client.websocket_connect("/ws/big") as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe", "types": ["node"]})
        assert _next_event(ws)["type"] == "subscribed"
        osm.push(source["id"], token, {"elements": [node(i, 1, 1) for i in range(1, 601)]})
        ids = {_next_event(ws)["object"]["osm_id"] for _ in range(600)}  # type: ignore[index]
        assert len(ids) == 600
