// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IComputeMarket} from "./IComputeMarket.sol";

/// @title Provider registration and stake: free, locked as job collateral, and unbonding.
abstract contract ProviderStaking is IComputeMarket, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// Storage layout of a provider, two slots:
    ///   slot 0: registered (bits 0-7) | freeStake (8-103) | lockedStake (104-199) | unbondingReadyAt (200-231)
    ///   slot 1: unbonding (0-95)
    struct Provider {
        bool registered;
        uint96 freeStake;
        uint96 lockedStake;
        uint32 unbondingReadyAt;
        uint96 unbonding;
    }

    /// @notice Token providers stake and lose when slashed; address(0) is ETH.
    address public immutable STAKE_TOKEN;
    /// @notice Seconds between {requestUnstake} and {withdrawStake}.
    uint32 public immutable UNBONDING_PERIOD;

    mapping(address provider => Provider) internal _providers;

    constructor(address stakeToken, uint32 unbondingPeriod) {
        STAKE_TOKEN = stakeToken;
        UNBONDING_PERIOD = unbondingPeriod;
    }

    /// @inheritdoc IComputeMarket
    function registerProvider(string calldata metadataURI) external {
        _providers[msg.sender].registered = true;
        emit ProviderRegistered(msg.sender, metadataURI);
    }

    /// @inheritdoc IComputeMarket
    function stake(uint256 amount) external payable nonReentrant {
        Provider storage provider = _requireRegistered(msg.sender);
        if (amount == 0) revert ZeroAmount();
        uint256 received = _receivePayment(STAKE_TOKEN, amount, msg.value);
        uint256 free = provider.freeStake + received;
        provider.freeStake = _toUint96(free);
        emit Staked(msg.sender, received);
    }

    /// @inheritdoc IComputeMarket
    function requestUnstake(uint256 amount) external {
        Provider storage provider = _requireRegistered(msg.sender);
        if (amount == 0) revert ZeroAmount();
        uint256 free = provider.freeStake;
        if (amount > free) revert InsufficientFreeStake(msg.sender, amount, free);
        uint256 readyAt = block.timestamp + UNBONDING_PERIOD;
        // amount <= free, a uint96, and unbonding + free never exceeds the stake received.
        provider.freeStake = uint96(free - amount);
        provider.unbonding = _toUint96(provider.unbonding + amount);
        provider.unbondingReadyAt = uint32(readyAt);
        emit UnstakeRequested(msg.sender, amount, readyAt);
    }

    /// @inheritdoc IComputeMarket
    function withdrawStake() external nonReentrant {
        Provider storage provider = _providers[msg.sender];
        uint256 amount = provider.unbonding;
        if (amount == 0) revert NothingToWithdraw(msg.sender, STAKE_TOKEN);
        if (block.timestamp < provider.unbondingReadyAt) revert UnbondingNotReady(provider.unbondingReadyAt);
        provider.unbonding = 0;
        emit StakeWithdrawn(msg.sender, amount);
        _send(STAKE_TOKEN, msg.sender, amount);
    }

    /// @inheritdoc IComputeMarket
    function providerInfo(address account) external view returns (ProviderView memory) {
        Provider storage provider = _providers[account];
        return ProviderView({
            registered: provider.registered,
            freeStake: provider.freeStake,
            lockedStake: provider.lockedStake,
            unbonding: provider.unbonding,
            unbondingReadyAt: provider.unbondingReadyAt
        });
    }

    function _requireRegistered(address account) internal view returns (Provider storage provider) {
        provider = _providers[account];
        if (!provider.registered) revert NotRegistered(account);
    }

    /// @dev Moves `amount` from free to locked stake.
    function _lockCollateral(address account, uint96 amount) internal {
        Provider storage provider = _requireRegistered(account);
        uint96 free = provider.freeStake;
        if (amount > free) revert InsufficientFreeStake(account, amount, free);
        // free >= amount was just checked; locked + amount is bounded by the total stake, a uint96.
        unchecked {
            provider.freeStake = free - amount;
            provider.lockedStake += amount;
        }
    }

    /// @dev Moves `amount` of locked collateral back to free stake.
    function _unlockCollateral(address account, uint96 amount) internal {
        Provider storage provider = _providers[account];
        provider.lockedStake -= amount;
        provider.freeStake += amount;
    }

    /// @dev Removes `amount` of locked collateral from the provider; the caller credits it to
    /// someone else. Checked arithmetic: a slash can never take more than is locked.
    function _slashCollateral(address account, uint96 amount, uint256 jobId) internal {
        _providers[account].lockedStake -= amount;
        emit Slashed(account, jobId, amount);
    }

    /// @dev Takes `amount` of `token` from the caller and returns what actually arrived: ETH must
    /// be sent exactly; an ERC-20 is pulled and measured by balance delta (fee-on-transfer safe).
    function _receivePayment(address token, uint256 amount, uint256 etherSent) internal returns (uint256) {
        if (token == address(0)) {
            if (etherSent != amount) revert WrongEtherAmount(amount, etherSent);
            return amount;
        }
        if (etherSent != 0) revert WrongEtherAmount(0, etherSent);
        uint256 balanceBefore = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        return IERC20(token).balanceOf(address(this)) - balanceBefore;
    }

    function _send(address token, address to, uint256 amount) internal {
        if (token == address(0)) {
            Address.sendValue(payable(to), amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }

    function _toUint96(uint256 amount) internal pure returns (uint96) {
        if (amount > type(uint96).max) revert AmountTooLarge(amount, type(uint96).max);
        return uint96(amount);
    }
}
