/*
 * A batch of received lines made into records, escaped, in one pass: the C
 * half of logger_service/records.py, which holds the same in Python for a
 * build without this module.  The formats' fast path takes batches with
 * nothing to escape; this is the path of the others.
 *
 * textRecords(data, prefix) -> bytes
 *     The text records of the lines joined by LF in data: prefix, then the
 *     line with a backslash written \\, and every byte below 0x20, 0x7F,
 *     every byte of a C1 control (U+0080..U+009F) or of U+2028/U+2029 and
 *     every byte that is not part of valid UTF-8 written \xNN; then LF.
 *
 * jsonRecords(data, start) -> bytes
 *     The JSON records of the lines joined by LF in data: start (the
 *     record up to its "line" string's opening quote), then the line with
 *     quote, backslash and controls escaped as json.dumps escapes them,
 *     DEL, C1 controls and U+2028/U+2029 as \uXXXX, and each stretch of
 *     invalid UTF-8 (a maximal subpart, as Python's decoder reports it)
 *     replaced by U+FFFD; for a line that held invalid UTF-8,
 *     ","line_b64":" and the line's exact bytes in base64; then "} and LF.
 *
 * Runs of bytes that need nothing are found 16 at a time (SSSE3) and
 * copied; the rest is taken a character at a time.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_utf8.h"

static const char hex[] = "0123456789abcdef";

static int ssse3Usable;

#ifdef HAVE_SSSE3_PATH

/*
 * How many of the 16 bytes at p, which start a character, are written as
 * they are: up to the first byte that needs escaping or ends a line (a
 * control, DEL, a backslash, a double quote if quote is set), or all 16
 * but a last character they leave open.  0 with *trouble set when one of
 * them is not valid UTF-8, a C1 control or U+2028/9: the caller takes them
 * a step at a time.
 */
__attribute__((target("ssse3"))) static inline int
plainBytes(const uint8_t *p, int quote, int *trouble)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m128i bad = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
    bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    if (quote)
        bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
    unsigned int badMask = (unsigned int)_mm_movemask_epi8(bad);
    int plain = 16;
    *trouble = 0;
    if (_mm_movemask_epi8(v) != 0) {
        /* The byte before p ends a character: as far as these checks go,
           it is ASCII. */
        const __m128i zero = _mm_setzero_si128(), nibble = _mm_set1_epi8(0x0f);
        const __m128i prev1 = _mm_alignr_epi8(v, zero, 15);
        const __m128i prev2 = _mm_alignr_epi8(v, zero, 14);
        const __m128i prev3 = _mm_alignr_epi8(v, zero, 13);
        const __m128i high1 = _mm_loadu_si128((const __m128i *)byte1High);
        const __m128i low1 = _mm_loadu_si128((const __m128i *)byte1Low);
        const __m128i high2 = _mm_loadu_si128((const __m128i *)byte2High);
        __m128i special = _mm_and_si128(
            _mm_and_si128(_mm_shuffle_epi8(high1, _mm_and_si128(_mm_srli_epi16(prev1, 4), nibble)),
                          _mm_shuffle_epi8(low1, _mm_and_si128(prev1, nibble))),
            _mm_shuffle_epi8(high2, _mm_and_si128(_mm_srli_epi16(v, 4), nibble)));
        __m128i must23 = _mm_or_si128(_mm_subs_epu8(prev2, _mm_set1_epi8(0xe0 - 0x80)),
                                      _mm_subs_epu8(prev3, _mm_set1_epi8(0xf0 - 0x80)));
        const __m128i x80 = _mm_set1_epi8((char)0x80);
        __m128i errors = _mm_xor_si128(_mm_and_si128(must23, x80), special);
        __m128i c1 = _mm_and_si128(_mm_cmpeq_epi8(prev1, _mm_set1_epi8((char)0xc2)),
                                   _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8((char)0xe0)), x80));
        __m128i separator = _mm_and_si128(
            _mm_and_si128(_mm_cmpeq_epi8(prev2, _mm_set1_epi8((char)0xe2)), _mm_cmpeq_epi8(prev1, x80)),
            _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8((char)0xfe)), _mm_set1_epi8((char)0xa8)));
        errors = _mm_or_si128(errors, _mm_or_si128(c1, separator));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(errors, zero)) != 0xffff) {
            *trouble = 1;
            return 0;
        }
        /* A character the 16 bytes leave open is not written yet. */
        if (p[15] >= 0xc0)
            plain = 15;
        else if (p[14] >= 0xe0)
            plain = 14;
        else if (p[13] >= 0xf0)
            plain = 13;
    }
    /* The bytes before the first to escape or LF: it is ASCII, so the
       characters before it end before it (else UTF-8 would have broken
       there). */
    if (badMask && (int)__builtin_ctz(badMask) < plain)
        plain = __builtin_ctz(badMask);
    return plain;
}

