"""The sandbox's enrich endpoints over real HTTP: submit, validation, results, credits."""

from __future__ import annotations

import time

import requests

from dropq.dropcontact.sandbox import SandboxServer
from tests.support.sandbox import get_results, post_batch, wait_for_results

NOT_READY = {"error": False, "reason": "Request not ready yet, try again in 30 seconds", "success": False}
ADA = {"first_name": "ada", "last_name": "LOVELACE", "website": "https://www.example.com/about"}


def _people(count: int) -> list[dict[str, object]]:
    return [
        {"first_name": f"Person{i}", "last_name": "Martin", "company": "Acme", "custom_fields": {"row": str(i)}}
        for i in range(count)
    ]


def test_submit_answers_a_request_id_and_the_credits_left(sandbox: SandboxServer) -> None:
    """A valid batch gets 200 with request_id, credits_left already reduced, error false and success true."""
    response = post_batch(sandbox, {"data": [ADA, ADA | {"first_name": "bob"}]})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"credits_left", "request_id", "error", "success"}
    assert body["credits_left"] == 100_000 - 2
    assert body["error"] is False and body["success"] is True
    assert isinstance(body["request_id"], str) and len(body["request_id"]) == 15


def test_missing_data_is_refused_with_the_documented_message(sandbox: SandboxServer) -> None:
    """No data, empty data or a body without a data list: 400 "Missing data in JSON"."""
    expected = {"error": True, "reason": "Missing data in JSON", "success": False}
    for body in ({}, {"data": []}, {"data": "x"}, {"siren": True}):
        response = post_batch(sandbox, body)
        assert (response.status_code, response.json()) == (400, expected)


def test_more_than_250_records_are_refused_with_the_documented_message(sandbox: SandboxServer) -> None:
    """251 records: 400 with the exact message, and nothing is charged."""
    response = post_batch(sandbox, {"data": _people(251)})
    assert response.status_code == 400
    assert response.json() == {
        "error": True,
        "reason": "Too many records, you can only submit up to 250 records",
        "success": False,
    }
    assert post_batch(sandbox, {"data": _people(250)}).status_code == 200
    assert sandbox.stats()["credits_charged"] == 250


def test_a_record_over_15_kb_counting_custom_fields_is_refused(sandbox: SandboxServer) -> None:
    """A record whose custom_fields push it past 15 * 1024 bytes of JSON gets the exact 400 message."""
    big = {"company": "Acme", "custom_fields": {"blob": "x" * (15 * 1024)}}
    response = post_batch(sandbox, {"data": [{"company": "Acme"}, big]})
    assert response.status_code == 400
    assert response.json() == {
        "error": True,
        "reason": "Data size is too big, you can only submit up to 15 kB of data in a single record",
        "success": False,
    }
    just_fits = {"company": "Acme", "custom_fields": {"blob": "x" * (15 * 1024 - 60)}}
    assert post_batch(sandbox, {"data": [just_fits]}).status_code == 200


def test_a_body_that_is_not_json_gets_a_fastapi_422(sandbox: SandboxServer) -> None:
    """Broken JSON is a validation error in FastAPI's shape."""
    response = requests.post(
        f"{sandbox.url}/v1/enrich/all", data=b"{not json", headers={"X-Access-Token": sandbox.api_key}, timeout=10
    )
    assert response.status_code == 422
    assert response.json() == {"detail": [{"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid"}]}


def test_a_batch_the_balance_cannot_cover_is_refused_whole_with_403(sandbox: SandboxServer) -> None:
    """With 2 credits, a 3-record batch gets 403 and nothing is charged; a 2-record one passes."""
    sandbox.configure(credits=2)
    response = post_batch(sandbox, {"data": _people(3)})
    assert response.status_code == 403
    assert response.json() == {
        "error": True,
        "reason": "Not enough credits to process all the records of this request",
        "success": False,
    }
    assert sandbox.stats()["credits_left"] == 2
    assert post_batch(sandbox, {"data": _people(2)}).json()["credits_left"] == 0


def test_size_and_count_are_checked_before_credits(sandbox: SandboxServer) -> None:
    """An oversized batch on an empty balance gets the 400, not the 403."""
    sandbox.configure(credits=0)
    assert post_batch(sandbox, {"data": _people(251)}).status_code == 400


