// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ComputeMarket protocol interface
/// @notice Requesters escrow payment for a compute job; staked providers claim replica slots,
/// commit and reveal result hashes, and the contract pays the majority and slashes the rest.
/// Every payout is a credit that its owner pulls with {withdraw}.
interface IComputeMarket {
    // ───────────────────────────── Types ─────────────────────────────

    /// @notice A job's lifecycle state. `Revealing` is also reported by {getJob} for a Running
    /// job whose commit deadline has passed.
    enum JobStatus {
        None,
        Open,
        Running,
        Revealing,
        Completed,
        Failed,
        Cancelled
    }

    /// @notice One provider's progress on one replica slot of a job.
    enum AssignmentStatus {
        None,
        Claimed,
        Committed,
        Revealed
    }

    /// @notice What a requester asks for when posting a job.
    /// @param specHash SHA-256 of the canonical JSON job spec (kept in the event only).
    /// @param token Payment token; address(0) is native ETH, anything else must be allow-listed.
    /// @param rewardPerReplica Paid to each provider in the majority (before the protocol fee).
    /// @param replicas Number of independent providers, 1..15.
    /// @param collateralPerReplica Stake locked by each claiming provider, in the stake token.
    /// @param claimWindow Seconds after posting during which slots can be claimed.
    /// @param runTimeout Seconds after the last claim during which results can be committed.
    /// @param revealWindow Seconds after the commit phase ends during which results can be revealed.
    struct JobParams {
        bytes32 specHash;
        address token;
        uint256 rewardPerReplica;
        uint8 replicas;
        uint256 collateralPerReplica;
        uint32 claimWindow;
        uint32 runTimeout;
        uint32 revealWindow;
    }

    /// @notice A job as {getJob} reports it.
    /// @param status Effective status at the current block time.
    /// @param deadline End of the current phase: claim deadline while Open, commit deadline while
    /// Running, reveal deadline while Revealing; the last one reached once the job is over.
    /// @param feeBps Protocol fee fixed when the job was posted.
    struct JobView {
        address requester;
        address token;
        JobStatus status;
        uint8 replicas;
        uint8 claims;
        uint8 commits;
        uint8 reveals;
        uint32 deadline;
        uint256 rewardPerReplica;
        uint256 collateralPerReplica;
        uint32 runTimeout;
        uint32 revealWindow;
        uint16 feeBps;
    }

    /// @notice A provider's slot on a job as {getAssignment} reports it.
    /// @param commitment Set while the slot is Committed.
    /// @param resultHash Set once a replicated job's slot is Revealed (single-replica results
    /// are settled at once and live in the events only).
    struct AssignmentView {
        AssignmentStatus status;
        uint8 slot;
        bytes32 commitment;
        bytes32 resultHash;
    }

    /// @notice A job's sortition as {getSortition} reports it.
    /// @param postBlock The block the job was posted in: stakes bonded by then weigh the draw.
    /// @param claimWindow Seconds after posting during which seats can be claimed.
    /// @param seed The draw's seed once the first claim fixed it, zero before: a claim then draws
    /// with the low 32 bits of the posting block's hash (see {claimJob}).
    /// @param totalBonded All providers' bonded stake at `postBlock`.
    struct SortitionView {
        uint256 postBlock;
        uint256 claimWindow;
        uint256 seed;
        uint256 totalBonded;
    }

    /// @notice A provider's stake as {providerInfo} reports it.
    struct ProviderView {
        bool registered;
        uint256 freeStake;
        uint256 lockedStake;
        uint256 unbonding;
        uint256 unbondingReadyAt;
    }

    // ───────────────────────────── Errors ─────────────────────────────

