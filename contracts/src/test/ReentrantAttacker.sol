// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Test-only account that re-enters the market when it receives ETH.
/// @notice It forwards any call to the market, so it can post, stake and claim as requester or
/// provider; on receiving ETH it replays `reentryCall` and records whether the market let it in.
contract ReentrantAttacker {
    address public immutable MARKET;
    bytes public reentryCall;
    uint256 public reentryAttempts;
    uint256 public reentrySuccesses;
    bytes public lastReentryError;

    constructor(address market) {
        MARKET = market;
    }

    /// @notice Calls the market with `data` and `msg.value`, bubbling up a revert.
    function execute(bytes calldata data) external payable returns (bytes memory result) {
        bool ok;
        (ok, result) = MARKET.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
    }

    /// @notice Sets the call replayed on every ETH receipt (empty to stop re-entering).
    function setReentryCall(bytes calldata data) external {
        reentryCall = data;
    }

    receive() external payable {
        if (reentryCall.length == 0) return;
        ++reentryAttempts;
        (bool ok, bytes memory err) = MARKET.call(reentryCall);
        if (ok) ++reentrySuccesses;
        else lastReentryError = err;
    }
}
