"""The embedded chain: an in-process eth-tester / py-evm chain, the default chain the contracts run
on (any Ethereum JSON-RPC endpoint can stand in for it: prover/chain/connect.py)."""

from eth.vm.forks import CancunVM
from eth_tester import EthereumTester, PyEVMBackend
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from prover.chain.gas import estimate_gas


class LocalChain:
    """An in-process chain with Cancun rules (the EVM version the contracts are compiled for, and
    the rules the gas figures of docs/contracts.md are measured under). `tester` gives the time
    travel the chess clocks need in tests."""

    def __init__(self) -> None:
        backend = PyEVMBackend(vm_configuration=((0, CancunVM),))
        # Two executions per eth_estimateGas instead of py-evm's binary search (some thirteen).
        backend.chain.gas_estimator = estimate_gas
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
