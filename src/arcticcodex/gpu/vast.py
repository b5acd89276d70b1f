"""A thin client for the Vast.ai REST API (``https://console.vast.ai/api/v0``) on httpx.

Why not the ``vastai`` CLI: shelling out to it means parsing tables written for people, with flags that
change between its versions.  The REST API is small, documented and stable; this module speaks it directly:

* auth with ``Authorization: Bearer`` from ``VAST_API_KEY`` (read at construction, never logged or put
  in an error); ``VAST_URL`` points the client elsewhere (the fake in tests, a proxy);
* 429, 502, 503 and 504, timeouts and dropped connections are retried by the project's one
  :class:`~arcticcodex.retry.RetryPolicy` (exponential backoff and jitter; a ``Retry-After`` of up to
  a minute, in seconds or as an HTTP-date, is waited for, a longer one falls back to the backoff) —
  except the daily search-quota 429, which no amount of waiting before midnight UTC fixes;
* ``create`` is never retried after a request that may have reached Vast (a retry could rent a second
  instance); the caller finds a half-created instance by its label instead;
* every other error raises :class:`~arcticcodex.errors.VastApiError` with what Vast answered.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import httpx2 as httpx

from ..errors import ConfigError, VastApiError, VastUnavailableError
from ..retry import RetryPolicy, parse_retry_after
from .offers import Instance, Offer, OfferQuery

DEFAULT_URL = "https://console.vast.ai"
API_KEY_ENV = "VAST_API_KEY"
URL_ENV = "VAST_URL"
_RETRIED_STATUSES = frozenset({429, 502, 503, 504})
_LIST_PAGE = 25  # the v1 list endpoint's maximum page size


class VastClient:
    """Synchronous Vast.ai REST client; one per process is plenty (it keeps a connection pool)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        environ: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        key = api_key if api_key is not None else env.get(API_KEY_ENV, "")
        if not key.strip():
            raise ConfigError(
                f"no Vast.ai API key: set {API_KEY_ENV} (create one at https://cloud.vast.ai/manage-keys/); "
                "keys are read from the environment only, never from arcticcodex.toml"
            )
        self._api_key = key.strip()
        self.base_url = (base_url or env.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self._http = http_client or httpx.Client(timeout=timeout)
        self._owns_http = http_client is None
        self.retry = retry or RetryPolicy(
            max_attempts=max(1, max_attempts),
            base_delay=backoff,
            max_delay=max_backoff,
            max_retry_after=60.0,
            beyond_max_retry_after="backoff",  # a far-off Retry-After is not a reason to give up here
        )
        self._sleep = sleep

    # the policy's figures under the names this client's keyword arguments give them
    @property
    def max_attempts(self) -> int:
        return self.retry.max_attempts

    @max_attempts.setter
    def max_attempts(self, value: int) -> None:
        self.retry = replace(self.retry, max_attempts=max(1, value))

    @property
    def backoff(self) -> float:
        return self.retry.base_delay

    @backoff.setter
    def backoff(self, value: float) -> None:
        self.retry = replace(self.retry, base_delay=value)

    @property
    def max_backoff(self) -> float:
        return self.retry.max_delay

    @max_backoff.setter
    def max_backoff(self, value: float) -> None:
        self.retry = replace(self.retry, max_delay=value)

    # -- offers ---------------------------------------------------------------------------------------

    def search_offers(self, query: OfferQuery | Mapping[str, Any]) -> list[Offer]:
        body = query.to_api() if isinstance(query, OfferQuery) else dict(query)
        reply = self._request("POST", "/api/v0/bundles/", body=body)
        return [Offer.from_api(raw) for raw in reply.get("offers") or [] if isinstance(raw, dict)]

    # -- instances ------------------------------------------------------------------------------------

    def create_instance(self, offer_id: int, body: Mapping[str, Any]) -> int:
        """Rent offer ``offer_id``; returns the new instance id.  Never retried once it may have arrived."""
        reply = self._request("PUT", f"/api/v0/asks/{int(offer_id)}/", body={"client_id": "me", **body}, retry=False)
        contract = reply.get("new_contract") if isinstance(reply, dict) else None
        if isinstance(contract, str) and contract.isdigit():
            contract = int(contract)
        if not isinstance(contract, int) or isinstance(contract, bool):
            # never echo the reply: it carries the instance's own API key
            raise VastApiError(f"Vast.ai answered the rental of offer {offer_id} without an instance id")
        return contract

    def show_instance(self, instance_id: int) -> Instance | None:
        """The instance, or None when Vast does not know it (destroyed, or not visible yet)."""
        reply = self._request("GET", f"/api/v0/instances/{int(instance_id)}/", params={"owner": "me"})
        raw = reply.get("instances")
        return Instance.from_api(raw) if isinstance(raw, dict) else None

    def list_instances(self, *, label_prefix: str = "") -> list[Instance]:
        """Every instance of the account (paged through v1), optionally only labels with a prefix."""
        instances: list[Instance] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": _LIST_PAGE}
            if token:
                params["after_token"] = token
            reply = self._request("GET", "/api/v1/instances/", params=params)
            instances.extend(Instance.from_api(raw) for raw in reply.get("instances") or [] if isinstance(raw, dict))
            token = reply.get("next_token")
            if not token:
                break
        return [instance for instance in instances if instance.label.startswith(label_prefix)]

    def set_state(self, instance_id: int, state: str) -> None:
        """Stop (``"stopped"``) or start (``"running"``) an instance."""
        self._request("PUT", f"/api/v0/instances/{int(instance_id)}/", body={"state": state})

    def destroy_instance(self, instance_id: int) -> bool:
        """Destroy an instance; False when it was already gone (destroying is idempotent)."""
        try:
            self._request("DELETE", f"/api/v0/instances/{int(instance_id)}/", body={})
        except VastApiError as error:
            # only these codes mean "no such instance": some 404s are about the key (reference §6)
            if error.code in ("no_such_instance", "not_found"):
                return False
            raise
        return True

    def request_logs(self, instance_id: int, *, tail: int = 200) -> str:
        """The container's last log lines (Vast stages them at a URL that may take a moment to appear)."""
        reply = self._request("PUT", f"/api/v0/instances/request_logs/{int(instance_id)}/", body={"tail": str(tail)})
        url = reply.get("result_url")
        if not isinstance(url, str):
            return ""
        for _ in range(20):
            try:
                response = self._http.get(url)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                return response.text
            self._sleep(0.3)
        return ""

    # -- account --------------------------------------------------------------------------------------

    def add_ssh_key(self, public_key: str) -> None:
        """Register an SSH public key with the account, unless it is there already."""
        listed = self._request("GET", "/api/v0/ssh/")
        entries = listed if isinstance(listed, list) else listed.get("keys") or listed.get("ssh_keys") or []
        wanted = " ".join(public_key.split()[:2])
        if any(isinstance(e, dict) and " ".join(str(e.get("key", "")).split()[:2]) == wanted for e in entries):
            return
        self._request("POST", "/api/v0/ssh/", body={"ssh_key": public_key})

    def attach_ssh_key(self, instance_id: int, public_key: str) -> None:
        self._request("POST", f"/api/v0/instances/{int(instance_id)}/ssh/", body={"ssh_key": public_key})

    def current_user(self) -> dict[str, Any]:
        reply = self._request("GET", "/api/v0/users/current")
        if not isinstance(reply, dict):
            raise VastApiError(f"Vast.ai's account answer is not an object: {type(reply).__name__}")
        user: dict[str, Any] = reply
        user.pop("api_key", None)  # the user object carries the key: never keep it
        return user

    def balance(self) -> float:
        """Spendable credit in dollars (``credit``, falling back to ``balance``)."""
        user = self.current_user()
        for name in ("credit", "balance"):
            value = user.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        raise VastApiError("Vast.ai's account answer holds no credit or balance")

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> VastClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        retry: bool = True,
    ) -> Any:
        url = self.base_url + path
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        attempts = self.max_attempts if retry else 1
        what = f"{method} {path}"
        for attempt in range(1, attempts + 1):
            try:
                response = self._http.request(
                    method,
                    url,
                    headers=headers,
                    params={k: v if isinstance(v, str | int) else json.dumps(v) for k, v in (params or {}).items()},
                    content=None if body is None else json.dumps(body).encode(),
                )
            except httpx.TransportError as failure:
                if attempt == attempts:
                    # from None: the transport error holds the request, whose headers carry the API key
                    raise VastUnavailableError(
                        f"Vast.ai did not answer {what} after {attempt} attempt(s): {type(failure).__name__}; "
                        f"check the network or {URL_ENV}"
                    ) from None
                self._sleep(self.retry.backoff(attempt))
                continue
            if response.status_code < 400:
                return _json(response, what)
            error = _api_error(response, what, secret=self._api_key)
            if error.code == "search_quota_exceeded":
                raise VastUnavailableError(
                    f"{error} — the daily search quota is spent; it resets at midnight UTC (not retried)",
                    status=429,
                    code=error.code,
                )
            if response.status_code in _RETRIED_STATUSES:
                delay = self._retry_delay(attempt, attempts, response.headers.get("retry-after"))
                if delay is not None:
                    self._sleep(delay)
                    continue
                raise VastUnavailableError(
                    f"{error} (gave up after {attempt} attempt(s))", status=error.status, code=error.code
                )
            raise error
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _retry_delay(self, attempt: int, attempts: int, retry_after: str | None) -> float | None:
        """Seconds before the next attempt, or None when ``attempt`` was the last one this call gets."""
        if attempt >= attempts:
            return None
        return self.retry.delay(attempt, parse_retry_after(retry_after))


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        # from None: the JSON decoder's position adds nothing to the quoted answer
        raise VastApiError(
            f"Vast.ai answered {what} with something that is not JSON (HTTP {response.status_code}): "
            f"{response.text[:200]!r}",
            status=response.status_code,
        ) from None


def _api_error(response: httpx.Response, what: str, *, secret: str) -> VastApiError:
    """Vast's error bodies vary: {"error","msg"}, {"detail"}, {"message"} or plain text.

    The key is blanked out of the message in case a server (or a proxy) ever echoes the request.
    """
    code = ""
    message = response.text.strip()[:300]
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        code = str(payload.get("error") or "")
        message = str(payload.get("msg") or payload.get("detail") or payload.get("message") or code or message)
    hint = {
        401: " — the API key is wrong or was deleted; check VAST_API_KEY",
        403: " — the request needs a valid API key; set VAST_API_KEY",
    }.get(response.status_code, "")
    message = message.replace(secret, "[VAST_API_KEY]")
    return VastApiError(
        f"Vast.ai refused {what}: HTTP {response.status_code} {code + ': ' if code and code != message else ''}"
        f"{message}{hint}",
        status=response.status_code,
        code=code,
    )
