/*
 * Whole-batch checks of received bytes, in one pass: the C half of
 * logger_service/scan.py, which documents the flags and holds the same
 * checks in Python for a build without this module.
 *
 * scan(data) -> (flags, newlines)
 *
 * On x86-64 the bytes are read 32 at a time with AVX2, or 16 with SSSE3,
 * chosen when the module loads.  UTF-8 is checked with the lookup method of
 * Keiser and Lemire ("Validating UTF-8 in less than one instruction per
 * byte", 2021): each byte and the one before it index three 16-entry tables
 * whose AND says which rule the pair breaks, and a byte that must continue
 * a 3- or 4-byte character is found from the bytes two and three before
 * it.  Blocks of ASCII skip that part.  Elsewhere a plain loop makes the
 * same checks a byte at a time.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_utf8.h"

/* The flags; scan.py has the same values. */
#define ESCAPE 1   /* an ASCII control but LF, DEL or a backslash */
#define QUOTE 2    /* a double quote */
#define INVALID 4  /* not valid UTF-8 */
#define UNSAFE 8   /* C2 80..9F (a C1 control) or E2 80 A8/A9 (U+2028/9) */
#define NONASCII 16 /* a byte above 0x7F */

static int
scan_bytes(const uint8_t *s, Py_ssize_t n, Py_ssize_t *newlines)
{
    int flags = 0;
    Py_ssize_t lf = 0;
    Py_ssize_t i = 0;

    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c == '\n')
                lf++;
            else if (c < 0x20 || c == 0x7f || c == '\\')
                flags |= ESCAPE;
            else if (c == '"')
                flags |= QUOTE;
            i++;
            continue;
        }
        flags |= NONASCII;
        if (c == 0xc2 && i + 1 < n && (s[i + 1] & 0xe0) == 0x80)
            flags |= UNSAFE;
        if (c == 0xe2 && i + 2 < n && s[i + 1] == 0x80 && (s[i + 2] & 0xfe) == 0xa8)
            flags |= UNSAFE;
        Py_ssize_t subpart;
        Py_ssize_t len = utf8Char(s + i, n - i, &subpart);
        if (len == 0) {
            flags |= INVALID;
            i++;
            continue;
        }
        i += len;
    }
    *newlines = lf;
    return flags;
}

#ifdef HAVE_SSSE3_PATH


/*
 * One implementation, written once for both vector widths: V is the vector
 * type, P the intrinsics' prefix, W the width in bytes.  The macros below
 * name each operation for both.
 */

#define SSSE3 __attribute__((target("ssse3")))
#define AVX2 __attribute__((target("avx2")))