    /// @notice `amount` does not fit the 96-bit amounts the contract stores.
    error AmountTooLarge(uint256 amount, uint256 max);
    /// @notice A zero amount where a positive one is required.
    error ZeroAmount();
    /// @notice address(0) where a real address is required.
    error ZeroAddress();
    /// @notice `replicas` is outside 1..15.
    error InvalidReplicas(uint8 replicas);
    /// @notice A claim, run or reveal window of zero seconds, or windows whose deadlines would
    /// fall after 2106 (deadlines are 32-bit timestamps).
    error InvalidWindow();
    /// @notice A window longer than the market allows (or, for {setBounds}, than its hard cap).
    error WindowTooLong(uint256 window, uint256 max);
    /// @notice Collateral per replica below the market's minimum: a share of the reward when the
    /// job pays in the stake token, any non-zero amount otherwise.
    error CollateralTooLow(uint256 collateral, uint256 minimum);
    /// @notice A minimum collateral above its hard cap.
    error CollateralBoundTooHigh(uint256 minCollateralBps, uint256 max);
    /// @notice An unbonding period above its hard cap.
    error InvalidUnbondingPeriod(uint256 period, uint256 max);
    /// @notice A doubling period of zero or above its hard cap.
    error InvalidDoublingPeriod(uint256 period, uint256 max);
    /// @notice The caller's ticket for this job is not within its eligibility threshold yet.
    error NotEligible(uint256 jobId, address provider);
    /// @notice The block whose hash seeds this job's draw (`seedBlock`) is not over yet.
    error SeedNotReady(uint256 jobId, uint256 seedBlock);
    /// @notice `token` is not on the payment allow-list.
    error TokenNotAllowed(address token);
    /// @notice The payment allow-list is full.
    error TooManyTokens();
    /// @notice ETH sent does not match what the call requires.
    error WrongEtherAmount(uint256 expected, uint256 sent);
    /// @notice Fewer tokens arrived than the job needs for one wei per replica.
    error PaymentTooSmall(uint256 received, uint256 replicas);
    /// @notice The caller has never called {registerProvider}.
    error NotRegistered(address provider);
    /// @notice Free stake is below what the action needs.
    error InsufficientFreeStake(address provider, uint256 needed, uint256 free);
    /// @notice No job has this id.
    error UnknownJob(uint256 jobId);
    /// @notice The job is in `current` state, the action needs `expected`.
    error JobNotInState(uint256 jobId, JobStatus current, JobStatus expected);
    /// @notice The deadline of the action's phase has passed.
    error DeadlinePassed(uint256 jobId, uint256 deadline);
    /// @notice The action is allowed only after `deadline`.
    error DeadlineNotReached(uint256 jobId, uint256 deadline);
    /// @notice The provider already holds a slot of this job.
    error AlreadyClaimed(uint256 jobId, address provider);
    /// @notice The caller holds no slot of this job.
    error NotAssigned(uint256 jobId, address provider);
    /// @notice The caller's slot is in `current` state, the action needs `expected`.
    error AssignmentNotInState(uint256 jobId, address provider, AssignmentStatus current, AssignmentStatus expected);
    /// @notice A commitment of zero, which would read as "not committed".
    error EmptyCommitment(uint256 jobId);
    /// @notice The revealed hash and salt do not open the stored commitment.
    error CommitmentMismatch(uint256 jobId, address provider);
    /// @notice {submitResult} is only for single-replica jobs; replicated jobs commit and reveal.
    error ReplicatedJob(uint256 jobId, uint8 replicas);
    /// @notice Some committed providers have not revealed and the reveal deadline has not passed.
    error RevealsPending(uint256 jobId, uint8 committed, uint8 revealed, uint256 revealDeadline);
    /// @notice The caller may not cancel this job now.
    error CancelNotAllowed(uint256 jobId, address caller);
    /// @notice Parallel batch arrays differ in length.
    error LengthMismatch(uint256 expected, uint256 actual);
    /// @notice Nothing is owed to the caller in this token.
    error NothingToWithdraw(address account, address token);
    /// @notice Unbonding stake becomes withdrawable at `readyAt`.
    error UnbondingNotReady(uint256 readyAt);
    /// @notice The fee is above the 10% cap.
    error FeeTooHigh(uint256 feeBps, uint256 maxFeeBps);

    // ───────────────────────────── Events ─────────────────────────────

