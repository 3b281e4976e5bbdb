"""The embedded chain: an in-process eth-tester / py-evm chain, the default chain the contracts run
on (any Ethereum JSON-RPC endpoint can stand in for it: prover/chain/connect.py)."""

from eth.abc import SignedTransactionAPI, StateAPI
from eth.vm.forks import CancunVM
from eth.vm.spoof import SpoofTransaction
from eth_tester import EthereumTester, PyEVMBackend
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider


def one_run_gas_estimate(state: StateAPI, transaction: SignedTransactionAPI) -> int:
    """eth_estimateGas in one execution at the block's gas limit, instead of py-evm's binary search
    (about 13 executions: two thirds of a dispute's chain time). A transaction that fails there
    raises, as with the search, so a move the contract refuses is still refused before it is sent.
    The estimate is what it used (intrinsic gas included) and half as much again: enough for the
    gas a call holds back (EIP-150: 1/64 per call level) and for refunds (EIP-3529: at most 1/5)
    that the execution needed before they were given back. Only the gas used is paid."""
    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(SpoofTransaction(transaction, gas=state.gas_limit, gas_price=0))
        if computation.is_error:
            raise computation.error
        used = transaction.intrinsic_gas + computation.get_gas_used()
    finally:
        state.revert(snapshot)
    return min(state.gas_limit, used * 3 // 2 + 30_000)


class LocalChain:
    """An in-process chain with Cancun rules (the EVM version the contracts are compiled for, and
    the rules the gas figures of docs/contracts.md are measured under). `tester` gives the time
    travel the chess clocks need in tests."""

    def __init__(self) -> None:
        backend = PyEVMBackend(vm_configuration=((0, CancunVM),))
        backend.chain.gas_estimator = one_run_gas_estimate
        self.tester = EthereumTester(backend)
        self.w3 = Web3(EthereumTesterProvider(self.tester))

    @property
    def accounts(self) -> list[str]:
        return list(self.w3.eth.accounts)

    def timestamp(self) -> int:
        """The timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance_time(self, seconds: int) -> None:
        """Mine a block `seconds` after the latest one, so the next transaction sees the clock moved."""
        self.tester.time_travel(self.timestamp() + seconds)