#define DEFINE_SCAN(NAME, TARGET, V, W, SET1, LOADU, AND, OR, XOR, ANDNOT, CMPEQ, MIN, SUB, SUBS, SRLI16, SHUFFLE, \
                    MOVEMASK, SETZERO, PREV, SUMS, TABLE)                                                      \
    TARGET static int NAME(const uint8_t *s, Py_ssize_t n, Py_ssize_t *newlines)                                 \
    {                                                                                                            \
        const V high1 = TABLE(byte1High), low1 = TABLE(byte1Low), high2 = TABLE(byte2High);                      \
        const V complete = LOADU(lastComplete + 32 - W);                                                         \
        const V zero = SETZERO(), nibble = SET1(0x0f);                                                           \
        const V lf = SET1('\n'), del = SET1(0x7f), backslash = SET1('\\'), quote = SET1('"');                    \
        const V below20 = SET1(0x1f), x80 = SET1((char)0x80), xa8 = SET1((char)0xa8);                            \
        const V xc2 = SET1((char)0xc2), xe2 = SET1((char)0xe2), top3 = SET1((char)0xe0), top7 = SET1((char)0xfe); \
        const V third = SET1(0xe0 - 0x80), fourth = SET1(0xf0 - 0x80);                                           \
        V escapes = zero, quotes = zero, errors = zero, unsafe = zero;                                           \
        V incomplete = zero, prev = zero, counts = zero;                                                         \
        int nonascii = 0, counted = 0;                                                                           \
        Py_ssize_t lfTotal = 0, i = 0;                                                                           \
        uint8_t tail[W];                                                                                         \
        while (i < n) {                                                                                          \
            V v;                                                                                                 \
            if (n - i >= W)                                                                                      \
                v = LOADU(s + i);                                                                                \
            else {                                                                                               \
                /* The last bytes, padded with spaces: no check flags a                                          \
                   space, and it ends any character left open. */                                               \
                memset(tail, ' ', sizeof tail);                                                                  \
                memcpy(tail, s + i, (size_t)(n - i));                                                            \
                v = LOADU(tail);                                                                                 \
            }                                                                                                    \
            i += W;                                                                                              \
            V isLF = CMPEQ(v, lf);                                                                               \
            counts = SUB(counts, isLF);                                                                          \
            if (++counted == 255) {                                                                              \
                lfTotal += SUMS(counts, zero);                                                                   \
                counts = zero;                                                                                   \
                counted = 0;                                                                                     \
            }                                                                                                    \
            escapes = OR(escapes, ANDNOT(isLF, CMPEQ(MIN(v, below20), v)));                                      \
            escapes = OR(escapes, OR(CMPEQ(v, del), CMPEQ(v, backslash)));                                      \
            quotes = OR(quotes, CMPEQ(v, quote));                                                                \
            if (MOVEMASK(v) == 0) {                                                                              \
                errors = OR(errors, incomplete);                                                                 \
                incomplete = zero;                                                                               \
            }                                                                                                    \
            else {                                                                                               \
                nonascii = 1;                                                                                    \
                V prev1 = PREV(v, prev, 1), prev2 = PREV(v, prev, 2), prev3 = PREV(v, prev, 3);                  \
                V special = AND(AND(SHUFFLE(high1, AND(SRLI16(prev1, 4), nibble)), SHUFFLE(low1, AND(prev1, nibble))), \
                                SHUFFLE(high2, AND(SRLI16(v, 4), nibble)));                                      \
                V must23 = OR(SUBS(prev2, third), SUBS(prev3, fourth));                                          \
                errors = OR(errors, XOR(AND(must23, x80), special));                                             \
                incomplete = SUBS(v, complete);                                                                  \
                V c1 = AND(CMPEQ(prev1, xc2), CMPEQ(AND(v, top3), x80));                                         \
                V separator = AND(AND(CMPEQ(prev2, xe2), CMPEQ(prev1, x80)), CMPEQ(AND(v, top7), xa8));          \
                unsafe = OR(unsafe, OR(c1, separator));                                                          \
            }                                                                                                    \
            prev = v;                                                                                            \
        }                                                                                                        \
        errors = OR(errors, incomplete);                                                                         \
        lfTotal += SUMS(counts, zero);                                                                           \
        int flags = 0;                                                                                           \
        if (MOVEMASK(escapes))                                                                                   \
            flags |= ESCAPE;                                                                                     \
        if (MOVEMASK(quotes))                                                                                    \
            flags |= QUOTE;                                                                                      \
        if (nonascii) {                                                                                          \
            flags |= NONASCII;                                                                                   \
            if (MOVEMASK(CMPEQ(errors, zero)) != (int)(W == 32 ? -1 : 0xffff))                                    \
                flags |= INVALID;                                                                                \
            if (MOVEMASK(unsafe))                                                                                \
                flags |= UNSAFE;                                                                                 \
        }                                                                                                        \
        *newlines = lfTotal;                                                                                     \
        return flags;                                                                                            \
    }

/* 16 bytes at a time (SSSE3). */
#define LOAD128(p) _mm_loadu_si128((const __m128i *)(p))
#define PREV128(v, prev, k) _mm_alignr_epi8((v), (prev), 16 - (k))
SSSE3 static inline Py_ssize_t
sums128(__m128i counts, __m128i zero)
{
    __m128i sums = _mm_sad_epu8(counts, zero);
    return (Py_ssize_t)(_mm_cvtsi128_si64(sums) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums)));
}
DEFINE_SCAN(scan_ssse3, SSSE3, __m128i, 16, _mm_set1_epi8, LOAD128, _mm_and_si128, _mm_or_si128, _mm_xor_si128,
            _mm_andnot_si128, _mm_cmpeq_epi8, _mm_min_epu8, _mm_sub_epi8, _mm_subs_epu8, _mm_srli_epi16,
            _mm_shuffle_epi8, _mm_movemask_epi8, _mm_setzero_si128, PREV128, sums128, LOAD128)

