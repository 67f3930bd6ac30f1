"""A lean JSON-RPC client (with batches) for the indexer's hot path, where web3's formatting is overhead."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import orjson

from ..protocol.errors import ChainError


class RpcError(ChainError):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method} failed ({code}): {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data: Any = None  # revert data of a failed eth_call, when the node gives it


class RpcUnavailable(ChainError):
    """The node could not be reached or did not answer in time."""


_JSON = {"content-type": "application/json"}


class RpcClient:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self._http = httpx.Client(timeout=timeout)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._http.close()

    def _post(self, body: Any) -> Any:
        try:
            response = self._http.post(self.url, content=orjson.dumps(body), headers=_JSON)
            response.raise_for_status()
            # orjson: a catch-up's eth_getLogs answers are megabytes, and the stdlib parser spends
            # longer on them than the node takes to send them. (Quantities are hex strings, so
            # no integer outgrows what it parses exactly.)
            return orjson.loads(response.content)
        except (httpx.TransportError, httpx.HTTPStatusError, ValueError) as exc:
            raise RpcUnavailable(f"{self.url}: {exc.__class__.__name__}: {exc}") from exc

    def call(self, method: str, *params: Any) -> Any:
        reply = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        )
        if "error" in reply:
            error = reply["error"]
            raise RpcError(method, int(error.get("code", 0)), str(error.get("message", error)))
        return reply.get("result")

    def batch(self, method: str, params_list: list[list[Any]], *, raise_errors: bool = True) -> list[Any]:
        """The same method called with each parameter list, in one HTTP request. With
        `raise_errors=False`, a request the node answered with an error gives its RpcError in
        place of a result instead of raising it."""
        if not params_list:
            return []
        first = next(self._ids)
        body = [
            {"jsonrpc": "2.0", "id": first + offset, "method": method, "params": params}
            for offset, params in enumerate(params_list)
        ]
        for _ in range(len(params_list) - 1):
            next(self._ids)
        replies = self._post(body)
        if not isinstance(replies, list):
            raise RpcUnavailable(f"{self.url} answered a batch with {type(replies).__name__}")
        by_id = {reply.get("id"): reply for reply in replies}
        results = []
        for offset in range(len(params_list)):
            reply = by_id.get(first + offset)
            if reply is None:
                raise RpcUnavailable(f"{self.url} left request {offset} of a {method} batch unanswered")
            if "error" in reply:
                error = reply["error"]
                failure = RpcError(method, int(error.get("code", 0)), str(error.get("message", error)))
                failure.data = error.get("data")
                if raise_errors:
                    raise failure
                results.append(failure)
                continue
            results.append(reply["result"])
        return results

    # ── the calls the indexer makes ──

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def headers(self, numbers: list[int]) -> list[dict[str, Any] | None]:
        return self.batch("eth_getBlockByNumber", [[hex(number), False] for number in numbers])

    def receipts(self, tx_hashes: list[str]) -> list[dict[str, Any] | None]:
        return self.batch("eth_getTransactionReceipt", [[tx_hash] for tx_hash in tx_hashes])

    def logs(
        self, address: str, from_block: int, to_block: int | str, topics: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {
            "address": address,
            "fromBlock": hex(from_block),
            "toBlock": to_block if isinstance(to_block, str) else hex(to_block),
        }
        if topics is not None:
            query["topics"] = topics
        return list(self.call("eth_getLogs", query))
