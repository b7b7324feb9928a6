// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title NodeList: the committee of each epoch of a Torus-style threshold key network.
/// @notice The owner opens an epoch (n, k, t, neighbours) and whitelists its members; each member
/// then lists itself once with its public key and endpoints. A node's index in the epoch is its
/// 1-based position in listing order, the x-coordinate of all of its shares.
/// @dev Layout and function names follow the original Torus NodeList (solc 0.5); this version
/// is standalone (no proxy), uses custom errors, and checks that a listed public key is the
/// caller's own.
contract NodeList {
    /// @notice One epoch's committee and parameters. `id` is the epoch number, 0 when unset.
    struct Epoch {
        uint256 id;
        uint256 n;
        uint256 k;
        uint256 t;
        address[] nodeList;
        uint256 prevEpoch;
        uint256 nextEpoch;
    }

    /// @notice What a node declared when it last listed itself.
    /// `declaredIp` holds its client JSON-RPC URL, `tmP2PListenAddress` its consensus
    /// multiaddr and `p2pListenAddress` its AVSS multiaddr.
    struct Details {
        string declaredIp;
        uint256 position;
        uint256 pubKx;
        uint256 pubKy;
        string tmP2PListenAddress;
        string p2pListenAddress;
    }

    address public owner;

    mapping(uint256 => mapping(address => bool)) public whitelist;
    mapping(uint256 => Epoch) public epochInfo;
    mapping(address => Details) public nodeDetails;
    mapping(uint256 => mapping(uint256 => uint256)) public pssStatus;

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event NodeListed(address publicKey, uint256 epoch, uint256 position);
    event EpochChanged(uint256 indexed epoch);
    event WhitelistUpdated(uint256 indexed epoch, address indexed whitelistAddress, bool isAllowed);
    event PssStatusUpdated(uint256 indexed oldEpoch, uint256 indexed newEpoch, uint256 status);

    /// The caller is not the owner.
    error NotOwner(address caller);
    /// The new owner is the zero address.
    error ZeroOwner();
    /// Epoch 0 is reserved for "none".
    error ZeroEpoch();
    /// No such epoch has been created with `updateEpoch`.
    error EpochNotFound(uint256 epoch);
    /// The caller is not whitelisted for the epoch.
    error NotWhitelisted(uint256 epoch, address node);
    /// The caller is already in the epoch's node list.
    error AlreadyRegistered(uint256 epoch, address node);
    /// The epoch already has n nodes.
    error EpochFull(uint256 epoch, uint256 n);
    /// keccak256(pubKx || pubKy) does not give the caller's address.
    error NotCallersKey(address caller, address keyAddress);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor() {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    /// @notice Hands the contract to `newOwner`.
    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroOwner();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// @notice Allows or disallows `nodeAddress` to list itself in `epoch`.
    function updateWhitelist(uint256 epoch, address nodeAddress, bool allowed) external onlyOwner {
        whitelist[epoch][nodeAddress] = allowed;
        emit WhitelistUpdated(epoch, nodeAddress, allowed);
    }

    /// @notice Creates or replaces an epoch. `nodeList` replaces the epoch's list as a whole
    /// (pass the current list to change only the parameters or the neighbours).
    function updateEpoch(
        uint256 epoch,
        uint256 n,
        uint256 k,
        uint256 t,
        address[] calldata nodeList,
        uint256 prevEpoch,
        uint256 nextEpoch
    ) external onlyOwner {
        if (epoch == 0) revert ZeroEpoch();
        epochInfo[epoch] = Epoch(epoch, n, k, t, nodeList, prevEpoch, nextEpoch);
        emit EpochChanged(epoch);
    }

    /// @notice Sets the resharing status from `oldEpoch` to `newEpoch` (1 = start).
    function updatePssStatus(uint256 oldEpoch, uint256 newEpoch, uint256 status) external onlyOwner {
        pssStatus[oldEpoch][newEpoch] = status;
        emit PssStatusUpdated(oldEpoch, newEpoch, status);
    }

    /// @notice Lists the caller in `epoch`. The caller must be whitelisted, not yet listed, the
    /// epoch not full, and (pubKx, pubKy) the caller's own public key. Its position is the list
    /// length after the push (1-based).
    function listNode(
        uint256 epoch,
        string calldata declaredIp,
        uint256 pubKx,
        uint256 pubKy,
        string calldata tmP2PListenAddress,
        string calldata p2pListenAddress
    ) external {
        Epoch storage e = epochInfo[epoch];
        if (e.id == 0) revert EpochNotFound(epoch);
        if (!whitelist[epoch][msg.sender]) revert NotWhitelisted(epoch, msg.sender);
        if (nodeRegistered(epoch, msg.sender)) revert AlreadyRegistered(epoch, msg.sender);
        if (e.nodeList.length >= e.n) revert EpochFull(epoch, e.n);
        address keyAddress = address(uint160(uint256(keccak256(abi.encodePacked(pubKx, pubKy)))));
        if (keyAddress != msg.sender) revert NotCallersKey(msg.sender, keyAddress);

        e.nodeList.push(msg.sender);
        uint256 position = e.nodeList.length;
        nodeDetails[msg.sender] = Details(
            declaredIp, position, pubKx, pubKy, tmP2PListenAddress, p2pListenAddress
        );
        emit NodeListed(msg.sender, epoch, position);
    }

    /// @notice The epoch's node addresses in listing order.
    function getNodes(uint256 epoch) external view returns (address[] memory) {
        return epochInfo[epoch].nodeList;
    }

    /// @notice What `nodeAddress` declared when it last listed itself (all zero if never).
    function getNodeDetails(address nodeAddress)
        external
        view
        returns (
            string memory declaredIp,
            uint256 position,
            uint256 pubKx,
            uint256 pubKy,
            string memory tmP2PListenAddress,
            string memory p2pListenAddress
        )
    {
        Details storage d = nodeDetails[nodeAddress];
        return (d.declaredIp, d.position, d.pubKx, d.pubKy, d.tmP2PListenAddress, d.p2pListenAddress);
    }

    /// @notice The epoch's parameters and node list; `id` is 0 for an epoch that does not exist.
    function getEpochInfo(uint256 epoch)
        external
        view
        returns (
            uint256 id,
            uint256 n,
            uint256 k,
            uint256 t,
            address[] memory nodeList,
            uint256 prevEpoch,
            uint256 nextEpoch
        )
    {
        Epoch storage e = epochInfo[epoch];
        return (e.id, e.n, e.k, e.t, e.nodeList, e.prevEpoch, e.nextEpoch);
    }

    /// @notice The resharing status from `oldEpoch` to `newEpoch`.
    function getPssStatus(uint256 oldEpoch, uint256 newEpoch) external view returns (uint256) {
        return pssStatus[oldEpoch][newEpoch];
    }

    /// @notice Whether `nodeAddress` may list itself in `epoch`.
    function isWhitelisted(uint256 epoch, address nodeAddress) external view returns (bool) {
        return whitelist[epoch][nodeAddress];
    }

    /// @notice Whether `nodeAddress` is in the epoch's node list.
    function nodeRegistered(uint256 epoch, address nodeAddress) public view returns (bool) {
        address[] storage list = epochInfo[epoch].nodeList;
        for (uint256 i = 0; i < list.length; i++) {
            if (list[i] == nodeAddress) return true;
        }
        return false;
    }
}