/* Write the 16 bytes at p at o (which has room for them). */
__attribute__((target("ssse3"))) static inline void
copy16(uint8_t *o, const uint8_t *p)
{
    _mm_storeu_si128((__m128i *)o, _mm_loadu_si128((const __m128i *)p));
}

#endif /* HAVE_SSSE3_PATH */

/* Whether the valid character at s (of len bytes) is one records escape:
   a C1 control or U+2028, U+2029. */
static inline int
unsafeChar(const uint8_t *s, Py_ssize_t len)
{
    return (len == 2 && s[0] == 0xc2 && s[1] < 0xa0) ||
           (len == 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9));
}

/*
 * The loop of textRecords: s (n bytes) escaped at o, which has room for 4
 * bytes a byte; returns the end.  Written once, compiled twice: with simd
 * set inside a function compiled for SSSE3 (so that plainBytes is inlined
 * there), and without.
 */
static inline __attribute__((always_inline)) uint8_t *
textLoop(const uint8_t *s, Py_ssize_t n, uint8_t *o, const uint8_t *prefix, Py_ssize_t plen, int simd)
{
    Py_ssize_t i = 0;
    memcpy(o, prefix, (size_t)plen);
    o += plen;
    /* Where 16 bytes from here on were found to need a step each. */
    Py_ssize_t slowUntil = 0;
    (void)simd;
    (void)slowUntil;
    while (i < n) {
#ifdef HAVE_SSSE3_PATH
        if (simd && i >= slowUntil && n - i >= 16) {
            int trouble;
            int plain = plainBytes(s + i, 0, &trouble);
            if (plain) {
                copy16(o, s + i);
                o += plain;
                i += plain;
                continue;
            }
            /* Else a byte to escape here, and on with 16 at a time; or
               bytes to take one character at a time. */
            if (trouble)
                slowUntil = i + 16;
        }
#endif
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c >= 0x20 && c != 0x7f && c != '\\')
                *o++ = c;
            else if (c == '\n') {
                *o++ = '\n';
                memcpy(o, prefix, (size_t)plen);
                o += plen;
            }
            else if (c == '\\') {
                *o++ = '\\';
                *o++ = '\\';
            }
            else {
                *o++ = '\\';
                *o++ = 'x';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
            i++;
            continue;
        }
        Py_ssize_t subpart;
        Py_ssize_t len = utf8Char(s + i, n - i, &subpart);
        if (len && !unsafeChar(s + i, len)) {
            memcpy(o, s + i, (size_t)len);
            o += len;
            i += len;
            continue;
        }
        /* Every byte of an unsafe character or of invalid UTF-8. */
        for (Py_ssize_t end = i + (len ? len : subpart); i < end; i++) {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[s[i] >> 4];
            *o++ = hex[s[i] & 15];
        }
    }
    *o++ = '\n';
    return o;
}

