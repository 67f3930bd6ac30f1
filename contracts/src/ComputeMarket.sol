// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IComputeMarket} from "./IComputeMarket.sol";
import {ProviderStaking} from "./ProviderStaking.sol";

/// @title ComputeMarket: escrowed compute jobs settled by commit-reveal consensus among staked providers.
/// @notice Settlement only credits balances; every transfer out is a {withdraw} by its owner, so
/// no receiver can block anyone else's settlement. Seats go by stake-weighted sortition (see
/// {IComputeMarket-claimJob}); slashed collateral goes to the treasury, never to a job's parties.
contract ComputeMarket is ProviderStaking, Ownable2Step, Pausable {
    /// Storage layout of a job, two slots:
    ///   slot 0: requester (bits 0-159) | tokenId (160-167) | feeBps (168-183) | status (184-191)
    ///           | replicas (192-199) | claims (200-207) | commits (208-215) | deadline (216-247)
    ///   slot 1: rewardPerReplica (0-79) | collateralPerReplica (80-159) | runTimeout (160-183)
    ///           | revealWindow (184-207) | claimWindow (208-223) | postBlock (224-255)
    /// `deadline` is the end of the current phase: the claim deadline while Open, the commit
    /// deadline while Running, the reveal deadline once Revealing is stored. A Running job past its
    /// commit deadline is Revealing until `deadline + revealWindow`. Reveals are not counted in
    /// storage: settlement reads every slot anyway.
    struct Job {
        address requester;
        uint8 tokenId;
        uint16 feeBps;
        JobStatus status;
        uint8 replicas;
        uint8 claims;
        uint8 commits;
        uint32 deadline;
        uint80 rewardPerReplica;
        uint80 collateralPerReplica;
        uint24 runTimeout;
        uint24 revealWindow;
        uint16 claimWindow;
        uint32 postBlock;
    }

    /// Storage of one replica slot, two slots:
    ///   slot 0: provider (bits 0-159) | revealed (160-167) | seed (168-199)
    ///   slot 1: hash: zero until committed, then the commitment, then (once revealed) the result hash
    /// The status is derived (see {_statusOf}), so committing writes one slot, not two. The first
    /// seat also holds the job's sortition seed, fixed by the first claim in the slot it writes.
    struct Seat {
        address provider;
        bool revealed;
        uint32 seed;
        bytes32 hash;
    }

    /// Allow-list entry of a payment token; `id` indexes `_paymentTokens` (0 is ETH).
    struct PaymentToken {
        uint8 id;
        bool allowed;
    }

    uint8 public constant MAX_REPLICAS = 15;
    uint16 public constant MAX_FEE_BPS = 1000;
    /// @notice Hard cap of a job's run and reveal windows; {setBounds} stays below it.
    uint32 public constant MAX_WINDOW = 30 days;
    /// @notice Hard cap of a job's claim window (a job nobody took in 18 hours is posted again).
    uint32 public constant MAX_CLAIM_WINDOW = 18 hours;
    /// @notice Hard cap of the minimum collateral, in basis points of the reward (100 times it).
    uint32 public constant MAX_MIN_COLLATERAL_BPS = 1_000_000;
    uint256 private constant _BPS = 10_000;
    /// @notice Hard cap of {DOUBLING_PERIOD}.
    uint32 public constant MAX_DOUBLING_PERIOD = 1 hours;
    /// Expected number of eligible providers per seat when a job is posted; it doubles every
    /// 1/32 of the claim window or every {DOUBLING_PERIOD}, whichever comes first, and after half
    /// the window every provider with stake is eligible.
    uint256 private constant _ELIGIBLE_PER_SEAT = 2;
    uint256 private constant _DOUBLINGS_PER_WINDOW = 32;
    uint256 private constant _DOUBLINGS_TO_ALL = 40; // 2^40 times the seats: every staked provider

    /// @notice Seconds after which the number of providers eligible for a seat doubles (at most):
    /// about one block time of the chain, so that the providers a draw picks have a block to claim
    /// before it widens. Fixed at deployment.
    uint256 public immutable DOUBLING_PERIOD;

    /// One slot, read by every posting: the job counter and the market's bounds.
    uint64 private _jobCount;
    uint24 private _maxClaimWindow;
    uint24 private _maxRunTimeout;
    uint24 private _maxRevealWindow;
    uint32 private _minCollateralBps;
    address private _treasury;
    uint16 private _feeBps;

    mapping(uint256 jobId => Job) private _jobs;
    mapping(uint256 jobId => mapping(uint256 slot => Seat)) private _seats;
    mapping(address account => mapping(address token => uint256)) private _credits;
    address[] private _paymentTokens;
    mapping(address token => PaymentToken) private _paymentTokenInfo;

    /// @param initialOwner Sets fees, the treasury and the payment allow-list; can pause.
    /// @param initialTreasury Receives protocol fees.
    /// @param stakeToken Token providers stake, address(0) for ETH; fixed for the contract's life.
    /// @param unbondingPeriod Seconds unstaked collateral waits before it can be withdrawn.
    /// @param doublingPeriod {DOUBLING_PERIOD}: 1 second to {MAX_DOUBLING_PERIOD}.
    /// @param initialFeeBps Protocol fee in basis points of each paid reward, at most {MAX_FEE_BPS}.
    constructor(
        address initialOwner,
        address initialTreasury,
        address stakeToken,
        uint32 unbondingPeriod,
        uint32 doublingPeriod,
        uint16 initialFeeBps
    )
        ProviderStaking(stakeToken, unbondingPeriod)
        Ownable(initialOwner)
    {
        if (doublingPeriod == 0 || doublingPeriod > MAX_DOUBLING_PERIOD) {
            revert InvalidDoublingPeriod(doublingPeriod, MAX_DOUBLING_PERIOD);
        }
        DOUBLING_PERIOD = doublingPeriod;
        _paymentTokens.push(address(0));
        _setTreasury(initialTreasury);
        _setFee(initialFeeBps);
        _setBounds(6 hours, 1 days, 1 days, uint32(_BPS));
    }

    // ───────────────────────────── Posting ─────────────────────────────

    /// @inheritdoc IComputeMarket
    function postJob(JobParams calldata params) external payable nonReentrant whenNotPaused returns (uint256 jobId) {
        uint256 etherUsed;
        (jobId, etherUsed) = _post(params);
        if (msg.value != etherUsed) revert WrongEtherAmount(etherUsed, msg.value);
    }

    /// @inheritdoc IComputeMarket
    function postJobs(JobParams[] calldata params)
        external
        payable
        nonReentrant
        whenNotPaused
        returns (uint256[] memory jobIds)
    {
        jobIds = new uint256[](params.length);
        uint256 etherUsed;
        for (uint256 i; i < params.length; ++i) {
            uint256 itemEther;
            (jobIds[i], itemEther) = _post(params[i]);
            etherUsed += itemEther;
        }
        if (msg.value != etherUsed) revert WrongEtherAmount(etherUsed, msg.value);
    }

    /// @dev Validates, takes the ERC-20 escrow (ETH is checked by the caller, in total) and stores
    /// the job. A fee-on-transfer token pays what actually arrived, split evenly over the replicas.
    function _post(JobParams calldata p) private returns (uint256 jobId, uint256 etherUsed) {
        if (p.replicas == 0 || p.replicas > MAX_REPLICAS) revert InvalidReplicas(p.replicas);
        if (p.claimWindow == 0 || p.runTimeout == 0 || p.revealWindow == 0) revert InvalidWindow();
        if (p.claimWindow > _maxClaimWindow) revert WindowTooLong(p.claimWindow, _maxClaimWindow);
        if (p.runTimeout > _maxRunTimeout) revert WindowTooLong(p.runTimeout, _maxRunTimeout);
        if (p.revealWindow > _maxRevealWindow) revert WindowTooLong(p.revealWindow, _maxRevealWindow);
        // Every later deadline is at most claimDeadline + runTimeout + revealWindow: checking that
        // sum once here is what lets {_deadline} store deadlines in 32 bits without checks.
        if (block.timestamp + uint256(p.claimWindow) + p.runTimeout + p.revealWindow > type(uint32).max) {
            revert InvalidWindow();
        }
        if (p.rewardPerReplica == 0) revert ZeroAmount();
        uint80 collateral = _toUint80(p.collateralPerReplica);
        uint256 escrow = uint256(_toUint80(p.rewardPerReplica)) * p.replicas;
        // The minimum is a share of the reward where both are counted in the same token; a job paid
        // in another token must still put collateral at stake, whose worth providers judge.
        // No overflow: the reward fits 80 bits and the share 20.
        uint256 minimum = p.token == STAKE_TOKEN ? (p.rewardPerReplica * _minCollateralBps + _BPS - 1) / _BPS : 1;
        if (collateral < minimum) revert CollateralTooLow(collateral, minimum);
        uint32 claimDeadline = _deadline(p.claimWindow);
        uint8 tokenId = _paymentTokenId(p.token);

        jobId = ++_jobCount;
        uint256 rewardPerReplica = p.rewardPerReplica;
        uint256 dust;
        if (p.token == address(0)) {
            etherUsed = escrow;
        } else {
            uint256 received = _receivePayment(p.token, escrow, 0);
            rewardPerReplica = received / p.replicas;
            if (rewardPerReplica == 0) revert PaymentTooSmall(received, p.replicas);
            dust = received - rewardPerReplica * p.replicas;
        }

        _jobs[jobId] = Job({
            requester: msg.sender,
            tokenId: tokenId,
            feeBps: _feeBps,
            status: JobStatus.Open,
            replicas: p.replicas,
            claims: 0,
            commits: 0,
            deadline: claimDeadline,
            // rewardPerReplica <= p.rewardPerReplica, which fits 80 bits (checked above); the
            // windows are within their caps (MAX_WINDOW < 2^24, MAX_CLAIM_WINDOW < 2^16); block
            // numbers stay below 2^32 for centuries at any block rate a chain has.
            rewardPerReplica: uint80(rewardPerReplica),
            collateralPerReplica: collateral,
            runTimeout: uint24(p.runTimeout),
            revealWindow: uint24(p.revealWindow),
            claimWindow: uint16(p.claimWindow),
            postBlock: uint32(block.number)
        });
        emit JobPosted(
            jobId, msg.sender, p.specHash, p.token, rewardPerReplica, p.replicas, collateral, claimDeadline
        );
        if (dust != 0) _credit(msg.sender, p.token, jobId, dust);
    }

    // ───────────────────────────── Claiming ─────────────────────────────

    /// @inheritdoc IComputeMarket
    function claimJob(uint256 jobId) external whenNotPaused {
        _claim(jobId, false);
    }

    /// @inheritdoc IComputeMarket
    function claimJobs(uint256[] calldata jobIds) external whenNotPaused {
        for (uint256 i; i < jobIds.length; ++i) {
            _claim(jobIds[i], true);
        }
    }

    function _claim(uint256 jobId, bool inBatch) private {
        Job storage job = _existingJob(jobId);
        JobStatus status = job.status;
        if (status != JobStatus.Open) {
            _skipOrRevert(inBatch, jobId, _stateError(jobId, _effectiveStatus(job), JobStatus.Open));
            return;
        }
        uint32 claimDeadline = job.deadline;
        if (block.timestamp > claimDeadline) {
            _skipOrRevert(
                inBatch, jobId, abi.encodeWithSelector(DeadlinePassed.selector, jobId, claimDeadline)
            );
            return;
        }
        uint8 slot = job.claims;
        for (uint256 i; i < slot; ++i) {
            if (_seats[jobId][i].provider == msg.sender) revert AlreadyClaimed(jobId, msg.sender);
        }
        _requireRegistered(msg.sender); // an outsider is told so, not that the draw passed it over
        (bool eligible, uint32 seed) = _eligible(job, jobId, msg.sender);
        if (!eligible) {
            bytes memory err = seed == 0 && block.number <= job.postBlock
                ? abi.encodeWithSelector(SeedNotReady.selector, jobId, job.postBlock)
                : abi.encodeWithSelector(NotEligible.selector, jobId, msg.sender);
            _skipOrRevert(inBatch, jobId, err);
            return;
        }
        _lockCollateral(msg.sender, job.collateralPerReplica);

        Seat storage seat = _seats[jobId][slot];
        seat.provider = msg.sender;
        // The first claim fixes the seed, in the slot it writes anyway; later ones drew with it.
        if (slot == 0 && seed != 0) seat.seed = seed;
        // slot < replicas <= 15.
        unchecked {
            job.claims = slot + 1;
        }
        emit JobClaimed(jobId, msg.sender, slot);

        if (slot + 1 == job.replicas) {
            uint32 commitDeadline = _deadline(job.runTimeout);
            job.status = JobStatus.Running;
            job.deadline = commitDeadline;
            emit JobStarted(jobId, commitDeadline);
        }
    }

    // ───────────────────────────── Results ─────────────────────────────

    /// @inheritdoc IComputeMarket
    function commitResult(uint256 jobId, bytes32 commitment) external {
        _commit(jobId, commitment, false);
    }

    /// @inheritdoc IComputeMarket
    function commitResults(uint256[] calldata jobIds, bytes32[] calldata commitments) external {
        _requireSameLength(jobIds.length, commitments.length);
        for (uint256 i; i < jobIds.length; ++i) {
            _commit(jobIds[i], commitments[i], true);
        }
    }

    function _commit(uint256 jobId, bytes32 commitment, bool inBatch) private {
        Job storage job = _existingJob(jobId);
        if (!_inCommitPhase(job, jobId, inBatch)) return;
        Seat storage seat = _seatOf(jobId, job.claims, msg.sender);
        _requireAssignmentStatus(seat, jobId, AssignmentStatus.Claimed);
        if (commitment == bytes32(0)) revert EmptyCommitment(jobId);

        seat.hash = commitment;
        uint8 commits = job.commits + 1;
        job.commits = commits;
        emit ResultCommitted(jobId, msg.sender, commitment);

        if (commits == job.replicas) {
            job.status = JobStatus.Revealing;
            job.deadline = _deadline(job.revealWindow);
        }
    }

    /// @inheritdoc IComputeMarket
    function revealResult(uint256 jobId, bytes32 resultHash, bytes32 salt) external {
        _reveal(jobId, resultHash, salt, false);
    }

    /// @inheritdoc IComputeMarket
    function revealResults(uint256[] calldata jobIds, bytes32[] calldata resultHashes, bytes32[] calldata salts)
        external
    {
        _requireSameLength(jobIds.length, resultHashes.length);
        _requireSameLength(jobIds.length, salts.length);
        for (uint256 i; i < jobIds.length; ++i) {
            _reveal(jobIds[i], resultHashes[i], salts[i], true);
        }
    }

    function _reveal(uint256 jobId, bytes32 resultHash, bytes32 salt, bool inBatch) private {
        Job storage job = _existingJob(jobId);
        JobStatus status = _effectiveStatus(job);
        if (status != JobStatus.Revealing) {
            _skipOrRevert(inBatch, jobId, _stateError(jobId, status, JobStatus.Revealing));
            return;
        }
        uint256 revealDeadline = _revealDeadline(job);
        if (block.timestamp > revealDeadline) {
            _skipOrRevert(
                inBatch, jobId, abi.encodeWithSelector(DeadlinePassed.selector, jobId, revealDeadline)
            );
            return;
        }
        Seat storage seat = _seatOf(jobId, job.claims, msg.sender);
        _requireAssignmentStatus(seat, jobId, AssignmentStatus.Committed);
        if (keccak256(abi.encode(jobId, msg.sender, resultHash, salt)) != seat.hash) {
            revert CommitmentMismatch(jobId, msg.sender);
        }

        seat.revealed = true;
        seat.hash = resultHash;
        if (job.status == JobStatus.Running) {
            // First reveal after the commit deadline: store the phase it is effectively in.
            job.status = JobStatus.Revealing;
            job.deadline = uint32(revealDeadline);
        }
        emit ResultRevealed(jobId, msg.sender, resultHash);
    }

    /// @inheritdoc IComputeMarket
    function submitResult(uint256 jobId, bytes32 resultHash) external nonReentrant {
        _submit(jobId, resultHash, false);
    }

    /// @inheritdoc IComputeMarket
    function submitResults(uint256[] calldata jobIds, bytes32[] calldata resultHashes) external nonReentrant {
        _requireSameLength(jobIds.length, resultHashes.length);
        for (uint256 i; i < jobIds.length; ++i) {
            _submit(jobIds[i], resultHashes[i], true);
        }
    }

    function _submit(uint256 jobId, bytes32 resultHash, bool inBatch) private {
        Job storage job = _existingJob(jobId);
        if (job.replicas != 1) revert ReplicatedJob(jobId, job.replicas);
        if (!_inCommitPhase(job, jobId, inBatch)) return;
        Seat storage seat = _seats[jobId][0];
        if (seat.provider != msg.sender) revert NotAssigned(jobId, msg.sender);
        // Running with one replica means its only slot has not committed yet: committing the last
        // slot moves a job to Revealing. So the slot is Claimed, with no need to read its hash.

        // One reveal is the whole quorum: pay at once. The result hash lives in the events.
        seat.revealed = true;
        job.commits = 1;
        job.status = JobStatus.Completed;
        emit ResultRevealed(jobId, msg.sender, resultHash);

        uint96 collateral = job.collateralPerReplica;
        if (collateral != 0) _unlockCollateral(msg.sender, collateral);
        address[] memory winners = new address[](1);
        winners[0] = msg.sender;
        _payWinners(job, jobId, winners);
        emit JobFinalized(jobId, JobStatus.Completed, resultHash, winners);
    }

    /// @dev Returns whether the job accepts commits now; otherwise skips the batch item or reverts.
    function _inCommitPhase(Job storage job, uint256 jobId, bool inBatch) private returns (bool) {
        JobStatus status = job.status;
        if (status != JobStatus.Running) {
            _skipOrRevert(inBatch, jobId, _stateError(jobId, _effectiveStatus(job), JobStatus.Running));
            return false;
        }
        uint32 commitDeadline = job.deadline;
        if (block.timestamp > commitDeadline) {
            _skipOrRevert(inBatch, jobId, abi.encodeWithSelector(DeadlinePassed.selector, jobId, commitDeadline));
            return false;
        }
        return true;
    }

    // ───────────────────────────── Settlement ─────────────────────────────

    /// @inheritdoc IComputeMarket
    function finalizeJob(uint256 jobId) external nonReentrant {
        _finalize(jobId, false);
    }

    /// @inheritdoc IComputeMarket
    function finalizeJobs(uint256[] calldata jobIds) external nonReentrant {
        for (uint256 i; i < jobIds.length; ++i) {
            _finalize(jobIds[i], true);
        }
    }

    function _finalize(uint256 jobId, bool inBatch) private {
        Job storage job = _existingJob(jobId);
        JobStatus status = _effectiveStatus(job);
        if (status != JobStatus.Revealing) {
            _skipOrRevert(inBatch, jobId, _stateError(jobId, status, JobStatus.Revealing));
            return;
        }
        uint256 replicas = job.replicas;
        (bytes32 majorityHash, uint256 majority, uint256 reveals) = _tally(jobId, replicas);
        uint256 revealDeadline = _revealDeadline(job);
        if (reveals < job.commits && block.timestamp <= revealDeadline) {
            _skipOrRevert(
                inBatch,
                jobId,
                abi.encodeWithSelector(RevealsPending.selector, jobId, job.commits, reveals, revealDeadline)
            );
            return;
        }

        if (majority >= replicas / 2 + 1) {
            _settleCompleted(job, jobId, replicas, majorityHash, majority);
        } else {
            _settleFailed(job, jobId, replicas);
        }
    }

    /// @dev The most common revealed hash, how many revealed it, and how many revealed at all
    /// (replicas <= 15, so O(n^2) comparisons in memory are cheap).
    function _tally(uint256 jobId, uint256 replicas)
        private
        view
        returns (bytes32 majorityHash, uint256 majority, uint256 reveals)
    {
        bytes32[] memory revealed = new bytes32[](replicas);
        for (uint256 i; i < replicas; ++i) {
            Seat storage seat = _seats[jobId][i];
            if (seat.revealed) revealed[reveals++] = seat.hash;
        }
        for (uint256 i; i < reveals; ++i) {
            uint256 same;
            for (uint256 j; j < reveals; ++j) {
                if (revealed[j] == revealed[i]) ++same;
            }
            if (same > majority) (majorityHash, majority) = (revealed[i], same);
        }
    }

    /// @dev Quorum reached: the majority is paid and gets its collateral back; everyone else is
    /// slashed, to the treasury (nobody who takes part in a job gains from a slash); unpaid rewards
    /// go back to the requester.
    function _settleCompleted(Job storage job, uint256 jobId, uint256 replicas, bytes32 majorityHash, uint256 majority)
        private
    {
        job.status = JobStatus.Completed;
        uint96 collateral = job.collateralPerReplica;
        address[] memory winners = new address[](majority);
        uint256 winnerCount;
        uint256 slashed;
        for (uint256 i; i < replicas; ++i) {
            Seat storage seat = _seats[jobId][i];
            address provider = seat.provider;
            if (seat.revealed && seat.hash == majorityHash) {
                winners[winnerCount++] = provider;
                if (collateral != 0) _unlockCollateral(provider, collateral);
            } else if (collateral != 0) {
                _slashCollateral(provider, collateral, jobId);
                slashed += collateral;
            }
        }
        _payWinners(job, jobId, winners);
        if (slashed != 0) _credit(_treasury, STAKE_TOKEN, jobId, slashed);
        if (majority < replicas) {
            _credit(job.requester, _tokenOf(job), jobId, (replicas - majority) * job.rewardPerReplica);
        }
        emit JobFinalized(jobId, JobStatus.Completed, majorityHash, winners);
    }

    /// @dev No quorum: the requester gets the whole escrow back; providers that revealed get
    /// their collateral back; providers that never committed or revealed are slashed, to the treasury.
    function _settleFailed(Job storage job, uint256 jobId, uint256 replicas) private {
        job.status = JobStatus.Failed;
        uint96 collateral = job.collateralPerReplica;
        uint256 slashed;
        for (uint256 i; i < replicas && collateral != 0; ++i) {
            Seat storage seat = _seats[jobId][i];
            if (seat.revealed) {
                _unlockCollateral(seat.provider, collateral);
            } else {
                _slashCollateral(seat.provider, collateral, jobId);
                slashed += collateral;
            }
        }
        _credit(job.requester, _tokenOf(job), jobId, replicas * job.rewardPerReplica);
        if (slashed != 0) _credit(_treasury, STAKE_TOKEN, jobId, slashed);
        emit JobFinalized(jobId, JobStatus.Failed, bytes32(0), new address[](0));
    }

    /// @dev Credits each winner its reward less the job's fee, and the fees to the treasury.
    function _payWinners(Job storage job, uint256 jobId, address[] memory winners) private {
        address token = _tokenOf(job);
        uint256 reward = job.rewardPerReplica;
        uint256 fee = reward * job.feeBps / _BPS;
        for (uint256 i; i < winners.length; ++i) {
            _credit(winners[i], token, jobId, reward - fee);
        }
        if (fee != 0) _credit(_treasury, token, jobId, fee * winners.length);
    }

    /// @inheritdoc IComputeMarket
    function cancelJob(uint256 jobId) external nonReentrant {
        Job storage job = _existingJob(jobId);
        if (job.status != JobStatus.Open) revert JobNotInState(jobId, _effectiveStatus(job), JobStatus.Open);
        uint256 claims = job.claims;
        address requester = job.requester;
        bool claimWindowOver = block.timestamp > job.deadline;
        bool allowed = msg.sender == requester
            ? claims == 0 || claimWindowOver
            : claimWindowOver && _holdsSlot(jobId, claims, msg.sender);
        if (!allowed) revert CancelNotAllowed(jobId, msg.sender);

        job.status = JobStatus.Cancelled;
        uint96 collateral = job.collateralPerReplica;
        if (collateral != 0) {
            for (uint256 i; i < claims; ++i) {
                _unlockCollateral(_seats[jobId][i].provider, collateral);
            }
        }
        emit JobCancelled(jobId);
        _credit(requester, _tokenOf(job), jobId, uint256(job.replicas) * job.rewardPerReplica);
    }

    // ───────────────────────────── Payouts ─────────────────────────────

    /// @inheritdoc IComputeMarket
    function withdraw(address token) external nonReentrant {
        uint256 amount = _credits[msg.sender][token];
        if (amount == 0) revert NothingToWithdraw(msg.sender, token);
        _credits[msg.sender][token] = 0;
        emit Withdrawn(msg.sender, token, amount);
        _send(token, msg.sender, amount);
    }

    function _credit(address account, address token, uint256 jobId, uint256 amount) private {
        _credits[account][token] += amount;
        emit Credited(account, token, jobId, amount);
    }

    // ───────────────────────────── Views ─────────────────────────────

    /// @inheritdoc IComputeMarket
    function getJob(uint256 jobId) external view returns (JobView memory view_) {
        Job storage job = _existingJob(jobId);
        JobStatus status = _effectiveStatus(job);
        view_ = JobView({
            requester: job.requester,
            token: _tokenOf(job),
            status: status,
            replicas: job.replicas,
            claims: job.claims,
            commits: job.commits,
            reveals: 0,
            deadline: job.deadline,
            rewardPerReplica: job.rewardPerReplica,
            collateralPerReplica: job.collateralPerReplica,
            runTimeout: job.runTimeout,
            revealWindow: job.revealWindow,
            feeBps: job.feeBps
        });
        if (status == JobStatus.Revealing) view_.deadline = uint32(_revealDeadline(job));
        for (uint256 i; i < job.claims; ++i) {
            if (_seats[jobId][i].revealed) ++view_.reveals;
        }
    }

    /// @inheritdoc IComputeMarket
    function getAssignment(uint256 jobId, address provider) external view returns (AssignmentView memory view_) {
        Job storage job = _existingJob(jobId);
        for (uint256 i; i < job.claims; ++i) {
            Seat storage seat = _seats[jobId][i];
            if (seat.provider != provider) continue;
            view_.status = _statusOf(seat);
            view_.slot = uint8(i);
            if (view_.status == AssignmentStatus.Committed) view_.commitment = seat.hash;
            if (view_.status == AssignmentStatus.Revealed) view_.resultHash = seat.hash;
        }
    }

    /// @inheritdoc IComputeMarket
    function credits(address account, address token) external view returns (uint256) {
        return _credits[account][token];
    }

    /// @inheritdoc IComputeMarket
    function jobCount() external view returns (uint256) {
        return _jobCount;
    }

    /// @inheritdoc IComputeMarket
    function isPaymentToken(address token) public view returns (bool) {
        return token == address(0) || _paymentTokenInfo[token].allowed;
    }

    /// @inheritdoc IComputeMarket
    function getSortition(uint256 jobId) external view returns (SortitionView memory view_) {
        _existingJob(jobId);
        Job storage job = _jobs[jobId];
        view_ = SortitionView({
            postBlock: job.postBlock,
            claimWindow: job.claimWindow,
            seed: _seats[jobId][0].seed,
            totalBonded: totalBondedAt(job.postBlock)
        });
    }

    /// @inheritdoc IComputeMarket
    function isEligible(uint256 jobId, address provider) external view returns (bool) {
        Job storage job = _existingJob(jobId);
        if (job.status != JobStatus.Open) return false;
        (bool eligible,) = _eligible(job, jobId, provider);
        return eligible;
    }

    /// @inheritdoc IComputeMarket
    function bounds() external view returns (uint256 maxClaimWindow, uint256 maxRunTimeout, uint256 maxRevealWindow, uint256 minCollateralBps) {
        return (_maxClaimWindow, _maxRunTimeout, _maxRevealWindow, _minCollateralBps);
    }

    /// @notice Where protocol fees are credited.
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @notice The fee, in basis points, for jobs posted now.
    function feeBps() external view returns (uint16) {
        return _feeBps;
    }

    // ───────────────────────────── Owner ─────────────────────────────

    /// @inheritdoc IComputeMarket
    function setFee(uint16 newFeeBps) external onlyOwner {
        _setFee(newFeeBps);
    }

    /// @inheritdoc IComputeMarket
    function setTreasury(address newTreasury) external onlyOwner {
        _setTreasury(newTreasury);
    }

    /// @inheritdoc IComputeMarket
    function setPaymentToken(address token, bool allowed) external onlyOwner {
        if (token == address(0)) revert ZeroAddress();
        PaymentToken storage info = _paymentTokenInfo[token];
        if (allowed && info.id == 0) {
            uint256 id = _paymentTokens.length;
            if (id > type(uint8).max) revert TooManyTokens();
            info.id = uint8(id);
            _paymentTokens.push(token);
        }
        info.allowed = allowed;
        emit PaymentTokenUpdated(token, allowed);
    }

    /// @inheritdoc IComputeMarket
    function setBounds(uint32 maxClaimWindow, uint32 maxRunTimeout, uint32 maxRevealWindow, uint32 minCollateralBps)
        external
        onlyOwner
    {
        _setBounds(maxClaimWindow, maxRunTimeout, maxRevealWindow, minCollateralBps);
    }

    /// @inheritdoc IComputeMarket
    function pause() external onlyOwner {
        _pause();
    }

    /// @inheritdoc IComputeMarket
    function unpause() external onlyOwner {
        _unpause();
    }

    function _setFee(uint16 newFeeBps) private {
        if (newFeeBps > MAX_FEE_BPS) revert FeeTooHigh(newFeeBps, MAX_FEE_BPS);
        _feeBps = newFeeBps;
        emit FeeUpdated(newFeeBps);
    }

    function _setBounds(uint32 maxClaimWindow, uint32 maxRunTimeout, uint32 maxRevealWindow, uint32 minCollateralBps)
        private
    {
        if (maxClaimWindow == 0 || maxClaimWindow > MAX_CLAIM_WINDOW) {
            revert WindowTooLong(maxClaimWindow, MAX_CLAIM_WINDOW);
        }
        if (maxRunTimeout == 0 || maxRunTimeout > MAX_WINDOW) revert WindowTooLong(maxRunTimeout, MAX_WINDOW);
        if (maxRevealWindow == 0 || maxRevealWindow > MAX_WINDOW) revert WindowTooLong(maxRevealWindow, MAX_WINDOW);
        if (minCollateralBps > MAX_MIN_COLLATERAL_BPS) {
            revert CollateralBoundTooHigh(minCollateralBps, MAX_MIN_COLLATERAL_BPS);
        }
        // Each window is at most its cap, below 2^24.
        (_maxClaimWindow, _maxRunTimeout, _maxRevealWindow) =
            (uint24(maxClaimWindow), uint24(maxRunTimeout), uint24(maxRevealWindow));
        _minCollateralBps = minCollateralBps;
        emit BoundsUpdated(maxClaimWindow, maxRunTimeout, maxRevealWindow, minCollateralBps);
    }

    function _setTreasury(address newTreasury) private {
        if (newTreasury == address(0)) revert ZeroAddress();
        _treasury = newTreasury;
        emit TreasuryUpdated(newTreasury);
    }

    // ───────────────────────────── Helpers ─────────────────────────────

    /// @dev Whether `provider` may take a seat of the Open job now, and the seed it drew with.
    /// Every provider that had stake bonded at the end of the posting block is eligible from half
    /// the claim window on. Before that, its ticket, a number in [0, 2^64) drawn from the seed, the
    /// job and its address, must be below 2^64 times its share of that stake times the number of
    /// providers expected to be eligible: twice the seats at first, doubling every 1/32 of the
    /// window or every {DOUBLING_PERIOD}, whichever is sooner. So the first eligible are a
    /// stake-weighted random sample, splitting stake over addresses gains nothing, and a job fills
    /// when few providers are online.
    function _eligible(Job storage job, uint256 jobId, address provider) private view returns (bool, uint32) {
        uint256 postBlock = job.postBlock;
        uint256 stakeThen = bondedStakeAt(provider, postBlock);
        if (stakeThen == 0) return (false, 0);
        uint256 window = job.claimWindow;
        uint256 elapsed = block.timestamp - (uint256(job.deadline) - window); // deadline: the claim deadline
        if (2 * elapsed >= window) return (true, 0);
        uint32 seed = _seats[jobId][0].seed;
        if (seed == 0) {
            seed = _seed(postBlock);
            if (seed == 0) return (false, 0);
        }
        uint256 doublings = elapsed / DOUBLING_PERIOD;
        uint256 byWindow = elapsed * _DOUBLINGS_PER_WINDOW / window;
        if (byWindow > doublings) doublings = byWindow;
        if (doublings >= _DOUBLINGS_TO_ALL) return (true, seed);
        uint256 expected = (_ELIGIBLE_PER_SEAT * job.replicas) << doublings;
        uint256 ticket = uint256(keccak256(abi.encode(seed, jobId, provider))) >> 192;
        // No overflow: ticket < 2^64 and the total stake is far below 2^192; stakeThen < 2^96 and
        // expected < 2^45 (fewer than 40 doublings), so the right side < 2^205.
        return (ticket * totalBondedAt(postBlock) < (stakeThen * expected) << 64, seed);
    }

    /// @dev The seed a claim draws with when no claim fixed one yet: the low 32 bits of the hash of
    /// the posting block (nobody knew it when the posting was signed; it is known from the next
    /// block on), or, once that is older than the 256 blocks the EVM keeps, of the latest block a
    /// multiple of 256 blocks after it (so claims within the same 256 blocks draw alike). Zero
    /// within the posting block; a zero hash counts as 1, since a stored 0 means "none yet".
    function _seed(uint256 postBlock) private view returns (uint32) {
        if (block.number <= postBlock) return 0;
        uint256 anchor = postBlock;
        if (block.number - postBlock > 256) anchor += 256 * ((block.number - 1 - postBlock) / 256);
        uint32 seed = uint32(uint256(blockhash(anchor)));
        return seed == 0 ? 1 : seed;
    }

    function _existingJob(uint256 jobId) private view returns (Job storage job) {
        job = _jobs[jobId];
        if (job.status == JobStatus.None) revert UnknownJob(jobId);
    }

    function _effectiveStatus(Job storage job) private view returns (JobStatus status) {
        status = job.status;
        if (status == JobStatus.Running && block.timestamp > job.deadline) status = JobStatus.Revealing;
    }

    /// @dev Only meaningful for a job whose effective status is Revealing.
    function _revealDeadline(Job storage job) private view returns (uint256) {
        return job.status == JobStatus.Running ? uint256(job.deadline) + job.revealWindow : job.deadline;
    }

    function _seatOf(uint256 jobId, uint256 claims, address provider) private view returns (Seat storage) {
        for (uint256 i; i < claims; ++i) {
            Seat storage seat = _seats[jobId][i];
            if (seat.provider == provider) return seat;
        }
        revert NotAssigned(jobId, provider);
    }

    function _holdsSlot(uint256 jobId, uint256 claims, address provider) private view returns (bool) {
        for (uint256 i; i < claims; ++i) {
            if (_seats[jobId][i].provider == provider) return true;
        }
        return false;
    }

    function _statusOf(Seat storage seat) private view returns (AssignmentStatus) {
        if (seat.revealed) return AssignmentStatus.Revealed;
        return seat.hash == bytes32(0) ? AssignmentStatus.Claimed : AssignmentStatus.Committed;
    }

    function _requireAssignmentStatus(Seat storage seat, uint256 jobId, AssignmentStatus expected) private view {
        AssignmentStatus current = _statusOf(seat);
        if (current != expected) revert AssignmentNotInState(jobId, msg.sender, current, expected);
    }

    /// @dev The job's payment token; ETH (id 0) needs no storage read.
    function _tokenOf(Job storage job) private view returns (address) {
        uint8 id = job.tokenId;
        return id == 0 ? address(0) : _paymentTokens[id];
    }

    function _paymentTokenId(address token) private view returns (uint8) {
        if (token == address(0)) return 0;
        PaymentToken storage info = _paymentTokenInfo[token];
        if (!info.allowed) revert TokenNotAllowed(token);
        return info.id;
    }

    /// @dev `window` seconds from now. Fits 32 bits: {_post} bounded the sum of a job's windows.
    function _deadline(uint32 window) private view returns (uint32) {
        return uint32(block.timestamp + window);
    }

    function _toUint80(uint256 amount) private pure returns (uint80) {
        if (amount > type(uint80).max) revert AmountTooLarge(amount, type(uint80).max);
        return uint80(amount);
    }

    function _requireSameLength(uint256 expected, uint256 actual) private pure {
        if (expected != actual) revert LengthMismatch(expected, actual);
    }

    function _stateError(uint256 jobId, JobStatus current, JobStatus expected) private pure returns (bytes memory) {
        return abi.encodeWithSelector(JobNotInState.selector, jobId, current, expected);
    }

    /// @dev Inside a batch, an item another transaction made unactionable is skipped and logged;
    /// on its own, the call reverts with `err`.
    function _skipOrRevert(bool inBatch, uint256 jobId, bytes memory err) private {
        if (!inBatch) {
            assembly ("memory-safe") {
                revert(add(err, 32), mload(err))
            }
        }
        emit BatchItemSkipped(jobId, msg.sender, bytes4(err));
    }
}