    /// @notice A provider registered or updated its metadata.
    event ProviderRegistered(address indexed provider, string metadataURI);
    /// @notice A provider added `amount` of free stake.
    event Staked(address indexed provider, uint256 amount);
    /// @notice A provider moved `amount` of free stake to unbonding, withdrawable at `readyAt`.
    event UnstakeRequested(address indexed provider, uint256 amount, uint256 readyAt);
    /// @notice A provider took its unbonded stake out.
    event StakeWithdrawn(address indexed provider, uint256 amount);
    /// @notice A job was posted and its escrow received.
    event JobPosted(
        uint256 indexed jobId,
        address indexed requester,
        bytes32 specHash,
        address indexed token,
        uint256 rewardPerReplica,
        uint8 replicas,
        uint256 collateralPerReplica,
        uint256 claimDeadline
    );
    /// @notice `provider` took replica slot `slot` (0-based) and locked its collateral.
    event JobClaimed(uint256 indexed jobId, address indexed provider, uint8 slot);
    /// @notice All slots are taken; results must be committed by `commitDeadline`.
    event JobStarted(uint256 indexed jobId, uint256 commitDeadline);
    /// @notice `provider` committed to a result without showing it.
    event ResultCommitted(uint256 indexed jobId, address indexed provider, bytes32 commitment);
    /// @notice `provider` showed its result hash.
    event ResultRevealed(uint256 indexed jobId, address indexed provider, bytes32 resultHash);
    /// @notice The job settled: `outcome` is Completed (with the majority's `resultHash` and
    /// `winners`) or Failed (no quorum; `resultHash` is zero).
    event JobFinalized(uint256 indexed jobId, JobStatus outcome, bytes32 resultHash, address[] winners);
    /// @notice The job was cancelled and its escrow credited back to the requester.
    event JobCancelled(uint256 indexed jobId);
    /// @notice `provider` lost `amount` of locked collateral on `jobId`.
    event Slashed(address indexed provider, uint256 indexed jobId, uint256 amount);
    /// @notice `amount` of `token` became withdrawable by `account` because of `jobId`.
    event Credited(address indexed account, address indexed token, uint256 indexed jobId, uint256 amount);
    /// @notice `account` withdrew `amount` of its `token` credit.
    event Withdrawn(address indexed account, address indexed token, uint256 amount);
    /// @notice A batch item was skipped because its job no longer allows the action (another
    /// transaction, or an earlier item of the same batch, got there first, or a deadline passed);
    /// `reason` is the selector of the error the single-item form would have reverted with.
    event BatchItemSkipped(uint256 indexed jobId, address indexed caller, bytes4 reason);
    /// @notice The protocol fee for jobs posted from now on.
    event FeeUpdated(uint256 feeBps);
    /// @notice Where protocol fees are credited from now on.
    event TreasuryUpdated(address indexed treasury);
    /// @notice `token` was added to or removed from the payment allow-list.
    event PaymentTokenUpdated(address indexed token, bool allowed);
    /// @notice The longest windows and the minimum collateral (basis points of the reward) of jobs
    /// posted from now on.
    event BoundsUpdated(uint256 maxClaimWindow, uint256 maxRunTimeout, uint256 maxRevealWindow, uint256 minCollateralBps);

    // ───────────────────────────── Staking ─────────────────────────────

    /// @notice Registers the caller as a provider, or updates its metadata.
    function registerProvider(string calldata metadataURI) external;

    /// @notice Adds `amount` of the stake token to the caller's free stake (send it as ETH when
    /// the stake token is ETH; an ERC-20 stake is measured by balance delta).
    function stake(uint256 amount) external payable;

    /// @notice Moves `amount` of free stake to unbonding for the unbonding period.
    function requestUnstake(uint256 amount) external;

    /// @notice Sends the caller all of its unbonded stake once the unbonding period is over.
    function withdrawStake() external;

    // ───────────────────────────── Jobs ─────────────────────────────

    /// @notice Posts a job and escrows `rewardPerReplica * replicas`.
    function postJob(JobParams calldata params) external payable returns (uint256 jobId);

    /// @notice Posts several jobs; ETH sent must equal the sum of their ETH escrows.
    function postJobs(JobParams[] calldata params) external payable returns (uint256[] memory jobIds);

    /// @notice Takes one replica slot of an Open job and locks the job's collateral. Seats go by
    /// stake-weighted sortition: the caller must be eligible ({isEligible}). Its ticket,
    /// `keccak256(abi.encode(seed, jobId, caller)) >> 192`, is drawn from a seed nobody knew when
    /// the job was posted (the low 32 bits of the hash of the block it was posted in, or, if that
    /// block is more than 256 blocks old when the first claim comes, of the latest block a
    /// multiple of 256 blocks after it; the first claim fixes the seed). The ticket must be below
    /// 2^64 times the caller's share of the stake bonded at the end of the posting block times
    /// the number of providers expected to be eligible, which starts at twice the seats and
    /// doubles every 1/32 of the claim window or every `DOUBLING_PERIOD` (about a block time, fixed
    /// at deployment), whichever is sooner; from half the window on, every provider that had
    /// stake then is eligible. Stake bonded after the
    /// posting block does not count.
    function claimJob(uint256 jobId) external;