static uint8_t *
textBytewise(const uint8_t *s, Py_ssize_t n, uint8_t *o, const uint8_t *prefix, Py_ssize_t plen)
{
    return textLoop(s, n, o, prefix, plen, 0);
}

#ifdef HAVE_SSSE3_PATH
__attribute__((target("ssse3"))) static uint8_t *
textSSSE3(const uint8_t *s, Py_ssize_t n, uint8_t *o, const uint8_t *prefix, Py_ssize_t plen)
{
    return textLoop(s, n, o, prefix, plen, 1);
}
#endif

/* How many LF bytes the n bytes at s hold. */
static Py_ssize_t
countLF(const uint8_t *s, Py_ssize_t n)
{
    Py_ssize_t count = 0;
    const uint8_t *end = s + n;
    while ((s = memchr(s, '\n', (size_t)(end - s))) != NULL) {
        count++;
        s++;
    }
    return count;
}

static PyObject *
textWay(PyObject *arg, PyObject *prefixArg, int simd)
{
    Py_buffer view, prefix;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(prefixArg, &prefix, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const uint8_t *s = (const uint8_t *)view.buf;
    Py_ssize_t n = view.len, plen = prefix.len;
    Py_ssize_t lines = countLF(s, n) + 1;
    PyObject *result = NULL;
    /* At most 4 bytes out for each byte in (\xNN), and each line's prefix
       and LF. */
    if (n <= PY_SSIZE_T_MAX / 8 && plen < PY_SSIZE_T_MAX / 8 / lines - 1)
        result = PyBytes_FromStringAndSize(NULL, n * 4 + lines * (plen + 1));
    else
        PyErr_NoMemory();
    if (result != NULL) {
        uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result), *o;
#ifdef HAVE_SSSE3_PATH
        if (simd)
            o = textSSSE3(s, n, out, (const uint8_t *)prefix.buf, plen);
        else
#endif
            o = textBytewise(s, n, out, (const uint8_t *)prefix.buf, plen);
        _PyBytes_Resize(&result, o - out);
    }
    PyBuffer_Release(&prefix);
    PyBuffer_Release(&view);
    return result;
}

static const char base64Digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Each 12 bits' two base64 digits, filled when the module loads. */
static uint8_t base64Pairs[4096][2];

static void
fillBase64Pairs(void)
{
    for (int v = 0; v < 4096; v++) {
        base64Pairs[v][0] = (uint8_t)base64Digits[v >> 6];
        base64Pairs[v][1] = (uint8_t)base64Digits[v & 63];
    }
}

/* Write s (n bytes) in base64 with padding at o; return the end. */
static uint8_t *
base64(uint8_t *o, const uint8_t *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        memcpy(o, base64Pairs[v >> 12], 2);
        memcpy(o + 2, base64Pairs[v & 0xfff], 2);
        o += 4;
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = base64Digits[v >> 18];
        *o++ = base64Digits[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    }
    else if (n - i == 2) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8);
        *o++ = base64Digits[v >> 18];
        *o++ = base64Digits[(v >> 12) & 63];
        *o++ = base64Digits[(v >> 6) & 63];
        *o++ = '=';
    }
    return o;
}

static const char lineB64[] = "\",\"line_b64\":\"";

/*
 * The loop of jsonRecords: s (n bytes) escaped into *result, of *size
 * bytes, which it grows when a line's base64 needs room; *written gets
 * how many bytes it wrote.  -1 if it could not grow it.  Compiled twice,
 * as textLoop is.
 */
