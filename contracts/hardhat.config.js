// A hardhat node for the tests and demos against a real node (`npx hardhat node`); the contracts
// are compiled by build.js with the pinned solc, never by hardhat.
//
// PROVER_HARDHAT_KEYS: comma-separated private keys (hex) funded with 10,000 ether each, instead of
//   hardhat's default accounts.
// PROVER_HARDHAT_INTERVAL_MS: mine a block every N ms instead of one per transaction (automine).
const keys = (process.env.PROVER_HARDHAT_KEYS || "").split(",").filter(Boolean);
const interval = Number(process.env.PROVER_HARDHAT_INTERVAL_MS || 0);

module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      hardfork: "cancun", // the EVM version the contracts are compiled for
      ...(keys.length && {
        accounts: keys.map((privateKey) => ({ privateKey, balance: "10000000000000000000000" })),
      }),
      mining: interval ? { auto: false, interval } : { auto: true },
    },
  },
};
