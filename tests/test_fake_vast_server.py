"""The fake Vast.ai API answers real clients (httpx, the official ``vastai`` CLI, OpenSSH) the way Vast does.

Everything goes over real sockets on 127.0.0.1: the fake is only useful if a client that works against it works
against Vast, so the assertions are on wire shapes (status codes, bodies, headers), on what the official CLI
prints when pointed at the fake, and on a real ``ssh -L`` tunnel reaching the "container's" port 8000.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from fakes.vast_server import FakeVastServer, check_fault, make_offer, parse_env

KEY = "vast-test-key"
# Fake seconds from create to loading and to running: long enough that only advance() moves an instance on,
# never the wall-clock seconds a loaded machine takes between two requests.
BOOT = (5.0, 10.0)
UP = BOOT[1]
IMAGE = "vllm/vllm-openai:latest"
VASTAI = Path(sys.executable).parent / "vastai"
SSH = shutil.which("ssh")
SSH_KEYGEN = shutil.which("ssh-keygen")


@pytest.fixture
def server() -> Iterator[FakeVastServer]:
    with FakeVastServer(boot_seconds=BOOT) as fake:
        yield fake


@pytest.fixture
def api(server: FakeVastServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as client:
        yield client


def search(api: httpx.Client, query: dict[str, Any]) -> list[dict[str, Any]]:
    response = api.post("/api/v0/bundles/", json=query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"  # exactly: the CLI refuses anything else
    offers: list[dict[str, Any]] = response.json()["offers"]
    return offers


def create(api: httpx.Client, offer_id: int = 31_001_001, **body: Any) -> int:
    payload = {"client_id": "me", "image": IMAGE, "disk": 40, "runtype": "ssh_direc ssh_proxy", **body}
    response = api.put(f"/api/v0/asks/{offer_id}/", json=payload)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["success"] is True and isinstance(reply["instance_api_key"], str)
    return int(reply["new_contract"])


def show(api: httpx.Client, instance_id: int) -> dict[str, Any] | None:
    response = api.get(f"/api/v0/instances/{instance_id}/", params={"owner": "me"})
    assert response.status_code == 200, response.text
    instance: dict[str, Any] | None = response.json()["instances"]
    return instance


def delete(api: httpx.Client, path: str) -> httpx.Response:
    return api.request("DELETE", path, json={})


# -- search ---------------------------------------------------------------------------------------------------


def test_gpu_ram_is_in_megabytes_so_a_gigabyte_filter_matches_everything(api: httpx.Client) -> None:
    in_mb = search(api, {"gpu_ram": {"gte": 20_000}})
    in_gb = search(api, {"gpu_ram": {"gte": 20}})  # the classic trap: 20 "GB" is 20 MB
    assert in_mb and all(offer["gpu_ram"] >= 20_000 for offer in in_mb)
    assert "Tesla T4" not in {o["gpu_name"] for o in in_mb}
    assert "Tesla T4" in {o["gpu_name"] for o in in_gb}
    assert len(in_gb) > len(in_mb)


def test_in_and_notin_take_names_with_spaces_or_underscores_and_country_codes(api: httpx.Client) -> None:
    offers = search(api, {"gpu_name": {"in": ["RTX 4090", "RTX_3090"]}, "geolocation": {"notin": ["CN", "VN"]}})
    assert {o["gpu_name"] for o in offers} == {"RTX 4090", "RTX 3090"}
    assert not any(o["geolocation"].endswith(("CN", "VN")) for o in offers)
    assert {o["geolocation"] for o in search(api, {"geolocation": {"eq": "se"}})} == {"Stockholm, SE"}


def test_order_and_limit(api: httpx.Client) -> None:
    cheapest = search(api, {"order": [["dph_total", "asc"]], "limit": 3})
    assert len(cheapest) == 3
    assert [o["dph_total"] for o in cheapest] == sorted(o["dph_total"] for o in cheapest)
    by_score = search(api, {})
    assert [o["score"] for o in by_score] == sorted((o["score"] for o in by_score), reverse=True)  # the default
    two_keys = search(api, {"order": [["num_gpus", "desc"], ["dph_total", "asc"]]})
    assert two_keys[0]["num_gpus"] == 8
    assert [o["dph_total"] for o in two_keys if o["num_gpus"] == 1] == sorted(
        o["dph_total"] for o in two_keys if o["num_gpus"] == 1
    )


def test_allocated_storage_prices_the_disk_and_filters_small_disks(api: httpx.Client, server: FakeVastServer) -> None:
    offers = search(api, {"allocated_storage": 500, "id": {"eq": 31_001_006}})
    [offer] = offers
    expected = offer["dph_base"] + offer["storage_cost"] * 500 / 30 / 24
    assert offer["dph_total"] == pytest.approx(expected, abs=1e-6)
    assert offer["search"]["totalHour"] == pytest.approx(expected, abs=1e-6)
    assert all(o["disk_space"] >= 500 for o in search(api, {"allocated_storage": 500}))
    [bid] = search(api, {"type": "bid", "id": {"eq": 31_001_006}, "allocated_storage": 500})
    assert bid["dph_total"] == pytest.approx(bid["min_bid"] + offer["storage_cost"] * 500 / 720, abs=1e-6)
    assert search(api, {"type": "ondemand", "id": {"eq": 31_001_006}})[0]["dph_base"] == offer["dph_base"]


def test_virtual_columns_aliases_and_cli_style_string_numbers(api: httpx.Client) -> None:
    assert {o["verification"] for o in search(api, {"verified": {"eq": False}})} == {"unverified"}
    assert {o["hosting_type"] for o in search(api, {"datacenter": {"eq": True}})} == {1}
    assert all(o["reliability"] >= 0.995 for o in search(api, {"reliability2": {"gte": 0.995}}))
    one_gpu = search(api, {"num_gpus": {"eq": "1"}, "gpu_ram": {"gte": 20000.0}})  # what `vastai` sends
    assert one_gpu and {o["num_gpus"] for o in one_gpu} == {1}
    ignored = search(api, {"no_such_field": {"eq": 1}})  # unknown fields are ignored, as Vast does
    assert [o["id"] for o in ignored] == [o["id"] for o in search(api, {})]
    assert {o["rentable"] for o in search(api, {"rentable": {"eq": True}})} == {True}


def test_malformed_queries_are_refused(api: httpx.Client) -> None:
    bad_json = api.post("/api/v0/bundles/", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert bad_json.json() == {"success": False, "error": "invalid_request", "msg": "Invalid json body"}
    assert api.post("/api/v0/bundles/", json={"gpu_ram": {"about": 3}}).status_code == 400
    assert api.post("/api/v0/bundles/", json={"type": "someday"}).status_code == 400


def test_search_needs_no_key_but_refuses_a_wrong_one_and_has_three_routes(server: FakeVastServer) -> None:
    query = {"gpu_name": {"eq": "L40S"}}
    anonymous = httpx.post(f"{server.url}/api/v0/bundles", json=query)  # no trailing slash either
    assert anonymous.status_code == 200 and len(anonymous.json()["offers"]) == 1
    wrong = httpx.post(f"{server.url}/api/v0/bundles/", json=query, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    legacy = httpx.get(f"{server.url}/api/v0/bundles", params={"q": json.dumps(query)})
    new = httpx.put(f"{server.url}/api/v0/search/asks/", json={"select_cols": ["*"], "q": query})
    assert legacy.json()["offers"][0]["id"] == new.json()["offers"][0]["id"] == 31_001_010


def test_custom_offers_are_completed_with_every_field() -> None:
    offer = make_offer(id=7, gpu_name="H200", gpu_ram=143_771, dph_base=3.0, verified=False, datacenter=True)
    assert offer["verification"] == "unverified" and offer["hosting_type"] == 1
    assert offer["gpu_total_ram"] == 143_771 and offer["ask_contract_id"] == 7
    for name in ("machine_id", "reliability2", "dlperf_per_dphtotal", "cuda_max_good", "direct_port_count", "search"):
        assert name in offer
    with FakeVastServer(offers=[{"id": 1}, {"id": 2, "gpu_name": "A40"}], ssh=False) as server:
        assert [o["gpu_name"] for o in server.offers] == ["RTX 4090", "A40"]


# -- create ---------------------------------------------------------------------------------------------------


def test_a_rented_offer_leaves_the_market_and_cannot_be_rented_twice(api: httpx.Client) -> None:
    create(api, 31_001_002)
    assert 31_001_002 not in {o["id"] for o in search(api, {})}
    again = api.put("/api/v0/asks/31001002/", json={"image": IMAGE})
    assert again.status_code == 410
    assert again.json()["error"] == "no_such_ask" and "no longer available" in again.json()["msg"]
    unknown = api.put("/api/v0/asks/123/", json={"image": IMAGE})
    assert unknown.status_code == 404 and unknown.json()["error"] == "no_such_ask"
    unrentable = api.put("/api/v0/asks/31001013/", json={"image": IMAGE})
    assert unrentable.status_code == 410


def test_create_validates_its_body(api: httpx.Client) -> None:
    no_image = api.put("/api/v0/asks/31001001/", json={"disk": 40})
    assert no_image.status_code == 400 and no_image.json()["error"] == "invalid_args"
    too_big = api.put("/api/v0/asks/31001001/", json={"image": IMAGE, "disk": 10_000})
    assert too_big.status_code == 400
    bad_price = api.put("/api/v0/asks/31001001/", json={"image": IMAGE, "price": 500})
    assert bad_price.status_code == 400 and bad_price.json()["error"] == "invalid_price"


def test_env_runtype_and_args_are_stored_as_vast_shows_them(api: httpx.Client, server: FakeVastServer) -> None:
    as_string = create(api, env="-e HF_TOKEN=hf_x -p 8000:8000 -h box", label="vllm-a", onstart="vllm serve m")
    args_mode = create(api, 31_001_004, runtype="args", args_str="m --port 8000", env={"-p 8000:8000": "1"})
    server.advance(UP)
    first, second = show(api, as_string), show(api, args_mode)
    assert first is not None and second is not None
    assert first["extra_env"] == [["HF_TOKEN", "hf_x"], ["-p 8000:8000", "1"], ["-h", "box"]]
    assert (first["label"], first["onstart"], first["image_runtype"]) == (
        "vllm-a",
        "vllm serve m",
        "ssh_direc ssh_proxy",
    )
    assert second["image_args"] == ["m", "--port", "8000"] and second["image_runtype"] == "args"
    assert "22/tcp" not in second["ports"] and "8000/tcp" in second["ports"]  # args mode: no sshd
    assert parse_env({"A": 1}) == {"A": "1"}


def test_insufficient_credit_is_refused_with_a_clear_message() -> None:
    with FakeVastServer(balance=0.5, ssh=False) as server, httpx.Client(base_url=server.url) as client:
        response = client.put(
            "/api/v0/asks/31001008/", json={"image": IMAGE}, headers={"Authorization": f"Bearer {KEY}"}
        )
        assert response.status_code == 400
        assert response.json()["error"] == "insufficient_credit" and "credit" in response.json()["msg"]
        assert server.instances == {}


def test_a_bid_below_the_minimum_creates_a_stopped_instance_and_says_so(api: httpx.Client) -> None:
    response = api.put("/api/v0/asks/31001001/", json={"image": IMAGE, "price": 0.01})
    reply = response.json()
    assert reply["success"] is False and isinstance(reply["new_contract"], int)
    instance = show(api, reply["new_contract"])
    assert instance is not None and instance["intended_status"] == instance["cur_state"] == "stopped"
    assert instance["is_bid"] is True


# -- lifecycle ------------------------------------------------------------------------------------------------


def test_lifecycle_create_boot_stop_start_destroy(api: httpx.Client, server: FakeVastServer) -> None:
    instance_id = create(api, env={"-p 8000:8000": "1"})
    booting = show(api, instance_id)
    assert booting is not None
    assert booting["actual_status"] is None and booting["intended_status"] == "running"
    assert booting["ports"] is None and isinstance(booting["start_date"], float)
    server.advance(BOOT[0])
    assert (show(api, instance_id) or {})["actual_status"] == "loading"
    server.advance(UP - BOOT[0])
    running = show(api, instance_id)
    assert running is not None and running["actual_status"] == "running"
    assert running["public_ipaddr"] == running["ssh_host"] == "127.0.0.1"
    host_port = running["ports"]["22/tcp"][0]["HostPort"]
    assert isinstance(host_port, str) and int(host_port) == running["ssh_port"]
    assert set(running["ports"]) == {"22/tcp", "8000/tcp"}

    assert api.put(f"/api/v0/instances/{instance_id}/", json={"state": "stopped"}).json() == {"success": True}
    stopped = show(api, instance_id)
    assert stopped is not None and stopped["actual_status"] == "exited" and stopped["ports"] is None
    assert stopped["intended_status"] == stopped["cur_state"] == "stopped"

    api.put(f"/api/v0/instances/{instance_id}/", json={"state": "running"})
    assert (show(api, instance_id) or {})["actual_status"] is None
    server.advance(UP)
    assert (show(api, instance_id) or {})["actual_status"] == "running"

    labelled = api.put(f"/api/v0/instances/{instance_id}/", json={"label": "renamed"})
    assert labelled.json()["success"] is True and (show(api, instance_id) or {})["label"] == "renamed"

    assert delete(api, f"/api/v0/instances/{instance_id}/").json()["success"] is True
    assert show(api, instance_id) is None
    assert server.destroyed == {instance_id} and server.instances == {}
    assert api.get("/api/v1/instances/").json()["instances"] == []
    assert 31_001_001 in {o["id"] for o in search(api, {})}  # the machine is back on the market


def test_destroying_twice_and_managing_the_unknown_answer_no_such_instance(api: httpx.Client) -> None:
    instance_id = create(api)
    assert delete(api, f"/api/v0/instances/{instance_id}/").status_code == 200
    again = delete(api, f"/api/v0/instances/{instance_id}")
    assert again.status_code == 404
    assert again.json()["success"] is False and again.json()["error"] == "no_such_instance"
    assert api.put("/api/v0/instances/999/", json={"state": "stopped"}).status_code == 404
    assert api.put(f"/api/v0/instances/{create(api, 31_001_004)}/", json={"state": "paused"}).status_code == 400


def test_v1_list_pages_filters_and_counts_labels() -> None:
    offers = [{"id": n} for n in range(1, 31)]
    with (
        FakeVastServer(offers=offers, ssh=False, balance=1000) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as api,
    ):
        ids = [create(api, n, label="odd" if n % 2 else None) for n in range(1, 31)]
        first = api.get("/api/v1/instances/", params={"limit": 100}).json()
        assert len(first["instances"]) == 25 and first["total_instances"] == first["instances_found"] == 30
        assert first["label_counts"] == {"odd": 15, "": 15}
        second = api.get("/api/v1/instances/", params={"after_token": first["next_token"]}).json()
        assert [i["id"] for i in first["instances"] + second["instances"]] == ids and second["next_token"] is None

        odd = api.get("/api/v1/instances/", params={"select_filters": json.dumps({"label": {"eq": "odd"}})}).json()
        assert odd["instances_found"] == 15 and {i["label"] for i in odd["instances"]} == {"odd"}
        newest = api.get("/api/v1/instances/", params={"order_by": json.dumps([{"col": "id", "dir": "desc"}])})
        assert newest.json()["instances"][0]["id"] == ids[-1]
        cols = api.get("/api/v1/instances/", params={"select_cols": json.dumps(["label"]), "limit": 1}).json()
        assert cols["instances"] == [{"label": "odd", "id": ids[0]}]

        computed = api.get("/api/v1/instances/", params={"select_filters": json.dumps({"dph_total": {"lt": 1}})})
        assert computed.status_code == 400
        assert api.get("/api/v1/instances/", params={"after_token": "garbage"}).json()["error"] == "invalid_token"
        legacy = api.get("/api/v0/instances/").json()
        assert legacy["instances_found"] == 30 and len(legacy["instances"]) == 30


def test_request_logs_are_served_at_the_result_url(api: httpx.Client, server: FakeVastServer) -> None:
    instance_id = create(api)
    server.advance(UP)
    reply = api.put(f"/api/v0/instances/request_logs/{instance_id}/", json={"tail": "2"}).json()
    assert reply["success"] is True and reply["result_url"].startswith(server.url)
    text = httpx.get(reply["result_url"]).text  # no key: like the S3 URL Vast hands out
    assert text.splitlines()[-1] == "INFO:     Application startup complete." and len(text.splitlines()) == 2
    assert api.put("/api/v0/instances/request_logs/1/", json={}).status_code == 404


# -- faults ---------------------------------------------------------------------------------------------------


def test_each_429_flavour_has_its_real_body(api: httpx.Client, server: FakeVastServer) -> None:
    server.inject("429")
    server.inject("429-json")
    server.inject("429-quota")
    plain, as_json, quota = (api.get("/api/v0/users/current") for _ in range(3))
    assert plain.status_code == 429 and plain.text == "API requests too frequent"
    assert as_json.json() == {"detail": "API requests too frequent endpoint threshold=1.0"}
    assert quota.json()["error"] == "search_quota_exceeded"
    assert int(quota.headers["X-RateLimit-Reset"]) > server.now()
    assert api.get("/api/v0/users/current").status_code == 200


@pytest.mark.parametrize("status", [500, 502, 503, 504, 410])
def test_status_faults(api: httpx.Client, server: FakeVastServer, status: int) -> None:
    server.inject(str(status), path="/api/v0/instances/*", method="GET", times=2)
    assert api.get("/api/v0/users/current").status_code == 200  # another path: untouched
    assert [api.get("/api/v0/instances/5/").status_code for _ in range(3)] == [status, status, 200]
    assert [r.status for r in server.requests][-3:] == [status, status, 200]
    assert [r.fault for r in server.requests][-3:] == [str(status), str(status), None]


def test_a_faulted_create_is_not_processed_so_a_retry_rents_once(api: httpx.Client, server: FakeVastServer) -> None:
    server.inject("502", path="/api/v0/asks/31001001", method="PUT")
    first = api.put("/api/v0/asks/31001001/", json={"image": IMAGE})
    assert first.status_code == 502 and first.headers["content-type"] == "text/html"
    create(api)
    assert len(server.instances) == 1


def test_unknown_faults_and_failures_are_rejected(server: FakeVastServer) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        server.inject("418")
    with pytest.raises(ValueError, match="unknown failure"):
        server.fail_next_instance("explode")
    assert check_fault("slow:0.5") == "slow:0.5"


def test_a_dropped_connection_answers_nothing(api: httpx.Client, server: FakeVastServer) -> None:
    server.inject("drop")
    with pytest.raises(httpx.TransportError):
        api.get("/api/v0/users/current")
    assert api.get("/api/v0/users/current").status_code == 200
    assert server.requests[0].status == 0


def test_a_slow_answer_is_late_but_processed(api: httpx.Client, server: FakeVastServer) -> None:
    """A client that stops waiting before the slow answer comes still rented the instance (late, not lost)."""
    server.inject("slow:0.5", path="/api/v0/asks/*", method="PUT")
    body = {"client_id": "me", "image": IMAGE, "disk": 40, "runtype": "ssh_direc ssh_proxy"}
    with pytest.raises(httpx.ReadTimeout):  # an answer without the fault comes at once, well inside 0.1 s
        api.put("/api/v0/asks/31001001/", json=body, timeout=0.1)
    deadline = time.monotonic() + 30  # a guard against a hang, not a measurement
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.02)  # the fake logs a request once it has answered it
    (request,) = server.requests
    assert (request.method, request.status, request.fault) == ("PUT", 200, "slow:0.5")
    assert len(server.instances) == 1  # processed: the rental happened, though its answer came too late
    retry = api.put("/api/v0/asks/31001001/", json=body)  # what a client that gave up sees if it tries again
    assert retry.status_code == 410 and "it has already been rented" in retry.json()["msg"]


@pytest.mark.parametrize(
    ("how", "status", "message"),
    [
        ("never-running", "loading", "Pulling image"),
        ("exit-while-loading", "exited", "Error"),
        ("oci-error", "created", "OCI runtime create failed"),
        ("unknown", "unknown", None),
        ("offline", "offline", None),
    ],
)
def test_failing_instances(api: httpx.Client, server: FakeVastServer, how: str, status: str, message: str) -> None:
    server.fail_next_instance(how)
    failing, healthy = create(api), create(api, 31_001_004)
    server.advance(600)
    instance = show(api, failing)
    assert instance is not None and instance["actual_status"] == status and instance["ports"] is None
    if message:
        assert message in instance["status_msg"]
    assert (show(api, healthy) or {})["actual_status"] == "running"  # only the next instance fails


def test_an_instance_can_be_invisible_right_after_create(api: httpx.Client, server: FakeVastServer) -> None:
    server.fail_next_instance("invisible-first-read")
    instance_id = create(api)
    assert show(api, instance_id) is None
    assert show(api, instance_id) is not None


def test_set_status_pushes_an_instance_into_any_state(api: httpx.Client, server: FakeVastServer) -> None:
    instance_id = create(api)
    server.advance(UP)
    assert server.instances[instance_id]["ssh_port"] is not None
    server.set_status(instance_id, "unknown", "no heartbeat")
    instance = server.instances[instance_id]
    assert (instance["actual_status"], instance["status_msg"], instance["ports"]) == ("unknown", "no heartbeat", None)
    assert server.ssh_host_key(instance_id) is None  # its sshd is gone
    with pytest.raises(KeyError):
        server.set_status(1, "exited")


# -- money ----------------------------------------------------------------------------------------------------


def test_balance_pays_dph_total_while_running_and_storage_while_stopped(
    api: httpx.Client, server: FakeVastServer
) -> None:
    start = server.balance()
    instance_id = create(api, disk=100)
    server.advance(UP)  # booted; loading and provisioning cost storage only
    instance = show(api, instance_id)
    assert instance is not None and instance["actual_status"] == "running"
    before = server.balance()
    server.advance(3600)
    assert before - server.balance() == pytest.approx(instance["dph_total"], rel=1e-3)
    assert instance["dph_total"] == pytest.approx(0.35 + 0.15 * 100 / 720, abs=1e-6)

    api.put(f"/api/v0/instances/{instance_id}/", json={"state": "stopped"})
    before = server.balance()
    server.advance(3600)
    assert before - server.balance() == pytest.approx(0.15 * 100 / 720, rel=1e-3)

    server.set_status(instance_id, "offline")
    before = server.balance()
    server.advance(3600)
    assert server.balance() == pytest.approx(before, abs=1e-9)

    user = api.get("/api/v0/users/current").json()
    assert user["credit"] == user["balance"] == pytest.approx(server.balance(), abs=1e-5)
    assert user["credit"] < start and "api_key" not in user and KEY not in json.dumps(user)


def test_running_out_of_money_stops_running_instances() -> None:
    with (
        FakeVastServer(balance=1.0, ssh=False) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as api,
    ):
        instance_id = create(api, 31_001_004)  # $0.16/h GPU
        server.advance(10 * 3600)
        instance = show(api, instance_id)
        assert instance is not None and instance["actual_status"] == "exited"
        assert instance["intended_status"] == "stopped"
        storage = 0.10 * 40 / 720  # $/h: it keeps billing after the stop, so the balance goes a little negative
        assert -10 * storage < server.balance() <= 0
        refused = api.put(f"/api/v0/instances/{instance_id}/", json={"state": "running"})
        assert refused.status_code == 400


def test_charges_need_a_day_range_and_itemise_each_instance(api: httpx.Client, server: FakeVastServer) -> None:
    assert api.get("/api/v0/charges/").status_code == 400
    instance_id = create(api)
    server.advance(UP + 3600)
    delete(api, f"/api/v0/instances/{instance_id}/")
    day = {"day": {"gte": server.now() - 86_400, "lte": server.now()}, "type": {"in": ["instance"]}}
    reply = api.get("/api/v0/charges/", params={"select_filters": json.dumps(day)}).json()
    [charge] = reply["results"]
    assert charge["source"] == f"instance-{instance_id}" and charge["amount"] == pytest.approx(
        0.35 + 0.15 * 40 / 720, 1e-3
    )
    assert {item["type"] for item in charge["items"]} == {"gpu", "disk"}
    assert sum(item["amount"] for item in charge["items"]) == pytest.approx(charge["amount"], abs=1e-5)


# -- auth and keys --------------------------------------------------------------------------------------------


def test_auth_failures_have_vasts_bodies(server: FakeVastServer) -> None:
    missing = httpx.get(f"{server.url}/api/v0/users/current")
    assert missing.status_code == 403
    assert missing.json() == {"success": False, "error": "auth_error", "msg": "This action requires login."}
    wrong = httpx.get(f"{server.url}/api/v0/instances/1/", headers={"Authorization": "Bearer stolen"})
    assert wrong.status_code == 401 and wrong.json()["msg"] == "Invalid user key"
    assert httpx.get(f"{server.url}/api/v0/users/current", params={"api_key": KEY}).status_code == 200
    assert httpx.get(f"{server.url}/api/v0/nowhere/").status_code == 404
    assert [r.status for r in server.requests] == [403, 401, 200, 404]
    assert server.requests[1].headers["authorization"] == "Bearer stolen"


def test_ssh_keys_for_the_account_and_for_one_instance(api: httpx.Client, server: FakeVastServer) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake me@laptop"
    added = api.post("/api/v0/ssh/", json={"ssh_key": key}).json()
    assert added["success"] is True and added["key"]["key"] == key
    assert api.post("/api/v0/ssh/", json={"ssh_key": key}).json()["key"]["id"] == added["key"]["id"]
    assert [entry["key"] for entry in api.get("/api/v0/ssh/").json()] == [key]
    assert api.post("/api/v0/ssh/", json={"ssh_key": "not a key"}).status_code == 400

    instance_id = create(api)
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOther other"
    assert api.post(f"/api/v0/instances/{instance_id}/ssh/", json={"ssh_key": other}).json()["success"] is True
    attached = json.loads(api.get(f"/api/v0/instances/{instance_id}/ssh/").json()["ssh_keys"])
    assert sorted(entry["key"] for entry in attached) == sorted([key, other])
    assert server.ssh_keys[0]["key"] == key
