// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {IComputeMarket} from "./IComputeMarket.sol";

/// @title Provider registration and stake: free, locked as job collateral, and unbonding; and the
/// history of each provider's bonded stake, which weighs its chance of a seat.
abstract contract ProviderStaking is IComputeMarket, ReentrancyGuard {
    using SafeERC20 for IERC20;
    using Checkpoints for Checkpoints.Trace208;

    /// Storage layout of a provider, two slots:
    ///   slot 0: registered (bits 0-7) | freeStake (8-103) | lockedStake (104-199) | bondedSince (200-231)
    ///   slot 1: unbonding (0-95) | unbondingReadyAt (96-127)
    /// A provider's free + locked + unbonding stake never exceeds 2^96 - 1 ({stake} refuses more), so
    /// no sum of its parts can overflow and no settlement can revert on its arithmetic. Its bonded
    /// stake is free + locked (locking collateral moves stake between the two, not out of it);
    /// `bondedSince` is the block of its last change, so a claim reads the stake it had bonded at
    /// an earlier block from the slot it reads anyway, and the history only when it changed since.
    struct Provider {
        bool registered;
        uint96 freeStake;
        uint96 lockedStake;
        uint32 bondedSince;
        uint96 unbonding;
        uint32 unbondingReadyAt;
    }

    /// @notice Longest unbonding period a market may be deployed with.
    uint32 public constant MAX_UNBONDING_PERIOD = 365 days;

    /// @notice Token providers stake and lose when slashed; address(0) is ETH.
    address public immutable STAKE_TOKEN;
    /// @notice Seconds between {requestUnstake} and {withdrawStake}.
    uint32 public immutable UNBONDING_PERIOD;

    mapping(address provider => Provider) internal _providers;
    /// Bonded stake (free + locked) of each provider, and of all providers, by block number.
    mapping(address provider => Checkpoints.Trace208) private _bonded;
    Checkpoints.Trace208 private _totalBonded;
    /// All providers' bonded stake now, and the block of its last change, in one slot: most draws
    /// read the total of a block since which it did not change.
    uint128 private _totalBondedNow;
    uint32 private _totalChangedAt;

    constructor(address stakeToken, uint32 unbondingPeriod) {
        if (unbondingPeriod > MAX_UNBONDING_PERIOD) {
            revert InvalidUnbondingPeriod(unbondingPeriod, MAX_UNBONDING_PERIOD);
        }
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
        uint256 held = uint256(provider.freeStake) + provider.lockedStake + provider.unbonding + received;
        _toUint96(held); // everything the provider holds here fits 96 bits, or nothing is staked
        // held fits 96 bits, so does its part freeStake + received.
        provider.freeStake = uint96(provider.freeStake + received);
        _moveBonded(msg.sender, received, true);
        emit Staked(msg.sender, received);
    }

    /// @inheritdoc IComputeMarket
    function requestUnstake(uint256 amount) external {
        Provider storage provider = _requireRegistered(msg.sender);
        if (amount == 0) revert ZeroAmount();
        uint256 free = provider.freeStake;
        if (amount > free) revert InsufficientFreeStake(msg.sender, amount, free);
        uint256 readyAt = block.timestamp + UNBONDING_PERIOD;
        // amount <= free; free + unbonding never exceeds what the provider holds, below 2^96.
        provider.freeStake = uint96(free - amount);
        provider.unbonding = uint96(provider.unbonding + amount);
        provider.unbondingReadyAt = uint32(readyAt);
        _moveBonded(msg.sender, amount, false);
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

    /// @inheritdoc IComputeMarket
    function bondedStakeAt(address provider, uint256 blockNumber) public view returns (uint256) {
        Provider storage info = _providers[provider];
        if (info.bondedSince <= blockNumber) return uint256(info.freeStake) + info.lockedStake;
        return _bonded[provider].upperLookupRecent(uint48(blockNumber));
    }

    /// @inheritdoc IComputeMarket
    function totalBondedAt(uint256 blockNumber) public view returns (uint256) {
        if (_totalChangedAt <= blockNumber) return _totalBondedNow;
        return _totalBonded.upperLookupRecent(uint48(blockNumber));
    }

    function _requireRegistered(address account) internal view returns (Provider storage provider) {
        provider = _providers[account];
        if (!provider.registered) revert NotRegistered(account);
    }

    /// @dev Moves `amount` from free to locked stake (bonded stake is unchanged).
    function _lockCollateral(address account, uint96 amount) internal {
        Provider storage provider = _requireRegistered(account);
        uint96 free = provider.freeStake;
        if (amount > free) revert InsufficientFreeStake(account, amount, free);
        // free >= amount was just checked; locked + amount <= free + locked < 2^96 ({stake}'s bound).
        unchecked {
            provider.freeStake = free - amount;
            provider.lockedStake += amount;
        }
    }

    /// @dev Moves `amount` of locked collateral back to free stake. Checked arithmetic (it cannot
    /// fail: the amount was locked, and free + locked < 2^96).
    function _unlockCollateral(address account, uint96 amount) internal {
        Provider storage provider = _providers[account];
        provider.lockedStake -= amount;
        provider.freeStake += amount;
    }

    /// @dev Removes `amount` of locked collateral from the provider; the caller credits it to
    /// someone else. Checked arithmetic: a slash can never take more than is locked.
    function _slashCollateral(address account, uint96 amount, uint256 jobId) internal {
        _providers[account].lockedStake -= amount;
        _moveBonded(account, amount, false);
        emit Slashed(account, jobId, amount);
    }

    /// @dev Records that `account`'s bonded stake (and the total) grew or shrank by `amount`, in
    /// the history and in the current figures. The caller has already moved free or locked stake.
    function _moveBonded(address account, uint256 amount, bool grows) private {
        Provider storage provider = _providers[account];
        provider.bondedSince = uint32(block.number); // block numbers stay below 2^32 for centuries
        uint256 total = grows ? _totalBondedNow + amount : _totalBondedNow - amount;
        // A provider's bonded stake is below 2^96 and the total below 2^96 times the number of
        // providers, so below 2^128 and 2^208. A decrease never exceeds what was added.
        (_totalBondedNow, _totalChangedAt) = (uint128(total), uint32(block.number));
        _bonded[account].push(uint48(block.number), uint208(uint256(provider.freeStake) + provider.lockedStake));
        _totalBonded.push(uint48(block.number), uint208(total));
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
