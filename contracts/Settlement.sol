// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Settlement: job escrow, provider stake per GPU, merkle-batched payouts.
/// @notice Money is the chain's native coin (on DeepBrain Chain: DBC), 18 decimals.
///  - A job owner deposits escrow for a job id; unspent escrow is refundable once the job
///    has ended (owner says so) or its deadline has passed.
///  - A provider stakes per GPU (seed rule below); payouts are credited only while staked.
///  - The job owner settles a batch of usage receipts in one transaction: the merkle root of
///    the receipts plus the aggregated payout per provider. Receipts stay off chain, so the
///    cost grows with the providers in a batch, not with its receipts.
///  - A batch id is paid at most once: resubmitting the same root returns false and pays
///    nothing; a different root for a settled id reverts with BatchConflict.
///  - Payouts are credited to a balance the provider withdraws (pull payments), so a
///    provider that cannot receive coins never blocks a batch.
contract Settlement {
    /// Stake per GPU for the first FULL_STAKE_GPUS GPUs of the network, in wei.
    uint256 public constant STAKE_PER_GPU = 100_000 ether;
    uint256 public constant FULL_STAKE_GPUS = 10_000;
    /// Bounds the stake loop (one iteration per GPU added) so a call always fits in a block.
    uint32 public constant MAX_GPUS_PER_CALL = 20_000;

    struct Job {
        address owner;
        uint64 deadline; // unix seconds; 0 = none (refund only after endJob)
        bool ended;
        uint256 escrow;
    }

    struct Provider {
        uint128 stake; // wei held for this provider
        uint32 gpus;
    }

    mapping(bytes32 => Job) public jobs;
    mapping(address => Provider) public providers;
    /// Credited payouts, withdrawable by the provider.
    mapping(address => uint256) public balances;
    /// Merkle root of each settled batch; zero = not settled.
    mapping(bytes32 => bytes32) public settledRoot;
    /// GPUs staked in the network right now (the stake rule counts from here).
    uint256 public totalGpus;

    event JobDeposited(bytes32 indexed jobId, address indexed owner, uint256 amount, uint256 escrow, uint64 deadline);
    event JobEnded(bytes32 indexed jobId, address indexed owner);
    event EscrowRefunded(bytes32 indexed jobId, address indexed owner, uint256 amount);
    event ProviderStaked(address indexed provider, address indexed payer, uint32 gpus, uint256 amount, uint256 totalGpus);
    event ProviderUnstaked(address indexed provider, uint32 gpus, uint256 amount, uint256 totalGpus);
    event BatchSettled(bytes32 indexed batchId, bytes32 indexed jobId, bytes32 root, uint32 receiptCount, uint256 paid, uint256 withheld);
    event ProviderPaid(bytes32 indexed batchId, address indexed provider, uint256 amount);
    event PayoutWithheld(bytes32 indexed batchId, address indexed provider, uint256 amount);
    event Withdrawn(address indexed provider, uint256 amount);

    error NotJobOwner(bytes32 jobId, address owner, address caller);
    error JobAlreadyEnded(bytes32 jobId);
    error JobStillOpen(bytes32 jobId, uint64 deadline);
    error NothingToRefund(bytes32 jobId);
    error ZeroAmount();
    error EmptyRoot(bytes32 batchId);
    error BatchConflict(bytes32 batchId, bytes32 settledRoot, bytes32 submittedRoot);
    error LengthMismatch(uint256 providers, uint256 amounts);
    error InsufficientEscrow(bytes32 jobId, uint256 escrow, uint256 needed);
    error InvalidGpuCount(uint32 gpus);
    error StakeTooLow(uint256 required, uint256 sent);
    error NotStaked(address provider);
    error TransferFailed(address to, uint256 amount);

    // ---------------------------------------------------------------- escrow

    /// Deposits escrow for `jobId`. The first deposit makes the caller the job owner;
    /// later deposits (owner only) add to it and may extend the deadline.
    function deposit(bytes32 jobId, uint64 deadline) external payable {
        if (msg.value == 0) revert ZeroAmount();
        Job storage job = jobs[jobId];
        if (job.owner == address(0)) {
            job.owner = msg.sender;
        } else if (job.owner != msg.sender) {
            revert NotJobOwner(jobId, job.owner, msg.sender);
        }
        if (job.ended) revert JobAlreadyEnded(jobId);
        if (deadline > job.deadline) job.deadline = deadline;
        job.escrow += msg.value;
        emit JobDeposited(jobId, msg.sender, msg.value, job.escrow, job.deadline);
    }

    /// The owner marks the job finished: from now on its unspent escrow is refundable.
    function endJob(bytes32 jobId) external {
        Job storage job = _ownedJob(jobId);
        if (job.ended) return;
        job.ended = true;
        emit JobEnded(jobId, msg.sender);
    }

    /// Returns the unspent escrow to the owner once the job ended or its deadline passed.
    function refund(bytes32 jobId) external returns (uint256 amount) {
        Job storage job = _ownedJob(jobId);
        if (!job.ended && (job.deadline == 0 || block.timestamp < job.deadline)) revert JobStillOpen(jobId, job.deadline);
        amount = job.escrow;
        if (amount == 0) revert NothingToRefund(jobId);
        job.escrow = 0;
        emit EscrowRefunded(jobId, msg.sender, amount);
        _send(msg.sender, amount);
    }

    // ---------------------------------------------------------------- stake

    /// Stake for GPU number `gpuNumber` (1-based, counted over the whole network):
    /// 100,000 coins for the first 10,000 GPUs; for GPU 10,000+n it is
    /// 100,000 x 10000 / (10000+n), in wei, rounded down (integer division, per GPU).
    function stakeForGpu(uint256 gpuNumber) public pure returns (uint256) {
        if (gpuNumber <= FULL_STAKE_GPUS) return STAKE_PER_GPU;
        return (STAKE_PER_GPU * FULL_STAKE_GPUS) / gpuNumber;
    }

    /// Stake needed to add `gpus` GPUs to the network now (sum of stakeForGpu over them).
    function stakeRequired(uint32 gpus) public view returns (uint256 sum) {
        uint256 first = totalGpus + 1;
        uint256 last = totalGpus + gpus;
        for (uint256 g = first; g <= last; g++) sum += stakeForGpu(g);
    }

    /// Stakes `gpus` more GPUs for `provider` (anyone may pay; the stake belongs to the
    /// provider and returns to it on unstake). Any excess over the requirement is returned.
    function stake(address provider, uint32 gpus) external payable {
        if (gpus == 0 || gpus > MAX_GPUS_PER_CALL) revert InvalidGpuCount(gpus);
        uint256 required = stakeRequired(gpus);
        if (msg.value < required) revert StakeTooLow(required, msg.value);
        Provider storage p = providers[provider];
        p.gpus += gpus;
        p.stake += uint128(required);
        totalGpus += gpus;
        emit ProviderStaked(provider, msg.sender, gpus, required, totalGpus);
        if (msg.value > required) _send(msg.sender, msg.value - required);
    }

    /// Withdraws all of the caller's stake; its payouts are withheld from then on.
    function unstake() external returns (uint256 amount) {
        Provider memory p = providers[msg.sender];
        if (p.gpus == 0) revert NotStaked(msg.sender);
        delete providers[msg.sender];
        totalGpus -= p.gpus;
        amount = p.stake;
        emit ProviderUnstaked(msg.sender, p.gpus, amount, totalGpus);
        _send(msg.sender, amount);
    }

    function isStaked(address provider) public view returns (bool) {
        return providers[provider].gpus > 0;
    }

    // ---------------------------------------------------------------- settlement

    /// Settles one batch of receipts of `jobId`, paid from its escrow. Only the job owner
    /// settles. Returns false (and pays nothing) if this batch id was already settled with
    /// the same root; reverts with BatchConflict if it was settled with another root.
    /// Payouts to providers that are not staked are withheld (they stay in escrow).
    function settleBatch(
        bytes32 batchId,
        bytes32 jobId,
        bytes32 root,
        uint32 receiptCount,
        address[] calldata payees,
        uint256[] calldata amounts
    ) external returns (bool settled) {
        if (root == bytes32(0)) revert EmptyRoot(batchId);
        bytes32 prior = settledRoot[batchId];
        if (prior != bytes32(0)) {
            if (prior == root) return false;
            revert BatchConflict(batchId, prior, root);
        }
        Job storage job = jobs[jobId];
        if (job.owner != msg.sender) revert NotJobOwner(jobId, job.owner, msg.sender);
        if (payees.length != amounts.length) revert LengthMismatch(payees.length, amounts.length);
        (uint256 paid, uint256 withheld) = _credit(batchId, payees, amounts);
        uint256 escrow = job.escrow;
        if (paid > escrow) revert InsufficientEscrow(jobId, escrow, paid);
        job.escrow = escrow - paid;
        settledRoot[batchId] = root;
        emit BatchSettled(batchId, jobId, root, receiptCount, paid, withheld);
        return true;
    }

    /// Checks that `leaf` is in the settled batch `batchId` (sorted-pair keccak256 tree;
    /// leaf = keccak256(keccak256(encoded UsageReceipt))).
    function verifyReceipt(bytes32 batchId, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        bytes32 root = settledRoot[batchId];
        if (root == bytes32(0)) return false;
        bytes32 node = leaf;
        for (uint256 i = 0; i < proof.length; i++) {
            bytes32 sib = proof[i];
            node = node < sib ? keccak256(abi.encodePacked(node, sib)) : keccak256(abi.encodePacked(sib, node));
        }
        return node == root;
    }

    /// Sends the caller's credited payouts to it.
    function withdraw() external returns (uint256 amount) {
        amount = balances[msg.sender];
        if (amount == 0) revert ZeroAmount();
        balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    // ---------------------------------------------------------------- internals

    /// Credits each staked payee; sums what was paid and what was withheld (unstaked).
    function _credit(bytes32 batchId, address[] calldata payees, uint256[] calldata amounts)
        private
        returns (uint256 paid, uint256 withheld)
    {
        for (uint256 i = 0; i < payees.length; i++) {
            address payee = payees[i];
            uint256 amount = amounts[i];
            if (providers[payee].gpus == 0) {
                withheld += amount;
                emit PayoutWithheld(batchId, payee, amount);
            } else {
                paid += amount;
                balances[payee] += amount;
                emit ProviderPaid(batchId, payee, amount);
            }
        }
    }

    function _ownedJob(bytes32 jobId) private view returns (Job storage job) {
        job = jobs[jobId];
        if (job.owner != msg.sender) revert NotJobOwner(jobId, job.owner, msg.sender);
    }

    function _send(address to, uint256 amount) private {
        (bool ok, ) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