static inline __attribute__((always_inline)) int
jsonLoop(const uint8_t *s, Py_ssize_t n, const uint8_t *start, Py_ssize_t slen, Py_ssize_t lines, PyObject **result,
         Py_ssize_t *size, Py_ssize_t *written, int simd)
{
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(*result), *o = out;
    Py_ssize_t i = 0, lineStart = 0;
    memcpy(o, start, (size_t)slen);
    o += slen;
    int invalid = 0;
    Py_ssize_t slowUntil = 0;
    (void)simd;
    (void)slowUntil;
    for (;;) {
#ifdef HAVE_SSSE3_PATH
        /* Not while a line with invalid UTF-8 is open: its end, wherever
           it is, takes a step of its own. */
        if (simd && !invalid && i >= slowUntil && n - i >= 16) {
            int trouble;
            int plain = plainBytes(s + i, 1, &trouble);
            if (plain) {
                copy16(o, s + i);
                o += plain;
                i += plain;
                continue;
            }
            if (trouble)
                slowUntil = i + 16;
        }
#endif
        if (i == n || s[i] == '\n') {
            if (invalid) {
                /* The field, the base64 and, after it, what is left of the
                   input escaped at worst, and the lines' ends and starts. */
                Py_ssize_t need = (Py_ssize_t)sizeof lineB64 + (i - lineStart + 2) / 3 * 4 + (n - i) * 6 + 64 +
                                  lines * (slen + 3);
                if (*size - (o - out) < need) {
                    Py_ssize_t used = o - out;
                    *size = used + need + *size / 2;
                    if (_PyBytes_Resize(result, *size) < 0)
                        return -1;
                    out = (uint8_t *)PyBytes_AS_STRING(*result);
                    o = out + used;
                }
                memcpy(o, lineB64, sizeof lineB64 - 1);
                o += sizeof lineB64 - 1;
                o = base64(o, s + lineStart, i - lineStart);
                invalid = 0;
            }
            memcpy(o, "\"}\n", 3);
            o += 3;
            if (i == n)
                break;
            memcpy(o, start, (size_t)slen);
            o += slen;
            lines--;
            lineStart = ++i;
            continue;
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c >= 0x20 && c != 0x7f && c != '\\' && c != '"')
                *o++ = c;
            else {
                *o++ = '\\';
                switch (c) {
                case '"':
                    *o++ = '"';
                    break;
                case '\\':
                    *o++ = '\\';
                    break;
                case '\b':
                    *o++ = 'b';
                    break;
                case '\t':
                    *o++ = 't';
                    break;
                case '\f':
                    *o++ = 'f';
                    break;
                case '\r':
                    *o++ = 'r';
                    break;
                default:
                    memcpy(o, "u00", 3);
                    o += 3;
                    *o++ = hex[c >> 4];
                    *o++ = hex[c & 15];
                }
            }
            i++;
            continue;
        }
        Py_ssize_t subpart;
        Py_ssize_t len = utf8Char(s + i, n - i, &subpart);
        if (len == 0) {
            /* U+FFFD for each maximal subpart, as the decoder replaces it. */
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            i += subpart;
            invalid = 1;
        }
        else if (unsafeChar(s + i, len)) {
            unsigned int code = len == 2 ? (unsigned int)(s[i + 1] & 0x3f) | 0x80 : 0x2028u + (s[i + 2] - 0xa8u);
            *o++ = '\\';
            *o++ = 'u';
            *o++ = hex[(code >> 12) & 15];
            *o++ = hex[(code >> 8) & 15];
            *o++ = hex[(code >> 4) & 15];
            *o++ = hex[code & 15];
            i += len;
        }
        else {
            memcpy(o, s + i, (size_t)len);
            o += len;
            i += len;
        }
    }
    *written = o - out;
    return 0;
}

static int
jsonBytewise(const uint8_t *s, Py_ssize_t n, const uint8_t *start, Py_ssize_t slen, Py_ssize_t lines,
             PyObject **result, Py_ssize_t *size, Py_ssize_t *written)
{
    return jsonLoop(s, n, start, slen, lines, result, size, written, 0);
}

#ifdef HAVE_SSSE3_PATH
__attribute__((target("ssse3"))) static int
jsonSSSE3(const uint8_t *s, Py_ssize_t n, const uint8_t *start, Py_ssize_t slen, Py_ssize_t lines,
          PyObject **result, Py_ssize_t *size, Py_ssize_t *written)
{
    return jsonLoop(s, n, start, slen, lines, result, size, written, 1);
}
#endif