    /// @notice {claimJob} for many jobs; jobs already full, cancelled, past their claim window,
    /// or for which the caller is not eligible are skipped with {BatchItemSkipped}.
    function claimJobs(uint256[] calldata jobIds) external;

    /// @notice Commits `keccak256(abi.encode(jobId, msg.sender, resultHash, salt))`.
    function commitResult(uint256 jobId, bytes32 commitment) external;

    /// @notice {commitResult} for many jobs; jobs past their commit deadline are skipped.
    function commitResults(uint256[] calldata jobIds, bytes32[] calldata commitments) external;

    /// @notice Opens the caller's commitment once the commit phase is over.
    function revealResult(uint256 jobId, bytes32 resultHash, bytes32 salt) external;

    /// @notice {revealResult} for many jobs; jobs past their reveal deadline or already
    /// finalized are skipped.
    function revealResults(uint256[] calldata jobIds, bytes32[] calldata resultHashes, bytes32[] calldata salts)
        external;

    /// @notice Commits, reveals and settles a single-replica job in one step: with one replica
    /// there is nobody to copy from and one reveal is the whole quorum.
    function submitResult(uint256 jobId, bytes32 resultHash) external;

    /// @notice {submitResult} for many jobs; jobs past their commit deadline are skipped.
    function submitResults(uint256[] calldata jobIds, bytes32[] calldata resultHashes) external;

    /// @notice Settles a job once every committer revealed or the reveal deadline passed.
    function finalizeJob(uint256 jobId) external;

    /// @notice {finalizeJob} for many jobs; jobs already settled are skipped.
    function finalizeJobs(uint256[] calldata jobIds) external;

    /// @notice Cancels an Open job: by its requester while nobody has claimed it, or once the
    /// claim window is over by its requester or any provider holding a slot.
    function cancelJob(uint256 jobId) external;

    /// @notice Sends the caller everything credited to it in `token`.
    function withdraw(address token) external;

    // ───────────────────────────── Views ─────────────────────────────

    /// @notice The job `jobId`; reverts with {UnknownJob} if there is none.
    function getJob(uint256 jobId) external view returns (JobView memory);

    /// @notice `provider`'s slot on `jobId` (status None when it holds none).
    function getAssignment(uint256 jobId, address provider) external view returns (AssignmentView memory);

    /// @notice What `account` can withdraw in `token`.
    function credits(address account, address token) external view returns (uint256);

    /// @notice `provider`'s registration and stake.
    function providerInfo(address provider) external view returns (ProviderView memory);

    /// @notice The job's sortition: posting block, claim window, seed and the stake it weighs.
    function getSortition(uint256 jobId) external view returns (SortitionView memory);

    /// @notice Whether `provider` may claim a seat of the job now (see {claimJob}).
    function isEligible(uint256 jobId, address provider) external view returns (bool);

    /// @notice `provider`'s bonded stake (free + locked) at the end of block `blockNumber`.
    function bondedStakeAt(address provider, uint256 blockNumber) external view returns (uint256);

    /// @notice All providers' bonded stake at the end of block `blockNumber`.
    function totalBondedAt(uint256 blockNumber) external view returns (uint256);

    /// @notice The longest windows a job may have, and its minimum collateral in basis points of
    /// its reward.
    function bounds()
        external
        view
        returns (uint256 maxClaimWindow, uint256 maxRunTimeout, uint256 maxRevealWindow, uint256 minCollateralBps);

    /// @notice Number of jobs ever posted; ids run from 1 to this number.
    function jobCount() external view returns (uint256);

    /// @notice Whether `token` may be used to pay for jobs.
    function isPaymentToken(address token) external view returns (bool);

    // ───────────────────────────── Owner ─────────────────────────────

    /// @notice Sets the fee, in basis points of each paid reward, for jobs posted from now on.
    function setFee(uint16 feeBps) external;

    /// @notice Sets where protocol fees and slashed collateral are credited.
    function setTreasury(address treasury) external;

    /// @notice Sets the longest windows (each at most 30 days) and the minimum collateral per
    /// replica, in basis points of the reward (at most 100 times it), of jobs posted from now on.
    function setBounds(uint32 maxClaimWindow, uint32 maxRunTimeout, uint32 maxRevealWindow, uint32 minCollateralBps)
        external;

    /// @notice Adds or removes an ERC-20 from the payment allow-list.
    function setPaymentToken(address token, bool allowed) external;

    /// @notice Stops posting and claiming; withdrawals and settlement go on.
    function pause() external;

    /// @notice Resumes posting and claiming.
    function unpause() external;
}