/* 32 bytes at a time (AVX2): the byte before each lane's first comes
   from the lane before, across the 128-bit halves. */
#define LOAD256(p) _mm256_loadu_si256((const __m256i *)(p))
#define TABLE256(t) _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t)))
#define PREV256(v, prev, k) _mm256_alignr_epi8((v), _mm256_permute2x128_si256((prev), (v), 0x21), 16 - (k))
AVX2 static inline Py_ssize_t
sums256(__m256i counts, __m256i zero)
{
    __m256i sums = _mm256_sad_epu8(counts, zero);
    return (Py_ssize_t)(_mm256_extract_epi64(sums, 0) + _mm256_extract_epi64(sums, 1) +
                        _mm256_extract_epi64(sums, 2) + _mm256_extract_epi64(sums, 3));
}
DEFINE_SCAN(scan_avx2, AVX2, __m256i, 32, _mm256_set1_epi8, LOAD256, _mm256_and_si256, _mm256_or_si256,
            _mm256_xor_si256, _mm256_andnot_si256, _mm256_cmpeq_epi8, _mm256_min_epu8, _mm256_sub_epi8,
            _mm256_subs_epu8, _mm256_srli_epi16, _mm256_shuffle_epi8, _mm256_movemask_epi8, _mm256_setzero_si256,
            PREV256, sums256, TABLE256)

#endif /* HAVE_SSSE3_PATH */

/* The ways this build can scan, best last; BEST is the best this CPU runs. */
enum { BYTEWISE, WITH_SSSE3, WITH_AVX2 };
static const char *const wayNames[] = {"bytewise", "ssse3", "avx2"};
static int best = BYTEWISE;

static PyObject *
scanWay(PyObject *arg, int way)
{
    Py_buffer view;
    Py_ssize_t newlines;
    int flags;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *data = (const uint8_t *)view.buf;
    switch (way) {
#ifdef HAVE_SSSE3_PATH
    case WITH_AVX2:
        flags = scan_avx2(data, view.len, &newlines);
        break;
    case WITH_SSSE3:
        flags = scan_ssse3(data, view.len, &newlines);
        break;
#endif
    default:
        flags = scan_bytes(data, view.len, &newlines);
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(in)", flags, newlines);
}

static PyObject *
scan(PyObject *Py_UNUSED(module), PyObject *arg)
{
    return scanWay(arg, best);
}

static PyObject *
scanWith(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *data;
    const char *name;

    if (!PyArg_ParseTuple(args, "Os:scanWith", &data, &name))
        return NULL;
    for (int way = BYTEWISE; way <= best; way++) {
        if (strcmp(name, wayNames[way]) == 0)
            return scanWay(data, way);
    }
    PyErr_Format(PyExc_ValueError, "this CPU or build cannot scan with %s", name);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_O, "scan(data) -> (flags, newlines): what a batch of received bytes holds, in one pass."},
    {"scanWith", scanWith, METH_VARARGS,
     "scanWith(data, way) -> scan(data) done a given way: one of WAYS (tests check each)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "logger_service._scan",
    "Whole-batch checks of received bytes in one pass, in C (see logger_service.scan).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
#ifdef HAVE_SSSE3_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("ssse3"))
        best = WITH_SSSE3;
    if (__builtin_cpu_supports("avx2"))
        best = WITH_AVX2;
#endif
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *ways = PyTuple_New(best + 1);
    if (ways == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    for (int way = BYTEWISE; way <= best; way++) {
        PyObject *name = PyUnicode_FromString(wayNames[way]);
        if (name == NULL) {
            Py_DECREF(ways);
            Py_DECREF(m);
            return NULL;
        }
        PyTuple_SET_ITEM(ways, way, name);
    }
    if (PyModule_AddObject(m, "WAYS", ways) < 0) {
        Py_DECREF(ways);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
