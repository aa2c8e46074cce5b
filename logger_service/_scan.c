/*
 * Whole-batch checks of received bytes, in one pass: the C half of
 * logger_service/scan.py, which documents the flags and holds the same
 * checks in Python for a build without this module.
 *
 * scan(data) -> (flags, newlines)
 *
 * On x86-64 with SSSE3 the bytes are read 16 at a time.  UTF-8 is checked
 * with the lookup method of Keiser and Lemire ("Validating UTF-8 in less
 * than one instruction per byte", 2021): each byte and the one before it
 * index three 16-entry tables whose AND says which rule the pair breaks,
 * and a byte that must continue a 3- or 4-byte character is found from the
 * bytes two and three before it.  Blocks of ASCII skip that part.  Elsewhere
 * a plain loop does the same checks a byte at a time.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SSSE3_PATH 1
#include <immintrin.h>
#endif

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
        Py_ssize_t len;
        uint8_t low = 0x80, high = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                low = 0xa0;
            else if (c == 0xed)
                high = 0x9f;
        }
        else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                low = 0x90;
            else if (c == 0xf4)
                high = 0x8f;
        }
        else {
            flags |= INVALID;
            i++;
            continue;
        }
        int ok = i + len <= n && s[i + 1] >= low && s[i + 1] <= high;
        for (Py_ssize_t k = 2; ok && k < len; k++)
            ok = (s[i + k] & 0xc0) == 0x80;
        if (!ok) {
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

/* Bits of the lookup tables: which rule a pair of bytes breaks. */
#define TOO_SHORT (1 << 0)      /* 11______ then 0_______ or 11______ */
#define TOO_LONG (1 << 1)       /* 0_______ then 10______ */
#define OVERLONG_3 (1 << 2)     /* 11100000 100_____ */
#define TOO_LARGE (1 << 3)      /* 11110100 1001____, 11110100 101_____, 11110101+ 10______ */
#define SURROGATE (1 << 4)      /* 11101101 101_____ */
#define OVERLONG_2 (1 << 5)     /* 1100000_ 10______ */
#define TOO_LARGE_1000 (1 << 6) /* 11110101+ 1000____ */
#define OVERLONG_4 (1 << 6)     /* 11110000 1000____ */
#define TWO_CONTS (1 << 7)      /* 10______ 10______ */
#define CARRY (TOO_SHORT | TOO_LONG | TWO_CONTS)

#define TARGET __attribute__((target("ssse3")))

static int ssse3_usable;

TARGET static inline __m128i
high_nibbles(__m128i v)
{
    return _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0f));
}

