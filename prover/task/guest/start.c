/*
 * The MIPS side: the entry point and the two syscalls the guest makes. The VM starts at _start
 * (0x00400000, placed first by guest.ld) with $sp = 0x7FFFD000 and every other register zero.
 */
#include "guest.h"

#define SYS_MMAP 4090
#define SYS_EXIT_GROUP 4246

__asm__(".section .text.start, \"ax\", @progbits\n"
        ".globl _start\n"
        ".set noreorder\n"
        "_start:\n"
        "    jal guest_main\n"
        "    nop\n"
        "    move $a0, $v0\n"
        "    li $v0, 4246\n" /* SYS_EXIT_GROUP */
        "    syscall\n"
        ".set reorder\n"
        ".text\n");

/* mmap(NULL, size): the VM's bump allocator returns the old heap pointer (0x40000000 at start). */
static u8 *mmap_anonymous(u32 size) {
    register u32 v0 __asm__("$2") = SYS_MMAP;
    register u32 a0 __asm__("$4") = 0;
    register u32 a1 __asm__("$5") = size;
    __asm__ volatile("syscall" : "+r"(v0) : "r"(a0), "r"(a1) : "$3", "$7", "memory");
    return (u8 *)v0;
}

#ifdef NODE_PROGRAM
/* The single-node program's input regions (docs/memory-map.md, "Node tasks"). */
static const u8 *const NODE_INPUTS[NODE_INPUT_REGIONS] = {
    (const u8 *)INPUT_REGION,
    (const u8 *)NODE_EXTRA_INPUT_REGION,
    (const u8 *)(NODE_EXTRA_INPUT_REGION + 1 * REGION_SIZE),
    (const u8 *)(NODE_EXTRA_INPUT_REGION + 2 * REGION_SIZE),
    (const u8 *)(NODE_EXTRA_INPUT_REGION + 3 * REGION_SIZE),
    (const u8 *)(NODE_EXTRA_INPUT_REGION + 4 * REGION_SIZE),
    (const u8 *)(NODE_EXTRA_INPUT_REGION + 5 * REGION_SIZE),
    (const u8 *)(NODE_EXTRA_INPUT_REGION + 6 * REGION_SIZE),
    (const u8 *)(NODE_EXTRA_INPUT_REGION + 7 * REGION_SIZE),
};
#endif

int guest_main(void) {
    u8 *arena = mmap_anonymous(ARENA_SIZE);
#ifdef NODE_PROGRAM
    return guest_run_node(NODE_INPUTS, NODE_INPUT_REGIONS, (const u8 *)MODEL_REGION, (u8 *)OUTPUT_REGION,
                          arena, ARENA_SIZE);
#else
    return guest_run((const u8 *)INPUT_REGION, (const u8 *)MODEL_REGION, (u8 *)OUTPUT_REGION, arena,
                     ARENA_SIZE);
#endif
}