def test_the_empty_record_credit_check_is_free(sandbox: SandboxServer) -> None:
    """The old docs' {"data": [{}]} answers 200 with credits_left and charges nothing."""
    response = post_batch(sandbox, {"data": [{}]})
    body = response.json()
    assert response.status_code == 200
    assert body["credits_left"] == 100_000 and body["success"] is True and body["error"] is False
    stats = sandbox.stats()
    assert (stats["credits_charged"], stats["batches_received"], stats["credit_checks"]) == (0, 0, 1)


def test_a_batch_is_not_ready_while_processing(sandbox: SandboxServer) -> None:
    """A GET right after the POST answers 200 with the exact not-ready envelope."""
    sandbox.configure(processing_min_s=30, processing_max_s=30)
    request_id = post_batch(sandbox, {"data": [ADA]}).json()["request_id"]
    response = get_results(sandbox, request_id)
    assert (response.status_code, response.json()) == (200, NOT_READY)


def test_an_unknown_request_id_looks_not_ready(sandbox: SandboxServer) -> None:
    """An id never issued gets the same not-ready answer, not a 404."""
    response = get_results(sandbox, "qzmxkpvlrtdnhwa")
    assert (response.status_code, response.json()) == (200, NOT_READY)


def test_an_expired_request_id_looks_not_ready(sandbox: SandboxServer) -> None:
    """Past the retention, a finished batch's results are gone and it answers not ready."""
    sandbox.configure(retention_s=0.3)
    request_id = post_batch(sandbox, {"data": [ADA]}).json()["request_id"]
    assert wait_for_results(sandbox, request_id)["success"] is True
    deadline = time.monotonic() + 3
    body = get_results(sandbox, request_id).json()
    while body != NOT_READY and time.monotonic() < deadline:
        time.sleep(0.02)
        body = get_results(sandbox, request_id).json()
    assert body == NOT_READY


def test_results_come_in_input_order_with_custom_fields_unchanged(sandbox: SandboxServer) -> None:
    """data[i] answers input i, and custom_fields come back exactly as sent."""
    records = _people(40)
    records[7]["custom_fields"] = {"id": "7", "note": "été, 'quotes' \"and\" unicode ✓"}
    request_id = post_batch(sandbox, {"data": records}).json()["request_id"]
    body = wait_for_results(sandbox, request_id)
    assert body["success"] is True and body["error"] is False
    data = body["data"]
    assert isinstance(data, list) and len(data) == 40
    assert [item["custom_fields"] for item in data] == [record["custom_fields"] for record in records]
    assert [item["first_name"] for item in data] == [f"Person{i}" for i in range(40)]


def test_ready_results_are_normalised_and_carry_credits_left(sandbox: SandboxServer) -> None:
    """Names capitalised, website as www.domain, and credits_left beside data."""
    request_id = post_batch(sandbox, {"data": [ADA]}).json()["request_id"]
    body = wait_for_results(sandbox, request_id)
    record = body["data"][0]  # type: ignore[index]
    assert (record["first_name"], record["last_name"], record["website"]) == ("Ada", "Lovelace", "www.example.com")
    assert isinstance(body["credits_left"], int)


def test_language_en_gives_english_civility_and_qualifications(sandbox: SandboxServer) -> None:
    """French by default (Madame, nominatif@pro); English with language=en (Mrs, nominative@pro)."""
    record = {"first_name": "Marie", "last_name": "Curie", "email": "marie.curie@radium.com"}
    french = wait_for_results(sandbox, post_batch(sandbox, {"data": [record]}).json()["request_id"])
    english = wait_for_results(sandbox, post_batch(sandbox, {"data": [record], "language": "en"}).json()["request_id"])
    fr_record, en_record = french["data"][0], english["data"][0]  # type: ignore[index]
    assert (fr_record["civility"], en_record["civility"]) == ("Madame", "Mrs")
    assert fr_record["email"][0]["email"] == en_record["email"][0]["email"] == "marie.curie@radium.com"
    fr_local, _, fr_domain = fr_record["email"][0]["qualification"].partition("@")
    en_local, _, en_domain = en_record["email"][0]["qualification"].partition("@")
    pairs = {"nominatif": "nominative", "catch-all": "catch-all", "non_validé": "non_validated", "invalide": "invalid"}
    assert pairs.get(fr_local, fr_local) == en_local or (fr_local, en_local) == ("Ne_Pas_Contacter", "Do_Not_Contact")
    assert (fr_domain, en_domain) == ("pro", "pro")