static PyObject *
jsonWay(PyObject *arg, PyObject *startArg, int simd)
{
    Py_buffer view, start;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(startArg, &start, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const uint8_t *s = (const uint8_t *)view.buf;
    Py_ssize_t n = view.len, slen = start.len;
    Py_ssize_t lines = countLF(s, n) + 1;
    PyObject *result = NULL;
    Py_ssize_t size = 0;
    /* Room for every byte escaped as \u00NN, and each record's start and
       end; a line with invalid UTF-8 needs more (its base64), and the
       buffer grows then. */
    if (n <= PY_SSIZE_T_MAX / 16 && slen < PY_SSIZE_T_MAX / 16 / lines - 3) {
        size = n * 6 + 64 + lines * (slen + 3);
        result = PyBytes_FromStringAndSize(NULL, size);
    }
    else
        PyErr_NoMemory();
    if (result != NULL) {
        Py_ssize_t written;
        int failed;
#ifdef HAVE_SSSE3_PATH
        if (simd)
            failed = jsonSSSE3(s, n, (const uint8_t *)start.buf, slen, lines - 1, &result, &size, &written);
        else
#endif
            failed = jsonBytewise(s, n, (const uint8_t *)start.buf, slen, lines - 1, &result, &size, &written);
        if (!failed)
            _PyBytes_Resize(&result, written);
    }
    PyBuffer_Release(&start);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
textRecords(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *data, *prefix;
    if (!PyArg_ParseTuple(args, "OO:textRecords", &data, &prefix))
        return NULL;
    return textWay(data, prefix, ssse3Usable);
}

static PyObject *
jsonRecords(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *data, *start;
    if (!PyArg_ParseTuple(args, "OO:jsonRecords", &data, &start))
        return NULL;
    return jsonWay(data, start, ssse3Usable);
}

static PyObject *
recordsWith(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *data, *start;
    const char *format, *way;

    if (!PyArg_ParseTuple(args, "OOss:recordsWith", &data, &start, &format, &way))
        return NULL;
    int simd = strcmp(way, "ssse3") == 0;
    if (!(simd && ssse3Usable) && strcmp(way, "bytewise") != 0) {
        PyErr_Format(PyExc_ValueError, "this CPU or build cannot escape with %s", way);
        return NULL;
    }
    if (strcmp(format, "text") == 0)
        return textWay(data, start, simd);
    if (strcmp(format, "json") == 0)
        return jsonWay(data, start, simd);
    PyErr_Format(PyExc_ValueError, "no record format %s", format);
    return NULL;
}

static PyMethodDef methods[] = {
    {"textRecords", textRecords, METH_VARARGS,
     "textRecords(data, prefix) -> bytes: text records of the lines joined by LF in data, prefix before each."},
    {"jsonRecords", jsonRecords, METH_VARARGS,
     "jsonRecords(data, start) -> bytes: JSON records of the lines joined by LF in data, start before each line "
     "string, \"} and LF after it."},
    {"recordsWith", recordsWith, METH_VARARGS,
     "recordsWith(data, prefix, format, way) -> bytes: textRecords or jsonRecords (format text or json) done a "
     "given way, one of WAYS (tests check each)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "logger_service._escape",
    "Escaping a batch of received lines for the record formats in one pass, in C (see logger_service.records).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__escape(void)
{
    fillBase64Pairs();
#ifdef HAVE_SSSE3_PATH
    __builtin_cpu_init();
    ssse3Usable = __builtin_cpu_supports("ssse3");
#endif
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *ways = ssse3Usable ? Py_BuildValue("(ss)", "bytewise", "ssse3") : Py_BuildValue("(s)", "bytewise");
    if (ways == NULL || PyModule_AddObject(m, "WAYS", ways) < 0) {
        Py_XDECREF(ways);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
