"""The embedded chain's gas estimator (its chain's gas_estimator, set by LocalChain)."""

from eth.abc import ComputationAPI, SignedTransactionAPI, StateAPI
from eth.estimators.gas import binary_gas_search_intrinsic_tolerance
from eth.vm.spoof import SpoofTransaction

# What a transaction may need beyond the gas it uses: an inner call gets at most 63/64 of the
# gas left (EIP-150), and an SSTORE needs more than the 2,300-gas stipend left (EIP-2200).
ESTIMATE_MARGIN = 10_000


def _execute(state: StateAPI, transaction: SignedTransactionAPI, gas: int) -> ComputationAPI:
    """Run `transaction` with a gas limit of `gas` and undo it."""
    snapshot = state.snapshot()
    try:
        return state.apply_transaction(SpoofTransaction(transaction, gas=gas, gas_price=0))
    finally:
        state.revert(snapshot)


def estimate_gas(state: StateAPI, transaction: SignedTransactionAPI) -> int:
    """The embedded chain's gas estimator: a gas limit with which
    the transaction succeeds.

    py-evm's default bisects [intrinsic gas, block gas limit] down to 21,000 gas: some thirteen
    executions per eth_estimateGas, half of the node's time in a dispute. Here one execution at
    the block gas limit measures what the transaction uses (or fails as before, with its revert
    data), a second one checks that this plus a margin for nested calls is enough, and only if it
    is not does the bisection run. The estimate is only a limit: the gas used, and so every gas
    figure of a receipt, does not depend on it."""
    computation = _execute(state, transaction, state.gas_limit)
    if computation.is_error:
        raise computation.error
    used = transaction.intrinsic_gas + computation.get_gas_used()
    limit = min(state.gas_limit, used * 64 // 63 + ESTIMATE_MARGIN)
    if not _execute(state, transaction, limit).is_error:
        return limit
    return binary_gas_search_intrinsic_tolerance(state, transaction)
