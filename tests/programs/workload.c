/*
 * A freestanding MIPS test workload for the verifier's differential tests: sorting, CRC32, signed
 * and unsigned multiply / divide, byte, halfword and unaligned (lwl/lwr/swl/swr) accesses, calls
 * through function pointers (jalr) and write / exit_group syscalls. It reads a payload from the
 * input region, runs for about 10^5 steps depending on it, and writes an 8-byte result to the
 * output region (docs/memory-map.md). Built with the guest's compiler flags and linker script.
 */
typedef unsigned int u32;
typedef int i32;
typedef unsigned short u16;
typedef short i16;
typedef unsigned char u8;
typedef signed char i8;

#define INPUT ((const u8 *)0x10000000)
#define OUTPUT ((u8 *)0x30000000)
#define N 48

__asm__(".section .text.start, \"ax\", @progbits\n"
        ".globl _start\n"
        ".set noreorder\n"
        "_start:\n"
        "    jal workload\n"
        "    nop\n"
        "    move $a0, $v0\n"
        "    li $v0, 4246\n"
        "    syscall\n"
        ".set reorder\n"
        ".text\n");

struct __attribute__((packed)) unaligned {
    u8 tag;
    u32 word;
    i16 half;
};

static i32 op_add(i32 a, i32 b) { return a + b; }
static i32 op_sub(i32 a, i32 b) { return a - b; }
static i32 op_mix(i32 a, i32 b) { return (a * 31) / (b | 1) + (a % 7) - (b >> 3); }
static i32 (*const OPS[3])(i32, i32) = {op_add, op_sub, op_mix};

static u32 crc32(const u8 *p, u32 n) {
    u32 c = ~0u;
    for (u32 i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
    }
    return ~c;
}

static void sort(i32 *a, u32 n) {
    for (u32 i = 1; i < n; i++) {
        i32 v = a[i];
        u32 j = i;
        for (; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
        a[j] = v;
    }
}

static void write_stdout(const void *data, u32 size) {
    register u32 v0 __asm__("$2") = 4004;
    register u32 a0 __asm__("$4") = 1;
    register const void *a1 __asm__("$5") = data;
    register u32 a2 __asm__("$6") = size;
    __asm__ volatile("syscall" : "+r"(v0) : "r"(a0), "r"(a1), "r"(a2) : "$3", "$7", "memory");
}

int workload(void) {
    u32 len = (u32)INPUT[0] << 24 | (u32)INPUT[1] << 16 | (u32)INPUT[2] << 8 | INPUT[3];
    const u8 *data = INPUT + 32;
    if (len == 0) return 1;
    i32 words[N];
    u16 halves[N];
    i8 bytes[N];
    volatile struct unaligned packed[4];
    for (u32 i = 0; i < N; i++) {
        u32 x = data[i % len] * 2654435761u + i;
        words[i] = (i32)x;
        halves[i] = (u16)(x >> 7);
        bytes[i] = (i8)(x >> 13);
    }
    sort(words, N);
    u32 crc = crc32((const u8 *)words, sizeof words);
    i32 acc = 0;
    for (u32 i = 0; i < N; i++) {
        acc = OPS[i % 3](acc, words[i] ^ halves[i]) + bytes[i];
        packed[i & 3].tag = (u8)i;
        packed[i & 3].word = (u32)acc ^ crc;
        packed[i & 3].half = (i16)(acc >> 3);
        acc += (i32)(packed[(i + 1) & 3].word % 1000u) - packed[(i + 2) & 3].half;
        acc ^= (i32)(((unsigned long long)(u32)acc * crc) >> 32);
    }
    write_stdout("done\n", 5);
    OUTPUT[3] = 8;
    for (int i = 0; i < 4; i++) {
        OUTPUT[32 + i] = (u8)(crc >> (24 - 8 * i));
        OUTPUT[36 + i] = (u8)((u32)acc >> (24 - 8 * i));
    }
    return 0;
}
