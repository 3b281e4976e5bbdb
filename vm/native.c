/* The machine's steps at native speed: vm/instructions.py's `execute`, instruction for
 * instruction, over the same 4 KiB pages (docs/machine.md, "One step").
 *
 * The state is copied in and out by vm/native.py; memory is the caller's own page buffers,
 * reached through a table of 2^20 page pointers (NULL: a page never written, which reads as
 * zeros). Two things are left to the caller, who then calls again:
 *   - a syscall (RUN_SYSCALL): the reference stepper runs it (it owns the output log and the heap);
 *   - a store into an absent page (RUN_NEED_PAGE, its index in need_page): the caller creates the
 *     page in its Memory and puts its buffer in the table.
 * Both return before the instruction's step is counted, with the state as it was before it.
 * Every page stored into is listed once in dirty_list (dirty[] says which are listed), so that the
 * caller's Merkle tree rehashes exactly those. Traps end the run as the reference does: the step
 * counted, exited = 1, exit_code = the trap, every other field as before the instruction.
 */
#include <stdint.h>

enum { RUN_DONE = 0, RUN_SYSCALL = 1, RUN_NEED_PAGE = 2 };
enum { INVALID_INSTRUCTION = 0xF1, DIVISION_BY_ZERO = 0xF2, UNALIGNED_ACCESS = 0xF3, UNALIGNED_PC = 0xF4 };

typedef struct {
    uint32_t regs[32];
    uint32_t pc, next_pc, lo, hi, heap;
    uint32_t exited, exit_code;
    uint64_t step;
} vm_state;

typedef struct {
    uint8_t **pages;      /* 1 << 20 entries */
    uint8_t *dirty;       /* 1 << 20 flags: listed in dirty_list */
    uint32_t *dirty_list; /* capacity 1 << 20 */
    uint32_t dirty_count;
    uint32_t need_page;
} vm_memory;