def test_siren_adds_the_french_company_fields(sandbox: SandboxServer) -> None:
    """With siren true, a company gets siren, siret, address, VAT and NAF fields; without, none."""
    record = {"first_name": "Jean", "last_name": "Dupont", "company": "Acme", "num_siren": "552100554"}
    with_siren = wait_for_results(sandbox, post_batch(sandbox, {"data": [record], "siren": True}).json()["request_id"])
    without = wait_for_results(sandbox, post_batch(sandbox, {"data": [record]}).json()["request_id"])
    enriched = with_siren["data"][0]  # type: ignore[index]
    assert enriched["siren"] == "552 100 554"
    assert enriched["siret"].startswith("552 100 554 ")
    assert enriched["vat"] == "FR" + f"{(12 + 3 * (552100554 % 97)) % 97:02d}" + "552100554"
    for key in ("siret_address", "siret_zip", "siret_city", "naf5_code", "naf5_des", "nb_employees"):
        assert enriched[key]
    assert "siren" not in without["data"][0]  # type: ignore[index]


def test_force_results_while_processing_returns_inputs_with_status_in_progress(sandbox: SandboxServer) -> None:
    """forceResults=true before the end: success true, status in_progress, unprocessed records echo their input."""
    sandbox.configure(processing_min_s=30, processing_max_s=30)
    records = _people(5)
    request_id = post_batch(sandbox, {"data": records}).json()["request_id"]
    body = get_results(sandbox, request_id, force=True).json()
    assert (body["success"], body["error"], body["status"]) == (True, False, "in_progress")
    assert body["data"] == records
    assert body["credits_left"] == 100_000 - 5


def test_force_results_once_done_says_ready(sandbox: SandboxServer) -> None:
    """forceResults=true after the end: the full results with status ready."""
    request_id = post_batch(sandbox, {"data": [ADA]}).json()["request_id"]
    wait_for_results(sandbox, request_id)
    body = get_results(sandbox, request_id, force=True).json()
    assert (body["success"], body["status"], body["data"][0]["first_name"]) == (True, "ready", "Ada")


def test_credits_are_refunded_for_records_where_no_email_is_found(sandbox: SandboxServer) -> None:
    """Charged at submit; when done, one credit back per record with no email (none can be built without a name)."""
    records = [
        {"company": "Acme"},
        {"company": "Globex"},
        {"first_name": "Ada", "last_name": "King", "website": "a.io"},
    ]
    sandbox.configure(no_email_probability=0.0)
    submitted = post_batch(sandbox, {"data": records}).json()
    assert submitted["credits_left"] == 100_000 - 3
    body = wait_for_results(sandbox, submitted["request_id"])
    assert body["credits_left"] == 100_000 - 1
    stats = sandbox.stats()
    assert (stats["credits_charged"], stats["credits_refunded"], stats["credits_left"]) == (3, 2, 99_999)


def test_email_verification_costs_one_credit_never_refunded(sandbox: SandboxServer) -> None:
    """A record sent with an email costs 1 credit even when the address is invalid."""
    submitted = post_batch(sandbox, {"data": [{"email": "not-an-address"}], "language": "en"}).json()
    body = wait_for_results(sandbox, submitted["request_id"])
    assert body["data"][0]["email"] == [{"email": "not-an-address", "qualification": "invalid@invalid domain"}]  # type: ignore[index]
    assert body["credits_left"] == 100_000 - 1
    assert sandbox.stats()["credits_refunded"] == 0


def test_credits_endpoint_answers_the_balance_for_free(sandbox: SandboxServer) -> None:
    """GET /v1/account/credits answers {"credits": n} and charges nothing."""
    post_batch(sandbox, {"data": _people(3)})
    response = requests.get(f"{sandbox.url}/v1/account/credits", headers={"X-Access-Token": sandbox.api_key}, timeout=5)
    assert (response.status_code, response.json()) == (200, {"credits": 100_000 - 3})


def test_unknown_routes_answer_not_found_like_the_api(sandbox: SandboxServer) -> None:
    """An unknown path gets 404 {"detail": "Not Found"}; a wrong method 405 {"detail": "Method Not Allowed"}."""
    missing = requests.get(f"{sandbox.url}/v2/enrich/all", timeout=5)
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    wrong = requests.delete(f"{sandbox.url}/v1/enrich/all", headers={"X-Access-Token": sandbox.api_key}, timeout=5)
    assert (wrong.status_code, wrong.json()) == (405, {"detail": "Method Not Allowed"})
