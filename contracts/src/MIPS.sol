// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MemoryProof} from "./MemoryProof.sol";

/// @title MIPS
/// @notice Executes one instruction of the MIPS32 machine of docs/machine.md from a witness: the
///         226-byte packed pre-state and two memory proofs (the instruction word, then the data
///         word). Returns the keccak256 of the post-state. Traps (invalid instruction, division by
///         zero, unaligned access or pc) are ordinary steps that return an exited state: a dispute
///         must always be decidable. Only malformed witnesses revert.
/// @dev The state is copied to memory once and edited in place, field by field, so the post-state
///      hash is a single keccak over the same 226 bytes (no re-encoding). All values are 32-bit
///      quantities held in uint256 and masked when written back.
contract MIPS {
    /// @notice The calldata is not exactly cannon's layout: abi.encode(226 bytes, 1792 bytes).
    error MalformedWitness();

    // Offsets of the packed state fields (docs/machine.md, "State").
    uint256 private constant MEM_ROOT = 0;
    uint256 private constant PC = 68;
    uint256 private constant NEXT_PC = 72;
    uint256 private constant LO = 76;
    uint256 private constant HI = 80;
    uint256 private constant HEAP = 84;
    uint256 private constant EXIT_CODE = 88;
    uint256 private constant EXITED = 89;
    uint256 private constant STEP = 90;
    uint256 private constant REGISTERS = 98;
    uint256 private constant STATE_SIZE = 226;

    // The canonical ABI encoding of step(bytes226, bytes1792): selector, two head offsets, then
    // each length word followed by its data padded to 32 bytes.
    uint256 private constant STATE_OFFSET = 4 + 32 + 32 + 32;
    uint256 private constant PROOF_OFFSET = STATE_OFFSET + 256 + 32;
    uint256 private constant PROOF_SIZE = 2 * MemoryProof.PROOF_SIZE;
    uint256 private constant CALLDATA_SIZE = PROOF_OFFSET + PROOF_SIZE;

    uint256 private constant MASK32 = 0xffffffff;

    // Trap exit codes.
    uint256 private constant INVALID_INSTRUCTION = 0xF1;
    uint256 private constant DIVISION_BY_ZERO = 0xF2;
    uint256 private constant UNALIGNED_ACCESS = 0xF3;
    uint256 private constant UNALIGNED_PC = 0xF4;

    // Registers with a fixed role in syscalls and links.
    uint256 private constant V0 = 2;
    uint256 private constant A0 = 4;
    uint256 private constant A1 = 5;
    uint256 private constant A2 = 6;
    uint256 private constant A3 = 7;
    uint256 private constant RA = 31;

    /// @notice One step: the keccak256 of the post-state encoding.
    function step(bytes calldata stateData, bytes calldata proof) external pure returns (bytes32) {
        uint256 stateOffset;
        uint256 proofOffset;
        assembly ("memory-safe") {
            stateOffset := stateData.offset
            proofOffset := proof.offset
        }
        if (
            msg.data.length != CALLDATA_SIZE || stateOffset != STATE_OFFSET || stateData.length != STATE_SIZE
                || proofOffset != PROOF_OFFSET || proof.length != PROOF_SIZE
        ) revert MalformedWitness();
        bytes memory state = stateData;
        uint256 s;
        assembly ("memory-safe") {
            s := add(state, 32)
        }
        uint256 exited = _get8(s, EXITED);
        if (exited > 1) revert MalformedWitness();
        if (exited == 0) _execute(s, proofOffset);
        return keccak256(state);
    }

    // ---------------------------------------------------------------- instruction dispatch

    function _execute(uint256 s, uint256 proofOffset) private pure {
        unchecked {
            _set64(s, STEP, _get64(s, STEP) + 1);
        }
        uint256 pc = _get32(s, PC);
        if (pc & 3 != 0) return _trap(s, UNALIGNED_PC);
        uint256 insn = MemoryProof.readWord(proofOffset, pc, _root(s));
        uint256 opcode = insn >> 26;
        if (opcode == 0) return _special(s, insn);
        if (opcode == 0x1C) return _special2(s, insn);
        if (opcode == 2 || opcode == 3) {
            // The upper 4 bits come from the delay slot's address, pc + 4.
            uint256 target = ((pc + 4) & 0xF0000000) | ((insn & 0x03FFFFFF) << 2);
            return _jump(s, target, opcode == 3 ? RA : 0);
        }
        if (opcode == 1 || (opcode >= 4 && opcode <= 7)) return _branch(s, insn, opcode);
        if (opcode >= 8 && opcode <= 15) return _immediate(s, insn, opcode);
        if (opcode >= 0x20) return _memory(s, insn, opcode, proofOffset + MemoryProof.PROOF_SIZE);
        _trap(s, INVALID_INSTRUCTION);
    }

    /// @dev SPECIAL (opcode 0), decoded by funct.
    function _special(uint256 s, uint256 insn) private pure {
        uint256 funct = insn & 0x3F;
        uint256 rs = _reg(s, (insn >> 21) & 31);
        uint256 rt = _reg(s, (insn >> 16) & 31);
        uint256 rd = (insn >> 11) & 31;
        uint256 value;
        if (funct < 8) {
            uint256 shamt = funct < 4 ? (insn >> 6) & 31 : rs & 31;
            uint256 kind = funct & 3;
            if (kind == 0) value = rt << shamt;
            else if (kind == 2) value = rt >> shamt;
            else if (kind == 3) value = uint256(_signed(rt) >> shamt);
            else return _trap(s, INVALID_INSTRUCTION); // funct 1 and 5
        } else if (funct == 8) {
            return _jump(s, rs, 0);
        } else if (funct == 9) {
            return _jump(s, rs, rd);
        } else if (funct == 10 || funct == 11) {
            // movz moves when rt == 0, movn when rt != 0.
            if ((rt == 0) == (funct == 10)) _setReg(s, rd, rs);
            return _advance(s);
        } else if (funct == 12) {
            return _syscall(s);
        } else if (funct == 15) {
            return _advance(s); // sync
        } else if (funct >= 16 && funct <= 19) {
            if (funct == 16) _setReg(s, rd, _get32(s, HI));
            else if (funct == 17) _set32(s, HI, rs);
            else if (funct == 18) _setReg(s, rd, _get32(s, LO));
            else _set32(s, LO, rs);
            return _advance(s);
        } else if (funct >= 24 && funct <= 27) {
            return _multiplyDivide(s, funct, rs, rt);
        } else if (funct == 32 || funct == 33) {
            value = rs + rt; // add does not trap on overflow (as cannon)
        } else if (funct == 34 || funct == 35) {
            unchecked {
                value = rs - rt;
            }
        } else if (funct == 36) {
            value = rs & rt;
        } else if (funct == 37) {
            value = rs | rt;
        } else if (funct == 38) {
            value = rs ^ rt;
        } else if (funct == 39) {
            value = ~(rs | rt);
        } else if (funct == 42) {
            value = _signed(rs) < _signed(rt) ? 1 : 0;
        } else if (funct == 43) {
            value = rs < rt ? 1 : 0;
        } else {
            return _trap(s, INVALID_INSTRUCTION);
        }
        _setReg(s, rd, value);
        _advance(s);
    }

    /// @dev mult, multu, div, divu: results in hi and lo.
    function _multiplyDivide(uint256 s, uint256 funct, uint256 rs, uint256 rt) private pure {
        uint256 lo;
        uint256 hi;
        if (funct == 24 || funct == 25) {
            // The product's two's complement low 64 bits are right for both signednesses.
            uint256 product;
            unchecked {
                product = funct == 24 ? uint256(_signed(rs) * _signed(rt)) : rs * rt;
            }
            lo = product;
            hi = product >> 32;
        } else {
            if (rt == 0) return _trap(s, DIVISION_BY_ZERO);
            if (funct == 26) {
                // In 256 bits, INT32_MIN / -1 = 2^31 does not overflow; masked it is 0x80000000.
                int256 a = _signed(rs);
                int256 b = _signed(rt);
                unchecked {
                    lo = uint256(a / b);
                    hi = uint256(a % b);
                }
            } else {
                lo = rs / rt;
                hi = rs % rt;
            }
        }
        _set32(s, LO, lo);
        _set32(s, HI, hi);
        _advance(s);
    }

    /// @dev SPECIAL2 (opcode 0x1C): mul, clz, clo.
    function _special2(uint256 s, uint256 insn) private pure {
        uint256 funct = insn & 0x3F;
        uint256 rs = _reg(s, (insn >> 21) & 31);
        uint256 value;
        if (funct == 2) {
            // The low 32 bits of the product are the same signed or unsigned.
            value = rs * _reg(s, (insn >> 16) & 31);
        } else if (funct == 0x20) {
            value = _leadingZeros(rs);
        } else if (funct == 0x21) {
            value = _leadingZeros(~rs & MASK32);
        } else {
            return _trap(s, INVALID_INSTRUCTION);
        }
        _setReg(s, (insn >> 11) & 31, value);
        _advance(s);
    }

    /// @dev beq, bne, blez, bgtz, and REGIMM bltz (rt = 0) / bgez (rt = 1).
    function _branch(uint256 s, uint256 insn, uint256 opcode) private pure {
        int256 rs = _signed(_reg(s, (insn >> 21) & 31));
        uint256 rtField = (insn >> 16) & 31;
        bool taken;
        if (opcode == 4) taken = rs == _signed(_reg(s, rtField));
        else if (opcode == 5) taken = rs != _signed(_reg(s, rtField));
        else if (opcode == 6) taken = rs <= 0;
        else if (opcode == 7) taken = rs > 0;
        else if (rtField == 0) taken = rs < 0;
        else if (rtField == 1) taken = rs >= 0;
        else return _trap(s, INVALID_INSTRUCTION);
        uint256 pc = _get32(s, PC);
        uint256 nextPC = _get32(s, NEXT_PC);
        _set32(s, PC, nextPC);
        unchecked {
            uint256 offset = uint256(_signExtend16(insn) << 2);
            _set32(s, NEXT_PC, taken ? pc + 4 + offset : nextPC + 4);
        }
    }

    /// @dev addi addiu slti sltiu andi ori xori lui: rt = rs op imm.
    function _immediate(uint256 s, uint256 insn, uint256 opcode) private pure {
        uint256 rs = _reg(s, (insn >> 21) & 31);
        uint256 imm = insn & 0xFFFF;
        uint256 value;
        if (opcode <= 9) {
            unchecked {
                value = rs + uint256(_signExtend16(insn)); // addi does not trap (as cannon)
            }
        } else if (opcode == 10) {
            value = _signed(rs) < _signExtend16(insn) ? 1 : 0;
        } else if (opcode == 11) {
            value = rs < (uint256(_signExtend16(insn)) & MASK32) ? 1 : 0;
        } else if (opcode == 12) {
            value = rs & imm;
        } else if (opcode == 13) {
            value = rs | imm;
        } else if (opcode == 14) {
            value = rs ^ imm;
        } else {
            value = imm << 16;
        }
        _setReg(s, (insn >> 16) & 31, value);
        _advance(s);
    }

    /// @dev Loads and stores (opcodes 0x20-0x3F). The data proof is only read for a listed opcode
    ///      whose address is aligned, so trapping accesses need no data witness.
    function _memory(uint256 s, uint256 insn, uint256 opcode, uint256 dataProof) private pure {
        bool isLoad = opcode <= 0x26 || opcode == 0x30;
        bool isStore = opcode == 0x28 || opcode == 0x29 || opcode == 0x2A || opcode == 0x2B || opcode == 0x2E
            || opcode == 0x38;
        if (!isLoad && !isStore) return _trap(s, INVALID_INSTRUCTION);
        uint256 addr;
        unchecked {
            addr = (_reg(s, (insn >> 21) & 31) + uint256(_signExtend16(insn))) & MASK32;
        }
        // opcode & 7: 0/4 byte, 1/5 halfword, 3 word, 2/6 lwl lwr swl swr (never trap); ll and sc
        // (0x30, 0x38) are words too.
        uint256 width = opcode & 7;
        bool isWord = width == 3 || opcode >= 0x30;
        if ((width == 1 || width == 5) && addr & 1 != 0 || isWord && addr & 3 != 0) {
            return _trap(s, UNALIGNED_ACCESS);
        }
        uint256 rtField = (insn >> 16) & 31;
        uint256 rt = _reg(s, rtField);
        uint256 mem = MemoryProof.readWord(dataProof, addr, _root(s));
        // Big-endian lanes: the addressed byte sits `byteShift` bits above the word's low end, the
        // addressed halfword `halfShift` bits; `lane` is the byte offset in bits from the top.
        uint256 byteShift = 24 - (addr & 3) * 8;
        uint256 halfShift = 16 - (addr & 2) * 8;
        uint256 lane = (addr & 3) * 8;
        if (isLoad) {
            uint256 value;
            if (opcode == 0x20) value = uint256(_signExtend8((mem >> byteShift) & 0xFF));
            else if (opcode == 0x21) value = uint256(_signExtend16((mem >> halfShift) & 0xFFFF));
            else if (opcode == 0x22) value = (rt & ~(MASK32 << lane)) | (mem << lane); // lwl
            else if (opcode == 0x24) value = (mem >> byteShift) & 0xFF;
            else if (opcode == 0x25) value = (mem >> halfShift) & 0xFFFF;
            else if (opcode == 0x26) value = (rt & ~(MASK32 >> byteShift)) | (mem >> byteShift); // lwr
            else value = mem; // lw, ll
            _setReg(s, rtField, value);
        } else {
            uint256 word;
            if (opcode == 0x28) word = (mem & ~(0xFF << byteShift)) | ((rt & 0xFF) << byteShift);
            else if (opcode == 0x29) word = (mem & ~(0xFFFF << halfShift)) | ((rt & 0xFFFF) << halfShift);
            else if (opcode == 0x2A) word = (mem & ~(MASK32 >> lane)) | (rt >> lane); // swl
            else if (opcode == 0x2E) word = (mem & ~(MASK32 << byteShift)) | (rt << byteShift); // swr
            else word = rt; // sw, sc
            _setRoot(s, MemoryProof.writeWord(dataProof, addr, word & MASK32));
            if (opcode == 0x38) _setReg(s, rtField, 1);
        }
        _advance(s);
    }

    /// @dev The Linux syscall subset of docs/machine.md ("Syscalls").
    function _syscall(uint256 s) private pure {
        uint256 number = _reg(s, V0);
        uint256 a0 = _reg(s, A0);
        if (number == 4246) {
            // exit_group: nothing but the exit fields changes.
            _set8(s, EXIT_CODE, a0 & 0xFF);
            _set8(s, EXITED, 1);
            return;
        }
        uint256 a1 = _reg(s, A1);
        uint256 v0 = 0;
        uint256 errno = 0;
        if (number == 4090) {
            // mmap: a bump allocator at `heap` for a0 == 0, otherwise the hinted address.
            if (a0 == 0) {
                uint256 heap = _get32(s, HEAP);
                v0 = heap;
                _set32(s, HEAP, heap + ((a1 + 0xFFF) & ~uint256(0xFFF)));
            } else {
                v0 = a0;
            }
        } else if (number == 4045) {
            v0 = 0x60000000; // brk
        } else if (number == 4120) {
            v0 = 1; // clone
        } else if (number == 4004) {
            // write: stdout and stderr accept everything.
            if (a0 == 1 || a0 == 2) (v0, errno) = (_reg(s, A2), 0);
            else (v0, errno) = (MASK32, 9);
        } else if (number == 4003) {
            // read: stdin is at end of file.
            if (a0 == 0) (v0, errno) = (0, 0);
            else (v0, errno) = (MASK32, 9);
        } else if (number == 4055) {
            // fcntl: only F_GETFL (3) on the standard descriptors.
            if (a1 != 3) (v0, errno) = (MASK32, 22);
            else if (a0 == 0) (v0, errno) = (0, 0);
            else if (a0 == 1 || a0 == 2) (v0, errno) = (1, 0);
            else (v0, errno) = (MASK32, 9);
        } else {
            (v0, errno) = (MASK32, 89);
        }
        _setReg(s, V0, v0);
        _setReg(s, A3, errno);
        _advance(s);
    }

    // ---------------------------------------------------------------- control flow and traps

    /// @dev The common end of a non-control instruction: the delay slot or next word runs next.
    function _advance(uint256 s) private pure {
        uint256 nextPC = _get32(s, NEXT_PC);
        _set32(s, PC, nextPC);
        _set32(s, NEXT_PC, nextPC + 4);
    }

    /// @dev j, jal, jr, jalr: the delay slot runs, then `target`. The link (if any) is written
    ///      after the target was read; a link to r0 is discarded like any write to r0.
    function _jump(uint256 s, uint256 target, uint256 linkReg) private pure {
        uint256 pc = _get32(s, PC);
        _set32(s, PC, _get32(s, NEXT_PC));
        _set32(s, NEXT_PC, target);
        _setReg(s, linkReg, pc + 8);
    }

    /// @dev A trap only marks the machine exited with `code`; nothing else has been written yet.
    function _trap(uint256 s, uint256 code) private pure {
        _set8(s, EXIT_CODE, code);
        _set8(s, EXITED, 1);
    }

    // ---------------------------------------------------------------- arithmetic helpers

    function _signed(uint256 value) private pure returns (int256 result) {
        assembly ("memory-safe") {
            result := signextend(3, value)
        }
    }

    function _signExtend16(uint256 value) private pure returns (int256 result) {
        assembly ("memory-safe") {
            result := signextend(1, and(value, 0xffff))
        }
    }

    function _signExtend8(uint256 value) private pure returns (int256 result) {
        assembly ("memory-safe") {
            result := signextend(0, value)
        }
    }

    /// @dev Leading zeros of a 32-bit value by binary search (32 for zero).
    function _leadingZeros(uint256 x) private pure returns (uint256 n) {
        if (x & 0xFFFF0000 == 0) (n, x) = (n + 16, x << 16);
        if (x & 0xFF000000 == 0) (n, x) = (n + 8, x << 8);
        if (x & 0xF0000000 == 0) (n, x) = (n + 4, x << 4);
        if (x & 0xC0000000 == 0) (n, x) = (n + 2, x << 2);
        if (x & 0x80000000 == 0) (n, x) = (n + 1, x << 1);
        if (x & 0x80000000 == 0) n += 1;
    }

    // ---------------------------------------------------------------- packed state access
    // `s` points at the 226 state bytes in memory. A field of n bytes at offset o is the low n
    // bytes of the 32-byte word that ends at o + n; every multi-byte field has o + n >= 32, so
    // that word lies inside the state and the read-modify-write keeps the bytes before it.

    function _root(uint256 s) private pure returns (bytes32 root) {
        assembly ("memory-safe") {
            root := mload(add(s, MEM_ROOT))
        }
    }

    function _setRoot(uint256 s, bytes32 root) private pure {
        assembly ("memory-safe") {
            mstore(add(s, MEM_ROOT), root)
        }
    }

    function _get8(uint256 s, uint256 offset) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := byte(0, mload(add(s, offset)))
        }
    }

    function _set8(uint256 s, uint256 offset, uint256 value) private pure {
        assembly ("memory-safe") {
            mstore8(add(s, offset), value)
        }
    }

    function _get32(uint256 s, uint256 offset) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := shr(224, mload(add(s, offset)))
        }
    }

    function _set32(uint256 s, uint256 offset, uint256 value) private pure {
        assembly ("memory-safe") {
            let p := add(s, sub(offset, 28))
            mstore(p, or(and(mload(p), not(0xffffffff)), and(value, 0xffffffff)))
        }
    }

    function _get64(uint256 s, uint256 offset) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            value := shr(192, mload(add(s, offset)))
        }
    }

    function _set64(uint256 s, uint256 offset, uint256 value) private pure {
        assembly ("memory-safe") {
            let p := add(s, sub(offset, 24))
            mstore(p, or(and(mload(p), not(0xffffffffffffffff)), and(value, 0xffffffffffffffff)))
        }
    }

    function _reg(uint256 s, uint256 index) private pure returns (uint256) {
        return _get32(s, REGISTERS + index * 4);
    }

    /// @dev Writes to r0 are discarded.
    function _setReg(uint256 s, uint256 index, uint256 value) private pure {
        if (index != 0) _set32(s, REGISTERS + index * 4, value);
    }
}
