// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Test-only account that forwards calls to a target but refuses every ETH payment.
contract EtherRejecter {
    error EtherRejected();

    address public immutable TARGET;

    constructor(address target) {
        TARGET = target;
    }

    /// @notice Calls the target with `data` and `msg.value`, bubbling up a revert.
    function execute(bytes calldata data) external payable returns (bytes memory result) {
        bool ok;
        (ok, result) = TARGET.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
    }

    receive() external payable {
        revert EtherRejected();
    }
}
