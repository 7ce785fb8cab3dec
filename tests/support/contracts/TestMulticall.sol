// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title TestMulticall
/// @notice Written for obol's tests: the subset of the Multicall3 interface that x402 tooling
/// calls. Every public chain has Multicall3 at 0xcA11bde05977b3631167028862bE2a173976CA11; anvil
/// does not, so the test rail installs this contract's runtime code there (`anvil_setCode`).
/// The x402 reference facilitator (npm package x402/evm) uses `tryAggregate` to diagnose a failed
/// EIP-3009 simulation (nonce already used, insufficient balance, wrong token name/version).
/// Without a contract at that address it can only answer "simulation failed".
contract TestMulticall {
    struct Call {
        address target;
        bytes callData;
    }

    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    function tryAggregate(bool requireSuccess, Call[] calldata calls)
        public
        payable
        returns (Result[] memory returnData)
    {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool success, bytes memory ret) = calls[i].target.call(calls[i].callData);
            if (requireSuccess) {
                require(success, "Multicall3: call failed");
            }
            returnData[i] = Result(success, ret);
        }
    }

    function aggregate3(Call3[] calldata calls) public payable returns (Result[] memory returnData) {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool success, bytes memory ret) = calls[i].target.call(calls[i].callData);
            require(success || calls[i].allowFailure, "Multicall3: call failed");
            returnData[i] = Result(success, ret);
        }
    }

    function getBlockNumber() public view returns (uint256) {
        return block.number;
    }

    function getCurrentBlockTimestamp() public view returns (uint256) {
        return block.timestamp;
    }

    function getChainId() public view returns (uint256) {
        return block.chainid;
    }

    function getEthBalance(address addr) public view returns (uint256) {
        return addr.balance;
    }
}
