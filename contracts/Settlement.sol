// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Settlement v4: job escrow, provider stake per GPU, payer-signed cumulative vouchers.
/// @notice Money is the chain's native coin (on DeepBrain Chain: DBC), 18 decimals.
///  - A payer locks escrow for a job id with a deadline and a dispute window. The escrow's key
///    is escrowIdOf(payer, jobId) = keccak256(abi.encode(payer, jobId)), so nobody can take a
///    job id first by depositing under it (v2 keyed by jobId alone: a 1 wei front-run blocked it).
///    Everything after the deposit (close, refund, vouchers, redeemed, views) names the escrow id.
///  - For each provider the payer signs (EIP-712) the running total it owes for the job. Only
///    that provider may redeem it; the contract pays `cumulative - redeemed` from the job's
///    escrow, so replaying, reordering or resubmitting a voucher pays nothing twice.
///  - The payer gets the unspent escrow back only after min(deadline, close time) plus the
///    dispute window, so providers have that long to redeem what was signed.
///  - No constructor arguments: the address through the CREATE2 deployer is deterministic.
///  contracts/README.md lists each rule with the attack it stops.
contract Settlement {
    /// Stake per GPU for the first FULL_STAKE_GPUS GPUs of the network, in wei.
    uint256 public constant STAKE_PER_GPU = 100_000 ether;
    uint256 public constant FULL_STAKE_GPUS = 10_000;
    /// Bounds the stake loop (one iteration per GPU added) so a call always fits in a block.
    uint32 public constant MAX_GPUS_PER_CALL = 20_000;
    /// Bounds of a job's dispute window, in seconds.
    uint32 public constant MIN_DISPUTE_WINDOW = 60;
    uint32 public constant MAX_DISPUTE_WINDOW = 30 days;

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 escrowId,address provider,uint256 cumulative,bytes32 receiptsRoot,uint32 receiptCount)");
    /// Upper half of the secp256k1 order: signatures with s above it are the malleable twin.
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// Signed by the payer, redeemed by the provider (src/core/settlement/voucher.ts).
    struct Voucher {
        bytes32 escrowId; // escrowIdOf(payer, keccak256(job id bytes)): one payer's escrow of one job
        address provider;
        uint256 cumulative; // total owed to `provider` from `escrowId` so far, in wei
        bytes32 receiptsRoot; // merkle root of the receipts it covers (evidence only)
        uint32 receiptCount;
    }

    // Packed so a redeem reads two slots: [payer, deadline, disputeWindow, refunded], [escrow, paid].
    struct Job {
        address payer;
        uint64 deadline; // unix seconds
        uint24 disputeWindow; // seconds, <= 30 days < 2^24
        bool refunded;
        uint128 escrow; // everything deposited
        uint128 paid; // everything redeemed
        uint64 closedAt; // 0 = open
    }

    struct Provider {
        uint128 stake; // wei held for this provider
        uint32 gpus;
    }

    /// By escrow id (escrowIdOf).
    mapping(bytes32 => Job) private _jobs;
    /// What each provider has been paid from each escrow (the cumulative amount redeemed), by escrow id.
    mapping(bytes32 => mapping(address => uint256)) public redeemed;
    mapping(address => Provider) public providers;
    /// GPUs staked in the network right now (the stake rule counts from here).
    uint256 public totalGpus;

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    /// `jobId`: the payer's job key the escrow id was derived from (escrowIdOf(payer, jobId) = `escrowId`).
    event JobDeposited(bytes32 indexed escrowId, bytes32 indexed jobId, address indexed payer, uint256 amount, uint256 escrow, uint64 deadline, uint32 disputeWindow);
    event JobClosed(bytes32 indexed escrowId, address indexed payer, uint64 closedAt);
    event EscrowRefunded(bytes32 indexed escrowId, address indexed payer, uint256 amount);
    /// `cumulative`: the provider's redeemed total for the job after this redeem (the voucher's
    /// cumulative, unless the escrow was short).
    event Redeemed(bytes32 indexed escrowId, address indexed provider, uint256 amount, uint256 cumulative);
    event ProviderStaked(address indexed provider, address indexed payer, uint32 gpus, uint256 amount, uint256 totalGpus);
    event ProviderUnstaked(address indexed provider, uint32 gpus, uint256 amount, uint256 totalGpus);

    error ZeroAmount();
    error InvalidDisputeWindow(uint32 disputeWindow, uint32 min, uint32 max);
    error DeadlinePassed(uint64 deadline, uint256 now_);
    error EscrowOverflow(bytes32 escrowId);
    error UnknownJob(bytes32 escrowId);
    error NotPayer(bytes32 escrowId, address payer, address caller);
    error JobAlreadyClosed(bytes32 escrowId, uint64 closedAt);
    error JobAlreadyRefunded(bytes32 escrowId);
    error DisputeWindowOpen(bytes32 escrowId, uint256 refundableAt);
    error LengthMismatch(uint256 vouchers, uint256 signatures);
    error NotPayee(bytes32 escrowId, address provider, address caller);
    error MalformedSignature(bytes32 escrowId, address provider);
    error NotSignedByPayer(bytes32 escrowId, address payer, address signer);
    error InvalidGpuCount(uint32 gpus);
    error StakeTooLow(uint256 required, uint256 sent);
    error NotStaked(address provider);
    error TransferFailed(address to, uint256 amount);

    constructor() {
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    // ---------------------------------------------------------------- escrow

    /// The escrow id of `payer`'s escrow for `jobId`: what close, refund, vouchers and views take.
    function escrowIdOf(address payer, bytes32 jobId) public pure returns (bytes32) {
        return keccak256(abi.encode(payer, jobId));
    }

    /// Locks escrow for the caller's job `jobId` (escrow id escrowIdOf(msg.sender, jobId), so
    /// another account's deposit under the same job id is another escrow). The first deposit
    /// fixes the dispute window (in [60 s, 30 days]); the deadline must be in the future. Later
    /// deposits (`disputeWindow` ignored) add to it and may extend the deadline, never shorten
    /// it. No deposits after close or refund. Returns the escrow id.
    function deposit(bytes32 jobId, uint64 deadline, uint32 disputeWindow) external payable returns (bytes32 escrowId) {
        escrowId = escrowIdOf(msg.sender, jobId);
        Job storage job = _jobs[escrowId];
        if (job.payer == address(0)) {
            if (msg.value == 0) revert ZeroAmount();
            if (disputeWindow < MIN_DISPUTE_WINDOW || disputeWindow > MAX_DISPUTE_WINDOW) {
                revert InvalidDisputeWindow(disputeWindow, MIN_DISPUTE_WINDOW, MAX_DISPUTE_WINDOW);
            }
            if (deadline <= block.timestamp) revert DeadlinePassed(deadline, block.timestamp);
            job.payer = msg.sender;
            job.disputeWindow = uint24(disputeWindow);
            job.deadline = deadline;
        } else {
            // the key binds the payer: job.payer == msg.sender here
            if (job.refunded) revert JobAlreadyRefunded(escrowId);
            if (job.closedAt != 0) revert JobAlreadyClosed(escrowId, job.closedAt);
            if (deadline > job.deadline) job.deadline = deadline;
        }
        uint256 escrow = uint256(job.escrow) + msg.value;
        if (escrow > type(uint128).max) revert EscrowOverflow(escrowId);
        job.escrow = uint128(escrow);
        emit JobDeposited(escrowId, jobId, msg.sender, msg.value, escrow, job.deadline, job.disputeWindow);
    }

    /// The payer says no more work will be ordered: the refund clock starts now (idempotent).
    function close(bytes32 escrowId) external {
        Job storage job = _payerJob(escrowId);
        if (job.closedAt != 0) return;
        uint64 at = uint64(block.timestamp);
        job.closedAt = at;
        emit JobClosed(escrowId, msg.sender, at);
    }

    /// Returns the unspent escrow to the payer once min(deadline, closedAt) + disputeWindow
    /// has passed. Afterwards vouchers of this job pay nothing and deposits revert.
    function refund(bytes32 escrowId) external returns (uint256 amount) {
        Job storage job = _payerJob(escrowId);
        if (job.refunded) revert JobAlreadyRefunded(escrowId);
        uint256 at = refundableAt(escrowId);
        if (block.timestamp < at) revert DisputeWindowOpen(escrowId, at);
        job.refunded = true;
        amount = uint256(job.escrow) - job.paid;
        emit EscrowRefunded(escrowId, msg.sender, amount);
        if (amount > 0) _send(msg.sender, amount);
    }

    /// The earliest time the payer may refund `escrowId` (0 for an unknown job).
    function refundableAt(bytes32 escrowId) public view returns (uint256) {
        Job storage job = _jobs[escrowId];
        if (job.payer == address(0)) return 0;
        uint256 start = job.deadline;
        if (job.closedAt != 0 && job.closedAt < start) start = job.closedAt;
        return start + job.disputeWindow;
    }

    function jobs(bytes32 escrowId)
        external
        view
        returns (address payer, uint256 escrow, uint256 paid, uint64 deadline, uint64 closedAt, uint32 disputeWindow, bool refunded)
    {
        Job storage job = _jobs[escrowId];
        return (job.payer, job.escrow, job.paid, job.deadline, job.closedAt, job.disputeWindow, job.refunded);
    }

    /// Escrow still available to vouchers: escrow - paid (0 once refunded).
    function unspent(bytes32 escrowId) external view returns (uint256) {
        Job storage job = _jobs[escrowId];
        if (job.refunded) return 0;
        return uint256(job.escrow) - job.paid;
    }

    // ---------------------------------------------------------------- vouchers

    /// Redeems vouchers, all naming the caller as provider (any jobs). Each must be signed by
    /// its job's payer. Pays, per voucher, cumulative - redeemed (nothing if not more), capped
    /// by the job's unspent escrow (the rest stays redeemable after a top-up); nothing for a
    /// refunded job. One transfer to the caller at the end. Returns the total paid.
    function redeem(Voucher[] calldata vouchers, bytes[] calldata sigs) external returns (uint256 total) {
        if (vouchers.length != sigs.length) revert LengthMismatch(vouchers.length, sigs.length);
        if (providers[msg.sender].gpus == 0) revert NotStaked(msg.sender);
        bytes32 domain = domainSeparator();
        for (uint256 i = 0; i < vouchers.length; i++) {
            total += _redeemOne(vouchers[i], sigs[i], domain);
        }
        if (total > 0) _send(msg.sender, total);
    }

    function _redeemOne(Voucher calldata v, bytes calldata sig, bytes32 domain) private returns (uint256 amount) {
        bytes32 escrowId = v.escrowId;
        if (v.provider != msg.sender) revert NotPayee(escrowId, v.provider, msg.sender);
        Job storage job = _jobs[escrowId];
        address payer = job.payer;
        if (payer == address(0)) revert UnknownJob(escrowId);
        address signer = _recover(keccak256(abi.encodePacked("\x19\x01", domain, _structHash(v))), sig, escrowId);
        if (signer != payer) revert NotSignedByPayer(escrowId, payer, signer);
        if (job.refunded) return 0;
        uint256 done = redeemed[escrowId][msg.sender];
        if (v.cumulative <= done) return 0;
        amount = v.cumulative - done;
        uint256 paid = job.paid;
        uint256 left = uint256(job.escrow) - paid;
        if (amount > left) amount = left;
        if (amount == 0) return 0;
        done += amount;
        redeemed[escrowId][msg.sender] = done;
        job.paid = uint128(paid + amount);
        emit Redeemed(escrowId, msg.sender, amount, done);
    }

    /// EIP-712 domain: name "DBC Settlement", version "4", this chain, this contract.
    function domainSeparator() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    /// The EIP-712 digest the payer signs for `v` (voucherDigest in voucher.ts).
    function voucherDigest(Voucher calldata v) external view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), _structHash(v)));
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("DBC Settlement"), keccak256("4"), block.chainid, address(this)));
    }

    function _structHash(Voucher calldata v) private pure returns (bytes32) {
        return keccak256(abi.encode(VOUCHER_TYPEHASH, v.escrowId, v.provider, v.cumulative, v.receiptsRoot, v.receiptCount));
    }

    /// ecrecover of a 65-byte (r, s, v) signature; rejects high s (malleable twin), v other
    /// than 27/28 and signatures that recover to no address.
    function _recover(bytes32 digest, bytes calldata sig, bytes32 escrowId) private view returns (address signer) {
        if (sig.length != 65) revert MalformedSignature(escrowId, msg.sender);
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (uint256(s) > HALF_ORDER || (v != 27 && v != 28)) revert MalformedSignature(escrowId, msg.sender);
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert MalformedSignature(escrowId, msg.sender);
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

    /// Withdraws all of the caller's stake; it can not redeem vouchers until it stakes again.
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

    // ---------------------------------------------------------------- internals

    function _payerJob(bytes32 escrowId) private view returns (Job storage job) {
        job = _jobs[escrowId];
        if (job.payer == address(0)) revert UnknownJob(escrowId);
        if (job.payer != msg.sender) revert NotPayer(escrowId, job.payer, msg.sender);
    }

    function _send(address to, uint256 amount) private {
        (bool ok, ) = payable(to).call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