static inline uint32_t load_word(const uint8_t *page, uint32_t offset) {
    if (!page) return 0;
    const uint8_t *p = page + offset;
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void store_word(uint8_t *page, uint32_t offset, uint32_t value) {
    uint8_t *p = page + offset;
    p[0] = (uint8_t)(value >> 24);
    p[1] = (uint8_t)(value >> 16);
    p[2] = (uint8_t)(value >> 8);
    p[3] = (uint8_t)value;
}

static inline void mark_dirty(vm_memory *m, uint32_t index) {
    if (!m->dirty[index]) {
        m->dirty[index] = 1;
        m->dirty_list[m->dirty_count++] = index;
    }
}

static inline uint32_t sext16(uint32_t insn) { return (uint32_t)(int32_t)(int16_t)(insn & 0xFFFF); }

static inline uint32_t leading_zeros(uint32_t value) { return value ? (uint32_t)__builtin_clz(value) : 32; }

int vm_run(vm_state *s, vm_memory *m, uint64_t max_steps) {
    if (s->exited) return RUN_DONE;
    uint32_t *regs = s->regs;
    uint8_t **pages = m->pages;
    uint32_t pc = s->pc, npc = s->next_pc, lo = s->lo, hi = s->hi;
    uint64_t step = s->step;
    const uint64_t end = step + max_steps;
    uint32_t trap = 0;
    int status = RUN_DONE;

#define NEXT()              \
    do {                    \
        pc = npc;           \
        npc = npc + 4;      \
    } while (0)
#define SET(index, value)                    \
    do {                                     \
        uint32_t v_ = (value);               \
        if (index) regs[index] = v_;         \
    } while (0)
#define TRAP(code)     \
    do {               \
        trap = (code); \
        goto stop;     \
    } while (0)
#define NEED_PAGE(index)            \
    do {                            \
        m->need_page = (index);     \
        step--;                     \
        status = RUN_NEED_PAGE;     \
        goto stop;                  \
    } while (0)

    while (step < end) {
        step++;
        if (pc & 3) TRAP(UNALIGNED_PC);
        const uint32_t insn = load_word(pages[pc >> 12], pc & 0xFFF);
        const uint32_t op = insn >> 26;
        const uint32_t rs_i = (insn >> 21) & 31, rt_i = (insn >> 16) & 31, rd_i = (insn >> 11) & 31;
        const uint32_t rs = regs[rs_i], rt = regs[rt_i];

        if (op == 0) { /* SPECIAL */
            const uint32_t funct = insn & 0x3F, shamt = (insn >> 6) & 31;
            uint32_t value;
            switch (funct) {
            case 32: case 33: value = rs + rt; break;          /* add, addu (no overflow trap) */
            case 34: case 35: value = rs - rt; break;          /* sub, subu */
            case 36: value = rs & rt; break;
            case 37: value = rs | rt; break;
            case 38: value = rs ^ rt; break;
            case 39: value = ~(rs | rt); break;
            case 42: value = (int32_t)rs < (int32_t)rt; break; /* slt */
            case 43: value = rs < rt; break;                   /* sltu */
            case 0: value = rt << shamt; break;                /* sll */
            case 2: value = rt >> shamt; break;                /* srl */
            case 3: value = (uint32_t)((int32_t)rt >> shamt); break;
            case 4: value = rt << (rs & 31); break;
            case 6: value = rt >> (rs & 31); break;
            case 7: value = (uint32_t)((int32_t)rt >> (rs & 31)); break;
            case 8: /* jr */
                pc = npc;
                npc = rs;
                continue;
            case 9: { /* jalr: the link is written after the target was read */
                const uint32_t link = pc + 8;
                pc = npc;
                npc = rs;
                SET(rd_i, link);
                continue;
            }
            case 10: case 11: /* movz, movn */
                if ((rt == 0) != (funct == 10)) {
                    NEXT();
                    continue;
                }
                value = rs;
                break;
            case 16: value = hi; break;
            case 18: value = lo; break;
            case 17: hi = rs; NEXT(); continue;
            case 19: lo = rs; NEXT(); continue;
            case 24: { /* mult */
                const uint64_t product = (uint64_t)((int64_t)(int32_t)rs * (int64_t)(int32_t)rt);
                hi = (uint32_t)(product >> 32);
                lo = (uint32_t)product;
                NEXT();
                continue;
            }
            case 25: { /* multu */
                const uint64_t product = (uint64_t)rs * rt;
                hi = (uint32_t)(product >> 32);
                lo = (uint32_t)product;
                NEXT();
                continue;
            }
            case 26: { /* div: truncation toward zero, the remainder takes the dividend's sign */
                if (rt == 0) TRAP(DIVISION_BY_ZERO);
                const int64_t a = (int32_t)rs, b = (int32_t)rt; /* 64 bits: INT32_MIN / -1 */
                const int64_t quotient = a / b;
                lo = (uint32_t)quotient;
                hi = (uint32_t)(a - quotient * b);
                NEXT();
                continue;
            }
            case 27: /* divu */
                if (rt == 0) TRAP(DIVISION_BY_ZERO);
                lo = rs / rt;
                hi = rs % rt;
                NEXT();
                continue;
            case 12: /* syscall: the reference stepper's */
                step--;
                status = RUN_SYSCALL;
                goto stop;
            case 15: NEXT(); continue; /* sync */
            default: TRAP(INVALID_INSTRUCTION);
            }
            SET(rd_i, value);
            NEXT();
            continue;
        }

        if (op >= 0x20) { /* loads and stores */
            const uint32_t addr = rs + sext16(insn);
            const uint32_t page_index = addr >> 12;
            switch (op) {
            case 0x23: case 0x30: /* lw, ll */
                if (addr & 3) TRAP(UNALIGNED_ACCESS);
                SET(rt_i, load_word(pages[page_index], addr & 0xFFF));
                NEXT();
                continue;
            case 0x20: case 0x24: { /* lb, lbu */
                const uint8_t *page = pages[page_index];
                const uint32_t byte = page ? page[addr & 0xFFF] : 0;
                SET(rt_i, op == 0x20 ? (uint32_t)(int32_t)(int8_t)byte : byte);
                NEXT();
                continue;
            }
            case 0x28: { /* sb */
                uint8_t *page = pages[page_index];
                if (!page) NEED_PAGE(page_index);
                mark_dirty(m, page_index);
                page[addr & 0xFFF] = (uint8_t)rt;
                NEXT();
                continue;
            }
            case 0x21: case 0x25: case 0x22: case 0x26:
            case 0x29: case 0x2A: case 0x2B: case 0x2E: case 0x38:
                break;
            default: TRAP(INVALID_INSTRUCTION);
            }
            if ((op == 0x21 || op == 0x25 || op == 0x29) && (addr & 1)) TRAP(UNALIGNED_ACCESS);
            if ((op == 0x2B || op == 0x38) && (addr & 3)) TRAP(UNALIGNED_ACCESS);
            const uint32_t word_addr = addr & ~3u;
            uint8_t *page = pages[word_addr >> 12];
            uint32_t mem = load_word(page, word_addr & 0xFFF);
            const uint32_t byte_shift = 24 - (addr & 3) * 8; /* right of the addressed byte */
            const uint32_t half_shift = 16 - (addr & 2) * 8; /* right of the addressed halfword */
            const uint32_t lane = (addr & 3) * 8;            /* left of the addressed byte */
            if (op < 0x28) { /* lh, lhu, lwl, lwr */
                uint32_t value;
                if (op == 0x21) value = (uint32_t)(int32_t)(int16_t)(mem >> half_shift);
                else if (op == 0x25) value = (mem >> half_shift) & 0xFFFF;
                else if (op == 0x22) value = (rt & ~(0xFFFFFFFFu << lane)) | (mem << lane);
                else value = (rt & ~(0xFFFFFFFFu >> byte_shift)) | (mem >> byte_shift);
                SET(rt_i, value);
                NEXT();
                continue;
            }
            if (!page) NEED_PAGE(word_addr >> 12);
            if (op == 0x2B || op == 0x38) mem = rt; /* sw, sc */
            else if (op == 0x29) mem = (mem & ~(0xFFFFu << half_shift)) | ((rt & 0xFFFF) << half_shift);
            else if (op == 0x2A) mem = (mem & ~(0xFFFFFFFFu >> lane)) | (rt >> lane); /* swl */
            else mem = (mem & ~(0xFFFFFFFFu << byte_shift)) | (rt << byte_shift);     /* swr */
            mark_dirty(m, word_addr >> 12);
            store_word(page, word_addr & 0xFFF, mem);
            if (op == 0x38) SET(rt_i, 1); /* sc always succeeds */
            NEXT();
            continue;
        }

        if (op >= 8) {
            if (op >= 16) {
                if (op != 0x1C) TRAP(INVALID_INSTRUCTION);
                const uint32_t funct = insn & 0x3F; /* SPECIAL2 */
                uint32_t value;
                if (funct == 2) value = rs * rt;                     /* mul */
                else if (funct == 0x20) value = leading_zeros(rs);   /* clz */
                else if (funct == 0x21) value = leading_zeros(~rs);  /* clo */
                else TRAP(INVALID_INSTRUCTION);
                SET(rd_i, value);
                NEXT();
                continue;
            }
            const uint32_t imm = insn & 0xFFFF;
            uint32_t value;
            switch (op) {
            case 8: case 9: value = rs + sext16(insn); break; /* addi, addiu (no overflow trap) */
            case 10: value = (int32_t)rs < (int32_t)sext16(insn); break;
            case 11: value = rs < sext16(insn); break; /* sltiu: against the sign-extended imm */
            case 12: value = rs & imm; break;
            case 13: value = rs | imm; break;
            case 14: value = rs ^ imm; break;
            default: value = imm << 16; break; /* lui */
            }
            SET(rt_i, value);
            NEXT();
            continue;
        }

        if (op >= 4 || op == 1) { /* branches */
            int taken;
            if (op == 5) taken = rs != rt;
            else if (op == 4) taken = rs == rt;
            else if (op == 6) taken = (int32_t)rs <= 0;
            else if (op == 7) taken = (int32_t)rs > 0;
            else if (rt_i == 0) taken = (int32_t)rs < 0; /* bltz */
            else if (rt_i == 1) taken = (int32_t)rs >= 0; /* bgez */
            else TRAP(INVALID_INSTRUCTION);
            if (taken) {
                const uint32_t target = pc + 4 + (sext16(insn) << 2);
                pc = npc;
                npc = target;
            } else {
                NEXT();
            }
            continue;
        }

        /* j (2), jal (3) */
        const uint32_t target = ((pc + 4) & 0xF0000000u) | ((insn & 0x03FFFFFF) << 2);
        if (op == 3) regs[31] = pc + 8;
        pc = npc;
        npc = target;
    }

stop:
    s->pc = pc;
    s->next_pc = npc;
    s->lo = lo;
    s->hi = hi;
    s->step = step;
    if (trap) {
        s->exited = 1;
        s->exit_code = trap;
    }
    return status;
}