TARGET static int
scan_ssse3(const uint8_t *s, Py_ssize_t n, Py_ssize_t *newlines)
{
    const __m128i byte1High = _mm_setr_epi8(
        TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG,
        TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS,
        TOO_SHORT | OVERLONG_2,
        TOO_SHORT,
        TOO_SHORT | OVERLONG_3 | SURROGATE,
        (char)(TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4));
    const __m128i byte1Low = _mm_setr_epi8(
        (char)(CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4),
        (char)(CARRY | OVERLONG_2),
        (char)CARRY,
        (char)CARRY,
        (char)(CARRY | TOO_LARGE),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000),
        (char)(CARRY | TOO_LARGE | TOO_LARGE_1000));
    const __m128i byte2High = _mm_setr_epi8(
        TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
        (char)(TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4),
        (char)(TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE),
        (char)(TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE),
        (char)(TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE),
        TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT);
    /* A block ends in the middle of a character when its last byte leads
       one, or the one before leads a 3- or 4-byte one, or the one before
       that a 4-byte one. */
    const __m128i lastComplete = _mm_setr_epi8(
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        (char)(0xf0 - 1), (char)(0xe0 - 1), (char)(0xc0 - 1));
    const __m128i zero = _mm_setzero_si128();
    const __m128i lf = _mm_set1_epi8('\n');
    const __m128i del = _mm_set1_epi8(0x7f);
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i below20 = _mm_set1_epi8(0x1f);
    const __m128i top1 = _mm_set1_epi8((char)0xe0);
    const __m128i top7 = _mm_set1_epi8((char)0xfe);
    const __m128i x80 = _mm_set1_epi8((char)0x80);
    const __m128i xa8 = _mm_set1_epi8((char)0xa8);
    const __m128i xc2 = _mm_set1_epi8((char)0xc2);
    const __m128i xe2 = _mm_set1_epi8((char)0xe2);
    const __m128i third = _mm_set1_epi8(0xe0 - 0x80);
    const __m128i fourth = _mm_set1_epi8(0xf0 - 0x80);

    __m128i escapes = zero, quotes = zero, errors = zero, unsafe = zero;
    __m128i incomplete = zero, prev = zero, counts = zero;
    int nonascii = 0;
    int countedBlocks = 0;
    Py_ssize_t lfTotal = 0;
    uint8_t tail[16];
    Py_ssize_t i = 0;

    while (i < n) {
        __m128i v;
        if (n - i >= 16) {
            v = _mm_loadu_si128((const __m128i *)(s + i));
        }
        else {
            /* The last bytes, padded with spaces, which no check flags
               and which end any character left open. */
            memset(tail, ' ', sizeof tail);
            memcpy(tail, s + i, (size_t)(n - i));
            v = _mm_loadu_si128((const __m128i *)tail);
        }
        i += 16;

        __m128i isLF = _mm_cmpeq_epi8(v, lf);
        counts = _mm_sub_epi8(counts, isLF);
        if (++countedBlocks == 255) {
            __m128i sums = _mm_sad_epu8(counts, zero);
            lfTotal += _mm_cvtsi128_si64(sums) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums));
            counts = zero;
            countedBlocks = 0;
        }
        __m128i control = _mm_andnot_si128(isLF, _mm_cmpeq_epi8(_mm_min_epu8(v, below20), v));
        escapes = _mm_or_si128(escapes, control);
        escapes = _mm_or_si128(escapes, _mm_cmpeq_epi8(v, del));
        escapes = _mm_or_si128(escapes, _mm_cmpeq_epi8(v, backslash));
        quotes = _mm_or_si128(quotes, _mm_cmpeq_epi8(v, quote));

        if (_mm_movemask_epi8(v) == 0) {
            errors = _mm_or_si128(errors, incomplete);
            incomplete = zero;
        }
        else {
            nonascii = 1;
            __m128i prev1 = _mm_alignr_epi8(v, prev, 15);
            __m128i prev2 = _mm_alignr_epi8(v, prev, 14);
            __m128i prev3 = _mm_alignr_epi8(v, prev, 13);
            __m128i special = _mm_and_si128(
                _mm_and_si128(_mm_shuffle_epi8(byte1High, high_nibbles(prev1)),
                              _mm_shuffle_epi8(byte1Low, _mm_and_si128(prev1, _mm_set1_epi8(0x0f)))),
                _mm_shuffle_epi8(byte2High, high_nibbles(v)));
            __m128i must23 = _mm_or_si128(_mm_subs_epu8(prev2, third), _mm_subs_epu8(prev3, fourth));
            errors = _mm_or_si128(errors, _mm_xor_si128(_mm_and_si128(must23, x80), special));
            incomplete = _mm_subs_epu8(v, lastComplete);

            __m128i c1 = _mm_and_si128(_mm_cmpeq_epi8(prev1, xc2), _mm_cmpeq_epi8(_mm_and_si128(v, top1), x80));
            __m128i separator = _mm_and_si128(
                _mm_and_si128(_mm_cmpeq_epi8(prev2, xe2), _mm_cmpeq_epi8(prev1, x80)),
                _mm_cmpeq_epi8(_mm_and_si128(v, top7), xa8));
            unsafe = _mm_or_si128(unsafe, _mm_or_si128(c1, separator));
        }
        prev = v;
    }
    errors = _mm_or_si128(errors, incomplete);
    {
        __m128i sums = _mm_sad_epu8(counts, zero);
        lfTotal += _mm_cvtsi128_si64(sums) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums));
    }

    int flags = 0;
    if (_mm_movemask_epi8(escapes))
        flags |= ESCAPE;
    if (_mm_movemask_epi8(quotes))
        flags |= QUOTE;
    if (nonascii) {
        flags |= NONASCII;
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(errors, zero)) != 0xffff)
            flags |= INVALID;
        if (_mm_movemask_epi8(unsafe))
            flags |= UNSAFE;
    }
    *newlines = lfTotal;
    return flags;
}

#endif /* HAVE_SSSE3_PATH */

static PyObject *
result(int flags, Py_ssize_t newlines)
{
    return Py_BuildValue("(in)", flags, newlines);
}

static PyObject *
scan(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    Py_ssize_t newlines;
    int flags;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
#ifdef HAVE_SSSE3_PATH
    if (ssse3_usable)
        flags = scan_ssse3((const uint8_t *)view.buf, view.len, &newlines);
    else
#endif
        flags = scan_bytes((const uint8_t *)view.buf, view.len, &newlines);
    PyBuffer_Release(&view);
    return result(flags, newlines);
}

static PyObject *
scanBytewise(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    Py_ssize_t newlines;
    int flags;

    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    flags = scan_bytes((const uint8_t *)view.buf, view.len, &newlines);
    PyBuffer_Release(&view);
    return result(flags, newlines);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_O,
     "scan(data) -> (flags, newlines): what a batch of received bytes holds, in one pass."},
    {"scanBytewise", scanBytewise, METH_O,
     "scanBytewise(data) -> (flags, newlines): scan() a byte at a time, as on a CPU without SSSE3."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "logger_service._scan",
    "Whole-batch checks of received bytes in one pass, in C (see logger_service.scan).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
#ifdef HAVE_SSSE3_PATH
    __builtin_cpu_init();
    ssse3_usable = __builtin_cpu_supports("ssse3");
    if (PyModule_AddIntConstant(m, "SIMD", ssse3_usable) < 0) {
#else
    if (PyModule_AddIntConstant(m, "SIMD", 0) < 0) {
#endif
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
